/**
 * Weight normalisation exactly as bittensor's Python SDK does it before `set_weights`
 * (`convert_weights_and_uids_for_emit`): scale so the largest weight becomes 65535,
 * round half to even (Python's `round`), drop uids whose weight rounds to zero.
 *
 * @module
 */

/** Largest u16: the weight the best uid gets. */
export const U16_MAX = 65535;

/** Python's `round(x)` for x ≥ 0: nearest integer, ties to even. */
function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** A weight vector as the chain takes it: distinct u16 uids and their u16 values. */
export interface U16Weights {
  uids: number[];
  weights: number[];
}

/**
 * Scales `weights` so the largest is {@link U16_MAX} and drops zeros.
 *
 * @example
 * ```ts
 * normalizeWeights([3, 7, 9], [1, 0, 2]); // { uids: [3, 9], weights: [32768, 65535] }
 * ```
 * @throws {RangeError} on unequal lengths, a uid outside u16, duplicate uids, a negative
 *   or non-finite weight, or all weights zero
 */
export function normalizeWeights(
  uids: readonly number[],
  weights: readonly number[],
): U16Weights {
  if (uids.length !== weights.length) {
    throw new RangeError(
      `Cannot set weights: ${uids.length} uids but ${weights.length} weights; pass one weight per uid`,
    );
  }
  const seen = new Set<number>();
  for (const u of uids) {
    if (!Number.isInteger(u) || u < 0 || u > U16_MAX) {
      throw new RangeError(`Cannot set weights: uid ${u} is not an integer from 0 to 65535`);
    }
    if (seen.has(u)) throw new RangeError(`Cannot set weights: uid ${u} appears twice`);
    seen.add(u);
  }
  let max = 0;
  for (const w of weights) {
    if (!Number.isFinite(w) || w < 0) {
      throw new RangeError(`Cannot set weights: weight ${w} is not a finite number ≥ 0`);
    }
    if (w > max) max = w;
  }
  if (max === 0) throw new RangeError("Cannot set weights: every weight is zero");
  const out = { uids: [] as number[], weights: [] as number[] };
  for (let i = 0; i < uids.length; i++) {
    const q = roundHalfEven((weights[i]! / max) * U16_MAX);
    if (q !== 0) {
      out.uids.push(uids[i]!);
      out.weights.push(q);
    }
  }
  return out;
}
