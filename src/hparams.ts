/**
 * Hyper-parameters: the two presets (`tiny`, `seed`), JSON overrides, validation, and the
 * model fingerprint every slice carries. Pure functions; reading the override file is the
 * caller's job.
 *
 * @module
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import { type ModelConfig, paramTable } from "./model/params.ts";

/** Everything miners and validators must agree on, plus local training knobs. */
export interface Hparams {
  preset: string;
  model: ModelConfig;
  /** Tokens per row (the training sequence length). */
  seqLen: number;
  /** Rows per micro-batch. */
  batchSize: number;
  /** Pages a miner trains on per window. */
  pagesPerWindow: number;
  /** Rows in a data page (the original: 100). */
  rowsPerPage: number;
  windowLength: number;
  compression: number;
  learningRate: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  gradClip: number;
  maxHistory: number;
  movingAlpha: number;
  /** Windows between two `set_weights` calls of a validator. */
  weightsInterval: number;
  /** Windows between two full checkpoints of the lead validator. */
  checkpointInterval: number;
}

/** What both presets take from the original's hparams.json unchanged. */
const SHARED = {
  pagesPerWindow: 1,
  rowsPerPage: 100,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  weightDecay: 0.1,
  gradClip: 1.0,
  maxHistory: 10,
} as const;

const TINY: Hparams = {
  preset: "tiny",
  model: {
    vocabSize: 32000,
    hiddenSize: 128,
    intermediateSize: 384,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 4,
    maxSeqLen: 512,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    tieWordEmbeddings: false,
  },
  seqLen: 128,
  batchSize: 8,
  ...SHARED,
  windowLength: 5,
  compression: 10,
  learningRate: 3e-3,
  movingAlpha: 0.9,
  weightsInterval: 2,
  checkpointInterval: 10,
};

/** The original boltzmann's hparams.json (16 layers, hidden 2048, seq 2048, ≈1.2 B). */
const SEED: Hparams = {
  preset: "seed",
  model: {
    vocabSize: 32000,
    hiddenSize: 2048,
    intermediateSize: 8192,
    numLayers: 16,
    numHeads: 8,
    numKvHeads: 8,
    maxSeqLen: 2048,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    tieWordEmbeddings: false,
  },
  seqLen: 2048,
  batchSize: 6,
  ...SHARED,
  windowLength: 2,
  compression: 100,
  learningRate: 7.5e-5,
  movingAlpha: 0.999,
  weightsInterval: 10,
  checkpointInterval: 100,
};

/** Preset names accepted by `--preset`. */
export const PRESETS: Readonly<Record<string, Hparams>> = { tiny: TINY, seed: SEED };

/** Override-file keys (the original's hparams.json names) → where they go. */
const MODEL_KEYS: Record<string, keyof ModelConfig> = {
  vocab_size: "vocabSize",
  hidden_size: "hiddenSize",
  intermediate_size: "intermediateSize",
  num_hidden_layers: "numLayers",
  num_attention_heads: "numHeads",
  num_key_value_heads: "numKvHeads",
  max_position_embeddings: "maxSeqLen",
  rms_norm_eps: "rmsNormEps",
  rope_theta: "ropeTheta",
  tie_word_embeddings: "tieWordEmbeddings",
};
const TOP_KEYS: Record<string, keyof Hparams> = {
  sequence_length: "seqLen",
  batch_size: "batchSize",
  pages_per_window: "pagesPerWindow",
  rows_per_page: "rowsPerPage",
  window_length: "windowLength",
  compression: "compression",
  learning_rate: "learningRate",
  optimizer_beta1: "beta1",
  optimizer_beta2: "beta2",
  optimizer_eps: "eps",
  optimizer_weight_decay: "weightDecay",
  grad_clip: "gradClip",
  max_history: "maxHistory",
  validator_moving_alpha: "movingAlpha",
  weights_interval: "weightsInterval",
  checkpoint_interval: "checkpointInterval",
};

/** Accepted override keys, for help texts and error messages. */
export const OVERRIDE_KEYS: readonly string[] = [
  ...Object.keys(MODEL_KEYS),
  ...Object.keys(TOP_KEYS),
];

/**
 * A preset with overrides applied, validated.
 * @param preset a key of {@link PRESETS}
 * @param overrides parsed JSON object using the original's hparams.json key names
 * @throws {RangeError} on an unknown preset, unknown key or invalid value
 */
export function resolveHparams(preset: string, overrides: unknown = {}): Hparams {
  const base = PRESETS[preset];
  if (!base) {
    throw new RangeError(
      `Unknown preset '${preset}': use one of ${Object.keys(PRESETS).join(", ")}`,
    );
  }
  const hp: Hparams = structuredClone(base);
  if (typeof overrides !== "object" || overrides === null || Array.isArray(overrides)) {
    throw new TypeError(
      'Hyper-parameter overrides must be a JSON object like {"learning_rate": 1e-3}',
    );
  }
  for (const [k, v] of Object.entries(overrides)) {
    const mk = MODEL_KEYS[k], tk = TOP_KEYS[k];
    if (mk) (hp.model as unknown as Record<string, unknown>)[mk] = v;
    else if (tk) (hp as unknown as Record<string, unknown>)[tk] = v;
    else if (k !== "preset" && !k.startsWith("_")) {
      throw new RangeError(
        `Unknown hyper-parameter '${k}': accepted keys are ${OVERRIDE_KEYS.join(", ")}`,
      );
    }
  }
  validateHparams(hp);
  return hp;
}

/**
 * The override object that {@link resolveHparams} turns back into `hp` (every key), e.g.
 * to hand exactly these hyper-parameters to another process as an `--hparams` file.
 */
export function toOverrides(hp: Hparams): Record<string, unknown> {
  const out: Record<string, unknown> = { preset: hp.preset };
  for (const [k, f] of Object.entries(MODEL_KEYS)) out[k] = hp.model[f];
  for (const [k, f] of Object.entries(TOP_KEYS)) out[k] = hp[f];
  return out;
}

/** What {@link validateHparams} requires of each kind of numeric field. */
const RULES = {
  int: { ok: (v: number) => Number.isSafeInteger(v) && v >= 1, want: "an integer >= 1" },
  pos: { ok: (v: number) => Number.isFinite(v) && v > 0, want: "a number > 0" },
  unit: { ok: (v: number) => v >= 0 && v < 1, want: "0 <= x < 1" },
} as const;

/** @throws {RangeError} naming the first invalid field */
export function validateHparams(hp: Hparams): void {
  const m = hp.model;
  // Every numeric field with its rule; the first that breaks its rule is named.
  const checks: [string, unknown, keyof typeof RULES][] = [
    ["vocab_size", m.vocabSize, "int"],
    ["hidden_size", m.hiddenSize, "int"],
    ["intermediate_size", m.intermediateSize, "int"],
    ["num_hidden_layers", m.numLayers, "int"],
    ["num_attention_heads", m.numHeads, "int"],
    ["num_key_value_heads", m.numKvHeads, "int"],
    ["max_position_embeddings", m.maxSeqLen, "int"],
    ["sequence_length", hp.seqLen, "int"],
    ["batch_size", hp.batchSize, "int"],
    ["pages_per_window", hp.pagesPerWindow, "int"],
    ["rows_per_page", hp.rowsPerPage, "int"],
    ["window_length", hp.windowLength, "int"],
    ["compression", hp.compression, "int"],
    ["max_history", hp.maxHistory, "int"],
    ["weights_interval", hp.weightsInterval, "int"],
    ["checkpoint_interval", hp.checkpointInterval, "int"],
    ["learning_rate", hp.learningRate, "pos"],
    ["optimizer_eps", hp.eps, "pos"],
    ["grad_clip", hp.gradClip, "pos"],
    ["rms_norm_eps", m.rmsNormEps, "pos"],
    ["rope_theta", m.ropeTheta, "pos"],
    ["optimizer_beta1", hp.beta1, "unit"],
    ["optimizer_beta2", hp.beta2, "unit"],
    ["validator_moving_alpha", hp.movingAlpha, "unit"],
    ["optimizer_weight_decay", hp.weightDecay, "unit"],
  ];
  for (const [k, v, rule] of checks) {
    if (typeof v !== "number" || !RULES[rule].ok(v)) {
      throw new RangeError(
        `Invalid hyper-parameter '${k}': ${JSON.stringify(v)}, expected ${RULES[rule].want}`,
      );
    }
  }
  if (typeof m.tieWordEmbeddings !== "boolean") {
    throw new RangeError(`Invalid hyper-parameter 'tie_word_embeddings': expected true or false`);
  }
  if (m.hiddenSize % m.numHeads !== 0 || (m.hiddenSize / m.numHeads) % 2 !== 0) {
    throw new RangeError(
      `Invalid model shape: hidden_size ${m.hiddenSize} must be num_attention_heads ${m.numHeads} × an even head size`,
    );
  }
  if (m.numHeads % m.numKvHeads !== 0) {
    throw new RangeError(
      `Invalid model shape: num_attention_heads ${m.numHeads} must be a multiple of num_key_value_heads ${m.numKvHeads}`,
    );
  }
  if (hp.seqLen > m.maxSeqLen) {
    throw new RangeError(
      `Invalid hyper-parameter 'sequence_length': ${hp.seqLen} exceeds max_position_embeddings ${m.maxSeqLen}`,
    );
  }
}

/**
 * Hash of the model config and parameter table: two peers with the same fingerprint
 * exchange slices of the same tensors. Hex, 16 bytes of SHA-256 over canonical JSON.
 */
export function modelFingerprint(model: ModelConfig): string {
  const keys = Object.keys(model).sort() as (keyof ModelConfig)[];
  const canon = JSON.stringify({
    config: keys.map((k) => [k, model[k]]),
    table: paramTable(model).map((p) => [p.name, p.shape]),
  });
  return bytesToHex(sha256(utf8ToBytes(canon))).slice(0, 32);
}
