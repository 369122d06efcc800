/**
 * The AdamW update of one flat tensor, run by a WebAssembly SIMD kernel (wasm/adamw.wat)
 * that gives the same bits as the TypeScript loop it replaces ({@link adamwLoop}, kept as
 * the reference): both do every operation in IEEE float64 in the same order and round to
 * float32 only on store; WebAssembly has no fused multiply-add and never reassociates, so
 * the result is the same on every machine. The tensors stay where they are (plain
 * Float32Arrays); they are staged through the module's 256 KiB memory in chunks small
 * enough to stay in L2, so main memory sees each value read once and written once, as in
 * the loop.
 *
 * @module
 */
import { ADAMW_WASM } from "./wasm/adamw_bytes.ts";
import { decodeBase64 } from "./wasm/base64.ts";

/** Per-step scalars of the update (float64, as the loop computes them). */
export interface AdamScalars {
  /** Clip factor applied to g first (g ← f32(g·scale), written back); 1 = none. */
  scale: number;
  beta1: number;
  beta2: number;
  eps: number;
  decay: number;
  stepSize: number;
  bc2Sqrt: number;
  /**
   * The protocol's outer-step arithmetic (src/protocol/outer.ts, {@link outerLoop}):
   * v takes (1−b2)·(g·g) and the update reads the stored float32 m and v. Default: the
   * trainer's ({@link adamwLoop}).
   */
  outer?: boolean;
}

/** Floats per staging buffer (must match the offsets in adamw.wat). */
const CH = 16384;

type KernelFn = (
  n: number,
  scale: number,
  b1: number,
  omb1: number,
  b2: number,
  omb2: number,
  decay: number,
  step: number,
  bc2: number,
  eps: number,
) => void;

interface Kernel {
  outer: KernelFn;
  run: KernelFn;
  p: Float32Array;
  g: Float32Array;
  m: Float32Array;
  v: Float32Array;
}

let kernel: Kernel | null | undefined;

/** The instantiated kernel, or null where WebAssembly SIMD is unavailable. */
function getKernel(): Kernel | null {
  if (kernel !== undefined) return kernel;
  try {
    const mod = new WebAssembly.Module(decodeBase64(ADAMW_WASM) as BufferSource);
    const inst = new WebAssembly.Instance(mod, {});
    const mem = (inst.exports.memory as WebAssembly.Memory).buffer;
    kernel = {
      run: inst.exports.adamw as KernelFn,
      outer: inst.exports.adamw_outer as KernelFn,
      p: new Float32Array(mem, 0, CH),
      g: new Float32Array(mem, 4 * CH, CH),
      m: new Float32Array(mem, 8 * CH, CH),
      v: new Float32Array(mem, 12 * CH, CH),
    };
  } catch {
    kernel = null;
  }
  return kernel;
}

/** Whether the WebAssembly kernel runs here (else {@link adamwTensor} uses the loop). */
export function wasmKernelAvailable(): boolean {
  return getKernel() !== null;
}

/**
 * The reference: clip factor then AdamW on one tensor, as a plain loop (today's
 * arithmetic, expression for expression).
 */
export function adamwLoop(
  p: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  s: AdamScalars,
): void {
  const { scale, beta1: b1, beta2: b2, eps, decay, stepSize, bc2Sqrt } = s;
  if (scale !== 1) { for (let i = 0; i < g.length; i++) g[i]! *= scale; }
  for (let i = 0; i < p.length; i++) {
    const gi = g[i]!;
    const mi = (m[i] = b1 * m[i]! + (1 - b1) * gi);
    const vi = (v[i] = b2 * v[i]! + (1 - b2) * gi * gi);
    p[i] = p[i]! * decay - stepSize * mi / (Math.sqrt(vi) / bc2Sqrt + eps);
  }
}

/**
 * The reference for `outer: true`: clip factor then the outer step's loop of
 * src/protocol/outer.ts, expression for expression.
 */
export function outerLoop(
  p: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  s: AdamScalars,
): void {
  const { scale, beta1: b1, beta2: b2, eps, decay, stepSize, bc2Sqrt } = s;
  const c1 = 1 - b1, c2 = 1 - b2;
  if (scale !== 1) { for (let i = 0; i < g.length; i++) g[i] = g[i]! * scale; }
  for (let i = 0; i < p.length; i++) {
    const gi = g[i]!;
    m[i] = b1 * m[i]! + c1 * gi;
    v[i] = b2 * v[i]! + c2 * (gi * gi);
    p[i] = p[i]! * decay - (stepSize * m[i]!) / (Math.sqrt(v[i]!) / bc2Sqrt + eps);
  }
}

/**
 * Clip factor then AdamW on one tensor, in place on p, g (only when scale ≠ 1), m, v; the
 * same bits as {@link adamwLoop} (or {@link outerLoop} with `s.outer`). Falls back to the
 * loop without WebAssembly SIMD.
 */
export function adamwTensor(
  p: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  s: AdamScalars,
): void {
  const k = getKernel();
  if (!k) return (s.outer ? outerLoop : adamwLoop)(p, g, m, v, s);
  const run = s.outer ? k.outer : k.run;
  const n = p.length;
  const omb1 = 1 - s.beta1, omb2 = 1 - s.beta2, writeG = s.scale !== 1;
  for (let a = 0; a < n; a += CH) {
    const b = Math.min(n, a + CH), len = b - a;
    k.p.set(p.subarray(a, b));
    k.g.set(g.subarray(a, b));
    k.m.set(m.subarray(a, b));
    k.v.set(v.subarray(a, b));
    run(len, s.scale, s.beta1, omb1, s.beta2, omb2, s.decay, s.stepSize, s.bc2Sqrt, s.eps);
    p.set(len === CH ? k.p : k.p.subarray(0, len), a);
    m.set(len === CH ? k.m : k.m.subarray(0, len), a);
    v.set(len === CH ? k.v : k.v.subarray(0, len), a);
    if (writeG) g.set(len === CH ? k.g : k.g.subarray(0, len), a);
  }
}
