/**
 * The optimizer: global-norm gradient clipping and AdamW with PyTorch's semantics
 * (`torch.nn.utils.clip_grad_norm_`, `torch.optim.AdamW`: decoupled weight decay on every
 * parameter, bias-corrected moments, eps added after the square root). Two forms of the
 * same step: elementwise over Float32Arrays (on CPU: a WebAssembly SIMD kernel giving the
 * same bits as the plain loop, over all cores where workers may view the tensors; see
 * adamw_kernel.ts, parallel.ts and docs/PERFORMANCE.md) and an ONNX graph (for devices
 * where the tensors live elsewhere).
 *
 * @module
 */
import { Graph, type T } from "../onnx/graph.ts";
import type { Value } from "../onnx/run.ts";
import { add, div, mul, sqrt, sub } from "../onnx/ops.ts";
import type { ParamSpec, Tensors } from "../model/params.ts";
import { type AdamScalars, adamwTensor } from "./adamw_kernel.ts";
import { type AdamPool, type AdamQuad, blockedNorm } from "./parallel.ts";

/** AdamW settings (Hparams names). */
export interface AdamHparams {
  learningRate: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** Moments and step count of AdamW, one entry per parameter. */
export interface AdamState {
  step: number;
  m: Tensors;
  v: Tensors;
}

/** Zero moments for `table`, step 0. */
export function newAdamState(table: readonly ParamSpec[]): AdamState {
  const zeros = () => new Map(table.map((p) => [p.name, new Float32Array(p.numel)]));
  return { step: 0, m: zeros(), v: zeros() };
}

/**
 * √(Σ g²) over every tensor in float64, summed in a fixed blocked order (parallel.ts
 * {@link blockedNorm}: the bits {@link AdamPool.norm} gives on any number of threads).
 */
export const globalNorm = (grads: Tensors): number => blockedNorm(grads.values());

/**
 * Scales `grads` in place so their global norm is at most `maxNorm` (PyTorch's factor
 * min(1, maxNorm / (norm + 1e-6))).
 * @returns the norm before clipping and the factor applied
 */
export function clipGrads(grads: Tensors, maxNorm: number): { norm: number; scale: number } {
  const norm = globalNorm(grads);
  const scale = Math.min(1, maxNorm / (norm + 1e-6));
  if (scale < 1) {
    for (const g of grads.values()) {
      for (let i = 0; i < g.length; i++) g[i]! *= scale;
    }
  }
  return { norm, scale };
}

/** Bias-corrected constants of step `t` (1-based). */
export function adamConstants(
  hp: AdamHparams,
  t: number,
): { stepSize: number; bc2Sqrt: number; decay: number } {
  return {
    stepSize: hp.learningRate / (1 - hp.beta1 ** t),
    bc2Sqrt: Math.sqrt(1 - hp.beta2 ** t),
    decay: 1 - hp.learningRate * hp.weightDecay,
  };
}

/** The kernel's scalars for step `t` with clip factor `scale`. */
export function adamScalars(hp: AdamHparams, t: number, scale = 1): AdamScalars {
  const { stepSize, bc2Sqrt, decay } = adamConstants(hp, t);
  return { scale, beta1: hp.beta1, beta2: hp.beta2, eps: hp.eps, decay, stepSize, bc2Sqrt };
}

function quads(params: Tensors, opt: AdamState, grads: Tensors): AdamQuad[] {
  const out: AdamQuad[] = [];
  for (const [name, p] of params) {
    const g = grads.get(name), m = opt.m.get(name), v = opt.v.get(name);
    if (!g || !m || !v || g.length !== p.length || m.length !== p.length || v.length !== p.length) {
      throw new RangeError(`AdamW: gradient or moments of '${name}' missing or of the wrong size`);
    }
    out.push({ p, g, m, v });
  }
  return out;
}

/**
 * One AdamW step in place on `params` and `opt` (opt.step is incremented first), on the
 * calling thread.
 * @throws {RangeError} when a tensor is missing or sized differently
 */
export function adamwStep(params: Tensors, opt: AdamState, grads: Tensors, hp: AdamHparams): void {
  const qs = quads(params, opt, grads);
  const s = adamScalars(hp, ++opt.step);
  for (const q of qs) adamwTensor(q.p, q.g, q.m, q.v, s);
}

/**
 * Clip factor `scale` (as {@link clipGrads} applies it: grads scaled in place) then one
 * AdamW step, over the threads of `pool`: the same bits as clipGrads + adamwStep.
 * @throws {RangeError} when a tensor is missing or sized differently
 */
export async function adamwStepPooled(
  pool: AdamPool,
  params: Tensors,
  opt: AdamState,
  grads: Tensors,
  hp: AdamHparams,
  scale: number,
): Promise<void> {
  const qs = quads(params, opt, grads);
  await pool.run(qs, adamScalars(hp, ++opt.step, scale));
}

/**
 * The same step as a graph: inputs `p:`, `g:`, `m:`, `v:` + name per parameter and the
 * scalars `scale` (clip factor), `decay`, `step_size`, `bc2_sqrt`; outputs `p':`, `m':`,
 * `v':` + name.
 */
export function adamwGraph(table: readonly ParamSpec[], hp: AdamHparams): Graph {
  const g = new Graph();
  const scalar = (n: string) => g.input(n, "float32", []);
  const scale = scalar("scale"), decay = scalar("decay"), stepSize = scalar("step_size");
  const bc2Sqrt = scalar("bc2_sqrt");
  for (const p of table) {
    const inp = (k: string): T => g.input(`${k}:${p.name}`, "float32", p.shape);
    const w = inp("p"), gr = mul(inp("g"), scale), m = inp("m"), v = inp("v");
    const m2 = add(mul(m, hp.beta1), mul(gr, 1 - hp.beta1));
    const v2 = add(mul(v, hp.beta2), mul(mul(gr, gr), 1 - hp.beta2));
    const upd = div(mul(m2, stepSize), add(div(sqrt(v2), bc2Sqrt), hp.eps));
    g.output(sub(mul(w, decay), upd), `p':${p.name}`);
    g.output(m2, `m':${p.name}`);
    g.output(v2, `v':${p.name}`);
  }
  return g;
}

/** The tensors {@link adamwGraph} steps, one map per input kind. */
export interface AdamwGraphTensors {
  p: Tensors;
  g: Tensors;
  m: Tensors;
  v: Tensors;
}

/**
 * The feeds of {@link adamwGraph} for step `t` (1-based) with clip factor `scale`: its
 * scalars from {@link adamConstants} and every parameter's four tensors (views, not copies).
 */
export function adamwGraphFeeds(
  table: readonly ParamSpec[],
  hp: AdamHparams,
  t: number,
  tensors: AdamwGraphTensors,
  scale = 1,
): Record<string, Value> {
  const c = adamConstants(hp, t);
  const scalar = (x: number): Value => ({ data: Float32Array.of(x), dims: [] });
  const feeds: Record<string, Value> = {
    scale: scalar(scale),
    decay: scalar(c.decay),
    step_size: scalar(c.stepSize),
    bc2_sqrt: scalar(c.bc2Sqrt),
  };
  for (const p of table) {
    for (const k of ["p", "g", "m", "v"] as const) {
      feeds[`${k}:${p.name}`] = { data: tensors[k].get(p.name)!, dims: p.shape };
    }
  }
  return feeds;
}
