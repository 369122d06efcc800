/**
 * AdamW and the gradient norm over all cores: the main thread and `threads − 1` workers
 * take jobs (256 K elements of one tensor) from a shared counter. Both are the same bits
 * on any number of threads: the update is elementwise, and the norm is a sum of per-job
 * partial sums ({@link sumSquares}) added in job order on the main thread.
 *
 * Workers reach the tensors without copying them: tensors in a resident block
 * (resident.ts) through the block's shared WebAssembly memory, which the kernel updates
 * in place; other tensors by address (`Deno.UnsafePointerView`, the ffi permission;
 * without it every tensor runs on the main thread), staged through the worker's own
 * memory. The main thread keeps every array referenced until the workers answer, and
 * callers must not touch the tensors before a promise resolves. The worker's source is a
 * string (a data: URL), so the compiled binary needs no extra file.
 *
 * @module
 */
import { type AdamScalars, adamwLoop, adamwTensor, CH } from "./adamw_kernel.ts";
import { blockOf } from "./resident.ts";
import { ADAMW_WASM } from "./wasm/adamw_bytes.ts";

/** One tensor's four arrays (same length). */
export interface AdamQuad {
  p: Float32Array;
  g: Float32Array;
  m: Float32Array;
  v: Float32Array;
}

/** Elements per job: threads take jobs from a shared counter, so a thread the OS
 * deschedules (these machines are shared) delays the step by at most one job. It also
 * fixes the norm's partial sums, so it must not depend on the thread count. */
export const JOB = 16 * CH;

/**
 * Σ x² over x[a0..a1) in float64, in a fixed order: four running sums (element i into sum
 * i mod 4, counted from a0), then ((s0 + s1) + (s2 + s3)) + the tail's sum. Four
 * independent sums instead of one run 2–3× faster (the additions no longer wait on each
 * other); the order is part of the result's bits, so workers run this very function.
 */
export function sumSquares(x: Float32Array, a0: number, a1: number): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0, i = a0;
  for (; i + 4 <= a1; i += 4) {
    const x0 = x[i]!, x1 = x[i + 1]!, x2 = x[i + 2]!, x3 = x[i + 3]!;
    s0 += x0 * x0;
    s1 += x1 * x1;
    s2 += x2 * x2;
    s3 += x3 * x3;
  }
  let t = 0;
  for (; i < a1; i++) t += x[i]! * x[i]!;
  return ((s0 + s1) + (s2 + s3)) + t;
}

/**
 * √(Σ g²) over every tensor in order, one job at a time (the bits of
 * {@link AdamPool.norm} on any number of threads).
 */
export function blockedNorm(tensors: Iterable<Float32Array>): number {
  let s = 0;
  for (const x of tensors) {
    for (let a = 0; a < x.length; a += JOB) s += sumSquares(x, a, Math.min(x.length, a + JOB));
  }
  return Math.sqrt(s);
}

const WORKER_SOURCE = `
const CH = ${CH};
const mod = new WebAssembly.Module(Uint8Array.from(atob("${ADAMW_WASM}"), (c) => c.charCodeAt(0)));
const stagingMem = new WebAssembly.Memory({ initial: 4, maximum: 4, shared: true });
const staging = new WebAssembly.Instance(mod, { env: { memory: stagingMem } }).exports;
const K = [0, 1, 2, 3].map((j) => new Float32Array(stagingMem.buffer, 4 * CH * j, CH));
const sumSquares = ${sumSquares.toString()};
const adamwLoop = ${adamwLoop.toString()};
let resident = new Map(); // block id -> { exports, buffer }
const view = (addr, n) =>
  new Float32Array(Deno.UnsafePointerView.getArrayBuffer(Deno.UnsafePointer.create(addr), 4 * n));
// A tensor: [block id, byte offset, n] (resident) or [0, address, n].
function arrays(t, blocks) {
  const out = [];
  for (let k = 0; k < t.length; k += 3) {
    out.push(t[k] ? new Float32Array(blocks.get(t[k]).buffer, t[k + 1], t[k + 2]) : view(t[k + 1], t[k + 2]));
  }
  return out;
}
self.onmessage = (e) => {
  const { op, blocks, tensors, jobs, counter, s, out } = e.data;
  try {
    const next = new Map();
    for (const { id, memory } of blocks) {
      next.set(id, resident.get(id) ??
        { exports: new WebAssembly.Instance(mod, { env: { memory } }).exports, buffer: memory.buffer });
    }
    resident = next; // blocks no longer used are dropped
    const ts = tensors.map((t) => arrays(t, resident));
    for (;;) {
      const i = Atomics.add(counter, 0, 1);
      if (3 * i >= jobs.length) break;
      const t = jobs[3 * i], a0 = jobs[3 * i + 1], a1 = jobs[3 * i + 2];
      if (op === "norm") { out[i] = sumSquares(ts[t][0], a0, a1); continue; }
      const [p, g, m, v] = ts[t], block = tensors[t][0];
      const k1 = 1 - s.beta1, k2 = 1 - s.beta2;
      if (block) {
        // In place; an odd last element takes the loop (the kernel rounds n up to even).
        const x = resident.get(block).exports, e = a0 + ((a1 - a0) & ~1);
        (s.outer ? x.adamw_outer : x.adamw)(p.byteOffset + 4 * a0, g.byteOffset + 4 * a0,
          m.byteOffset + 4 * a0, v.byteOffset + 4 * a0, e - a0, s.scale, s.beta1, k1,
          s.beta2, k2, s.decay, s.stepSize, s.bc2Sqrt, s.eps);
        if (e < a1) {
          const t = (y) => y.subarray(e, a1);
          adamwLoop(t(p), t(g), t(m), t(v), s);
        }
        continue;
      }
      const run = s.outer ? staging.adamw_outer : staging.adamw, writeG = s.scale !== 1;
      for (let a = a0; a < a1; a += CH) {
        const b = Math.min(a1, a + CH), len = b - a;
        K[0].set(p.subarray(a, b)); K[1].set(g.subarray(a, b));
        K[2].set(m.subarray(a, b)); K[3].set(v.subarray(a, b));
        run(0, 4 * CH, 8 * CH, 12 * CH, len, s.scale, s.beta1, k1, s.beta2, k2, s.decay,
          s.stepSize, s.bc2Sqrt, s.eps);
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

const addressOf = (t: Float32Array): number =>
  Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(t as Float32Array<ArrayBuffer>)));

/** Main thread plus `threads − 1` workers running the AdamW kernel. */
export class AdamPool {
  private readonly workers: Worker[] = [];
  /** The operation in flight: one at a time, since each worker answers its one message. */
  private queue: Promise<unknown> = Promise.resolve();

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
   * Runs `work` on every job of `groups` (each a tensor's arrays, same length) on all
   * threads; workers get `op` and `extra` with the arrays' whereabouts.
   */
  private each(
    op: "adamw" | "norm",
    groups: readonly Float32Array[][],
    extra: Record<string, unknown>,
    work: (group: Float32Array[], a0: number, a1: number, job: number) => void,
  ): Promise<number> {
    // Callers may overlap (a trainer's lossAndGrad beside its step): queue them.
    const run = this.queue.then(() => this.eachNow(op, groups, extra, work));
    this.queue = run.catch(() => {});
    return run;
  }

  private async eachNow(
    op: "adamw" | "norm",
    groups: readonly Float32Array[][],
    extra: Record<string, unknown>,
    work: (group: Float32Array[], a0: number, a1: number, job: number) => void,
  ): Promise<number> {
    const gs = groups.filter((g) => g[0]!.length > 0);
    const jobs: number[] = [];
    for (const [i, g] of gs.entries()) {
      const n = g[0]!.length;
      for (let a = 0; a < n; a += JOB) jobs.push(i, a, Math.min(n, a + JOB));
    }
    const flat = Int32Array.from(jobs);
    const counter = new Int32Array(new SharedArrayBuffer(4));
    const blocks = new Map<number, WebAssembly.Memory>();
    const tensors = this.workers.length
      ? gs.map((g) => {
        const b = blockOf(g[0]!);
        const resident = b !== undefined && g.every((x) => x.buffer === g[0]!.buffer);
        if (resident) blocks.set(b.id, b.memory);
        return g.flatMap((x) =>
          resident ? [b.id, x.byteOffset, x.length] : [0, addressOf(x), x.length]
        );
      })
      : [];
    const msg = {
      op,
      blocks: [...blocks].map(([id, memory]) => ({ id, memory })),
      tensors,
      jobs: flat,
      counter,
      ...extra,
    };
    const done = this.workers.map((w) =>
      new Promise<void>((resolve, reject) => {
        w.onmessage = (e) => (e.data === null ? resolve() : reject(new Error(e.data)));
        w.onerror = (e) => {
          e.preventDefault();
          reject(new Error(`AdamW worker failed: ${e.message}`));
        };
        w.postMessage(msg);
      })
    );
    for (; this.mainWorks || !this.workers.length;) {
      const i = Atomics.add(counter, 0, 1);
      if (3 * i >= flat.length) break;
      work(gs[flat[3 * i]!]!, flat[3 * i + 1]!, flat[3 * i + 2]!, i);
    }
    // `gs` holds every array until all workers are done with their memory.
    const results = await Promise.allSettled(done);
    for (const r of results) if (r.status === "rejected") throw r.reason;
    const count = flat.length / 3;
    gs.length = 0;
    return count;
  }

  /**
   * Clip factor then AdamW on every quad, in place; the same bits as one thread.
   * @throws {Error} when a worker fails (the tensors may then be partly updated)
   */
  async run(quads: readonly AdamQuad[], s: AdamScalars): Promise<void> {
    await this.each("adamw", quads.map((q) => [q.p, q.g, q.m, q.v]), { s }, (g, a0, a1) => {
      const sub = (x: Float32Array) => x.subarray(a0, a1);
      adamwTensor(sub(g[0]!), sub(g[1]!), sub(g[2]!), sub(g[3]!), s);
    });
  }

  /** Σ x² of every job of `tensors` (job order), on all threads. */
  private async jobSums(ts: readonly Float32Array[]): Promise<Float64Array> {
    const jobs = ts.reduce((s, x) => s + Math.ceil(x.length / JOB), 0);
    const out = new Float64Array(new SharedArrayBuffer(8 * Math.max(1, jobs)));
    await this.each("norm", ts.map((x) => [x]), { out }, (g, a0, a1, job) => {
      out[job] = sumSquares(g[0]!, a0, a1);
    });
    return out.subarray(0, jobs);
  }

  /**
   * √(Σ x²) over `tensors` in order: the bits of {@link blockedNorm}.
   * @throws {Error} when a worker fails
   */
  async norm(tensors: Iterable<Float32Array>): Promise<number> {
    let s = 0;
    for (const x of await this.jobSums([...tensors])) s += x;
    return Math.sqrt(s);
  }

  /**
   * Index of the first of `tensors` holding NaN or ±Inf, or -1 (a sum of squares of
   * float32 values in float64 cannot overflow, so it is finite exactly when they all are).
   * @throws {Error} when a worker fails
   */
  async firstNonFinite(tensors: readonly Float32Array[]): Promise<number> {
    const sums = await this.jobSums(tensors);
    let j = 0;
    for (const [i, x] of tensors.entries()) {
      for (let a = 0; a < x.length; a += JOB, j++) if (!Number.isFinite(sums[j]!)) return i;
    }
    return -1;
  }

  /** Stops the workers. */
  close(): void {
    for (const w of this.workers) w.terminate();
    this.workers.length = 0;
  }
}
