/**
 * The runs `bench converge` compares, all in one process on the same pages, seed and
 * trainer (no chain, no store): one miner alone, full-precision data-parallel, the seed
 * protocol (per-miner models exchanging random-index slices through src/roles/aggregate.ts),
 * and protocol v2 (one shared model; src/protocol/'s codecs, signed uploads, aggregation
 * and outer step — the same functions devnet runs).
 *
 * @module
 */
import type { Hparams } from "../hparams.ts";
import { modelFingerprint } from "../hparams.ts";
import { paramTable, type Tensors } from "../model/params.ts";
import { initParams } from "../model/init.ts";
import type { Dataset } from "../data/mod.ts";
import { newAdamState, type Trainer } from "../train/trainer.ts";
import { sliceIndices } from "../window.ts";
import { gather } from "../slices/gather.ts";
import { encodeSlice, type Signer } from "../slices/wire.ts";
import { applyDeltas, averageStates } from "../roles/aggregate.ts";
import {
  aggregate,
  type CodecSpec,
  computeUpdateWithStats,
  encodeUpdate,
  newOuterState,
  type OuterHparams,
  outerStep,
  readUpload,
  writeUpload,
} from "../protocol/mod.ts";

/** What every run shares. */
export interface RunSetup {
  hp: Hparams;
  trainer: Trainer;
  dataset: Dataset;
  miners: number;
  windows: number;
  batches: number;
  evalBatches: Int32Array[];
  /** Evaluate held-out loss every this many windows (and after the last). */
  evalEvery: number;
  seed: number;
  signer: Signer;
  /** Called after each trained micro-batch (progress). */
  tick: (batches: number) => void;
  /** Called with each held-out loss as it is measured (progress). */
  onEval?: (run: string, windows: number, loss: number) => void;
}

/** A run's result: held-out loss after the last window, its curve, upload bytes. */
export interface RunResult {
  heldout_loss: number;
  bytes_per_window: number;
  curve: [number, number][];
  [extra: string]: unknown;
}

/** Protocol-v2 settings of one run: the codec and the outer step's options. */
export interface ProtocolSetting {
  /** As given, e.g. `dense:s3:128+pc`. */
  label: string;
  spec: CodecSpec;
  precondition: boolean;
  /** Outer learning rate (default the preset's). */
  learningRate?: number;
}

async function batchesOf(s: RunSetup, w: number, uid: number): Promise<Int32Array[]> {
  const b = (await s.dataset.batchesFor(w, uid)).slice(0, s.batches);
  if (b.length < s.batches) {
    throw new RangeError(
      `Page of window ${w}, uid ${uid} has ${b.length} batches, fewer than --batches ${s.batches}`,
    );
  }
  return b;
}

async function evaluate(
  s: RunSetup,
  params: Tensors,
  w: number,
  curve: [number, number][],
  run: string,
): Promise<number> {
  const l = await s.trainer.loss(params, s.evalBatches);
  curve.push([w, l]);
  s.onEval?.(run, w + 1, l);
  return l;
}

function due(s: RunSetup, w: number): boolean {
  return (w + 1) % s.evalEvery === 0 || w === s.windows - 1;
}

/** One miner alone, or (miners = all) data-parallel: AdamW on the mean gradient. */
export async function runSingle(s: RunSetup, uids: number[]): Promise<RunResult> {
  const run = uids.length === 1 ? "alone" : "data_parallel";
  const params = initParams(s.hp.model, s.seed);
  const opt = newAdamState(paramTable(s.hp.model));
  const curve: [number, number][] = [];
  await evaluate(s, params, -1, curve, run);
  let last = NaN;
  for (let w = 0; w < s.windows; w++) {
    const batches: Int32Array[] = [];
    for (const u of uids) batches.push(...await batchesOf(s, w, u));
    const { grads } = await s.trainer.lossAndGrad(params, batches);
    s.tick(batches.length);
    await s.trainer.step(params, opt, grads);
    if (due(s, w)) last = await evaluate(s, params, w, curve, run);
  }
  let P = 0;
  for (const p of params.values()) P += p.length;
  return { heldout_loss: last, bytes_per_window: 4 * P, curve };
}

function clone(t: Tensors): Tensors {
  return new Map([...t].map(([k, v]) => [k, v.slice()]));
}

/**
 * The seed protocol: each miner trains its own copy (one AdamW step per window) and
 * publishes a `delta` (before − after) and a `state` slice at random indices; each
 * participant averages peers' states in and applies peers' deltas (src/roles/aggregate.ts,
 * as src/roles/miner.ts's syncWindow). The validator syncs the same way without training;
 * its model's held-out loss is the result (the miners' range alongside).
 */
export async function runSeedProtocol(s: RunSetup): Promise<RunResult> {
  const table = paramTable(s.hp.model), c = s.hp.compression;
  const init = initParams(s.hp.model, s.seed);
  const miners = Array.from({ length: s.miners }, (_, m) => ({
    key: `miner${m}`,
    params: clone(init),
    opt: newAdamState(table),
    step: null as Tensors | null,
  }));
  const validator = init;
  const curve: [number, number][] = [];
  await evaluate(s, validator, -1, curve, "seed_protocol");
  const indices = (kind: string, w: number) =>
    new Map(table.map((p) => [p.name, sliceIndices(`${kind}:${w}`, p.name, p.numel, c)]));
  let bytes = 0, last = NaN;
  for (let w = 0; w < s.windows; w++) {
    const idxD = indices("delta", w), idxS = indices("state", w);
    const deltas = miners.filter((m) => m.step).map((m) => ({
      key: m.key,
      values: gather(m.step!, idxD),
    }));
    const states = miners.map((m) => ({ key: m.key, values: gather(m.params, idxS) }));
    if (w === 0) {
      const meta = {
        kind: "state" as const,
        window: w,
        hotkey: s.signer.address,
        fingerprint: modelFingerprint(s.hp.model),
        version: 1,
      };
      // Every byte of the two signed files a miner uploads per window.
      bytes = encodeSlice(states[0]!.values, meta, s.signer).length +
        encodeSlice(states[0]!.values, { ...meta, kind: "delta" }, s.signer).length;
    }
    for (const m of miners) {
      averageStates(m.params, idxS, states.filter((p) => p.key !== m.key));
      applyDeltas(m.params, idxD, deltas.filter((p) => p.key !== m.key));
    }
    averageStates(validator, idxS, states);
    applyDeltas(validator, idxD, deltas);
    for (const [u, m] of miners.entries()) {
      const batches = await batchesOf(s, w, u);
      const { grads } = await s.trainer.lossAndGrad(m.params, batches);
      s.tick(batches.length);
      const before = clone(m.params);
      await s.trainer.step(m.params, m.opt, grads);
      for (const [k, v] of before) {
        const a = m.params.get(k)!;
        for (let i = 0; i < v.length; i++) v[i] = v[i]! - a[i]!;
      }
      m.step = before;
    }
    if (due(s, w)) last = await evaluate(s, validator, w, curve, "seed_protocol");
  }
  const own: number[] = [];
  for (const m of miners) own.push(await s.trainer.loss(m.params, s.evalBatches));
  return {
    heldout_loss: last,
    bytes_per_window: bytes,
    curve,
    miners_heldout_loss: [Math.min(...own), Math.max(...own)].map((x) => +x.toFixed(4)),
    compression: c,
  };
}

/**
 * Protocol v2: one shared θ; each window every miner computes its update at θ_w
 * (src/protocol/update.ts), encodes it with error feedback, signs and serialises it; every
 * upload is read back strictly (as a receiver does), aggregated, and one outer step makes
 * θ_{w+1}. Bytes are the signed files' lengths, averaged over miners and windows.
 */
export async function runProtocol(s: RunSetup, setting: ProtocolSetting): Promise<RunResult> {
  const table = paramTable(s.hp.model);
  const params = initParams(s.hp.model, s.seed);
  const state = newOuterState(params);
  const hp: OuterHparams = {
    learningRate: setting.learningRate ?? s.hp.learningRate,
    beta1: s.hp.beta1,
    beta2: s.hp.beta2,
    eps: s.hp.eps,
    weightDecay: s.hp.weightDecay,
    gradClip: s.hp.gradClip,
    precondition: setting.precondition,
  };
  const fingerprint = modelFingerprint(s.hp.model);
  const efs = Array.from({ length: s.miners }, () => new Map<string, Float32Array>());
  const curve: [number, number][] = [];
  const run = `protocol ${setting.label}`;
  await evaluate(s, params, -1, curve, run);
  let bytes = 0, last = NaN;
  for (let w = 0; w < s.windows; w++) {
    const ctx = { seed: `delta:${w}` };
    const decoded = [];
    for (let m = 0; m < s.miners; m++) {
      const batches = await batchesOf(s, w, m);
      const c = await computeUpdateWithStats(s.trainer, params, batches, state, hp);
      s.tick(batches.length);
      const enc = encodeUpdate(setting.spec, c.update, efs[m]!, ctx);
      const meta = { window: w, hotkey: s.signer.address, fingerprint };
      const file = writeUpload(enc, meta, s.signer);
      bytes += file.length;
      const got = readUpload(file, {
        spec: setting.spec,
        params: table,
        fingerprint,
        window: w,
        ctx,
      });
      decoded.push({ key: `miner${m}`, weight: 1, update: got.update });
    }
    outerStep(params, state, aggregate(decoded), hp);
    if (due(s, w)) last = await evaluate(s, params, w, curve, run);
  }
  return {
    heldout_loss: last,
    bytes_per_window: Math.round(bytes / (s.miners * s.windows)),
    curve,
  };
}
