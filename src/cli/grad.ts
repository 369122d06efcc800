/**
 * `boltzmann grad`: the mean next-token loss of a checkpoint on given token rows and
 * every parameter's gradient, written as a safetensors file (HF names, float32) — the
 * debugging surface for deltas, reproducible in PyTorch (docs/CHECKPOINTS.md).
 *
 * @module
 */
import { type Command, parseCommand } from "./command.ts";
import { UsageError } from "./args.ts";
import { engineOptions } from "./engine.ts";
import { ENGINE, GRAD } from "./flags.ts";
import { modelFingerprint, resolveHparams, validateHparams } from "../hparams.ts";
import { loadCheckpoint } from "../model/checkpoint.ts";
import { paramTable } from "../model/params.ts";
import { encodeSafetensors } from "../safetensors.ts";
import { createTrainer } from "../train/trainer.ts";

/** Largest --tokens file accepted. */
const MAX_TOKENS_BYTES = 64 << 20;

/**
 * Parses `[[id, ...], ...]`: B ≥ 1 rows of the same length T ≥ 2, integer ids in [0, vocab).
 * @throws {UsageError} naming the first problem
 */
export function parseTokenRows(
  text: string,
  vocab: number,
  where: string,
): { ids: Int32Array; B: number; T: number } {
  let rows: unknown;
  try {
    rows = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`Invalid --tokens '${where}': not JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(rows) || rows.length === 0 || !rows.every(Array.isArray)) {
    throw new UsageError(
      `Invalid --tokens '${where}': expected [[id, ...], ...] with at least one row`,
    );
  }
  const B = rows.length, T = (rows[0] as unknown[]).length;
  if (T < 2) {
    throw new UsageError(
      `Invalid --tokens '${where}': rows need at least 2 ids for a next-token loss`,
    );
  }
  const ids = new Int32Array(B * T);
  (rows as unknown[][]).forEach((r, b) => {
    if (r.length !== T) {
      throw new UsageError(
        `Invalid --tokens '${where}': row ${b} has ${r.length} ids, row 0 has ${T}`,
      );
    }
    r.forEach((v, t) => {
      if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v >= vocab) {
        throw new UsageError(
          `Invalid --tokens '${where}': row ${b} position ${t} is ${
            JSON.stringify(v)
          }, expected an integer id in [0, ${vocab})`,
        );
      }
      ids[b * T + t] = v;
    });
  });
  return { ids, B, T };
}

const SURFACES = [GRAD, ENGINE];

export const command: Command = {
  about: `boltzmann grad --checkpoint DIR --tokens FILE.json --out FILE.safetensors
               [--device cpu|cuda] [--threads N] [--json]

FILE.json holds [[id, ...], ...]: B rows of T token ids. Prints the mean next-token
cross-entropy over positions 0..T-2 of every row and writes d loss / d parameter for
every parameter (Hugging Face names, float32, metadata: loss, batch, seq, fingerprint).
--json prints {loss, batch, seq, tokens, out, fingerprint}.`,
  surfaces: SURFACES,
  async run(argv) {
    const { o } = parseCommand(argv, SURFACES);
    o.need("checkpoint", "the model to differentiate");
    o.need("tokens", "the token rows [[id, ...], ...]");
    o.need("out", "where to write the gradients");
    const ckpt = o.str("checkpoint"), file = o.str("tokens"), out = o.str("out");
    const { cfg, params } = await loadCheckpoint(ckpt);
    let text: string;
    try {
      const size = (await Deno.stat(file)).size;
      if (size > MAX_TOKENS_BYTES) {
        throw new UsageError(
          `Invalid --tokens '${file}': ${size} bytes, over the limit of ${MAX_TOKENS_BYTES}`,
        );
      }
      text = await Deno.readTextFile(file);
    } catch (e) {
      if (e instanceof UsageError) throw e;
      throw new UsageError(`Cannot read --tokens '${file}': ${(e as Error).message}`);
    }
    const { ids, B, T } = parseTokenRows(text, cfg.vocabSize, file);
    const hp = {
      ...resolveHparams("tiny"),
      preset: "checkpoint",
      model: cfg,
      batchSize: B,
      seqLen: T,
    };
    try {
      validateHparams(hp);
    } catch (e) {
      throw new UsageError(`Invalid --tokens '${file}': ${(e as Error).message}`);
    }
    const trainer = await createTrainer(hp, engineOptions(o));
    let loss: number, grads;
    try {
      ({ loss, grads } = await trainer.lossAndGrad(params, [ids]));
    } finally {
      await trainer.close();
    }
    const fingerprint = modelFingerprint(cfg);
    const bytes = encodeSafetensors(
      paramTable(cfg).map((p) => ({
        name: p.name,
        dtype: "F32",
        shape: p.shape,
        data: grads.get(p.name)!,
      })),
      { kind: "grad", loss: String(loss), batch: String(B), seq: String(T), fingerprint },
    );
    const tmp = `${out}.${crypto.randomUUID().slice(0, 8)}.tmp`;
    await Deno.writeFile(tmp, bytes);
    await Deno.rename(tmp, out);
    const report = { loss, batch: B, seq: T, tokens: B * T, out, fingerprint };
    if (o.bool("json")) console.log(JSON.stringify(report));
    else {console.log(
        `loss ${loss.toFixed(6)} over ${B}×${T} tokens; wrote ${
          paramTable(cfg).length
        } gradients to ${out}`,
      );}
    return 0;
  },
};
