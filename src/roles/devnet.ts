/**
 * `boltzmann devnet`: a whole local network in one command — a real subtensor chain
 * (localnet), a directory bucket per participant, one validator, honest miners and one
 * miner of each adversary kind, each a separate process of this same program with its
 * own hotkey and bucket. It prints a line per window (the shared model's held-out loss,
 * the scores) and writes a report: `report.json`, `report.txt`, `loss.svg`, `weights.svg`.
 *
 * The orchestration only: starting the chain, creating wallets and spawning processes
 * come in as functions from the CLI, so tests can drive shorter runs.
 *
 * @module
 */
import { getLogger } from "../log.ts";
import { ADVERSARIES, type Adversary } from "./adversary.ts";
import type { ValidatorWindow } from "./validator.ts";
import { lineChart } from "../report/svg.ts";

const log = getLogger(["boltzmann", "devnet"]);

/** One participant of the devnet. */
export interface Participant {
  name: string;
  role: "validator" | "honest" | Adversary;
  hotkey: string;
  bucketDir: string;
}

/** A running child process. */
export interface Child {
  name: string;
  /** Sends SIGTERM (or the given signal). */
  kill(signal?: Deno.Signal): void;
  exited: Promise<number>;
  /** Resolves once the participant is connected to the chain (optional). */
  ready?: Promise<void>;
}

/** What a fault-injection hook may do to the running network. */
export interface DevnetControl {
  participants: readonly Participant[];
  chain: DevnetChain;
  /**
   * Kills a participant with SIGKILL, runs `whileDown`, and starts it again after
   * `downMs`; resolves once it has connected to the chain again (or 20 s passed).
   */
  restartParticipant(name: string, downMs?: number, whileDown?: () => Promise<void>): Promise<void>;
}

/** The local chain as devnet sees it. */
export interface DevnetChain {
  endpoint: string;
  netuid: number;
  /** uid of each registered hotkey. */
  uids(): Promise<Map<string, number>>;
  /** Number of the best block. */
  head(): number;
  /** Weights each validator uid set: (uid, u16) pairs. */
  weights(): Promise<Map<number, [number, number][]>>;
  /** Drops every connection and serves nothing for `downMs`, keeping the state. */
  restart?(downMs: number): Promise<void>;
  stop(): Promise<void>;
}

/** Participants started at once (then the next group, once these have connected). */
const START_GROUP = 4;

/** What devnet needs from the outside world. */
export interface DevnetDeps {
  /** Creates a dev hotkey named `name` in the devnet wallet; returns its ss58. */
  createHotkey(name: string): Promise<string>;
  /** Starts the chain with these hotkeys registered; the first one is the validator. */
  startChain(hotkeys: string[]): Promise<DevnetChain>;
  /** Starts one participant process. */
  spawn(p: Participant, chain: DevnetChain): Child;
  /**
   * The baselines on the devnet's own windows and pages (`bench converge`'s runs): one
   * honest miner alone (the first uid), and data-parallel (every honest uid's gradients
   * averaged each window, full precision).
   */
  baselines(b: {
    firstWindow: number;
    windows: number;
    uids: readonly number[];
    batchesPerWindow: number;
  }): Promise<{ alone: Baseline; dataParallel: Baseline }>;
}

/** A baseline run: its final held-out loss and its curve ([window of θ, loss]). */
export interface Baseline {
  heldoutLoss: number;
  curve: [number, number][];
}

/** Devnet settings. */
export interface DevnetOptions {
  honest: number;
  windows: number;
  out: string;
  adversaries?: readonly Adversary[];
  /** Give up this long after the start (ms). */
  timeoutMs?: number;
  /** Skip the baselines (tests). */
  skipBaseline?: boolean;
  print?: (line: string) => void;
  /** Called after each scored window (fault injection in tests). */
  onWindow?: (r: ValidatorWindow, ctl: DevnetControl) => Promise<void>;
  /**
   * Stops the run (the CLI aborts it on SIGINT and SIGTERM): every child is sent SIGTERM
   * at once, the chain is stopped, and runDevnet rejects with `Devnet stopped (reason)`.
   */
  signal?: AbortSignal;
}

/** One window of the report. */
export interface ReportWindow {
  window: number;
  heldout_loss: number;
  scores: Record<string, number>;
  /** Whose uploads the lead's manifest of this window aggregated, by name. */
  aggregated: string[];
  /** Every honest miner's θ_w digest (its status object) equals the lead validator's. */
  digests_agree: boolean;
  /** θ_w digest per participant (null: it held none; absent: no status this window). */
  digests: Record<string, string | null>;
  /** Bytes each participant uploaded and downloaded in this window. */
  bytes: Record<string, { up: number; down: number }>;
}

/** The report devnet writes as report.json. */
export interface DevnetReport {
  preset?: string;
  miners: { uid: number; hotkey: string; role: string; weight: number }[];
  windows: ReportWindow[];
  /** One honest miner alone, the same windows and pages. */
  baseline_heldout_loss: number | null;
  /** Data-parallel: every honest miner's full gradient averaged each window. */
  data_parallel_heldout_loss: number | null;
  /** (alone − shared) / (alone − data-parallel) at the end. */
  data_parallel_gain_kept: number | null;
  /** Windows in which every honest miner's θ digest equalled the lead's / windows. */
  digests_agree_windows: number;
  /** Per honest miner, mean bytes up and down per window. */
  honest_bytes_per_window: { up: number; down: number };
  honest_weight_share: number;
  start_heldout_loss: number | null;
  end_heldout_loss: number | null;
  wall_seconds: number;
}

/** Runs the devnet; returns its report (also written under `out`). */
export async function runDevnet(deps: DevnetDeps, o: DevnetOptions): Promise<DevnetReport> {
  const t0 = Date.now();
  const print = o.print ?? ((s: string) => console.log(s));
  await Deno.mkdir(`${o.out}/stores`, { recursive: true });
  await Deno.mkdir(`${o.out}/logs`, { recursive: true });
  const roles: Participant["role"][] = [
    "validator",
    ...Array.from({ length: o.honest }, () => "honest" as const),
    ...(o.adversaries ?? ADVERSARIES),
  ];
  const parts: Participant[] = [];
  let h = 0;
  for (const role of roles) {
    const name = role === "validator" ? "validator" : role === "honest" ? `honest-${++h}` : role;
    const hotkey = await deps.createHotkey(name);
    parts.push({ name, role, hotkey, bucketDir: await absolute(`${o.out}/stores/${name}`) });
    await Deno.mkdir(`${o.out}/stores/${name}`, { recursive: true });
  }
  const stopError = () => new Error(`Devnet stopped (${o.signal?.reason})`);
  if (o.signal?.aborted) throw stopError();
  print(`devnet: starting a local chain with ${parts.length} hotkeys`);
  const chain = await deps.startChain(parts.map((p) => p.hotkey));
  const children = new Map<string, Child>();
  const windows: ValidatorWindow[] = [];
  let crashed: string | null = null;
  let stopping = false;
  const restarting = new Set<string>();
  // A stop request sends every child SIGTERM at once and ends every wait below; the
  // finally then waits for the children and stops the chain.
  const killAll = () => {
    stopping = true;
    for (const c of children.values()) c.kill();
  };
  o.signal?.addEventListener("abort", killAll, { once: true });
  /**
   * Waits `ms` or until `until` settles, whichever is first; rejects at once when the run
   * is stopped. Clears its timer either way.
   */
  const pause = (ms: number, until?: Promise<unknown>) =>
    new Promise<void>((resolve, reject) => {
      if (o.signal?.aborted) return reject(stopError());
      const done = (f: () => void) => () => {
        clearTimeout(timer);
        o.signal?.removeEventListener("abort", onAbort);
        f();
      };
      const onAbort = done(() => reject(stopError()));
      const timer = setTimeout(done(resolve), ms);
      o.signal?.addEventListener("abort", onAbort, { once: true });
      until?.then(done(resolve), done(resolve));
    });
  const start = (p: Participant) => {
    if (stopping) return;
    const c = deps.spawn(p, chain);
    children.set(p.name, c);
    c.exited.then((code) => {
      if (code !== 0 && !stopping && !restarting.has(p.name)) {
        crashed ??= `${c.name} exited with code ${code}`;
      }
    });
  };
  try {
    const uids = await chain.uids();
    print(
      `devnet: chain at ${chain.endpoint}, netuid ${chain.netuid}; ` +
        parts.map((p) => `${p.name}=uid ${uids.get(p.hotkey)}`).join(", "),
    );
    // A few at a time, each group once its members are connected (or 20 s passed): a
    // dozen processes loading and connecting at once can starve a two-core machine's
    // chain node past their timeouts. The validator (the lead) last: every miner then
    // starts from the lead's first checkpoint, so the network's first window, which the
    // baselines start from, has every miner in it.
    const others = parts.slice(1);
    const groups = [...Array(Math.ceil(others.length / START_GROUP)).keys()]
      .map((g) => others.slice(g * START_GROUP, (g + 1) * START_GROUP));
    for (const group of [...groups, [parts[0]!]]) {
      group.forEach(start);
      await pause(20_000, Promise.all(group.map((p) => children.get(p.name)?.ready)));
    }
    const ctl: DevnetControl = {
      participants: parts,
      chain,
      async restartParticipant(name, downMs = 1000, whileDown) {
        const p = parts.find((x) => x.name === name);
        const c = children.get(name);
        if (!p || !c) throw new RangeError(`No devnet participant '${name}'`);
        restarting.add(name);
        c.kill("SIGKILL");
        await c.exited;
        await whileDown?.();
        await pause(downMs);
        start(p);
        // Back once it is connected: a fault injected while it connects is another test.
        await pause(20_000, children.get(p.name)?.ready);
        restarting.delete(name);
      },
    };
    const validator = parts[0]!;
    const roleOf = new Map(parts.map((p) => [uids.get(p.hotkey)!, p]));
    const deadline = t0 + (o.timeoutMs ?? 30 * 60_000);
    const seen = new Set<number>();
    const rows: ReportWindow[] = [];
    while (windows.length < o.windows) {
      if (crashed) throw new Error(`Devnet participant failed: ${crashed} (see ${o.out}/logs)`);
      if (Date.now() > deadline) {
        throw new Error(`Devnet timed out after ${windows.length} of ${o.windows} windows`);
      }
      await pause(500);
      for await (const e of Deno.readDir(validator.bucketDir)) {
        const m = /^scores-(\d+)-/.exec(e.name);
        if (!m || seen.has(Number(m[1]))) continue;
        seen.add(Number(m[1]));
        const r: ValidatorWindow = JSON.parse(
          await Deno.readTextFile(`${validator.bucketDir}/${e.name}`),
        );
        windows.push(r);
        const row = await reportWindow(r, parts, roleOf);
        rows.push(row);
        print(liveLine(r, row, roleOf));
        await o.onWindow?.(r, ctl);
      }
    }
    stopping = true;
    windows.sort((a, b) => a.window - b.window);
    rows.sort((a, b) => a.window - b.window);
    const weights = await chain.weights();
    const vUid = uids.get(validator.hotkey)!;
    const set = weights.get(vUid) ?? [];
    const total = set.reduce((a, [, w]) => a + w, 0);
    const miners = parts.slice(1).map((p) => {
      const uid = uids.get(p.hotkey)!;
      const w = set.find(([u]) => u === uid)?.[1] ?? 0;
      return { uid, hotkey: p.hotkey, role: p.role, weight: total > 0 ? w / total : 0 };
    });
    const honestShare = miners.filter((m) => m.role === "honest").reduce((a, m) => a + m.weight, 0);
    for (const c of children.values()) c.kill();
    await Promise.all([...children.values()].map((c) => c.exited));
    children.clear();
    const honestBatches = windows.flatMap((w) =>
      w.scores.filter((s) => roleOf.get(s.uid)?.role === "honest").map((s) => s.batches ?? 0)
    ).filter((b) => b > 0);
    const perWindow = honestBatches.length
      ? Math.max(1, Math.round(honestBatches.reduce((a, b) => a + b, 0) / honestBatches.length))
      : 1;
    let base: { alone: Baseline; dataParallel: Baseline } | null = null;
    const first = windows[0]?.window ?? 0;
    // θ of the last scored window has had the manifests of the windows before it applied.
    const steps = Math.max(0, (windows.at(-1)?.window ?? first) - first);
    if (!o.skipBaseline && steps > 0) {
      const honestUids = miners.filter((m) => m.role === "honest").map((m) => m.uid);
      print(
        `devnet: baselines — one honest miner alone and data-parallel (${honestUids.length} ` +
          `miners), windows ${first}…${first + steps - 1} × ${perWindow} batches`,
      );
      base = await deps.baselines({
        firstWindow: first,
        windows: steps,
        uids: honestUids,
        batchesPerWindow: perWindow,
      });
    }
    const end = windows.at(-1)?.heldOutLoss ?? null;
    const honestNames = new Set(parts.filter((p) => p.role === "honest").map((p) => p.name));
    const honestBytes = rows.flatMap((r) =>
      Object.entries(r.bytes).filter(([n]) => honestNames.has(n)).map(([, b]) => b)
    );
    const mean = (
      xs: number[],
    ) => (xs.length ? Math.round(xs.reduce((a, b) => a + b) / xs.length) : 0);
    const report: DevnetReport = {
      miners,
      windows: rows,
      baseline_heldout_loss: base?.alone.heldoutLoss ?? null,
      data_parallel_heldout_loss: base?.dataParallel.heldoutLoss ?? null,
      data_parallel_gain_kept: base && end !== null
        ? (base.alone.heldoutLoss - end) / (base.alone.heldoutLoss - base.dataParallel.heldoutLoss)
        : null,
      digests_agree_windows: rows.filter((r) => r.digests_agree).length,
      honest_bytes_per_window: {
        up: mean(honestBytes.map((b) => b.up)),
        down: mean(honestBytes.map((b) => b.down)),
      },
      honest_weight_share: honestShare,
      start_heldout_loss: windows[0]?.heldOutLoss ?? null,
      end_heldout_loss: end,
      wall_seconds: Math.round((Date.now() - t0) / 1000),
    };
    await writeReport(o.out, report, windows, roleOf, base);
    print(summary(report));
    return report;
  } finally {
    o.signal?.removeEventListener("abort", killAll);
    stopping = true;
    for (const c of children.values()) c.kill();
    await Promise.allSettled([...children.values()].map((c) => c.exited));
    await chain.stop().catch((e) => log.warn(`Stopping the chain: ${(e as Error).message}`));
  }
}

async function absolute(p: string): Promise<string> {
  await Deno.mkdir(p, { recursive: true });
  return await Deno.realPath(p);
}

/**
 * Window w's row of the report: the scores, and every participant's status object of w
 * (θ_w digest, bytes moved) from its bucket, compared with the lead validator's digest.
 */
async function reportWindow(
  r: ValidatorWindow,
  parts: readonly Participant[],
  roleOf: Map<number, Participant>,
): Promise<ReportWindow> {
  const digests: Record<string, string | null> = {};
  const bytes: Record<string, { up: number; down: number }> = {};
  for (const p of parts) {
    try {
      const st = JSON.parse(
        await Deno.readTextFile(`${p.bucketDir}/status-${r.window}-${p.hotkey}.json`),
      );
      digests[p.name] = typeof st.digest === "string" ? st.digest : null;
      bytes[p.name] = { up: Number(st.bytes_up) || 0, down: Number(st.bytes_down) || 0 };
    } catch { /* no status this window (down, or it skipped before writing one) */ }
  }
  const honest = parts.filter((p) => p.role === "honest" && p.name in digests);
  return {
    window: r.window,
    heldout_loss: r.heldOutLoss,
    scores: Object.fromEntries(
      r.scores.map((s) => [roleOf.get(s.uid)?.name ?? String(s.uid), s.score]),
    ),
    aggregated: r.aggregated.map((u) => roleOf.get(u)?.name ?? String(u)),
    digests_agree: honest.length > 0 && honest.every((p) => digests[p.name] === r.digest),
    digests,
    bytes,
  };
}

function kb(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${Math.round(n / 1e3)} kB`;
}

function liveLine(r: ValidatorWindow, row: ReportWindow, roleOf: Map<number, Participant>): string {
  const scores = r.scores.map((s) => `${roleOf.get(s.uid)?.name ?? s.uid}=${s.score.toFixed(3)}`);
  const honest = Object.entries(row.bytes).filter(([n]) => n.startsWith("honest-")).map(([, b]) =>
    b
  );
  const up = honest.length ? honest.reduce((a, b) => a + b.up, 0) / honest.length : 0;
  const down = honest.length ? honest.reduce((a, b) => a + b.down, 0) / honest.length : 0;
  return `window ${String(r.window).padStart(4)} | held-out loss ${r.heldOutLoss.toFixed(4)} | θ ${
    row.digests_agree ? "agrees" : "DIFFERS"
  } | honest miner up ${kb(up)} down ${kb(down)} | ${scores.join(" ")}${
    r.weights ? " | weights set" : ""
  }`;
}

/** The text table of the report. */
export function summary(r: DevnetReport): string {
  const lines = [
    "",
    "uid  role        weight",
    ...r.miners.map((m) =>
      `${String(m.uid).padEnd(4)} ${m.role.padEnd(11)} ${(m.weight * 100).toFixed(1).padStart(5)}%`
    ),
    "",
    `honest miners hold ${(r.honest_weight_share * 100).toFixed(1)}% of the weight set on chain`,
    `shared model held-out loss: ${r.start_heldout_loss?.toFixed(4)} → ${
      r.end_heldout_loss?.toFixed(4)
    }` +
    (r.baseline_heldout_loss !== null
      ? `; one honest miner alone: ${r.baseline_heldout_loss.toFixed(4)}`
      : "") +
    (r.data_parallel_heldout_loss !== null
      ? `; data-parallel: ${r.data_parallel_heldout_loss.toFixed(4)} (${
        ((r.data_parallel_gain_kept ?? 0) * 100).toFixed(0)
      }% of its gain over alone kept)`
      : ""),
    `θ digests of every honest miner equal the lead validator's in ${r.digests_agree_windows} of ${r.windows.length} windows`,
    `an honest miner moves ${kb(r.honest_bytes_per_window.up)} up and ${
      kb(r.honest_bytes_per_window.down)
    } down per window`,
    `wall time ${r.wall_seconds} s`,
  ];
  return lines.join("\n");
}

async function writeReport(
  out: string,
  r: DevnetReport,
  windows: ValidatorWindow[],
  roleOf: Map<number, Participant>,
  base: { alone: Baseline; dataParallel: Baseline } | null,
): Promise<void> {
  const write = async (name: string, text: string) => {
    await Deno.writeTextFile(`${out}/${name}.tmp`, text);
    await Deno.rename(`${out}/${name}.tmp`, `${out}/${name}`);
  };
  await write("report.json", JSON.stringify(r, null, 2) + "\n");
  await write("report.txt", summary(r).trimStart() + "\n");
  const loss = [{
    name: "shared model",
    points: windows.map((w) => [w.window, w.heldOutLoss] as [number, number]),
  }];
  if (base) {
    loss.push({ name: "one miner alone", points: base.alone.curve });
    loss.push({ name: "data-parallel", points: base.dataParallel.curve });
  }
  await write(
    "loss.svg",
    lineChart({ title: "Held-out loss", xLabel: "window", yLabel: "loss", series: loss }),
  );
  const uids = [...roleOf.keys()].filter((u) => roleOf.get(u)!.role !== "validator").sort((a, b) =>
    a - b
  );
  await write(
    "weights.svg",
    lineChart({
      title: "Moving score per miner",
      xLabel: "window",
      yLabel: "moving score",
      series: uids.map((u) => {
        // A miner the validator did not get to in a window keeps its moving score.
        let last = 0;
        const points = windows.map((w) => {
          last = w.scores.find((s) => s.uid === u)?.moving ?? last;
          return [w.window, last] as [number, number];
        });
        return {
          name: `${u} ${roleOf.get(u)!.name}`,
          points,
          dashed: roleOf.get(u)!.role !== "honest",
        };
      }),
    }),
  );
}
