/**
 * Moving values between a model's parameters and a slice: the values of each parameter
 * at its window indices (sorted `Uint32Array`s from `sliceIndices` in src/window.ts).
 * Pure array work, no I/O. Left out: validation (the caller validates untrusted slices
 * first, see validate.ts) and averaging or applying peers' values (src/roles/aggregate.ts).
 *
 * @module
 */
import type { Tensors } from "../model/params.ts";

/** Slice indices per parameter name (each sorted ascending, below the parameter's numel). */
export type SliceIndices = ReadonlyMap<string, Uint32Array>;

function param(params: Tensors, name: string, idx: Uint32Array): Float32Array {
  const p = params.get(name);
  if (!p) throw new RangeError(`Unknown parameter '${name}': not in the model's parameters`);
  if (idx.length > 0 && idx[idx.length - 1]! >= p.length) {
    throw new RangeError(
      `Slice index ${idx[idx.length - 1]} is out of range for '${name}' with ${p.length} values`,
    );
  }
  return p;
}

function sliceOf(slice: Tensors, name: string, k: number): Float32Array {
  const s = slice.get(name);
  if (!s || s.length !== k) {
    throw new RangeError(
      `Slice tensor '${name}' has ${s?.length ?? "no"} values, expected ${k}`,
    );
  }
  return s;
}

/**
 * The values of `params` at `indices`: one tensor per indexed parameter, in the order
 * of `indices`; written into `reuse`'s array of that name when its length fits, else new.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const params = new Map([["w", new Float32Array([5, 6, 7])]]);
 * const s = gather(params, new Map([["w", new Uint32Array([0, 2])]]));
 * assert.deepEqual(s.get("w"), new Float32Array([5, 7]));
 * assert.throws(() => gather(params, new Map([["w", new Uint32Array([3])]])), RangeError);
 * ```
 * @throws {RangeError} on an unknown parameter or an index out of range
 */
export function gather(params: Tensors, indices: SliceIndices, reuse?: Tensors): Tensors {
  const out: Tensors = new Map();
  for (const [name, idx] of indices) {
    const p = param(params, name, idx);
    const r = reuse?.get(name);
    // Reusing last window's arrays saves the page faults of fresh memory (~2x faster).
    const s = r && r.length === idx.length ? r : new Float32Array(idx.length);
    for (let j = 0; j < idx.length; j++) s[j] = p[idx[j]!]!;
    out.set(name, s);
  }
  return out;
}

/**
 * Writes `slice` into `params` at `indices` (the inverse of {@link gather}).
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const params = new Map([["w", new Float32Array([5, 6, 7])]]);
 * const idx = new Map([["w", new Uint32Array([0, 2])]]);
 * scatter(params, idx, new Map([["w", new Float32Array([-1, -2])]]));
 * assert.deepEqual(params.get("w"), new Float32Array([-1, 6, -2]));
 * assert.deepEqual(gather(params, idx).get("w"), new Float32Array([-1, -2])); // inverse of gather
 * ```
 * @throws {RangeError} on an unknown parameter, a missing tensor or a length mismatch
 */
export function scatter(params: Tensors, indices: SliceIndices, slice: Tensors): void {
  for (const [name, idx] of indices) {
    const p = param(params, name, idx), s = sliceOf(slice, name, idx.length);
    for (let j = 0; j < idx.length; j++) p[idx[j]!] = s[j]!;
  }
}
