import assert from "node:assert/strict";
import { normalizeWeights } from "./weights.ts";

// Expected values from bittensor's convert_weights_and_uids_for_emit formula run in
// Python 3 (round half to even): round(float(w) / max * 65535), zeros dropped.
const VECTORS: [number[], number[], number[], number[]][] = [
  [[3, 7, 9], [1, 0, 2], [3, 9], [32768, 65535]],
  [[0, 1, 2, 3], [1, 6, 3, 2], [0, 1, 2, 3], [10922, 65535, 32768, 21845]],
  [[5, 4], [0.1, 0.3], [5, 4], [21845, 65535]],
  [[0, 1, 2], [0.5, 0.25, 1.0], [0, 1, 2], [32768, 16384, 65535]],
  [[0, 1, 2], [1e-6, 1, 0.5], [1, 2], [65535, 32768]],
  [[10, 11, 12, 13], [7, 7, 7, 7], [10, 11, 12, 13], [65535, 65535, 65535, 65535]],
  [[0, 1], [1, 131070], [1], [65535]],
];

Deno.test("normalizeWeights() matches bittensor's Python normalisation", () => {
  for (const [uids, w, eu, ew] of VECTORS) {
    assert.deepEqual(normalizeWeights(uids, w), { uids: eu, weights: ew }, `${uids} ${w}`);
  }
});

Deno.test("normalizeWeights() refuses bad inputs", () => {
  assert.throws(() => normalizeWeights([0, 1], [1]), /2 uids but 1 weights/);
  assert.throws(() => normalizeWeights([0, 0], [1, 1]), /uid 0 appears twice/);
  assert.throws(() => normalizeWeights([70000], [1]), /uid 70000/);
  assert.throws(() => normalizeWeights([1.5], [1]), /uid 1.5/);
  assert.throws(() => normalizeWeights([0], [-1]), /weight -1/);
  assert.throws(() => normalizeWeights([0], [NaN]), /weight NaN/);
  assert.throws(() => normalizeWeights([0], [Infinity]), /weight Infinity/);
  assert.throws(() => normalizeWeights([0, 1], [0, 0]), /every weight is zero/);
  assert.throws(() => normalizeWeights([], []), /every weight is zero/);
});
