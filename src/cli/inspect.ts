/**
 * `boltzmann inspect`: debugging views.
 * - `--slice FILE`: validates one slice file exactly as a validator would (size cap from
 *   the parameter table, header, tensors, metadata, payload hash, signature, finite
 *   values) and summarises it; an invalid file exits 1 with the reason in one line.
 * - `--window N` (without `--slice`): everything about one window, from the chain and
 *   the peers' buckets (src/roles/inspect.ts does the work; this file only wires flags).
 *
 * @module
 */
import { type Command, parseCommand } from "./command.ts";
import { type Options, UsageError } from "./args.ts";
import { hparamsFromFlags, hparamsOf, loadEnv } from "./config.ts";
import { type Hparams, modelFingerprint, PRESETS } from "../hparams.ts";
import { paramTable } from "../model/params.ts";
import { CONFIG_FILE, hfToConfig } from "../model/checkpoint.ts";
import { parseSafetensorsHeader } from "../safetensors.ts";
import { type DecodedSlice, decodeSlice, sliceByteCap, SliceRejected } from "../slices/validate.ts";
import { sliceStats, type TensorStats } from "../slices/summary.ts";
import { parseKey } from "../roles/keys.ts";
import { sliceSize } from "../window.ts";
import { engineOptions } from "./engine.ts";
import { datasetFromFlags } from "./dataset.ts";
import { formatRefused } from "./commitments.ts";
import { connectFromFlags } from "./connect.ts";
import { CHAIN, DATASET, ENGINE, HPARAMS, INSPECT, STORAGE, WALLET } from "./flags.ts";
import { createTrainer, type Trainer } from "../train/trainer.ts";
import type { Tensors } from "../model/params.ts";
import type { Dataset } from "../data/pages.ts";
import { loadCheckpoint } from "../model/checkpoint.ts";
import { initParams } from "../model/init.ts";
import { listPeers } from "../roles/exchange.ts";
import { loadLatestCheckpoint } from "../roles/checkpoints.ts";
import { formatInspection, inspectWindow } from "../roles/inspect.ts";
import { heatMap } from "../report/svg.ts";

const SURFACES = [INSPECT, WALLET, CHAIN, STORAGE, HPARAMS, ENGINE, DATASET];

const ABOUT = `boltzmann inspect: everything about one window, or one slice file

Usage:
  boltzmann inspect --slice FILE [--preset P | --hparams F | --checkpoint DIR]
                    [--window W] [--kind state|delta] [--hotkey SS58] [--json]
  boltzmann inspect --window N --netuid U [--subtensor.network N | --subtensor.chain_endpoint URL]
                    [--preset P | --hparams F] [--checkpoint DIR] [--no-grad] [--plot FILE.svg] [--json]

--window N lists who published what in window N (kind, bytes, dtype, norm, NaN/Inf,
reported loss/tokens/batches, upload time), rejections with reasons, pairwise cosines
between the deltas, each delta against a gradient freshly computed on its pages (at
--checkpoint DIR, else the lead validator's newest checkpoint, else the initial model;
--no-grad skips it), and the validators' scores; --plot writes the cosines as an SVG.

--slice validates FILE exactly as a validator would and prints its metadata and, per
tensor, count, L2 norm, min, max and NaN/Inf counts. An invalid file exits 1 with the
rejection reason in one line.
The model comes from --preset/--hparams, or --checkpoint DIR (its config.json; the
compression from --preset, default tiny); with none of them, the preset whose
fingerprint the slice names. The expected window, kind and uploader hotkey come from
the file name when it is an object key ({kind}-{window}-{hotkey}.safetensors), or from
--window/--kind/--hotkey (flags win).`;

/** What `inspect --slice` reports (also its `--json` output). */
export interface SliceReport {
  file: string;
  bytes: number;
  valid: boolean;
  reason?: string;
  detail?: string;
  preset?: string;
  fingerprint?: string;
  checked?: { window?: number; kind?: string; hotkey?: string };
  dtype?: string;
  meta?: DecodedSlice["meta"];
  payloadSha256?: string;
  tensors?: ({ name: string } & TensorStats)[];
  total?: TensorStats;
}

/** Largest config.json read from a checkpoint directory. */
const MAX_CONFIG_BYTES = 1 << 20;
/** How much of a file is read to find its fingerprint before the table is known. */
const PEEK_BYTES = 1 << 20;

async function readUpTo(path: string, max: number): Promise<Uint8Array> {
  const f = await Deno.open(path, { read: true });
  try {
    const buf = new Uint8Array(max);
    let n = 0;
    while (n < max) {
      const r = await f.read(buf.subarray(n));
      if (r === null) break;
      n += r;
    }
    return buf.subarray(0, n);
  } finally {
    f.close();
  }
}

/** The model of the slice: --checkpoint, --preset/--hparams, or the matching preset. */
async function modelFor(path: string, size: number, o: Options): Promise<Hparams> {
  const ckpt = o.strOpt("checkpoint");
  if (ckpt) {
    // The model from the checkpoint; compression and the rest from --preset (default tiny).
    const hp = await hparamsFromFlags(o);
    const cfgPath = `${ckpt.replace(/\/+$/, "")}/${CONFIG_FILE}`;
    let json: unknown;
    try {
      const text = new TextDecoder().decode(await readUpTo(cfgPath, MAX_CONFIG_BYTES));
      json = JSON.parse(text);
    } catch (e) {
      throw new UsageError(`Cannot read --checkpoint '${cfgPath}': ${(e as Error).message}`);
    }
    return { ...hp, model: hfToConfig(json, cfgPath) };
  }
  if (o.strOpt("preset") !== undefined || o.strOpt("hparams") !== undefined) {
    return await hparamsFromFlags(o);
  }
  // No model named: take the preset whose fingerprint the slice claims, if any.
  try {
    const head = await readUpTo(path, Math.min(size, PEEK_BYTES));
    const fp = parseSafetensorsHeader(head, size).metadata.fingerprint;
    for (const name of Object.keys(PRESETS)) {
      const hp = PRESETS[name]!;
      if (modelFingerprint(hp.model) === fp) return await hparamsOf(name, undefined);
    }
  } catch {
    // Unreadable header: validation below reports it with its reason.
  }
  return await hparamsFromFlags(o);
}

/**
 * Validates the slice at `path` as a validator would and summarises it.
 * @throws {UsageError} on flags or an unreadable file; a bad slice is a report with
 *   `valid: false`, never an exception
 */
export async function inspectSlice(path: string, o: Options): Promise<SliceReport> {
  let size: number;
  try {
    const st = await Deno.stat(path);
    if (!st.isFile) throw new Error("not a file");
    size = st.size;
  } catch (e) {
    throw new UsageError(`Cannot read --slice '${path}': ${(e as Error).message}`);
  }
  const hp = await modelFor(path, size, o);
  const table = paramTable(hp.model);
  // Validation looks only at each tensor's index count, never the index values, so a
  // slice can be checked without the window's seed block hash.
  const indices = new Map(
    table.map((p) => [p.name, new Uint32Array(sliceSize(p.numel, hp.compression))]),
  );
  const parsed = parseKey(path.split("/").pop() ?? "");
  const fromName = parsed?.kind === "state" || parsed?.kind === "delta" ? parsed : null;
  const kind = o.strOpt("kind") ?? fromName?.kind;
  const checked = {
    window: o.numOpt("window") ?? fromName?.window,
    kind: kind as "state" | "delta" | undefined,
    hotkey: o.strOpt("hotkey") ?? fromName?.hotkey,
  };
  const fingerprint = modelFingerprint(hp.model);
  const report: SliceReport = {
    file: path,
    bytes: size,
    valid: false,
    preset: hp.preset,
    fingerprint,
    checked,
  };
  const cap = sliceByteCap(table, indices);
  // As a download would, stop at the cap instead of reading the rest.
  const bytes = await readUpTo(path, Math.min(size, cap + 1));
  try {
    const d = decodeSlice(bytes, { table, indices, fingerprint, ...checked });
    const stats = sliceStats(d.slice);
    return {
      ...report,
      valid: true,
      dtype: d.dtype,
      meta: d.meta,
      payloadSha256: d.payloadSha256,
      tensors: [...stats.tensors].map(([name, s]) => ({ name, ...s })),
      total: stats.total,
    };
  } catch (e) {
    if (!(e instanceof SliceRejected)) throw e;
    return { ...report, reason: e.reason, detail: e.detail };
  }
}

function fmtNum(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  return Math.abs(x) >= 1e4 || (x !== 0 && Math.abs(x) < 1e-3) ? x.toExponential(3) : x.toFixed(4);
}

/** The human-readable form of a valid report. */
export function formatSliceReport(r: SliceReport): string {
  const m = r.meta!;
  const c = r.checked ?? {};
  const lines = [
    `slice ${r.file}: valid (${r.bytes} bytes, ${r.dtype}, ${r.tensors!.length} tensors, ` +
    `${r.total!.count} values; preset ${r.preset}, fingerprint ${r.fingerprint})`,
    `  kind ${m.kind}  window ${m.window}  hotkey ${m.hotkey}  version ${m.version}`,
    `  loss ${m.loss ?? "-"}  tokens ${m.tokens ?? "-"}  batches ${m.batches ?? "-"}  ` +
    `payload sha256 ${r.payloadSha256}`,
    `  checked: window ${c.window ?? "not checked"}, kind ${c.kind ?? "not checked"}, ` +
    `uploader ${
      c.hotkey ?? "not checked"
    } (name the file {kind}-{window}-{hotkey}.safetensors or pass --window/--kind/--hotkey)`,
    "",
  ];
  const w = Math.max(6, ...r.tensors!.map((t) => t.name.length));
  const row = (name: string, s: TensorStats) =>
    `${name.padEnd(w)}  ${String(s.count).padStart(10)}  ${fmtNum(s.norm).padStart(11)}  ` +
    `${fmtNum(s.min).padStart(11)}  ${fmtNum(s.max).padStart(11)}  ${String(s.nan).padStart(5)}  ` +
    `${String(s.inf).padStart(5)}`;
  lines.push(
    `${"tensor".padEnd(w)}  ${"count".padStart(10)}  ${"norm".padStart(11)}  ${
      "min".padStart(11)
    }  ` +
      `${"max".padStart(11)}  ${"nan".padStart(5)}  ${"inf".padStart(5)}`,
  );
  for (const t of r.tensors!) lines.push(row(t.name, t));
  lines.push(row("total", r.total!));
  return lines.join("\n");
}

/** `inspect --window N`: everything about one window (src/roles/inspect.ts). */
async function inspectWindowCmd(window: number, o: Options): Promise<number> {
  const hp = await hparamsFromFlags(o);
  const env = loadEnv();
  // Peers' buckets are opened from their commitments alone, as a validator opens them.
  const { chain, netuid, openStore, refused } = await connectFromFlags(
    o,
    "the subnet to inspect",
  );
  let trainer: Trainer | undefined;
  try {
    let params: Tensors | undefined;
    let dataset: Dataset | undefined;
    if (!o.bool("no-grad")) {
      const ckpt = o.strOpt("checkpoint");
      params = ckpt ? (await loadCheckpoint(ckpt)).params : (await loadLatestCheckpoint(
        hp,
        await listPeers(chain, netuid),
        openStore,
        window, // θ at N when the lead checkpointed N, else its newest before
      ).catch(() => null))?.params ?? initParams(hp.model, 0);
      dataset = await datasetFromFlags(o, hp, env);
      trainer = await createTrainer(hp, engineOptions(o, env));
    }
    const r = await inspectWindow(
      { hp, chain, netuid, openStore, dataset, trainer, params },
      window,
    );
    const plot = o.strOpt("plot");
    if (plot) {
      const labels = r.pairwise.uids.map(String);
      const svg = heatMap({
        title: `Window ${window}: cosine between updates`,
        labels,
        values: r.pairwise.cos,
      });
      await Deno.writeTextFile(`${plot}.tmp`, svg);
      await Deno.rename(`${plot}.tmp`, plot);
    }
    const refusedNow = refused();
    if (o.bool("json")) {
      console.log(JSON.stringify({ ...r, commitmentsRefused: refusedNow }));
    } else {
      console.log(formatInspection(r));
      console.log(formatRefused(refusedNow));
    }
    return 0;
  } finally {
    await trainer?.close();
    await chain.close();
  }
}

export const command: Command = {
  about: ABOUT,
  surfaces: SURFACES,
  async run(argv) {
    const { o } = parseCommand(argv, SURFACES);
    const path = o.strOpt("slice");
    if (path === undefined) {
      const w = o.numOpt("window");
      if (w !== undefined) return await inspectWindowCmd(w, o);
      throw new UsageError("Nothing to inspect: pass --slice FILE or --window N");
    }
    const r = await inspectSlice(path, o);
    if (o.bool("json")) {
      console.log(JSON.stringify(r));
    } else if (r.valid) {
      console.log(formatSliceReport(r));
    }
    if (!r.valid) {
      console.error(`boltzmann inspect: ${path}: slice rejected (${r.reason}): ${r.detail}`);
      return 1;
    }
    return 0;
  },
};
