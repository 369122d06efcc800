/**
 * The AdamW update of one flat tensor, run by a WebAssembly SIMD kernel (wasm/adamw.wat)
 * that gives the same bits as the TypeScript loop it replaces ({@link adamwLoop}, kept as
 * the reference): both do every operation in IEEE float64 in the same order and round to
 * float32 only on store; WebAssembly has no fused multiply-add and never reassociates, so
 * the result is the same on every machine. Tensors in a resident block (resident.ts) are
 * updated where they are; others (plain Float32Arrays) are staged through this thread's
 * 256 KiB memory in chunks small enough to stay in L2, so main memory still sees each
 * value read once and written once, as in the loop.
 *
 * @module
 */
import { ADAMW_WASM } from "./wasm/adamw_bytes.ts";
import { decodeBase64 } from "./wasm/base64.ts";
import { blockOf } from "./resident.ts";

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
   * The protocol's outer-step arithmetic (src/protocol/outer.ts): v takes (1−b2)·(g·g)
   * and the update reads the stored float32 m and v. Default: the trainer's. Both are
   * written out in {@link adamwLoop}.
   */
  outer?: boolean;
}

/**
 * One optimizer step of one flat tensor, in place on p, g (only when `s.scale` ≠ 1), m
 * and v: the kernel, its reference loop and the tests' verbatim copies all take this form.
 */
export type TensorStep = (
  p: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  s: AdamScalars,
) => void;

/** Floats per staging buffer (a thread's own memory: four of them, 256 KiB in all). */
export const CH = 16384;

type KernelFn = (
  pa: number,
  ga: number,
  ma: number,
  va: number,
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

/** The kernel's two entry points over one memory. */
interface Kernel {
  outer: KernelFn;
  run: KernelFn;
}

let module: WebAssembly.Module | null | undefined;
/** This thread's staging buffers and the kernel over them. */
let staging:
  | (Kernel & { p: Float32Array; g: Float32Array; m: Float32Array; v: Float32Array })
  | null
  | undefined;
const kernels = new WeakMap<WebAssembly.Memory, Kernel>();

/** The kernel over `memory` (instantiated once per memory). */
function kernelOver(memory: WebAssembly.Memory): Kernel {
  let k = kernels.get(memory);
  if (!k) {
    const inst = new WebAssembly.Instance(module!, { env: { memory } });
    k = { run: inst.exports.adamw as KernelFn, outer: inst.exports.adamw_outer as KernelFn };
    kernels.set(memory, k);
  }
  return k;
}

/** The staging kernel, or null where WebAssembly SIMD (or shared memory) is unavailable. */
function getStaging(): typeof staging {
  if (staging !== undefined) return staging;
  try {
    module = new WebAssembly.Module(decodeBase64(ADAMW_WASM) as BufferSource);
    const memory = new WebAssembly.Memory({ initial: 4, maximum: 4, shared: true });
    const buf = memory.buffer;
    staging = {
      ...kernelOver(memory),
      p: new Float32Array(buf, 0, CH),
      g: new Float32Array(buf, 4 * CH, CH),
      m: new Float32Array(buf, 8 * CH, CH),
      v: new Float32Array(buf, 12 * CH, CH),
    };
  } catch {
    module = null;
    staging = null;
  }
  return staging;
}

/** Whether the WebAssembly kernel runs here (else {@link adamwTensor} uses the loop). */
export function wasmKernelAvailable(): boolean {
  return getStaging() !== null;
}

/** The resident block holding all four arrays, if they share one. */
function sharedBlock(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array) {
  const b = blockOf(p);
  return b && p.buffer === g.buffer && p.buffer === m.buffer && p.buffer === v.buffer
    ? b
    : undefined;
}

/**
 * The reference: clip factor then AdamW on one tensor, as a plain loop (today's
 * arithmetic, expression for expression). With `s.outer`, the outer step's arithmetic of
 * src/protocol/outer.ts: v takes (1−b2)·(g·g) rather than ((1−b2)·g)·g, and the update
 * reads the stored (float32) m and v rather than the float64 values just computed.
 * Self-contained: parallel.ts sends its source to the workers.
 */
export const adamwLoop: TensorStep = (p, g, m, v, s) => {
  const { scale, beta1: b1, beta2: b2, eps, decay, stepSize, bc2Sqrt } = s;
  const outer = s.outer === true, c1 = 1 - b1, c2 = 1 - b2;
  if (scale !== 1) { for (let i = 0; i < g.length; i++) g[i]! *= scale; }
  for (let i = 0; i < p.length; i++) {
    const gi = g[i]!;
    let mi = (m[i] = b1 * m[i]! + c1 * gi);
    let vi = (v[i] = b2 * v[i]! + (outer ? c2 * (gi * gi) : c2 * gi * gi));
    if (outer) mi = m[i]!, vi = v[i]!;
    p[i] = p[i]! * decay - stepSize * mi / (Math.sqrt(vi) / bc2Sqrt + eps);
  }
};

/** Runs kernel `f` over n values at the given byte offsets with the step's scalars. */
function callKernel(
  f: KernelFn,
  p: number,
  g: number,
  m: number,
  v: number,
  n: number,
  s: AdamScalars,
): void {
  f(
    p,
    g,
    m,
    v,
    n,
    s.scale,
    s.beta1,
    1 - s.beta1,
    s.beta2,
    1 - s.beta2,
    s.decay,
    s.stepSize,
    s.bc2Sqrt,
    s.eps,
  );
}

/**
 * Clip factor then AdamW on one tensor, in place on p, g (only when scale ≠ 1), m, v; the
 * same bits as {@link adamwLoop} (with `s.outer` too). Falls back to the
 * loop without WebAssembly SIMD.
 */
export const adamwTensor: TensorStep = (p, g, m, v, s) => {
  const k = getStaging();
  if (!k) return adamwLoop(p, g, m, v, s);
  const n = p.length;
  const block = sharedBlock(p, g, m, v);
  if (block) {
    // Resident: updated where they are. The kernel rounds n up to even, so an odd last
    // element (which a subarray may have right before live data) takes the loop.
    const even = n & ~1, r = kernelOver(block.memory);
    callKernel(
      s.outer ? r.outer : r.run,
      p.byteOffset,
      g.byteOffset,
      m.byteOffset,
      v.byteOffset,
      even,
      s,
    );
    if (even < n) {
      const t = (x: Float32Array) => x.subarray(even);
      adamwLoop(t(p), t(g), t(m), t(v), s);
    }
    return;
  }
  const run = s.outer ? k.outer : k.run;
  const writeG = s.scale !== 1;
  for (let a = 0; a < n; a += CH) {
    const b = Math.min(n, a + CH), len = b - a;
    k.p.set(p.subarray(a, b));
    k.g.set(g.subarray(a, b));
    k.m.set(m.subarray(a, b));
    k.v.set(v.subarray(a, b));
    callKernel(run, 0, 4 * CH, 8 * CH, 12 * CH, len, s);
    p.set(len === CH ? k.p : k.p.subarray(0, len), a);
    m.set(len === CH ? k.m : k.m.subarray(0, len), a);
    v.set(len === CH ? k.v : k.v.subarray(0, len), a);
    if (writeG) g.set(len === CH ? k.g : k.g.subarray(0, len), a);
  }
};
