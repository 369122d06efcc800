/**
 * Numbers a person debugging slices wants per tensor: count, L2 norm, min, max and
 * how many values are NaN or infinite (for `inspect`). Pure. Left out: judging the
 * numbers (validate.ts rejects non-finite values; the roles score deltas).
 *
 * @module
 */
import type { Tensors } from "../model/params.ts";

/** Statistics of one tensor; min/max/norm over the finite values only. */
export interface TensorStats {
  count: number;
  norm: number;
  min: number;
  max: number;
  nan: number;
  inf: number;
}

/**
 * {@link TensorStats} of `v` (min/max are NaN when no value is finite).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const s = tensorStats(new Float32Array([3, -4, NaN, Infinity]));
 * assert.deepEqual(s, { count: 4, norm: 5, min: -4, max: 3, nan: 1, inf: 1 });
 * ```
 */
export function tensorStats(v: Float32Array): TensorStats {
  let sq = 0, min = Infinity, max = -Infinity, nan = 0, inf = 0;
  for (let i = 0; i < v.length; i++) {
    const x = v[i]!;
    if (x !== x) nan++;
    else if (x === Infinity || x === -Infinity) inf++;
    else {
      sq += x * x;
      if (x < min) min = x;
      if (x > max) max = x;
    }
  }
  const finite = v.length - nan - inf;
  return {
    count: v.length,
    norm: Math.sqrt(sq),
    min: finite ? min : NaN,
    max: finite ? max : NaN,
    nan,
    inf,
  };
}

/**
 * Per-tensor stats plus a `total` row (norm over all tensors).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const { tensors, total } = sliceStats(new Map([
 *   ["a", new Float32Array([3])],
 *   ["b", new Float32Array([-4, NaN])],
 * ]));
 * assert.equal(tensors.get("b")!.nan, 1);
 * assert.deepEqual(total, { count: 3, norm: 5, min: -4, max: 3, nan: 1, inf: 0 });
 * ```
 */
export function sliceStats(
  slice: Tensors,
): { tensors: Map<string, TensorStats>; total: TensorStats } {
  const tensors = new Map<string, TensorStats>();
  const total: TensorStats = { count: 0, norm: 0, min: Infinity, max: -Infinity, nan: 0, inf: 0 };
  let sq = 0;
  for (const [name, v] of slice) {
    const s = tensorStats(v);
    tensors.set(name, s);
    total.count += s.count;
    total.nan += s.nan;
    total.inf += s.inf;
    sq += s.norm * s.norm;
    if (s.min < total.min) total.min = s.min;
    if (s.max > total.max) total.max = s.max;
  }
  total.norm = Math.sqrt(sq);
  if (total.min === Infinity) total.min = total.max = NaN;
  return { tensors, total };
}
