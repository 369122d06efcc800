/**
 * The training engine other modules call: mean loss and gradients over micro-batches
 * (the step graph run once per micro-batch, ORT writing the first micro-batch's gradients
 * straight into the result arrays and later ones into scratch arrays the trainer keeps,
 * summed in place), evaluation loss, and clip + AdamW (the WebAssembly kernel over all
 * cores, see parallel.ts; in place on tensors a caller allocated with `residentModel`,
 * resident.ts, staged otherwise, the same bits either way). Sessions are created once per trainer (the step graph eagerly,
 * the loss-only graph on first use) from graphs cached on disk by {@link cachedGraph}.
 *
 * Left out: learning-rate schedules (the original used a constant rate), mixed precision.
 *
 * @module
 */
import type { Hparams } from "../hparams.ts";
import { type ParamSpec, paramTable, type Tensors } from "../model/params.ts";
import { buildLlamaGraph, gradName, LLAMA_GRAPH_VERSION } from "../model/llama_graph.ts";
import { DeviceError, Session, type Value } from "../onnx/run.ts";
import { getLogger } from "../log.ts";
import { type AdamState, adamwStepPooled, newAdamState } from "./adamw.ts";
import { AdamPool } from "./parallel.ts";
import { cachedGraph, dropCachedGraph } from "./graph_cache.ts";

export { type AdamState, newAdamState };

const log = getLogger(["boltzmann", "train"]);

/** Bump when the ONNX builder changes what it emits for the same inputs. */
export const ENGINE_VERSION = 1;

/** Loss, gradients and optimizer step of one model shape. */
export interface Trainer {
  /**
   * Mean loss and mean gradients over `batches` (each Int32Array of batchSize·seqLen ids,
   * row-major [B, T]). The gradients are fresh arrays, or `into`'s arrays (overwritten)
   * when given: a caller that steps in a loop saves a fresh allocation per step.
   */
  lossAndGrad(
    params: Tensors,
    batches: Int32Array[],
    into?: Tensors,
  ): Promise<{ loss: number; grads: Tensors; tokens: number }>;
  /** Mean loss only (evaluation). */
  loss(params: Tensors, batches: Int32Array[]): Promise<number>;
  /** Clip grads (in place) to hp.gradClip by global norm, then one AdamW step in place on params/opt. */
  step(params: Tensors, opt: AdamState, grads: Tensors): Promise<{ gradNorm: number }>;
  close(): Promise<void>;
}

/** Where and how the trainer runs. */
export interface TrainerOptions {
  device?: "cpu" | "cuda";
  /** ONNX Runtime intra-op threads and optimizer threads (default: one per core). */
  threads?: number;
  /** Graph cache directory (see `defaultCacheDir`); no disk cache when omitted. */
  cacheDir?: string;
  /** Profile the step graph with ORT's profiler into `<profile>_<time>.json` (on close). */
  profile?: string;
}

/** What a graph of this trainer depends on: the cache key. */
export function graphKey(hp: Hparams, grads: boolean): Record<string, unknown> {
  return {
    engine: ENGINE_VERSION,
    llama: LLAMA_GRAPH_VERSION,
    model: hp.model,
    batch: hp.batchSize,
    seq: hp.seqLen,
    dtype: "float32",
    grads,
  };
}

async function openGraph(hp: Hparams, grads: boolean, opts: TrainerOptions): Promise<Session> {
  const build = () =>
    buildLlamaGraph(hp.model, { batch: hp.batchSize, seqLen: hp.seqLen, grads }).graph.encode();
  const kind = grads ? "llama-step" : "llama-loss";
  const c = await cachedGraph(opts.cacheDir, kind, graphKey(hp, grads), build);
  const so = {
    device: opts.device,
    threads: opts.threads,
    lowMemory: true, // docs/PERFORMANCE.md: peak RSS at 58 M 3.46 → 2.28 GB, same CPU time
    profile: grads ? opts.profile : undefined,
  };
  const t0 = performance.now();
  try {
    const s = await Session.create(c.bytes, so);
    log.debug("Opened {kind} graph ({hit}) in {ms} ms", {
      kind,
      hit: c.hit ? "cached" : "built",
      ms: Math.round(performance.now() - t0),
    });
    return s;
  } catch (e) {
    if (!c.hit || !c.path || e instanceof DeviceError) throw e;
    // A damaged cache file: forget it and build afresh.
    log.warning("Cached graph {path} was refused ({e}); rebuilding", {
      path: c.path,
      e: String(e),
    });
    await dropCachedGraph(c.path);
    return await Session.create(build(), so);
  }
}

/** Checks ids are integers in [0, vocab) and sizes are B·T; RangeError otherwise. */
export function checkBatches(
  batches: readonly Int32Array[],
  B: number,
  T: number,
  vocab: number,
): void {
  if (batches.length === 0) {
    throw new RangeError("No batches given: pass at least one [B, T] token batch");
  }
  batches.forEach((b, k) => {
    if (!(b instanceof Int32Array) || b.length !== B * T) {
      throw new RangeError(`Batch ${k} has ${b.length} token ids, expected ${B}×${T} = ${B * T}`);
    }
    for (let i = 0; i < b.length; i++) {
      const id = b[i]!;
      if (id < 0 || id >= vocab) {
        throw new RangeError(
          `Batch ${k} holds token id ${id} at ${i}: ids must be in [0, ${vocab})`,
        );
      }
    }
  });
}

function checkParams(table: readonly ParamSpec[], params: Tensors): void {
  for (const p of table) {
    const t = params.get(p.name);
    if (!t) throw new RangeError(`Parameter '${p.name}' is missing`);
    if (t.length !== p.numel) {
      throw new RangeError(
        `Parameter '${p.name}' has ${t.length} values, expected ${p.numel} for [${
          p.shape.join(", ")
        }]`,
      );
    }
  }
}

const nonFinite = (name: string) =>
  new Error(
    `Gradient of '${name}' holds NaN/Inf: the parameters are damaged or training diverged`,
  );

/** Divides `g` by n in place and reports whether every value is finite. */
function meanAndCheck(g: Float32Array, n: number): boolean {
  let bad = 0;
  for (let i = 0; i < g.length; i++) {
    const x = (g[i]! /= n);
    bad |= x - x === 0 ? 0 : 1; // NaN and ±Inf give NaN
  }
  return bad === 0;
}

/**
 * A trainer for `hp`'s model, batch size and sequence length.
 * @throws {Error} one line when `device: "cuda"` cannot load its provider
 */
export async function createTrainer(hp: Hparams, opts: TrainerOptions = {}): Promise<Trainer> {
  const table = paramTable(hp.model);
  const B = hp.batchSize, T = hp.seqLen, V = hp.model.vocabSize;
  const stepSession = await openGraph(hp, true, opts);
  let lossSession: Promise<Session> | undefined;
  // Gradients of the second and later micro-batches land here, then are summed in place.
  let scratch: Tensors | undefined;
  let pool: AdamPool | undefined;
  const threads = opts.threads ?? (navigator.hardwareConcurrency || 1);
  const tokens = new BigInt64Array(B * T);

  const feeds = (params: Tensors, batch: Int32Array): Record<string, Value> => {
    for (let i = 0; i < batch.length; i++) tokens[i] = BigInt(batch[i]!);
    const f: Record<string, Value> = { tokens: { data: tokens, dims: [B, T] } };
    for (const p of table) f[p.name] = { data: params.get(p.name)!, dims: p.shape };
    return f;
  };
  const lossOf = (out: Record<string, Value>, k: number): number => {
    const l = out.loss!.data[0] as number;
    if (!Number.isFinite(l)) {
      throw new Error(
        `Loss of batch ${k} is ${l}: the parameters hold NaN/Inf or training diverged`,
      );
    }
    return l;
  };

  return {
    async lossAndGrad(params, batches, into) {
      checkParams(table, params);
      checkBatches(batches, B, T, V);
      if (into) checkParams(table, into);
      let loss = 0;
      const sum: Tensors = into ?? new Map(table.map((p) => [p.name, new Float32Array(p.numel)]));
      const target = (m: Tensors) => {
        const o: Record<string, Value> = {};
        for (const p of table) o[gradName(p.name)] = { data: m.get(p.name)!, dims: p.shape };
        return o;
      };
      for (const [k, batch] of batches.entries()) {
        if (k === 0) {
          loss += lossOf(await stepSession.runInto(feeds(params, batch), target(sum), ["loss"]), 0);
          continue;
        }
        scratch ??= new Map(table.map((p) => [p.name, new Float32Array(p.numel)]));
        loss += lossOf(
          await stepSession.runInto(feeds(params, batch), target(scratch), ["loss"]),
          k,
        );
        for (const p of table) {
          const g = scratch.get(p.name)!, acc = sum.get(p.name)!;
          for (let i = 0; i < g.length; i++) acc[i]! += g[i]!;
        }
      }
      const n = batches.length;
      if (n === 1) {
        // One micro-batch: only the finiteness check, over all threads.
        pool ??= new AdamPool(threads);
        const names = [...sum.keys()], bad = await pool.firstNonFinite([...sum.values()]);
        if (bad >= 0) throw nonFinite(names[bad]!);
      } else {
        for (const [name, g] of sum) if (!meanAndCheck(g, n)) throw nonFinite(name);
      }
      return { loss: loss / n, grads: sum, tokens: n * B * T };
    },
    async loss(params, batches) {
      checkParams(table, params);
      checkBatches(batches, B, T, V);
      lossSession ??= openGraph(hp, false, opts);
      const s = await lossSession;
      let loss = 0;
      for (const [k, batch] of batches.entries()) {
        loss += lossOf(await s.run(feeds(params, batch), ["loss"]), k);
      }
      return loss / batches.length;
    },
    async step(params, opt, grads) {
      checkParams(table, params);
      // clipGrads + adamwStep, the norm and then the update over all threads (the same bits).
      pool ??= new AdamPool(threads);
      const norm = await pool.norm(grads.values());
      const scale = Math.min(1, hp.gradClip / (norm + 1e-6));
      await adamwStepPooled(pool, params, opt, grads, hp, scale);
      return { gradNorm: norm };
    },
    async close() {
      pool?.close();
      await stepSession.release();
      if (lossSession) await (await lossSession).release();
    },
  };
}
