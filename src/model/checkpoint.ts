/**
 * Checkpoints in Hugging Face layout: a directory with `config.json` (LlamaConfig keys)
 * and `model.safetensors`, so `LlamaForCausalLM.from_pretrained(dir)` loads what we
 * write and we load what it writes (float32, bfloat16 or float16 on disk; one file or
 * `model.safetensors.index.json` shards). Layout and recipe: docs/CHECKPOINTS.md.
 *
 * Saving is atomic: the directory is written under a temporary name beside the target
 * and renamed into place, so nobody ever sees a half-written checkpoint. Loading treats
 * the files as untrusted: sizes are capped from the config, every tensor's name, dtype
 * and shape is checked against the parameter table, and NaN/Inf values are refused.
 *
 * Left out: optimizer state (not part of an HF checkpoint), tokenizer files.
 *
 * @module
 */
import { getLogger } from "../log.ts";
import { countNonFinite } from "../tensor_math.ts";
import {
  type ModelConfig,
  paramCount,
  type ParamSpec,
  paramTable,
  type Tensors,
} from "./params.ts";
import {
  type FloatDtype,
  parseSafetensorsHeader,
  SafetensorsError,
  type SafetensorsHeader,
  safetensorsHeader,
  safetensorsHeaderLength,
  tensorBytes,
  toFloat32,
} from "../safetensors.ts";

const log = getLogger(["boltzmann", "checkpoint"]);

/** The weights file of a single-file checkpoint. */
export const WEIGHTS_FILE = "model.safetensors";
/** The index of a sharded checkpoint (`weight_map`: tensor name → shard file). */
export const INDEX_FILE = "model.safetensors.index.json";
/** The config file. */
export const CONFIG_FILE = "config.json";

const MAX_CONFIG_BYTES = 1 << 20;
const MAX_INDEX_BYTES = 16 << 20;
const MAX_HEADER_BYTES = 16 << 20;

/** A checkpoint that cannot be loaded or saved; the message is one line. */
export class CheckpointError extends Error {
  override name = "CheckpointError";
}

/** Options for {@link saveCheckpoint}. */
export interface SaveOptions {
  /** On-disk dtype (default F32; BF16 halves the size, rounding to nearest even). */
  dtype?: "F32" | "BF16";
}

/** Options for {@link loadCheckpoint}. */
export interface LoadOptions {
  /**
   * Largest weights file accepted, bytes. Default: the config's parameters in float32
   * (plus a tied head, which HF may store) plus 16 MB of header.
   */
  maxBytes?: number;
}

const TORCH_DTYPE: Record<FloatDtype, string> = {
  F32: "float32",
  BF16: "bfloat16",
  F16: "float16",
};

/**
 * The `config.json` object `transformers` expects for `cfg`.
 * @param dtype the dtype of the weights file, written as `torch_dtype`
 */
export function configToHf(cfg: ModelConfig, dtype: FloatDtype = "F32"): Record<string, unknown> {
  return {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    hidden_size: cfg.hiddenSize,
    intermediate_size: cfg.intermediateSize,
    num_hidden_layers: cfg.numLayers,
    num_attention_heads: cfg.numHeads,
    num_key_value_heads: cfg.numKvHeads,
    vocab_size: cfg.vocabSize,
    rms_norm_eps: cfg.rmsNormEps,
    rope_theta: cfg.ropeTheta,
    rope_scaling: null,
    max_position_embeddings: cfg.maxSeqLen,
    tie_word_embeddings: cfg.tieWordEmbeddings,
    hidden_act: "silu",
    attention_bias: false,
    mlp_bias: false,
    initializer_range: 0.02,
    bos_token_id: 1,
    eos_token_id: 2,
    torch_dtype: TORCH_DTYPE[dtype],
  };
}

/**
 * A {@link ModelConfig} from a parsed `config.json`, with LlamaConfig's defaults for
 * absent optional keys. Refuses what our model does not compute (other architectures,
 * rope scaling, biases, an activation other than SiLU, an odd head size).
 * @throws {CheckpointError} naming the first bad key
 */
export function hfToConfig(json: unknown, where = CONFIG_FILE): ModelConfig {
  const bad = (why: string): never => {
    throw new CheckpointError(`Invalid ${where}: ${why}`);
  };
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    bad("expected a JSON object of LlamaConfig keys");
  }
  const c = json as Record<string, unknown>;
  const archs = c.architectures;
  if (archs !== undefined && !(Array.isArray(archs) && archs.includes("LlamaForCausalLM"))) {
    bad(`architectures ${JSON.stringify(archs)} does not include "LlamaForCausalLM"`);
  }
  if (c.model_type !== undefined && c.model_type !== "llama") {
    bad(`model_type ${JSON.stringify(c.model_type)}, expected "llama"`);
  }
  const int = (k: string, fallback?: number): number => {
    const v = c[k] ?? fallback;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1) {
      bad(`'${k}' is ${JSON.stringify(v)}, expected an integer >= 1`);
    }
    return v as number;
  };
  const pos = (k: string, v: unknown): number => {
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) {
      bad(`'${k}' is ${JSON.stringify(v)}, expected a number > 0`);
    }
    return v as number;
  };
  // transformers 5 moves rope_theta into rope_parameters.
  const ropeParams = c.rope_parameters as Record<string, unknown> | undefined | null;
  if (
    ropeParams != null && ropeParams.rope_type !== undefined && ropeParams.rope_type !== "default"
  ) {
    bad(`rope type ${JSON.stringify(ropeParams.rope_type)} is not supported, only "default"`);
  }
  if (c.rope_scaling != null) {
    bad(`rope_scaling ${JSON.stringify(c.rope_scaling)} is not supported`);
  }
  if (c.hidden_act !== undefined && c.hidden_act !== "silu") {
    bad(`hidden_act ${JSON.stringify(c.hidden_act)} is not supported, only "silu"`);
  }
  for (const k of ["attention_bias", "mlp_bias"]) {
    if (c[k] !== undefined && c[k] !== false) {
      bad(`'${k}' is ${JSON.stringify(c[k])}, only false is supported`);
    }
  }
  const tie = c.tie_word_embeddings ?? false;
  if (typeof tie !== "boolean") {
    bad(`'tie_word_embeddings' is ${JSON.stringify(tie)}, expected true or false`);
  }
  const numHeads = int("num_attention_heads");
  const cfg: ModelConfig = {
    vocabSize: int("vocab_size"),
    hiddenSize: int("hidden_size"),
    intermediateSize: int("intermediate_size"),
    numLayers: int("num_hidden_layers"),
    numHeads,
    numKvHeads: int("num_key_value_heads", numHeads),
    maxSeqLen: int("max_position_embeddings", 2048),
    rmsNormEps: pos("rms_norm_eps", c.rms_norm_eps ?? 1e-6),
    ropeTheta: pos("rope_theta", c.rope_theta ?? ropeParams?.rope_theta ?? 10000),
    tieWordEmbeddings: tie as boolean,
  };
  const headDim = cfg.hiddenSize / cfg.numHeads;
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) {
    bad(
      `hidden_size ${cfg.hiddenSize} must be num_attention_heads ${numHeads} × an even head size`,
    );
  }
  if (c.head_dim != null && c.head_dim !== headDim) {
    bad(
      `head_dim ${
        JSON.stringify(c.head_dim)
      } differs from hidden_size / num_attention_heads = ${headDim}`,
    );
  }
  if (cfg.numHeads % cfg.numKvHeads !== 0) {
    bad(
      `num_attention_heads ${numHeads} must be a multiple of num_key_value_heads ${cfg.numKvHeads}`,
    );
  }
  return cfg;
}

/** Throws unless `params` holds exactly the table's tensors, right sizes, finite. */
function checkParams(table: ParamSpec[], params: Tensors): void {
  const names = new Set(table.map((p) => p.name));
  for (const k of params.keys()) {
    if (!names.has(k)) {
      throw new CheckpointError(`Cannot save checkpoint: unexpected tensor '${k}'`);
    }
  }
  for (const p of table) {
    const t = params.get(p.name);
    if (!t) throw new CheckpointError(`Cannot save checkpoint: tensor '${p.name}' is missing`);
    if (t.length !== p.numel) {
      throw new CheckpointError(
        `Cannot save checkpoint: tensor '${p.name}' has ${t.length} values, shape ${
          JSON.stringify(p.shape)
        } needs ${p.numel}`,
      );
    }
    const bad = countNonFinite(t);
    if (bad > 0) {
      throw new CheckpointError(
        `Cannot save checkpoint: tensor '${p.name}' has ${bad} NaN/Inf values`,
      );
    }
  }
}

async function writeAll(f: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  // Write in chunks: one huge write of a multi-GB tensor is not guaranteed to be whole.
  const CHUNK = 64 << 20;
  for (let off = 0; off < bytes.length;) {
    off += await f.write(bytes.subarray(off, Math.min(off + CHUNK, bytes.length)));
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

function splitPath(dir: string): { parent: string; base: string } {
  const trimmed = dir.replace(/\/+$/, "") || "/";
  const i = trimmed.lastIndexOf("/");
  return i < 0
    ? { parent: ".", base: trimmed }
    : { parent: trimmed.slice(0, i) || "/", base: trimmed.slice(i + 1) };
}

/**
 * Write `params` as a Hugging Face checkpoint directory `dir`, atomically: the files are
 * written and synced under a temporary sibling directory, which is then renamed to
 * `dir`. An existing checkpoint at `dir` is replaced; a non-empty directory that is
 * not a checkpoint is refused.
 * @throws {CheckpointError} when `params` does not match `cfg` or holds NaN/Inf, or
 *   `dir` is a non-checkpoint directory
 */
export async function saveCheckpoint(
  dir: string,
  cfg: ModelConfig,
  params: Tensors,
  opts: SaveOptions = {},
): Promise<void> {
  const dtype = opts.dtype ?? "F32";
  const table = paramTable(cfg);
  checkParams(table, params);
  const { parent, base } = splitPath(dir);
  if (await exists(dir)) {
    if (!(await Deno.stat(dir)).isDirectory) {
      throw new CheckpointError(
        `Refusing to overwrite '${dir}': it is a file; choose another --out`,
      );
    }
    const entries = [];
    for await (const e of Deno.readDir(dir)) entries.push(e.name);
    if (entries.length > 0 && !entries.includes(CONFIG_FILE)) {
      throw new CheckpointError(
        `Refusing to overwrite '${dir}': it is a non-empty directory without ${CONFIG_FILE}; choose another --out`,
      );
    }
  }
  await Deno.mkdir(parent, { recursive: true });
  const tmp = `${parent}/.${base}.tmp-${crypto.randomUUID()}`;
  await Deno.mkdir(tmp);
  try {
    const { header } = safetensorsHeader(
      table.map((p) => ({ name: p.name, dtype, shape: p.shape })),
      { format: "pt" },
    );
    const f = await Deno.open(`${tmp}/${WEIGHTS_FILE}`, { write: true, createNew: true });
    try {
      await writeAll(f, header);
      for (const p of table) {
        await writeAll(
          f,
          tensorBytes({ name: p.name, dtype, shape: p.shape, data: params.get(p.name)! }),
        );
      }
      await f.sync();
    } finally {
      f.close();
    }
    const config = JSON.stringify(configToHf(cfg, dtype), null, 2) + "\n";
    await Deno.writeTextFile(`${tmp}/${CONFIG_FILE}`, config);
    await swapInto(tmp, dir, parent, base);
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  }
  log.info("Saved checkpoint {dir} ({params} parameters, {dtype})", {
    dir,
    params: paramCount(table),
    dtype,
  });
}

/** Rename `tmp` to `dir`; an existing `dir` is first moved aside, then removed. */
async function swapInto(tmp: string, dir: string, parent: string, base: string): Promise<void> {
  try {
    await Deno.rename(tmp, dir); // succeeds when dir is absent or an empty directory
    return;
  } catch (e) {
    if (!(await exists(dir))) throw e;
  }
  const old = `${parent}/.${base}.old-${crypto.randomUUID()}`;
  await Deno.rename(dir, old);
  await Deno.rename(tmp, dir);
  await Deno.remove(old, { recursive: true });
}

async function readCapped(path: string, cap: number, what: string): Promise<Uint8Array> {
  let size: number;
  try {
    size = (await Deno.stat(path)).size;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new CheckpointError(`Cannot load checkpoint: ${what} '${path}' not found`);
    }
    throw e;
  }
  if (size > cap) {
    throw new CheckpointError(
      `Cannot load checkpoint: ${what} '${path}' is ${size} bytes, over the cap of ${cap}`,
    );
  }
  return await Deno.readFile(path);
}

function parseJson(bytes: Uint8Array, path: string): unknown {
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (e) {
    throw new CheckpointError(`Invalid ${path}: not JSON (${(e as Error).message.split("\n")[0]})`);
  }
}

/** Fill `buf` from `f` at `pos`; a short read means the file was truncated. */
async function readAt(f: Deno.FsFile, pos: number, buf: Uint8Array, path: string): Promise<void> {
  await f.seek(pos, Deno.SeekMode.Start);
  for (let off = 0; off < buf.length;) {
    const n = await f.read(buf.subarray(off));
    if (n === null) {
      throw new CheckpointError(
        `Cannot load checkpoint: '${path}' ends early at byte ${pos + off}`,
      );
    }
    off += n;
  }
}

/** One weights file opened and its header validated. */
interface Shard {
  path: string;
  file: Deno.FsFile;
  header: SafetensorsHeader;
}

async function openShard(path: string, maxBytes: number): Promise<Shard> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new CheckpointError(`Cannot load checkpoint: weights file '${path}' not found`);
    }
    throw e;
  }
  try {
    const size = (await file.stat()).size;
    if (size > maxBytes) {
      throw new CheckpointError(
        `Cannot load checkpoint: '${path}' is ${size} bytes, over the cap of ${maxBytes} for this config`,
      );
    }
    const opts = { maxHeaderBytes: MAX_HEADER_BYTES, label: `checkpoint '${path}'` };
    const first8 = new Uint8Array(8);
    if (size >= 8) await readAt(file, 0, first8, path);
    const n = safetensorsHeaderLength(first8, size, opts);
    const head = new Uint8Array(8 + n);
    await readAt(file, 0, head, path);
    return { path, file, header: parseSafetensorsHeader(head, size, opts) };
  } catch (e) {
    file.close();
    if (e instanceof SafetensorsError) throw new CheckpointError(e.message);
    throw e;
  }
}

/**
 * Load a Hugging Face LLaMA checkpoint directory into float32 tensors.
 * @param dir holds `config.json` and `model.safetensors` (or an index and shards)
 * @returns the config and every parameter of its table, float32, in table order
 * @throws {CheckpointError} on a bad config, missing/extra tensor, wrong dtype or shape,
 *   truncated or oversized file, or NaN/Inf values — one line naming which
 */
export async function loadCheckpoint(
  dir: string,
  opts: LoadOptions = {},
): Promise<{ cfg: ModelConfig; params: Tensors }> {
  const cfgPath = `${dir}/${CONFIG_FILE}`;
  const cfg = hfToConfig(
    parseJson(await readCapped(cfgPath, MAX_CONFIG_BYTES, "config"), cfgPath),
    cfgPath,
  );
  const table = paramTable(cfg);
  const tiedHead = cfg.tieWordEmbeddings ? cfg.vocabSize * cfg.hiddenSize : 0;
  const maxBytes = opts.maxBytes ?? (paramCount(table) + tiedHead) * 4 + MAX_HEADER_BYTES;

  // Which file holds which tensor.
  const fileOf = new Map<string, string>();
  const indexPath = `${dir}/${INDEX_FILE}`;
  if (!(await exists(`${dir}/${WEIGHTS_FILE}`)) && (await exists(indexPath))) {
    const index = parseJson(await readCapped(indexPath, MAX_INDEX_BYTES, "index"), indexPath) as {
      weight_map?: unknown;
    };
    const wm = index?.weight_map;
    if (typeof wm !== "object" || wm === null || Array.isArray(wm)) {
      throw new CheckpointError(`Invalid ${indexPath}: no weight_map object`);
    }
    for (const [name, file] of Object.entries(wm)) {
      if (typeof file !== "string" || !/^[\w.-]+\.safetensors$/.test(file)) {
        throw new CheckpointError(
          `Invalid ${indexPath}: tensor '${name}' maps to ${JSON.stringify(file)}`,
        );
      }
      fileOf.set(name, file);
    }
  }
  const shards = new Map<string, Shard>();
  try {
    const files = fileOf.size ? [...new Set(fileOf.values())] : [WEIGHTS_FILE];
    for (const f of files) shards.set(f, await openShard(`${dir}/${f}`, maxBytes));
    // Every tensor on disk must be in the table (a tied head may be stored, as HF may).
    const expected = new Map(table.map((p) => [p.name, p]));
    for (const [f, s] of shards) {
      for (const name of s.header.tensors.keys()) {
        const tiedExtra = cfg.tieWordEmbeddings && name === "lm_head.weight";
        if (!expected.has(name) && !tiedExtra) {
          throw new CheckpointError(
            `Cannot load checkpoint '${dir}': unexpected tensor '${name}' in ${f}`,
          );
        }
        if (fileOf.size && fileOf.get(name) !== f) {
          throw new CheckpointError(
            `Cannot load checkpoint '${dir}': tensor '${name}' is in ${f}, not where the index says`,
          );
        }
      }
    }
    const params: Tensors = new Map();
    for (const p of table) params.set(p.name, await readTensor(dir, shards, fileOf, p));
    if (cfg.tieWordEmbeddings) await checkTiedHead(dir, shards, fileOf, params, cfg);
    return { cfg, params };
  } finally {
    for (const s of shards.values()) s.file.close();
  }
}

function locate(shards: Map<string, Shard>, fileOf: Map<string, string>, name: string) {
  const s = shards.get(fileOf.get(name) ?? WEIGHTS_FILE);
  return s && s.header.tensors.get(name) ? { s, info: s.header.tensors.get(name)! } : undefined;
}

async function readTensor(
  dir: string,
  shards: Map<string, Shard>,
  fileOf: Map<string, string>,
  p: ParamSpec,
): Promise<Float32Array> {
  const at = locate(shards, fileOf, p.name);
  if (!at) {
    throw new CheckpointError(`Cannot load checkpoint '${dir}': tensor '${p.name}' is missing`);
  }
  const { s, info } = at;
  if (info.dtype !== "F32" && info.dtype !== "BF16" && info.dtype !== "F16") {
    throw new CheckpointError(
      `Cannot load checkpoint '${dir}': tensor '${p.name}' has dtype ${info.dtype}, expected F32, BF16 or F16`,
    );
  }
  if (info.shape.length !== p.shape.length || info.shape.some((d, i) => d !== p.shape[i])) {
    throw new CheckpointError(
      `Cannot load checkpoint '${dir}': tensor '${p.name}' has shape ${
        JSON.stringify(info.shape)
      }, expected ${JSON.stringify(p.shape)}`,
    );
  }
  let out: Float32Array;
  if (info.dtype === "F32") {
    out = new Float32Array(p.numel); // read straight into the result: no copy
    await readAt(s.file, s.header.dataStart + info.begin, new Uint8Array(out.buffer), s.path);
  } else {
    const raw = new Uint8Array(info.end - info.begin);
    await readAt(s.file, s.header.dataStart + info.begin, raw, s.path);
    out = toFloat32(info.dtype, raw);
  }
  const bad = countNonFinite(out);
  if (bad > 0) {
    throw new CheckpointError(
      `Cannot load checkpoint '${dir}': tensor '${p.name}' has ${bad} NaN/Inf values`,
    );
  }
  return out;
}

/** A stored head of a tied model must have the embedding's shape; HF ignores its values. */
async function checkTiedHead(
  dir: string,
  shards: Map<string, Shard>,
  fileOf: Map<string, string>,
  params: Tensors,
  cfg: ModelConfig,
): Promise<void> {
  if (!locate(shards, fileOf, "lm_head.weight")) return;
  const spec = {
    name: "lm_head.weight",
    shape: [cfg.vocabSize, cfg.hiddenSize],
    numel: cfg.vocabSize * cfg.hiddenSize,
  };
  const head = await readTensor(dir, shards, fileOf, spec);
  const emb = params.get("model.embed_tokens.weight")!;
  if (head.some((v, i) => v !== emb[i])) {
    log.warn(
      "Checkpoint {dir} is tied but stores an lm_head.weight that differs from the embedding; using the embedding, as transformers does",
      { dir },
    );
  }
}
