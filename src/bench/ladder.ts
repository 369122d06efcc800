/**
 * `bench train --ladder`: the training step at several model sizes — `tiny`, the 58 M
 * model of issue 12 (hidden 512, 8 layers, 8 heads, intermediate 1408, batch 4 × 256) and
 * the largest rung that fits this machine's memory — each run as its own process (so
 * peak RSS is its own) and, when PyTorch imports, against bench/torch_step.py with the
 * same hyper-parameters, in back-to-back pairs (ours, then torch). Prints one table of
 * medians over the pairs (`--json`: every run).
 *
 * @module
 */

import { paramCount, paramTable } from "../model/params.ts";
import { resolveHparams } from "../hparams.ts";

/** What the ladder takes. */
export interface LadderOptions {
  /** Rung names to run (default: every rung). */
  rungs?: readonly string[];
  /** Back-to-back pairs per rung (medians are reported). */
  pairs: number;
  steps: number;
  threads: number;
  device: "cpu" | "cuda";
  json: boolean;
  /** The Python that runs bench/torch_step.py (default python3). */
  python?: string;
}

/** One model size: hparams.json overrides on top of `tiny`. */
export interface Rung {
  name: string;
  overrides: Record<string, number | boolean>;
}

const shape = (
  h: number,
  layers: number,
  heads: number,
  inter: number,
  batch = 4,
  seq = 256,
): Record<string, number> => ({
  hidden_size: h,
  num_hidden_layers: layers,
  num_attention_heads: heads,
  num_key_value_heads: heads,
  intermediate_size: inter,
  batch_size: batch,
  sequence_length: seq,
  max_position_embeddings: Math.max(512, seq),
});

/** The fixed rungs. */
export const RUNGS: readonly Rung[] = [
  { name: "tiny", overrides: {} },
  { name: "58M", overrides: shape(512, 8, 8, 1408) },
];

/** Candidates for the top rung, largest first (batch 4 × 256 as the 58 M rung). */
export const BIG_RUNGS: readonly Rung[] = [
  { name: "1.2B (seed shape)", overrides: shape(2048, 16, 8, 8192) },
  { name: "374M", overrides: shape(1024, 24, 16, 2816) },
  { name: "134M", overrides: shape(768, 12, 12, 2048) },
];

/** Parameters of a rung. */
export function rungParams(r: Rung): number {
  return paramCount(paramTable(resolveHparams("tiny", r.overrides).model));
}

/**
 * Peak memory a rung needs, in bytes, for the larger of the two sides: measured at 58 M
 * (boltzmann ≈ 40 bytes per parameter plus ≈ 0.6 GB of activations and runtime at batch
 * 4 × 256); rounded up.
 */
export function rungBytes(r: Rung): number {
  return 44 * rungParams(r) + 1e9;
}

/** MemAvailable in bytes (Linux), else the total the runtime reports. */
export function availableMemory(): number {
  try {
    const m = /MemAvailable:\s+(\d+) kB/.exec(Deno.readTextFileSync("/proc/meminfo"));
    if (m) return Number(m[1]) * 1024;
  } catch { /* not Linux */ }
  return Deno.systemMemoryInfo().available;
}

/** The largest candidate needing at most `fraction` of `avail` bytes, if any. */
export function largestFitting(avail: number, fraction = 0.6): Rung | undefined {
  return BIG_RUNGS.find((r) => rungBytes(r) <= fraction * avail);
}

/** How to start this program again (`deno run … main.ts` from a checkout, or the binary). */
function selfCommand(args: string[]): string[] {
  const exe = Deno.execPath();
  if (!/(^|\/)deno(\.exe)?$/.test(exe)) return [exe, ...args];
  const config = new URL("../../deno.json", import.meta.url);
  const cfg = config.protocol === "file:" ? ["--config", config.pathname] : [];
  return [exe, "run", "-A", "--frozen", ...cfg, Deno.mainModule, ...args];
}

function torchScript(): string | undefined {
  const u = new URL("../../bench/torch_step.py", import.meta.url);
  if (u.protocol !== "file:") return undefined;
  try {
    Deno.statSync(u.pathname);
    return u.pathname;
  } catch {
    return undefined;
  }
}

async function runJson(cmd: string[]): Promise<Record<string, unknown>> {
  const out = await new Deno.Command(cmd[0]!, {
    args: cmd.slice(1),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  const last = text.split("\n").filter((l) => l.startsWith("{")).pop();
  if (!out.success || !last) {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-3).join(" | ");
    throw new Error(`'${cmd.slice(0, 4).join(" ")} …' failed (exit ${out.code}): ${err}`);
  }
  return JSON.parse(last);
}

async function torchImports(python: string): Promise<string | undefined> {
  try {
    const out = await new Deno.Command(python, {
      args: ["-c", "import torch; print(torch.__version__)"],
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : undefined;
  } catch {
    return undefined;
  }
}

const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const num = (o: Record<string, unknown> | undefined, k: string) =>
  o && typeof o[k] === "number" ? (o[k] as number) : NaN;

/** Runs the ladder and prints its table; returns the exit code. */
export async function runLadder(o: LadderOptions): Promise<number> {
  const avail = availableMemory();
  const big = largestFitting(avail);
  const all = [...RUNGS, ...(big ? [{ ...big, name: `${big.name} (largest that fits)` }] : [])];
  const rungs = o.rungs?.length
    ? all.filter((r) => o.rungs!.some((n) => r.name.toLowerCase().includes(n.toLowerCase())))
    : all;
  const python = o.python ?? "python3";
  const script = torchScript();
  const torch = script ? await torchImports(python) : undefined;
  const note = (s: string) => o.json || console.error(s);
  note(
    `ladder: ${rungs.map((r) => r.name).join(", ")}; ${o.pairs} pair(s) each; ` +
      `memory available ${(avail / 1e9).toFixed(1)} GB` +
      (big
        ? `; largest rung that fits: ${big.name} (needs ≈${(rungBytes(big) / 1e9).toFixed(1)} GB)`
        : "") +
      `; PyTorch: ${torch ? `${torch} (${script})` : "not importable, boltzmann only"}`,
  );
  const dir = await Deno.makeTempDir({ prefix: "boltzmann-ladder-" });
  const results: {
    rung: string;
    parameters: number;
    runs: { ours: Record<string, unknown>; torch?: Record<string, unknown> }[];
  }[] = [];
  try {
    for (const r of rungs) {
      const file = `${dir}/${r.name.replace(/[^\w.]+/g, "_")}.json`;
      await Deno.writeTextFile(file, JSON.stringify(r.overrides));
      const common = [
        "--hparams",
        file,
        "--steps",
        String(o.steps),
        "--threads",
        String(o.threads),
      ];
      const runs: (typeof results)[number]["runs"] = [];
      for (let p = 0; p < o.pairs; p++) {
        const ours = await runJson(
          selfCommand(["bench", "train", ...common, "--device", o.device, "--json"]),
        );
        let t: Record<string, unknown> | undefined;
        if (torch && script) {
          t = await runJson([python, script, ...common, "--device", o.device, "--json"]);
        }
        runs.push({ ours, torch: t });
        note(
          `  ${r.name} pair ${p + 1}: boltzmann ${ours.tokens_per_s} tok/s` +
            (t ? `, PyTorch ${t.tokens_per_s} tok/s` : ""),
        );
      }
      results.push({ rung: r.name, parameters: rungParams(r), runs });
    }
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  const rows = results.map(({ rung, parameters, runs }) => {
    const ours = (k: string) => med(runs.map((x) => num(x.ours, k)));
    const th = (k: string) => med(runs.map((x) => num(x.torch, k)));
    const ratios = runs.map((x) => num(x.ours, "tokens_per_s") / num(x.torch, "tokens_per_s"));
    return {
      rung,
      parameters,
      batch: runs[0]!.ours.batch,
      pairs: runs.length,
      boltzmann_tokens_per_s: ours("tokens_per_s"),
      torch_tokens_per_s: torch ? th("tokens_per_s") : null,
      ratio: torch ? +med(ratios).toFixed(2) : null,
      ratio_range: torch
        ? [Math.min(...ratios), Math.max(...ratios)].map((x) => +x.toFixed(2))
        : null,
      loss_and_grad_ms: [ours("loss_and_grad_ms"), torch ? th("loss_and_grad_ms") : null],
      optimizer_ms: [ours("optimizer_ms"), torch ? th("optimizer_ms") : null],
      optimizer_vs_copy: ours("optimizer_vs_copy"),
      peak_rss_mb: [ours("peak_rss_mb"), torch ? th("peak_rss_mb") : null],
      runs,
    };
  });
  if (o.json) {
    console.log(JSON.stringify({ torch: torch ?? null, available_bytes: avail, rungs: rows }));
    return 0;
  }
  const f = (
    x: number | null,
  ) => (x === null || Number.isNaN(x) ? "—" : Math.round(x).toLocaleString("en"));
  const gb = (x: number | null) => (x === null || Number.isNaN(x) ? "—" : (x / 1024).toFixed(2));
  console.log(
    `| model | boltzmann tokens/s | PyTorch ${
      torch ?? "—"
    } tokens/s | ratio (range) | loss+grad ms (ours / torch) | optimizer ms (ours / torch; ours × copy bw) | peak RSS GB (ours / torch) |\n` +
      "| --- | --- | --- | --- | --- | --- | --- |",
  );
  for (const r of rows) {
    const b = r.batch as number[];
    console.log(
      `| ${r.rung}, ${(r.parameters / 1e6).toFixed(1)} M, batch ${b.join(" × ")} | ${
        f(r.boltzmann_tokens_per_s)
      } | ${f(r.torch_tokens_per_s)} | ${r.ratio ?? "—"}${
        r.ratio_range ? ` (${r.ratio_range.join("–")})` : ""
      } | ${f(r.loss_and_grad_ms[0]!)} / ${f(r.loss_and_grad_ms[1]!)} | ${
        f(r.optimizer_ms[0]!)
      } / ${f(r.optimizer_ms[1]!)}; ${r.optimizer_vs_copy}× | ${gb(r.peak_rss_mb[0]!)} / ${
        gb(r.peak_rss_mb[1]!)
      } |`,
    );
  }
  console.log(`(${o.pairs} pair(s) per rung, medians; ${o.threads} threads, device ${o.device})`);
  return 0;
}

/** Preset names for help texts. */
export const LADDER_RUNG_NAMES = [...RUNGS, ...BIG_RUNGS].map((r) => r.name);
