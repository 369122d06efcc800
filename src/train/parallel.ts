/**
 * AdamW over all cores: the WebAssembly kernel of {@link adamwTensor} run by the main
 * thread and `threads − 1` workers, taking chunks of the elements from a shared counter.
 * The update is elementwise, so the split never changes a bit.
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

/** Elements per staging chunk (as in adamw_kernel.ts). */
const CH = 16384;

/** Elements per job: threads take jobs from a shared counter, so a thread the OS
 * deschedules (these machines are shared) delays the step by at most one job. */
const JOB = 16 * CH;

const WORKER_SOURCE = `
const b = Uint8Array.from(atob("${ADAMW_WASM}"), (c) => c.charCodeAt(0));
const inst = new WebAssembly.Instance(new WebAssembly.Module(b), {});
const CH = ${CH};
const K = [0, 1, 2, 3].map((j) => new Float32Array(inst.exports.memory.buffer, 4 * CH * j, CH));
const view = (addr, n) =>
  new Float32Array(Deno.UnsafePointerView.getArrayBuffer(Deno.UnsafePointer.create(addr), 4 * n));
self.onmessage = (e) => {
  const { quads, jobs, counter, s } = e.data;
  const writeG = s.scale !== 1, run = s.outer ? inst.exports.adamw_outer : inst.exports.adamw;
  try {
    const vs = quads.map((q) => [view(q.p, q.n), view(q.g, q.n), view(q.m, q.n), view(q.v, q.n)]);
    for (;;) {
      const i = Atomics.add(counter, 0, 1);
      if (3 * i >= jobs.length) break;
      const [p, g, m, v] = vs[jobs[3 * i]], a0 = jobs[3 * i + 1], a1 = jobs[3 * i + 2];
      for (let a = a0; a < a1; a += CH) {
        const b = Math.min(a1, a + CH), len = b - a;
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

  /**
   * @param threads total threads, main included (1, or no ffi permission: no workers)
   * @param mainWorks whether the main thread takes jobs too (tests turn it off so that
   *   the workers do everything)
   */
  constructor(threads: number, private readonly mainWorks = true) {
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
    const qs = quads.filter((q) => q.p.length > 0);
    const jobs: number[] = [];
    for (const [i, q] of qs.entries()) {
      for (let a = 0; a < q.p.length; a += JOB) jobs.push(i, a, Math.min(q.p.length, a + JOB));
    }
    const counter = new Int32Array(new SharedArrayBuffer(4));
    const addresses = this.workers.length
      ? qs.map((q) => ({
        n: q.p.length,
        p: addressOf(q.p),
        g: addressOf(q.g),
        m: addressOf(q.m),
        v: addressOf(q.v),
      }))
      : [];
    const flat = Int32Array.from(jobs);
    const done = this.workers.map((w) =>
      new Promise<void>((resolve, reject) => {
        w.onmessage = (e) => (e.data === null ? resolve() : reject(new Error(e.data)));
        w.onerror = (e) => {
          e.preventDefault();
          reject(new Error(`AdamW worker failed: ${e.message}`));
        };
        w.postMessage({ quads: addresses, jobs: flat, counter, s });
      })
    );
    for (; this.mainWorks || !this.workers.length;) {
      const i = Atomics.add(counter, 0, 1);
      if (3 * i >= flat.length) break;
      const q = qs[flat[3 * i]!]!, a0 = flat[3 * i + 1]!, a1 = flat[3 * i + 2]!;
      const sub = (x: Float32Array) => x.subarray(a0, a1);
      adamwTensor(sub(q.p), sub(q.g), sub(q.m), sub(q.v), s);
    }
    // `qs` holds every array until all workers are done with their memory.
    const results = await Promise.allSettled(done);
    for (const r of results) if (r.status === "rejected") throw r.reason;
    qs.length = 0;
  }

  /** Stops the workers. */
  close(): void {
    for (const w of this.workers) w.terminate();
    this.workers.length = 0;
  }
}
