/**
 * `bench train`: training-step throughput of the engine — tokens/s, achieved GFLOP/s,
 * and, measured in the same run on the same threads, ONNX Runtime's own MatMul GFLOP/s
 * (the ratio is the figure to watch: target >= 0.5 on CPU); the optimizer step in GB/s of
 * its memory traffic (28 bytes per parameter: p, g, m, v read; p, m, v written) against
 * this machine's copy bandwidth (`TypedArray.set` of 4·P bytes, read + written bytes) and
 * against the plain TypeScript loop and the AdamW graph; bytes crossing the session
 * boundary per step; and the peak resident memory of the training steps (`VmHWM`, reset
 * before the model is built where Linux allows). `--ladder` (ladder.ts) runs this for
 * several model sizes against bench/torch_step.py.
 *
 * FLOPs per token: 6 · (every Linear weight, the LM head included; the embedding lookup
 * does no multiplications) + 12 · layers · T · H for attention scores and mixing.
 */
import type { Bench } from "./mod.ts";
import type { Hparams } from "../hparams.ts";
import { initParams } from "../model/init.ts";
import { paramCount, paramTable, type Tensors } from "../model/params.ts";
import { createTrainer, newAdamState } from "../train/trainer.ts";
import { residentModel } from "../train/resident.ts";
import { adamScalars, adamwGraph, adamwGraphFeeds } from "../train/adamw.ts";
import { adamwLoop, adamwTensor, type TensorStep } from "../train/adamw_kernel.ts";
import { Graph } from "../onnx/graph.ts";
import { matmul } from "../onnx/ops.ts";
import { Session } from "../onnx/run.ts";
import { type LadderOptions, runLadder } from "./ladder.ts";

/** Training FLOPs per token (see the module doc). */
export function flopsPerToken(hp: Hparams): number {
  const m = hp.model;
  const linear = paramCount(
    paramTable(m).filter((p) => p.shape.length === 2 && p.name !== "model.embed_tokens.weight"),
  ) +
    (m.tieWordEmbeddings ? m.vocabSize * m.hiddenSize : 0);
  return 6 * linear + 12 * m.numLayers * hp.seqLen * m.hiddenSize;
}

/** Best-of-`reps` GFLOP/s of one ORT MatMul [m, k] × [k, n]. */
async function matmulGflops(
  m: number,
  k: number,
  n: number,
  threads: number,
  reps: number,
): Promise<number> {
  const g = new Graph();
  g.output(matmul(g.input("a", "float32", [m, k]), g.input("b", "float32", [k, n])), "c");
  const s = await Session.create(g.encode(), { threads });
  const a = new Float32Array(m * k).fill(0.5), b = new Float32Array(k * n).fill(0.25);
  const feeds = { a: { data: a, dims: [m, k] }, b: { data: b, dims: [k, n] } };
  await s.run(feeds);
  let best = Infinity;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    await s.run(feeds);
    best = Math.min(best, performance.now() - t0);
  }
  await s.release();
  return (2 * m * k * n) / (best / 1000) / 1e9;
}

function peakRssMb(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync("/proc/self/status"));
    if (m) return +(Number(m[1]) / 1024).toFixed(0);
  } catch { /* not Linux */ }
  return +(Deno.memoryUsage().rss / 2 ** 20).toFixed(0);
}

/** Resets VmHWM to the current RSS (Linux ≥ 4.0); false where it cannot. */
function resetPeakRss(): boolean {
  try {
    Deno.writeTextFileSync("/proc/self/clear_refs", "5");
    return true;
  } catch {
    return false;
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Best-of-3 copy bandwidth (bytes read + written per second) over `a`-sized arrays. */
function copyBandwidth(n: number): number {
  const src = new Float32Array(n).fill(1), dst = new Float32Array(n).fill(0);
  let best = Infinity;
  for (let r = 0; r < 4; r++) {
    const t0 = performance.now();
    dst.set(src);
    const t = performance.now() - t0;
    if (r > 0) best = Math.min(best, t);
  }
  return (8 * n) / (best / 1000);
}

/** What `bench train` takes (the CLI parses it from flags). */
export interface TrainOptions {
  /** Model and batch shape (`--hparams` sets batch_size / sequence_length, e.g. to match
   * bench/torch_step.py). */
  hp: Hparams;
  device: "cpu" | "cuda";
  steps: number;
  threads: number;
  json: boolean;
  /** Profile the step graph with ORT's profiler into `<profile>_<time>.json`. */
  profile?: string;
  /** Run the model ladder instead (ladder.ts). */
  ladder?: Omit<LadderOptions, "steps" | "threads" | "device" | "json">;
}

/** The figures of one `bench train` run (the `--json` object). */
export type TrainFigures = Awaited<ReturnType<typeof measure>>;

async function measure({ hp, device, steps, threads, profile }: TrainOptions) {
  const rssReset = resetPeakRss();
  const table = paramTable(hp.model);
  // Parameters, gradients and moments in one resident block (the AdamW kernel updates them
  // in place on every thread, src/train/resident.ts), as a training loop would keep them.
  const res = residentModel(table);
  const params = initParams(hp.model, 0, res?.params);
  const tokensPerBatch = hp.batchSize * hp.seqLen;
  const batch = Int32Array.from(
    { length: tokensPerBatch },
    (_, i) => (i * 7919 + 13) % hp.model.vocabSize,
  );
  const P = paramCount(table);

  let t0 = performance.now();
  const trainer = await createTrainer(hp, { threads, device, profile });
  const sessionMs = performance.now() - t0;
  const opt = res ? res.opt : newAdamState(table);
  const gradMs: number[] = [], optMs: number[] = [];
  let grads: Tensors | undefined = res?.grads;
  try {
    for (let s = 0; s < steps + 2; s++) { // two warm-up steps grow ORT's arena
      t0 = performance.now();
      // Gradients into the same arrays every step, as a training loop would.
      grads = (await trainer.lossAndGrad(params, [batch], grads)).grads;
      const t1 = performance.now();
      await trainer.step(params, opt, grads);
      if (s >= 2) {
        gradMs.push(t1 - t0);
        optMs.push(performance.now() - t1);
      }
    }
  } finally {
    await trainer.close();
  }
  const peakRss = peakRssMb();

  // The optimizer alone, one thread: the kernel, and the plain loop it replaced.
  const s1 = adamScalars(hp, 1);
  const oneThread = (f: TensorStep) => {
    const ms: number[] = [];
    for (let r = 0; r < 3; r++) {
      t0 = performance.now();
      for (const p of table) {
        f(params.get(p.name)!, grads!.get(p.name)!, opt.m.get(p.name)!, opt.v.get(p.name)!, s1);
      }
      ms.push(performance.now() - t0);
    }
    return median(ms);
  };
  const wasm1 = oneThread(adamwTensor), loop1 = oneThread(adamwLoop);
  // The AdamW graph (3 more copies of the parameters: only where that is small).
  let graphMs: number | null = null;
  if (P <= 20e6) {
    const ag = await Session.create(adamwGraph(table, hp).encode(), { threads });
    // Every input views θ: the graph's cost does not depend on the values.
    const feeds = adamwGraphFeeds(table, hp, 1, { p: params, g: params, m: params, v: params });
    const graphOpt: number[] = [];
    for (let r = 0; r < 4; r++) {
      t0 = performance.now();
      await ag.run(feeds);
      if (r > 0) graphOpt.push(performance.now() - t0);
    }
    await ag.release();
    graphMs = median(graphOpt);
  }
  const copy = copyBandwidth(P);

  const stepMs = median(gradMs) + median(optMs);
  const tokS = tokensPerBatch / (stepMs / 1000);
  const gflops = (flopsPerToken(hp) * tokS) / 1e9;
  const refSquare = await matmulGflops(1024, 1024, 1024, threads, 5);
  const refHead = await matmulGflops(
    tokensPerBatch,
    hp.model.hiddenSize,
    hp.model.vocabSize,
    threads,
    3,
  );
  const optGbs = (28 * P) / (median(optMs) / 1000) / 1e9;
  return {
    preset: hp.preset,
    threads,
    parameters: P,
    batch: [hp.batchSize, hp.seqLen],
    session_ms: Math.round(sessionMs),
    loss_and_grad_ms: +median(gradMs).toFixed(1),
    optimizer_ms: +median(optMs).toFixed(1),
    step_ms: +stepMs.toFixed(1),
    tokens_per_s: Math.round(tokS),
    achieved_gflops: +gflops.toFixed(1),
    ort_matmul_1024_gflops: +refSquare.toFixed(1),
    ort_matmul_lm_head_gflops: +refHead.toFixed(1),
    ratio: +(gflops / refSquare).toFixed(2),
    copy_gb_s: +(copy / 1e9).toFixed(2),
    optimizer_gb_s: +optGbs.toFixed(2),
    optimizer_vs_copy: +(optGbs / (copy / 1e9)).toFixed(2),
    adamw_wasm_1thread_ms: +wasm1.toFixed(1),
    adamw_ts_ms: +loop1.toFixed(1),
    adamw_graph_ms: graphMs === null ? null : +graphMs.toFixed(1),
    resident: res !== null,
    bytes_in_per_step: 4 * P + 8 * tokensPerBatch,
    bytes_out_per_step: 4 * P + 4,
    peak_rss_mb: peakRss,
    peak_rss_scope: rssReset ? "training steps" : "whole process",
  };
}

function print(out: TrainFigures): void {
  const mb = (b: number) => (b / 1e6).toFixed(1);
  console.log(
    `train  preset=${out.preset} threads=${out.threads} params=${out.parameters} batch=${
      out.batch.join("x")
    }\n` +
      `  step ${out.step_ms} ms (loss+grad ${out.loss_and_grad_ms}, optimizer ${out.optimizer_ms})  ` +
      `${out.tokens_per_s} tok/s  ${out.achieved_gflops} GFLOP/s\n` +
      `  ORT MatMul 1024³ ${out.ort_matmul_1024_gflops} GFLOP/s (LM-head shape ${out.ort_matmul_lm_head_gflops})  ` +
      `ratio ${out.ratio} (target >= 0.5)\n` +
      `  optimizer ${out.optimizer_gb_s} GB/s = ${out.optimizer_vs_copy} × copy bandwidth ${out.copy_gb_s} GB/s ` +
      `(target >= 0.5)\n` +
      `  AdamW one thread (${
        out.resident ? "resident tensors" : "staged"
      }): WebAssembly ${out.adamw_wasm_1thread_ms} ms, TypeScript loop ${out.adamw_ts_ms} ms, ` +
      `ONNX graph ${out.adamw_graph_ms ?? "skipped (> 20 M parameters)"}${
        out.adamw_graph_ms === null ? "" : " ms"
      }\n` +
      `  session ${out.session_ms} ms  bytes/step in ${mb(out.bytes_in_per_step)} MB ` +
      `out ${
        mb(out.bytes_out_per_step)
      } MB  peak RSS ${out.peak_rss_mb} MB (${out.peak_rss_scope})`,
  );
}

export const bench: Bench<TrainOptions> = {
  summary: "training step tokens/s and GFLOP/s vs ONNX Runtime MatMul (target ratio >= 0.5)",
  async run(o) {
    if (o.ladder) {
      return await runLadder({
        ...o.ladder,
        steps: o.steps,
        threads: o.threads,
        device: o.device,
        json: o.json,
      });
    }
    const out = await measure(o);
    if (o.json) console.log(JSON.stringify(out));
    else print(out);
    return 0;
  },
};
