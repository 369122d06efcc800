/**
 * `boltzmann devnet`: the whole system on one machine — a local subtensor chain, a
 * directory bucket per participant, one validator, honest miners and one miner of each
 * adversary kind, each a separate process of this program. See src/roles/devnet.ts.
 */
import { setPriority } from "node:os";
import { type Command, parseCommand } from "./command.ts";
import { hparamsFromFlags } from "./config.ts";
import { toOverrides } from "../hparams.ts";
import { engineOptions } from "./engine.ts";
import { DEVNET, ENGINE, HPARAMS } from "./flags.ts";
import { type Child, type DevnetChain, type DevnetDeps, runDevnet } from "../roles/devnet.ts";
import type { Hparams } from "../hparams.ts";
import type { TrainerOptions } from "../train/trainer.ts";
import { ADVERSARIES, type Adversary } from "../roles/adversary.ts";
import { startLocalnet } from "../chain/localnet.ts";
import { createWallet } from "../chain/wallet.ts";
import { embeddedDataset } from "../data/mod.ts";
import { createTrainer } from "../train/trainer.ts";
import { initParams } from "../model/init.ts";
import { type RunSetup, runSingle } from "../bench/converge_runs.ts";
import { stopOnSignals } from "./stop_signals.ts";

const MAIN = new URL("../../main.ts", import.meta.url);
const CONFIG = new URL("../../deno.json", import.meta.url);

const SURFACES = [DEVNET, HPARAMS, ENGINE];

export const command: Command = {
  about: `boltzmann devnet [--miners 4] [--windows 30] [--preset tiny] [--out ./devnet-report]

Starts a local subtensor chain (embedded genesis), a directory bucket per participant,
one validator, N honest miners and one miner of each adversary kind
(${ADVERSARIES.join(", ")}), each a separate process with its own hotkey.
Prints a line per window (held-out loss of the shared model, scores) and writes
report.json, report.txt, loss.svg and weights.svg to --out. The participants log
JSON lines unless --log-format is given.`,
  surfaces: SURFACES,
  async run(argv) {
    const { o } = parseCommand(argv, SURFACES);
    const hp = await hparamsFromFlags(o);
    const honest = o.num("miners");
    const windows = o.num("windows");
    const maxBatches = o.num("max-batches");
    const port = o.num("port");
    const out = o.str("out");
    const json = o.bool("json");
    const blockMs = o.numOpt("block-ms") ?? await machineBlockMs(hp, engineOptions(o), json);
    const advFlag = o.strOpt("adversaries");
    // The schema's check has refused unknown names already.
    const adversaries = advFlag === undefined
      ? ADVERSARIES
      : advFlag === "none"
      ? []
      : advFlag.split(",") as Adversary[];
    const outAbs = await prepareOut(out);
    // SIGINT / SIGTERM stop every participant process and the chain before exiting.
    const stop = stopOnSignals();
    try {
      const report = await runDevnet(
        await devnetDeps({
          hp,
          outAbs,
          blockMs,
          port,
          maxBatches,
          commitReveal: o.bool("commit-reveal"),
          logFormat: o.given.has("log-format") ? o.str("log-format") : "json",
          engine: engineOptions(o),
        }),
        {
          honest,
          windows,
          out: outAbs,
          adversaries,
          skipBaseline: o.bool("no-baseline"),
          print: json ? () => {} : (s) => console.log(s),
          signal: stop.signal,
          // Time for the windows at this block time, twice over, and the start.
          timeoutMs: Math.max(30 * 60_000, 2 * (windows + 6) * hp.windowLength * blockMs),
        },
      );
      if (json) console.log(JSON.stringify(report));
      return 0;
    } catch (e) {
      if (!stop.signal.aborted) throw e;
      console.error(
        `devnet: stopped by ${stop.signal.reason}; every participant and the chain are down`,
      );
      return stop.signal.reason === "SIGINT" ? 130 : 143;
    } finally {
      stop.dispose();
    }
  },
};

/**
 * The block time `devnet` sizes to a machine whose one gradient (one micro-batch, one
 * thread: what each participant computes) takes `gradientMs`: ten gradients a block, at
 * least 5 s, at most 30 s. Every participant's window costs a few gradients' CPU, and
 * the validator's one per miner: where a gradient took 0.4 s, 5 s blocks left the two
 * cores room; where it took 1.25–1.5 s they starved honest uploads past their deadlines
 * (docs/PERFORMANCE.md, the codec frontier's fifth round).
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(devnetBlockMs(400), 5000);
 * assert.equal(devnetBlockMs(1250), 13_000);
 * ```
 */
export function devnetBlockMs(gradientMs: number): number {
  return Math.min(30_000, Math.max(5000, Math.ceil((10 * gradientMs) / 1000) * 1000));
}

/** Measures one gradient here (after a warm-up) and returns {@link devnetBlockMs} of it. */
async function machineBlockMs(hp: Hparams, engine: TrainerOptions, quiet: boolean) {
  const trainer = await createTrainer(hp, { ...engine, threads: 1 });
  try {
    const params = initParams(hp.model, 0);
    const batch = (await (await embeddedDataset(hp)).evalBatches(1)).slice(0, 1);
    await trainer.lossAndGrad(params, batch);
    const t0 = performance.now();
    await trainer.lossAndGrad(params, batch);
    const ms = performance.now() - t0, blockMs = devnetBlockMs(ms);
    if (!quiet) {
      console.log(
        `devnet: one gradient takes ${Math.round(ms)} ms here: ${blockMs / 1000} s blocks ` +
          `(--block-ms sets another)`,
      );
    }
    return blockMs;
  } finally {
    await trainer.close();
  }
}

/** Creates (or empties) the devnet folder; returns its absolute path. */
export async function prepareOut(out: string): Promise<string> {
  await Deno.mkdir(out, { recursive: true });
  const outAbs = await Deno.realPath(out);
  // A devnet starts afresh: new keys, empty buckets, new logs and saved states.
  for (const d of ["wallets", "stores", "logs", "state"]) {
    await Deno.remove(`${outAbs}/${d}`, { recursive: true }).catch(() => {});
  }
  return outAbs;
}

/** Settings of {@link devnetDeps}. */
export interface DevnetSettings {
  hp: Hparams;
  outAbs: string;
  blockMs: number;
  port: number;
  /** Commit-reveal weights on the local subnet (`--commit-reveal`). */
  commitReveal?: boolean;
  maxBatches: number;
  logFormat: string;
  engine: TrainerOptions;
}

/**
 * Niceness of the participant processes (the chain in this process keeps 0). The
 * validator comes before the miners (a nice-8 process weighs a sixth of a nice-0 one):
 * its manifest is every participant's next step, and it must score every upload within
 * the window, while the miners' work fits in what is left.
 */
const NICE = { validator: 0, miner: 8 };

/**
 * The real devnet dependencies: dev wallets under `outAbs/wallets`, the in-process local
 * chain, participants as child processes of this program, the baselines (one miner alone,
 * data-parallel) in process with `bench converge`'s code.
 */
export async function devnetDeps(o: DevnetSettings): Promise<DevnetDeps> {
  const { hp, outAbs, blockMs, port, maxBatches, logFormat } = o;
  const walletPath = `${outAbs}/wallets`;
  const hpFile = `${outAbs}/hparams.json`;
  await Deno.writeTextFile(hpFile, JSON.stringify(toOverrides(hp)));
  return {
    createHotkey: async (name) =>
      (await createWallet({ walletPath, name: "devnet", hotkey: name })).hotkey,
    startChain: async (hotkeys) => {
      const net = await startLocalnet({
        port,
        blockTimeMs: blockMs,
        hotkeys,
        validator: hotkeys[0],
        commitReveal: o.commitReveal,
      });
      const c: DevnetChain = {
        endpoint: net.endpoint,
        netuid: net.netuid,
        uids: () => net.uids(),
        head: () => net.head(),
        weights: () => net.weights(),
        restart: (downMs) => net.restart({ downMs }),
        stop: () => net.stop(),
      };
      return c;
    },
    spawn: (p, chain): Child => {
      const args = [
        "run",
        "-A",
        "--quiet",
        "--config",
        CONFIG.pathname,
        MAIN.pathname,
        p.role === "validator" ? "validator" : "miner",
        "--subtensor.chain_endpoint",
        chain.endpoint,
        "--netuid",
        String(chain.netuid),
        "--wallet.path",
        walletPath,
        "--wallet.name",
        "devnet",
        "--wallet.hotkey",
        p.name,
        "--bucket",
        `file://${p.bucketDir}`,
        "--hparams",
        hpFile,
        "--threads",
        "1",
        "--log-format",
        logFormat,
        ...(p.role === "validator"
          ? ["--eval-batches", "1"]
          : ["--max-batches", String(maxBatches)]),
        ...(p.role !== "validator" && p.role !== "honest" ? ["--adversary", p.role] : []),
      ];
      const logFile = Deno.openSync(`${outAbs}/logs/${p.name}.log`, {
        create: true,
        write: true,
        truncate: true,
      });
      const proc = new Deno.Command(Deno.execPath(), {
        args,
        stdout: "null",
        stderr: "piped",
        stdin: "null",
      }).spawn();
      // The chain runs in this process and paces everyone: on a busy machine the
      // participants yield to it (a starved chain stops answering, and every
      // participant's window goes with it), so load slows them, not the block clock.
      try {
        setPriority(proc.pid, p.role === "validator" ? NICE.validator : NICE.miner);
      } catch { /* not permitted here: run at the same priority */ }
      // Copy the child's log as it comes (a pipe into the file's stream buffers until exit),
      // and tell when it has connected to the chain.
      let connected = () => {};
      const ready = new Promise<void>((r) => connected = r);
      const done = (async () => {
        const text = new TextDecoder();
        try {
          for await (const chunk of proc.stderr) {
            for (let off = 0; off < chunk.length;) off += logFile.writeSync(chunk.subarray(off));
            if (text.decode(chunk, { stream: true }).includes("Connected to")) connected();
          }
        } catch { /* the child is gone */ }
        logFile.close();
        connected();
      })();
      return {
        name: p.name,
        ready,
        kill: (signal = "SIGTERM") => {
          try {
            proc.kill(signal);
          } catch { /* already gone */ }
        },
        exited: proc.status.then(async (s) => {
          await done;
          return s.signal ? 0 : s.code;
        }),
      };
    },
    baselines: async (b) => {
      // `bench converge`'s own runs, on the devnet's windows and honest uids' pages.
      const dataset = await embeddedDataset(hp);
      const trainer = await createTrainer(hp, o.engine);
      try {
        const setup = (uids: readonly number[]): RunSetup => ({
          hp,
          trainer,
          dataset: {
            ...dataset,
            batchesFor: (w: number, m: number) => dataset.batchesFor(b.firstWindow + w, uids[m]!),
          },
          miners: uids.length,
          windows: b.windows,
          batches: b.batchesPerWindow,
          evalBatches: [],
          evalEvery: 1,
          seed: 0,
          signer: { address: "", sign: () => new Uint8Array(64) }, // unused by runSingle
          tick: () => {},
        });
        const evalBatches = await dataset.evalBatches(2);
        const run = async (uids: readonly number[]) => {
          const s = { ...setup(uids), evalBatches };
          const r = await runSingle(s, uids.map((_, m) => m));
          // The curve's x is the bench's window index (−1: before the first).
          return {
            heldoutLoss: r.heldout_loss,
            curve: r.curve.map(([w, l]) => [b.firstWindow + w + 1, l] as [number, number]),
          };
        };
        return { alone: await run(b.uids.slice(0, 1)), dataParallel: await run(b.uids) };
      } finally {
        await trainer.close();
      }
    },
  };
}
