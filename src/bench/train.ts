/**
 * `bench train`: training-step throughput of the engine — tokens/s, achieved GFLOP/s,
 * and, measured in the same run on the same threads, ONNX Runtime's own MatMul GFLOP/s
 * (the ratio is the figure to watch: target >= 0.5 on CPU), the optimizer step both ways
 * (TypeScript loop vs AdamW graph), bytes crossing the session boundary per step, and
 * peak resident memory.
 *
 * FLOPs per token: 6 · (every Linear weight, the LM head included; the embedding lookup
 * does no multiplications) + 12 · layers · T · H for attention scores and mixing.
 */
import type { Bench } from "./mod.ts";
import type { Hparams } from "../hparams.ts";
import { initParams } from "../model/init.ts";
import { paramCount, paramTable } from "../model/params.ts";
import { createTrainer, newAdamState } from "../train/trainer.ts";
import { adamConstants, adamwGraph, adamwStep } from "../train/adamw.ts";
import { Graph } from "../onnx/graph.ts";
import { matmul } from "../onnx/ops.ts";
import { Session, type Value } from "../onnx/run.ts";

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

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** What `bench train` takes (the CLI parses it from flags). */
export interface TrainOptions {
  /** Model and batch shape (`--hparams` sets batch_size / sequence_length, e.g. to match
   * bench/torch_step.py). */
  hp: Hparams;
  device: "cpu" | "cuda";
  steps: number;
  threads: number;
  json: boolean;
}

export const bench: Bench<TrainOptions> = {
  summary: "training step tokens/s and GFLOP/s vs ONNX Runtime MatMul (target ratio >= 0.5)",
  async run({ hp, device, steps, threads, json }) {
    const table = paramTable(hp.model);
    const params = initParams(hp.model, 0);
    const tokensPerBatch = hp.batchSize * hp.seqLen;
    const batch = Int32Array.from(
      { length: tokensPerBatch },
      (_, i) => (i * 7919 + 13) % hp.model.vocabSize,
    );

    let t0 = performance.now();
    const trainer = await createTrainer(hp, { threads, device });
    const sessionMs = performance.now() - t0;
    const opt = newAdamState(table);
    const gradMs: number[] = [], optMs: number[] = [];
    try {
      for (let s = 0; s < steps + 2; s++) { // two warm-up steps grow ORT's arena
        t0 = performance.now();
        const { grads } = await trainer.lossAndGrad(params, [batch]);
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
    // The AdamW graph on the same tensors, for the TS-loop-or-graph decision.
    const ag = await Session.create(adamwGraph(table, hp).encode(), { threads });
    const c = adamConstants(hp, 1);
    const feeds: Record<string, Value> = {
      scale: { data: Float32Array.of(1), dims: [] },
      decay: { data: Float32Array.of(c.decay), dims: [] },
      step_size: { data: Float32Array.of(c.stepSize), dims: [] },
      bc2_sqrt: { data: Float32Array.of(c.bc2Sqrt), dims: [] },
    };
    for (const p of table) {
      for (const k of ["p", "g", "m", "v"]) {
        feeds[`${k}:${p.name}`] = { data: params.get(p.name)!, dims: p.shape };
      }
    }
    const graphOpt: number[] = [];
    for (let r = 0; r < 4; r++) {
      t0 = performance.now();
      await ag.run(feeds);
      if (r > 0) graphOpt.push(performance.now() - t0);
    }
    await ag.release();
    const tsOpt: number[] = [];
    const o2 = newAdamState(table);
    for (let r = 0; r < 3; r++) {
      t0 = performance.now();
      adamwStep(params, o2, params, hp);
      tsOpt.push(performance.now() - t0);
    }

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
    const P = paramCount(table);
    const out = {
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
      adamw_ts_ms: +median(tsOpt).toFixed(1),
      adamw_graph_ms: +median(graphOpt).toFixed(1),
      bytes_in_per_step: 4 * P + 8 * tokensPerBatch,
      bytes_out_per_step: 4 * P + 4,
      peak_rss_mb: peakRssMb(),
    };
    if (json) console.log(JSON.stringify(out));
    else {
      console.log(
        `train  preset=${out.preset} threads=${threads} params=${P} batch=${hp.batchSize}x${hp.seqLen}\n` +
          `  step ${out.step_ms} ms (loss+grad ${out.loss_and_grad_ms}, optimizer ${out.optimizer_ms})  ` +
          `${out.tokens_per_s} tok/s  ${out.achieved_gflops} GFLOP/s\n` +
          `  ORT MatMul 1024³ ${out.ort_matmul_1024_gflops} GFLOP/s (LM-head shape ${out.ort_matmul_lm_head_gflops})  ` +
          `ratio ${out.ratio} (target >= 0.5)\n` +
          `  AdamW: TypeScript loop ${out.adamw_ts_ms} ms, ONNX graph ${out.adamw_graph_ms} ms\n` +
          `  session ${out.session_ms} ms  bytes/step in ${
            (out.bytes_in_per_step / 1e6).toFixed(1)
          } MB ` +
          `out ${(out.bytes_out_per_step / 1e6).toFixed(1)} MB  peak RSS ${out.peak_rss_mb} MB`,
      );
    }
    return 0;
  },
};
