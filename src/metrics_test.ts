import assert from "node:assert/strict";
import { Metrics } from "./metrics.ts";

Deno.test("Metrics.render() writes the Prometheus text format", () => {
  const m = new Metrics();
  m.set("boltzmann_window", 12, {}, "Current window");
  m.inc("boltzmann_rejections_total", { reason: "bad signature" });
  m.inc("boltzmann_rejections_total", { reason: "bad signature" }, 2);
  m.set("boltzmann_score", 0.5, { uid: 3, hotkey: 'a"b' });
  m.set("boltzmann_loss", NaN);
  assert.equal(
    m.render(),
    [
      "# HELP boltzmann_window Current window",
      "# TYPE boltzmann_window gauge",
      "boltzmann_window 12",
      "# HELP boltzmann_rejections_total boltzmann_rejections_total",
      "# TYPE boltzmann_rejections_total counter",
      'boltzmann_rejections_total{reason="bad signature"} 3',
      "# HELP boltzmann_score boltzmann_score",
      "# TYPE boltzmann_score gauge",
      'boltzmann_score{hotkey="a\\"b",uid="3"} 0.5',
      "# HELP boltzmann_loss boltzmann_loss",
      "# TYPE boltzmann_loss gauge",
      "boltzmann_loss NaN",
      "",
    ].join("\n"),
  );
  assert.equal(m.get("boltzmann_rejections_total", { reason: "bad signature" }), 3);
  assert.throws(() => m.set("bad name", 1), /Invalid metric name 'bad name'/);
});
