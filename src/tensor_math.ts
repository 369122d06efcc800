/**
 * The one module of whole-model vector maths over {@link Tensors} (name → Float32Array):
 * dot products, norms, cosines, finiteness, copies, sums, scaling. Reductions accumulate
 * in float64 and iterate in the first argument's key order, so a result depends only on
 * the bits and the key order, never on timing. Pure, no I/O.
 *
 * Deliberately left out: sums that must be bit-identical across peers whatever the
 * arrival order (src/protocol/outer.ts sorts and rounds once), and the trainer's fused
 * kernels (src/train/).
 *
 * @example
 * ```ts
 * import { cosine, norm } from "./tensor_math.ts";
 * const a = new Map([["w", new Float32Array([3, 4])]]);
 * norm(a); // 5
 * cosine(a, a); // 1
 * ```
 * @module
 */
import type { Tensors } from "./model/params.ts";

function pair(a: Tensors, b: Tensors, name: string): Float32Array {
  const y = b.get(name);
  const x = a.get(name)!;
  if (!y || y.length !== x.length) {
    throw new RangeError(
      `Cannot compare tensors: '${name}' has ${x.length} values on one side and ` +
        `${y?.length ?? "none"} on the other; pass tensors of the same shapes`,
    );
  }
  if (a.size !== b.size) {
    throw new RangeError(
      `Cannot compare tensors: ${a.size} names on one side and ${b.size} on the other; ` +
        `pass tensors of the same parameters`,
    );
  }
  return y;
}

/** Σ x·y of two arrays of the same length (float64 accumulation). */
export function dotArray(x: Float32Array, y: Float32Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]! * y[i]!;
  return s;
}

/** Euclidean norm of one array. */
export function normArray(x: Float32Array): number {
  return Math.sqrt(dotArray(x, x));
}

/** Σ a·b over all tensors. @throws {RangeError} when names or lengths differ */
export function dot(a: Tensors, b: Tensors): number {
  let s = 0;
  for (const [name, x] of a) s += dotArray(x, pair(a, b, name));
  return s;
}

/** Euclidean norm over all tensors. */
export function norm(a: Tensors): number {
  let s = 0;
  for (const x of a.values()) s += dotArray(x, x);
  return Math.sqrt(s);
}

/** Number of scalars in all tensors. */
export function numel(a: Tensors): number {
  let n = 0;
  for (const x of a.values()) n += x.length;
  return n;
}

/** Number of NaN and ±Infinity values in one array. */
export function countNonFinite(x: Float32Array): number {
  let n = 0;
  // x - x is 0 for finite x and NaN for NaN and ±Inf.
  for (let i = 0; i < x.length; i++) if (x[i]! - x[i]! !== 0) n++;
  return n;
}

/** True when every value of one array is finite. */
export function arrayFinite(x: Float32Array): boolean {
  for (let i = 0; i < x.length; i++) if (x[i]! - x[i]! !== 0) return false;
  return true;
}

/** True when every value of every tensor is finite (no NaN, no ±Infinity). */
export function allFinite(a: Tensors): boolean {
  for (const x of a.values()) if (!arrayFinite(x)) return false;
  return true;
}

/**
 * Cosine similarity over all tensors as one vector; 0 when either side is all zeros.
 * @throws {RangeError} when names or lengths differ
 */
export function cosine(a: Tensors, b: Tensors): number {
  const na = norm(a), nb = norm(b);
  return na === 0 || nb === 0 ? 0 : dot(a, b) / (na * nb);
}

/** A deep copy. */
export function clone(t: Tensors): Tensors {
  return new Map([...t].map(([k, v]) => [k, v.slice()]));
}

/** `acc += x` (acc created as a copy of x when null); returns acc. */
export function addInto(acc: Tensors | null, x: Tensors): Tensors {
  if (!acc) return clone(x);
  for (const [k, v] of x) {
    const a = acc.get(k)!;
    for (let i = 0; i < v.length; i++) a[i]! += v[i]!;
  }
  return acc;
}

/** `t *= s` in place; returns t. */
export function scaleInPlace(t: Tensors, s: number): Tensors {
  for (const v of t.values()) for (let i = 0; i < v.length; i++) v[i]! *= s;
  return t;
}

/** `a − b` as new tensors (same names and lengths). */
export function difference(a: Tensors, b: Tensors): Tensors {
  const out: Tensors = new Map();
  for (const [k, x] of a) {
    const y = b.get(k)!;
    const d = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) d[i] = x[i]! - y[i]!;
    out.set(k, d);
  }
  return out;
}

/** True when `a` and `b` hold the same names with the same bits (NaN payloads included). */
export function sameBits(a: Tensors, b: Tensors): boolean {
  if (a.size !== b.size) return false;
  for (const [k, x] of a) {
    const y = b.get(k);
    if (!y || y.length !== x.length) return false;
    const bx = new Uint32Array(x.buffer, x.byteOffset, x.length);
    const by = new Uint32Array(y.buffer, y.byteOffset, y.length);
    for (let i = 0; i < bx.length; i++) if (bx[i] !== by[i]) return false;
  }
  return true;
}
