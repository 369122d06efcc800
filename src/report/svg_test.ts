import assert from "node:assert/strict";
import { heatMap, lineChart } from "./svg.ts";

Deno.test("lineChart() draws one path per series and escapes names", () => {
  const svg = lineChart({
    title: "loss <held-out>",
    xLabel: "window",
    yLabel: "loss",
    series: [
      { name: "shared", points: [[0, 10], [1, 8], [2, 7]] },
      { name: "alone & co", points: [[0, 10], [2, 9]], dashed: true },
    ],
  });
  assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.equal(svg.match(/<path /g)?.length, 2);
  assert.match(svg, /loss &lt;held-out&gt;/);
  assert.match(svg, /alone &amp; co/);
  // x=0 maps to the left axis (70), the max y to the top (40).
  assert.match(svg, /M70\.0,40\.0/);
  assert.ok(svg.endsWith("</svg>"));
});

Deno.test("heatMap() draws n² cells with values", () => {
  const svg = heatMap({ title: "cos", labels: ["a", "b"], values: [[1, -0.5], [-0.5, 1]] });
  assert.equal(svg.match(/<rect x=/g)?.length, 4);
  assert.match(svg, /-0\.50/);
  assert.match(svg, /rgb\(255,0,0\)/);
});
