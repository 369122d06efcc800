/**
 * What every participant applies to the shared model θ_w, bit-identically on every
 * machine (docs/PROTOCOL.md, "Aggregation" and "Outer step"): the aggregate of the
 * manifest's decoded updates, one deterministic AdamW step, and the θ digest.
 *
 * Determinism: only elementwise IEEE-754 float64 operations (+, −, ×, ÷, √: correctly
 * rounded everywhere), each tensor stored as float32 between steps, sums over peers in
 * key order, sums over a tensor sequential in index order, bias corrections by repeated
 * multiplication (never `**`, whose rounding engines may differ). scripts/protocol_ref.py
 * does the same in numpy and tests/vectors/ checks it.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { Hparams } from "../hparams.ts";

/** One peer's decoded update and its weight (≤ 0 or not finite: left out). */
export interface WeightedUpdate {
  update: Map<string, Float32Array>;
  weight: number;
  /** Stable key (the uploader's hotkey): peers are summed in ascending key order. */
  key?: string;
}

/**
 * The outer optimizer's settings: the AdamW fields of {@link Hparams}; `gradClip` is the
 * global-norm clip of the aggregate before the step (0: none).
 */
export interface OuterHparams
  extends Pick<Hparams, "learningRate" | "beta1" | "beta2" | "eps" | "weightDecay" | "gradClip"> {
  /**
   * Updates are preconditioned: miners send g / d with d = √(v̂) + eps of the shared
   * state (1 at step 0), and the step multiplies the aggregate by d first.
   */
  precondition?: boolean;
}

/** AdamW state of the shared model: identical on every honest participant. */
export interface OuterState {
  step: number;
  /** β1^step and β2^step, by repeated float64 multiplication. */
  beta1Pow: number;
  beta2Pow: number;
  m: Map<string, Float32Array>;
  v: Map<string, Float32Array>;
}

/** Zero state for tensors shaped like `params`. */
export function newOuterState(params: Map<string, Float32Array>): OuterState {
  const z = () => new Map([...params].map(([k, p]) => [k, new Float32Array(p.length)]));
  return { step: 0, beta1Pow: 1, beta2Pow: 1, m: z(), v: z() };
}

/** √(Σ x²), float64, in index order. */
export function norm(x: Float32Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]! * x[i]!;
  return Math.sqrt(s);
}

/** Median of a list (mean of the middle two for even sizes); 0 for none. */
export function medianOf(xs: readonly number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b), h = s.length >> 1;
  return s.length % 2 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
}

/**
 * The aggregate of peers' decoded updates: per tensor, each peer's tensor clipped to the
 * median of the peers' positive norms of that tensor, then Σ (wₖ·clipₖ / Σw) · xₖ in
 * float64 over peers in ascending key order (the given order for peers without keys),
 * rounded once to float32. Peers with weight ≤ 0 or not finite are left out; none left:
 * all zeros.
 * @throws {RangeError} on tensors of different names or sizes, or two peers with one key
 */
export function aggregate(
  updates: ReadonlyArray<WeightedUpdate>,
): Map<string, Float32Array> {
  const use = updates.filter((u) => Number.isFinite(u.weight) && u.weight > 0);
  const keyed = use.every((u) => u.key !== undefined);
  const peers = keyed
    ? [...use].sort((a, b) => (a.key! < b.key! ? -1 : a.key! > b.key! ? 1 : 0))
    : use;
  for (let i = 1; keyed && i < peers.length; i++) {
    if (peers[i]!.key === peers[i - 1]!.key) {
      throw new RangeError(`Cannot aggregate: two updates from '${peers[i]!.key}'`);
    }
  }
  const first = updates[0]?.update;
  const out = new Map<string, Float32Array>();
  if (!first) return out;
  for (const u of updates) {
    if (u.update.size !== first.size) {
      throw new RangeError("Cannot aggregate: updates hold different tensors");
    }
  }
  let total = 0;
  for (const p of peers) total += p.weight;
  for (const [name, t0] of first) {
    const n = t0.length;
    const xs = peers.map((p) => {
      const x = p.update.get(name);
      if (!x || x.length !== n) {
        throw new RangeError(`Cannot aggregate: tensor '${name}' is missing or of another size`);
      }
      return x;
    });
    const norms = xs.map(norm);
    const cap = medianOf(norms.filter((v) => v > 0));
    const fs = xs.map((_, k) => {
      const clip = norms[k]! > cap ? cap / norms[k]! : 1;
      return (peers[k]!.weight * clip) / total;
    });
    out.set(name, weightedSum(xs, fs, n));
  }
  return out;
}

/** Values per block of {@link weightedSum}: its float64 sums stay in the L1 cache. */
const SUM_BLOCK = 2048;

/**
 * Σₖ fₖ·xₖ[j] in float64, peers in the given order for every j (block by block over j,
 * which changes no sum's order), each rounded once to float32.
 */
function weightedSum(xs: Float32Array[], fs: number[], n: number): Float32Array {
  const out = new Float32Array(n), acc = new Float64Array(Math.min(n, SUM_BLOCK));
  for (let b0 = 0; b0 < n; b0 += SUM_BLOCK) {
    const len = Math.min(n, b0 + SUM_BLOCK) - b0;
    acc.fill(0);
    for (let k = 0; k < xs.length; k++) {
      const x = xs[k]!, f = fs[k]!;
      for (let j = 0; j < len; j++) acc[j] = acc[j]! + f * x[b0 + j]!;
    }
    for (let j = 0; j < len; j++) out[b0 + j] = acc[j]!;
  }
  return out;
}

/** The preconditioner d = √(v / (1 − β2^t)) + eps of `state` (all ones at step 0). */
export function preconditioner(state: OuterState, name: string, eps: number): Float32Array {
  const v = state.v.get(name)!;
  const d = new Float32Array(v.length);
  if (state.step === 0) return d.fill(1);
  const bc2 = 1 - state.beta2Pow;
  for (let i = 0; i < v.length; i++) d[i] = Math.sqrt(v[i]! / bc2) + eps;
  return d;
}

/**
 * One AdamW step on the shared model, in place on `params` and `state`: g = agg (times
 * the preconditioner when `hp.precondition`), clipped to `hp.gradClip` by global norm
 * (PyTorch's factor min(1, c / (‖g‖ + 1e-6))), then decoupled weight decay and
 * bias-corrected moments, eps after the square root.
 * @throws {RangeError} when a tensor is missing or sized differently
 */
export function outerStep(
  params: Map<string, Float32Array>,
  state: OuterState,
  agg: Map<string, Float32Array>,
  hp: OuterHparams,
): void {
  for (const [name, p] of params) {
    const a = agg.get(name), m = state.m.get(name), v = state.v.get(name);
    if (!a || !m || !v || a.length !== p.length || m.length !== p.length || v.length !== p.length) {
      throw new RangeError(`Outer step: update or moments of '${name}' missing or of another size`);
    }
  }
  // g = agg (× d), as float32, computed where it is used rather than stored: the same
  // bits as materialising it (d from the moments before this step's update).
  const pre = !!hp.precondition && state.step > 0;
  const bc2Old = 1 - state.beta2Pow, epsD = hp.eps;
  let scale = 1;
  if (hp.gradClip > 0) {
    let s = 0;
    for (const [name, p] of params) {
      const a = agg.get(name)!, v = state.v.get(name)!;
      for (let i = 0; i < p.length; i++) {
        const gi = pre ? Math.fround(a[i]! * Math.fround(Math.sqrt(v[i]! / bc2Old) + epsD)) : a[i]!;
        s += gi * gi;
      }
    }
    scale = Math.min(1, hp.gradClip / (Math.sqrt(s) + 1e-6));
  }
  const clip = scale < 1;
  state.step++;
  state.beta1Pow *= hp.beta1;
  state.beta2Pow *= hp.beta2;
  const stepSize = hp.learningRate / (1 - state.beta1Pow);
  const bc2Sqrt = Math.sqrt(1 - state.beta2Pow);
  const decay = 1 - hp.learningRate * hp.weightDecay;
  const b1 = hp.beta1, b2 = hp.beta2, c1 = 1 - b1, c2 = 1 - b2, eps = hp.eps;
  for (const [name, p] of params) {
    const a = agg.get(name)!, m = state.m.get(name)!, v = state.v.get(name)!;
    for (let i = 0; i < p.length; i++) {
      let gi = pre ? Math.fround(a[i]! * Math.fround(Math.sqrt(v[i]! / bc2Old) + epsD)) : a[i]!;
      if (clip) gi = Math.fround(gi * scale);
      // The stored (float32) moments feed the update, so a reimplementation that keeps
      // m and v as float32 arrays gets the same bits.
      const mi = Math.fround(b1 * m[i]! + c1 * gi);
      const vi = Math.fround(b2 * v[i]! + c2 * (gi * gi));
      m[i] = mi;
      v[i] = vi;
      p[i] = p[i]! * decay - (stepSize * mi) / (Math.sqrt(vi) / bc2Sqrt + eps);
    }
  }
}

/**
 * Hex SHA-256 of tensors in map order (the parameter table's): per tensor its UTF-8
 * name, a NUL byte, its length as u32 little-endian, then its float32 bytes.
 */
export function paramsDigest(params: Map<string, Float32Array>): string {
  const h = createHash("sha256");
  const len = new Uint8Array(4);
  for (const [name, p] of params) {
    h.update(new TextEncoder().encode(name));
    h.update(new Uint8Array([0]));
    new DataView(len.buffer).setUint32(0, p.length, true);
    h.update(len);
    h.update(new Uint8Array(p.buffer, p.byteOffset, p.byteLength));
  }
  return h.digest("hex");
}

/** Digest of the outer state: step, then the digests' inputs of m and of v. */
export function stateDigest(state: OuterState): string {
  const h = createHash("sha256");
  h.update(`step=${state.step}\n`);
  h.update(paramsDigest(state.m) + "\n" + paramsDigest(state.v));
  return h.digest("hex");
}
