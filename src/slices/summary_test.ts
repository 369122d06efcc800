import assert from "node:assert/strict";
import { sliceStats, tensorStats } from "./summary.ts";

Deno.test("tensorStats() counts NaN/Inf and takes norm, min, max over finite values", () => {
  const s = tensorStats(new Float32Array([3, NaN, -4, Infinity, -Infinity, 0]));
  assert.deepEqual(s, { count: 6, norm: 5, min: -4, max: 3, nan: 1, inf: 2 });
  const none = tensorStats(new Float32Array([NaN]));
  assert.ok(Number.isNaN(none.min) && Number.isNaN(none.max));
  assert.equal(none.norm, 0);
});

Deno.test("sliceStats() totals across tensors", () => {
  const { tensors, total } = sliceStats(
    new Map([["a", new Float32Array([3])], ["b", new Float32Array([4, NaN])]]),
  );
  assert.equal(tensors.get("b")!.nan, 1);
  assert.deepEqual(total, { count: 3, norm: 5, min: 3, max: 4, nan: 1, inf: 0 });
});
