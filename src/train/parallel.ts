/**
 * AdamW over all cores: the WebAssembly kernel of {@link adamwTensor} run by the main
 * thread and `threads − 1` workers, each on its own share of the elements. The update is
 * elementwise, so the split never changes a bit.
 *
 * Workers reach the tensors without copying them: the main thread passes each array's
 * address and the worker views the same memory (`Deno.UnsafePointerView`, needs the ffi
 * permission; without it every tensor runs on the main thread). Shared memory was the
 * other way, but ONNX Runtime's binding refuses SharedArrayBuffer-backed tensors, and the
 * parameters are fed to it every step. The main thread keeps every array referenced
 * until the workers answer, and callers must not touch the tensors before the step's
 * promise resolves. The worker's source is a string (a data: URL), so the compiled binary
 * needs no extra file.
 *
 * @module
 */
import { type AdamScalars, adamwTensor } from "./adamw_kernel.ts";
import { ADAMW_WASM } from "./wasm/adamw_bytes.ts";

/** One tensor's four arrays (same length). */
export interface AdamQuad {
  p: Float32Array;
  g: Float32Array;
  m: Float32Array;
  v: Float32Array;
}

/** Elements per staging chunk (as in adamw_kernel.ts); shares are multiples of it. */
const CH = 16384;

const WORKER_SOURCE = `
const b = Uint8Array.from(atob("${ADAMW_WASM}"), (c) => c.charCodeAt(0));
const inst = new WebAssembly.Instance(new WebAssembly.Module(b), {});
const run = inst.exports.adamw, mem = inst.exports.memory.buffer, CH = ${CH};
const K = [0, 1, 2, 3].map((j) => new Float32Array(mem, 4 * CH * j, CH));
const view = (addr, n) =>
  new Float32Array(Deno.UnsafePointerView.getArrayBuffer(Deno.UnsafePointer.create(addr), 4 * n));
self.onmessage = (e) => {
  const { jobs, s } = e.data;
  const writeG = s.scale !== 1;
  try {
    for (const j of jobs) {
      const n = j.n, p = view(j.p, n), g = view(j.g, n), m = view(j.m, n), v = view(j.v, n);
      for (let a = 0; a < n; a += CH) {
        const b = Math.min(n, a + CH), len = b - a;
        K[0].set(p.subarray(a, b)); K[1].set(g.subarray(a, b));
        K[2].set(m.subarray(a, b)); K[3].set(v.subarray(a, b));
        run(len, s.scale, s.beta1, 1 - s.beta1, s.beta2, 1 - s.beta2, s.decay, s.stepSize,
          s.bc2Sqrt, s.eps);
        p.set(K[0].subarray(0, len), a); m.set(K[2].subarray(0, len), a);
        v.set(K[3].subarray(0, len), a);
        if (writeG) g.set(K[1].subarray(0, len), a);
      }
    }
    self.postMessage(null);
  } catch (err) {
    self.postMessage(String(err));
  }
};`;

/** Whether workers may view the main thread's memory (the ffi permission). */
export function canShareByAddress(): boolean {
  try {
    return typeof Deno.UnsafePointer?.of === "function" &&
      Deno.permissions.querySync({ name: "ffi" }).state === "granted";
  } catch {
    return false;
  }
}

const addressOf = (t: Float32Array): bigint =>
  BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(t as Float32Array<ArrayBuffer>)));

/** Main thread plus `threads − 1` workers running the AdamW kernel. */
export class AdamPool {
  private readonly workers: Worker[] = [];

  /** @param threads total threads, main included (1, or no ffi permission: no workers) */
  constructor(threads: number) {
    const n = canShareByAddress() ? threads : 1;
    for (let i = 1; i < n; i++) {
      this.workers.push(
        new Worker(`data:application/javascript,${encodeURIComponent(WORKER_SOURCE)}`, {
          type: "module",
        }),
      );
    }
  }

  /** Threads in use, main included. */
  get threads(): number {
    return this.workers.length + 1;
  }

  /**
   * Clip factor then AdamW on every quad, in place; the same bits as one thread.
   * @throws {Error} when a worker fails (the tensors may then be partly updated)
   */
  async run(quads: readonly AdamQuad[], s: AdamScalars): Promise<void> {
    const nThreads = this.workers.length + 1;
    // Cut the elements into equal contiguous shares, on chunk boundaries.
    const total = quads.reduce((a, q) => a + q.p.length, 0);
    const per = Math.ceil(total / nThreads / CH) * CH;
    const shares: AdamQuad[][] = Array.from({ length: nThreads }, () => []);
    let t = 0, used = 0;
    for (const q of quads) {
      let a = 0;
      while (a < q.p.length) {
        const b = Math.min(q.p.length, a + per - used);
        const sub = (x: Float32Array) => x.subarray(a, b);
        shares[t]!.push({ p: sub(q.p), g: sub(q.g), m: sub(q.m), v: sub(q.v) });
        used += b - a;
        a = b;
        if (used >= per && t < nThreads - 1) t++, used = 0;
      }
    }
    const done = this.workers.map((w, i) =>
      new Promise<void>((resolve, reject) => {
        w.onmessage = (e) => (e.data === null ? resolve() : reject(new Error(e.data)));
        w.onerror = (e) => {
          e.preventDefault();
          reject(new Error(`AdamW worker failed: ${e.message}`));
        };
        const jobs = shares[i + 1]!.map((q) => ({
          n: q.p.length,
          p: addressOf(q.p),
          g: addressOf(q.g),
          m: addressOf(q.m),
          v: addressOf(q.v),
        }));
        w.postMessage({ jobs, s });
      })
    );
    for (const q of shares[0]!) adamwTensor(q.p, q.g, q.m, q.v, s);
    // `shares` holds every array until all workers are done with their memory.
    const results = await Promise.allSettled(done);
    shares.length = 0;
    for (const r of results) if (r.status === "rejected") throw r.reason;
  }

  /** Stops the workers. */
  close(): void {
    for (const w of this.workers) w.terminate();
    this.workers.length = 0;
  }
}
