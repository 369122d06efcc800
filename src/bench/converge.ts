/**
 * `bench converge`: does the shared model learn like data-parallel training on a fraction
 * of its traffic? For the same pages, seed and trainer it prints the held-out loss after
 * `--windows` windows and the upload bytes per miner per window of: one miner alone,
 * full-precision data-parallel (the upper bound), the seed protocol (slices at the
 * preset's `compression`), and protocol v2 with each `--codec` setting; each v2 line also
 * shows its share of the data-parallel gain over one miner alone and its compression
 * against a dense float32 update. The runs are in converge_runs.ts.
 *
 * A codec setting is a codec spec (src/protocol/codec.ts) with optional `+pc`
 * (preconditioned updates, see src/protocol/outer.ts) and `+lr=X` (outer learning rate).
 */
import type { Bench } from "./mod.ts";
import { UsageError } from "../cli/args.ts";
import type { Hparams } from "../hparams.ts";
import { openDataset } from "../data/mod.ts";
import { createTrainer } from "../train/trainer.ts";
import { DEFAULT_CODEC, parseCodec } from "../protocol/codec.ts";
import { lineChart } from "../report/svg.ts";
import {
  type ProtocolSetting,
  runProtocol,
  type RunResult,
  runSeedProtocol,
  runSingle,
} from "./converge_runs.ts";

const RUNS = ["alone", "data_parallel", "seed_protocol", "protocol"] as const;

/** Parses one `--codec` entry: SPEC[+pc][+lr=X]. */
export function parseSetting(text: string): ProtocolSetting {
  const [codec, ...opts] = text.split("+");
  let spec;
  try {
    spec = parseCodec(codec!);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const s: ProtocolSetting = { label: text, spec, precondition: false };
  for (const o of opts) {
    if (o === "pc") s.precondition = true;
    else if (/^lr=\d+(\.\d+)?(e-?\d+)?$/.test(o) && +o.slice(3) > 0) s.learningRate = +o.slice(3);
    else throw new UsageError(`Invalid codec option '+${o}' in '${text}': use +pc or +lr=NUMBER`);
  }
  return s;
}

/** Curve points as [windows trained, loss] with the loss to 4 decimals. */
function rounded(curve: [number, number][]): [number, number][] {
  return curve.map(([w, l]) => [w + 1, +l.toFixed(4)]);
}

function fmtBytes(b: number): string {
  return b >= 1e6 ? `${(b / 1e6).toFixed(2)} MB` : `${(b / 1e3).toFixed(1)} kB`;
}

/** What `bench converge` takes (the CLI parses it from flags). */
export interface ConvergeOptions {
  hp: Hparams;
  miners: number;
  windows: number;
  batches: number;
  evalBatches: number;
  /** Held-out loss every this many windows (default about a tenth of the run). */
  evalEvery?: number;
  /** Comma-separated codec settings (default {@link DEFAULT_CODEC}). */
  codec?: string;
  /** Comma-separated runs (default all four). */
  runs?: string;
  seed: number;
  threads: number;
  device: "cpu" | "cuda";
  plot?: string;
  json: boolean;
}

/** The runs `--runs` accepts. */
export const CONVERGE_RUNS = RUNS;

export const bench: Bench<ConvergeOptions> = {
  summary: "shared-model learning vs one miner alone and data-parallel, bytes per window",
  async run(o) {
    const { hp, miners, windows, batches, seed, threads, device, plot } = o;
    const evalN = o.evalBatches;
    const evalEvery = Math.min(windows, o.evalEvery ?? Math.max(1, Math.round(windows / 10)));
    const settings = (o.codec ?? DEFAULT_CODEC).split(",").filter((x) => x).map(parseSetting);
    const runs = (o.runs ?? RUNS.join(",")).split(",");
    for (const r of runs) {
      if (!(RUNS as readonly string[]).includes(r)) {
        throw new UsageError(`Unknown run '${r}' in --runs: use ${RUNS.join(",")}`);
      }
    }

    const dataset = await openDataset(hp, "embedded");
    const evalBatches = await dataset.evalBatches(evalN);
    if (evalBatches.length < evalN) {
      throw new UsageError(
        `The dataset has ${evalBatches.length} held-out batches, fewer than --eval-batches`,
      );
    }
    const trainer = await createTrainer(hp, { threads, device });
    const { Keyring } = await import("@polkadot/keyring");
    const { cryptoWaitReady } = await import("@polkadot/util-crypto");
    await cryptoWaitReady();
    const kp = new Keyring({ type: "sr25519", ss58Format: 42 }).addFromUri("//Alice");
    const signer = { address: kp.address, sign: (m: Uint8Array) => kp.sign(m) };

    // Progress: micro-batches trained over all runs, rate and ETA on stderr.
    const per = (r: string) =>
      r === "alone" ? 1 : r === "protocol" ? miners * settings.length : miners;
    const total = runs.reduce((a, r) => a + per(r) * windows * batches, 0);
    let done = 0, lastPrint = 0;
    const t0 = performance.now();
    const enc = new TextEncoder();
    const tick = (n: number) => {
      done += n;
      const now = performance.now();
      if (now - lastPrint < 2000 && done < total) return;
      lastPrint = now;
      const rate = done / ((now - t0) / 1000);
      const eta = (total - done) / rate;
      Deno.stderr.writeSync(enc.encode(
        `\rconverge: ${done}/${total} batches  ${rate.toFixed(2)} batches/s  ETA ${
          Math.round(eta)
        } s   ${done >= total ? "\n" : ""}`,
      ));
    };
    const onEval = (run: string, w: number, loss: number) => {
      lastPrint = 0;
      Deno.stderr.writeSync(
        enc.encode(`\rconverge: ${run} after ${w} windows: held-out loss ${loss.toFixed(4)}\n`),
      );
    };
    const setup = {
      onEval,
      hp,
      trainer,
      dataset,
      miners,
      windows,
      batches,
      evalBatches,
      evalEvery,
      seed,
      signer,
      tick,
    };
    const out: Record<string, unknown> = {
      preset: hp.preset,
      miners,
      windows,
      batches,
      eval_batches: evalN,
      seed,
    };
    const results: Record<string, RunResult> = {};
    const protocol: (RunResult & { codec: string })[] = [];
    try {
      if (runs.includes("alone")) results.alone = await runSingle(setup, [0]);
      if (runs.includes("data_parallel")) {
        results.data_parallel = await runSingle(
          setup,
          Array.from({ length: miners }, (_, i) => i),
        );
      }
      if (runs.includes("seed_protocol")) results.seed_protocol = await runSeedProtocol(setup);
      if (runs.includes("protocol")) {
        for (const s of settings) protocol.push({ codec: s.label, ...await runProtocol(setup, s) });
      }
    } finally {
      await trainer.close();
    }
    const dense = results.data_parallel?.bytes_per_window ?? results.alone?.bytes_per_window;
    const alone = results.alone?.heldout_loss, dp = results.data_parallel?.heldout_loss;
    const share = (l: number) =>
      alone !== undefined && dp !== undefined && alone !== dp
        ? +((alone - l) / (alone - dp)).toFixed(3)
        : undefined;
    const lines: string[] = [
      `converge  preset=${hp.preset} miners=${miners} windows=${windows} batches=${batches} ` +
      `eval_batches=${evalN} seed=${seed}`,
    ];
    const line = (name: string, r: RunResult, extra = "") => {
      const ratio = dense ? `  ${(dense / r.bytes_per_window).toFixed(1)}x smaller` : "";
      const sh = share(r.heldout_loss);
      lines.push(
        `  ${name.padEnd(28)} held-out loss ${r.heldout_loss.toFixed(4)}  upload ${
          fmtBytes(r.bytes_per_window).padStart(9)
        }/window${ratio}${sh === undefined ? "" : `  gain ${(sh * 100).toFixed(0)} %`}${extra}`,
      );
    };
    for (const k of ["alone", "data_parallel", "seed_protocol"]) {
      const r = results[k];
      if (!r) continue;
      const { curve: _c, ...rest } = r;
      out[k] = {
        ...rest,
        heldout_loss: +r.heldout_loss.toFixed(4),
        gain_share: share(r.heldout_loss),
      };
      const extra = k === "seed_protocol"
        ? `  (validator's model; miners' own ${
          JSON.stringify(r.miners_heldout_loss)
        }, compression ${r.compression})`
        : "";
      line(k === "seed_protocol" ? "seed protocol" : k.replace("_", "-"), r, extra);
    }
    out.protocol = protocol.map((r) => ({
      ...r,
      curve: rounded(r.curve),
      heldout_loss: +r.heldout_loss.toFixed(4),
      compression_vs_f32: dense ? +(dense / r.bytes_per_window).toFixed(2) : undefined,
      gain_share: share(r.heldout_loss),
    }));
    for (const r of protocol) line(`protocol v2 ${r.codec}`, r);
    if (protocol.length > 1 && dense) {
      lines.push("  frontier (compression vs f32 → share of the data-parallel gain):");
      for (const r of [...protocol].sort((a, b) => a.bytes_per_window - b.bytes_per_window)) {
        const sh = share(r.heldout_loss);
        lines.push(
          `    ${(dense / r.bytes_per_window).toFixed(1).padStart(7)}x  ${
            sh === undefined ? "?" : (sh * 100).toFixed(0).padStart(4) + " %"
          }  ${r.codec}`,
        );
      }
    }
    if (plot) {
      const series = [
        ...Object.entries(results).map(([k, r]) => ({
          name: k,
          points: r.curve.map(([w, l]) => [w + 1, l] as [number, number]),
          dashed: k !== "seed_protocol",
        })),
        ...protocol.map((r) => ({
          name: `v2 ${r.codec}`,
          points: r.curve.map(([w, l]) => [w + 1, l] as [number, number]),
        })),
      ];
      const svg = lineChart({
        title: `bench converge: ${hp.preset}, ${miners} miners, ${batches} batches/window`,
        xLabel: "windows",
        yLabel: "held-out loss",
        series,
      });
      const tmp = `${plot}.tmp`;
      await Deno.writeTextFile(tmp, svg);
      await Deno.rename(tmp, plot);
      lines.push(`  plot: ${plot}`);
    }
    if (o.json) console.log(JSON.stringify(out));
    else console.log(lines.join("\n"));
    return 0;
  },
};
