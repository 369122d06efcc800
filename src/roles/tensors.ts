/**
 * Small whole-model tensor helpers the role loops need (copies, sums, differences).
 * Float32 storage; sums that must be exact across peers live in aggregate.ts instead.
 *
 * @module
 */
import type { Tensors } from "../model/params.ts";

/** A deep copy. */
export function cloneTensors(t: Tensors): Tensors {
  return new Map([...t].map(([k, v]) => [k, v.slice()]));
}

/** `acc += x` (acc created as a copy of x when null); returns acc. */
export function addInto(acc: Tensors | null, x: Tensors): Tensors {
  if (!acc) return cloneTensors(x);
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
