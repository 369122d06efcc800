/**
 * The miner loop (DESIGN.md "Roles and the window loop"). For each window w:
 *   block w·L     publish `delta` of w−1 (before − after at delta(w−1)'s indices, seeded by
 *                 this block's hash) and `state` of w (own values at state(w)'s indices);
 *   block w·L+1   sync: average peers' `state` of w in, apply peers' `delta` of w−1
 *                 (robustly: aggregate.ts); then train on the pages of (w, uid) until the
 *                 window's last block, accumulate, clip, one AdamW step.
 * A window is skipped, never published late or wrong: if the publishing block has
 * passed, or the store or chain fails, the miner logs it and moves to the next window.
 *
 * Adversaries (devnet only) change what is uploaded as `delta`; see adversary.ts.
 *
 * @module
 */
import type { Hparams } from "../hparams.ts";
import { paramTable, type Tensors } from "../model/params.ts";
import type { Metrics } from "../metrics.ts";
import { getLogger } from "../log.ts";
import { windowOf } from "../window.ts";
import { gather } from "../slices/gather.ts";
import type { Signer } from "../slices/wire.ts";
import type { Store } from "../store/mod.ts";
import { cleanOld } from "./keys.ts";
import type { Dataset } from "../data/mod.ts";
import type { AdamState, Trainer } from "../train/trainer.ts";
import { BlockClock, type BlockSource, Stopped } from "./clock.ts";
import {
  type Fetched,
  fetchSlices,
  isValidator,
  listPeers,
  type Peer,
  type PeerSource,
  publishSlice,
  type SliceContext,
  sliceContext,
  trustWeights,
  windowIndices,
} from "./exchange.ts";
import { applyDeltas, averageStates } from "./aggregate.ts";
import { type Adversary, adversaryDelta } from "./adversary.ts";
import { addInto, difference, scaleInPlace } from "../tensor_math.ts";

const log = getLogger(["boltzmann", "miner"]);

/** The chain calls the loops make; `K` is the chain client's signing key type. */
export interface RoleChain<K> extends BlockSource, PeerSource {
  setCommitment(key: K, netuid: number, data: string): Promise<void>;
}

/** What every role runs with; built by the CLI (participant.ts) or a test. */
export interface RoleDeps<K, C extends RoleChain<K> = RoleChain<K>> {
  hp: Hparams;
  chain: C;
  netuid: number;
  /** Signs extrinsics (commitment, weights). */
  key: K;
  /** Signs slices; `signer.address` is the hotkey's ss58. */
  signer: Signer;
  /** Our own bucket, and its location string as committed on chain. */
  store: Store;
  location: string;
  openStore: (location: string) => Store;
  dataset: Dataset;
  trainer: Trainer;
  params: Tensors;
  metrics: Metrics;
  signal: AbortSignal;
}

/** What a miner runs with. */
export interface MinerDeps<K> extends RoleDeps<K> {
  opt: AdamState;
}

/** Knobs of one miner. */
export interface MinerOptions {
  adversary?: Adversary;
  /** Stop after this many windows (devnet, tests). */
  maxWindows?: number;
  /** At most this many micro-batches per window. */
  maxBatches?: number;
  dtype?: "F32" | "BF16";
  /** Saves the model after a trained window (to resume after a restart). */
  saveState?: (w: number, params: Tensors) => Promise<void>;
  /** Called after each window (devnet progress). */
  onWindow?: (w: number, info: WindowReport) => void | Promise<void>;
}

/** What a miner did in one window. */
export interface WindowReport {
  window: number;
  trained: boolean;
  loss?: number;
  batches: number;
  tokens: number;
  syncedStates: number;
  appliedDeltas: number;
  published: boolean;
}

interface Trained {
  window: number;
  step: Tensors; // before − after, every coordinate
  loss: number;
  tokens: number;
  batches: number;
}

/** Runs the miner until the signal aborts or `maxWindows` windows have passed. */
export async function runMiner<K>(d: MinerDeps<K>, o: MinerOptions = {}): Promise<void> {
  const { hp } = d;
  const L = hp.windowLength;
  const table = paramTable(hp.model);
  const ctx = sliceContext(hp, table, o.dtype ?? "F32", d.metrics);
  const me = d.signer.address;
  // Honest miners train; of the cheaters only `scaled` and `lazy` do.
  const trains = !o.adversary || o.adversary === "scaled" || o.adversary === "lazy";
  const clock = await BlockClock.start(d.chain);
  try {
    await clock.waitFor(0, d.signal);
    const uid = await ensureRegisteredAndCommitted(d);
    log.info(`Miner uid ${uid} (${me}) ${o.adversary ? `adversary '${o.adversary}'` : "honest"}`);
    let w = windowOf(clock.block, L) + 1;
    let trained: Trained | null = null;
    let lastDelta: Tensors | null = null;
    for (let done = 0; o.maxWindows === undefined || done < o.maxWindows; done++, w++) {
      await clock.waitFor(w * L, d.signal);
      const report: WindowReport = {
        window: w,
        trained: false,
        batches: 0,
        tokens: 0,
        syncedStates: 0,
        appliedDeltas: 0,
        published: false,
      };
      try {
        const hash = await clock.hashOf(w * L);
        const idxDelta = windowIndices("delta", hash, table, hp.compression);
        const idxState = windowIndices("state", hash, table, hp.compression);
        // 1. Publish what window w−1 produced (cheaters that do not train always "have" a
        //    delta to upload).
        if (trained?.window === w - 1 || (!trains && w > 0)) {
          if (clock.block > w * L + 1) {
            log.warn(`Window ${w - 1}: publishing block ${w * L} has passed; skipping, not late`);
          } else {
            lastDelta = await publishDelta(d, o, ctx, clock, w - 1, trained, idxDelta, lastDelta);
            await publishSlice(ctx, d.store, d.signer, "state", w, gather(d.params, idxState));
            report.published = true;
          }
        }
        trained = null;
        // Retention: our own objects older than max_history windows go.
        await cleanOld(d.store, me, w, hp.maxHistory).catch((e) =>
          log.warn(`Cleaning old slices: ${(e as Error).message}`)
        );
        // 2. Sync with peers one block later, so their uploads have landed.
        await clock.waitFor(w * L + 1, d.signal);
        const all = await listPeers(d.chain, d.netuid);
        const peers = all.filter((p) => p.hotkey !== me);
        const trust = await trustWeights(d.chain, d.netuid, all);
        const s = await syncWindow(ctx, d, peers, w, idxState, idxDelta, trust);
        report.syncedStates = s.states;
        report.appliedDeltas = s.deltas;
        // 3. Train while the window lasts (non-training adversaries only sync).
        if (trains) {
          // `lazy` trains honestly, but on the pages of a far-away window: not its own.
          const pagesWindow = o.adversary === "lazy" ? w + 100_000 : w;
          trained = await trainWindow(d, o, clock, w, pagesWindow, uid);
          if (trained) {
            await o.saveState?.(w, d.params).catch((e) =>
              log.warn(`Saving state: ${(e as Error).message}`)
            );
            Object.assign(report, {
              trained: true,
              loss: trained.loss,
              batches: trained.batches,
              tokens: trained.tokens,
            });
          }
        }
      } catch (e) {
        if (e instanceof Stopped) throw e;
        log.warn(`Window ${w}: skipped (${(e as Error).message})`);
        d.metrics.inc("boltzmann_windows_skipped_total", {}, 1, "Windows skipped after errors");
        trained = null;
      }
      d.metrics.set("boltzmann_window", w, {}, "Current window");
      await o.onWindow?.(w, report);
    }
  } catch (e) {
    if (!(e instanceof Stopped)) throw e;
  } finally {
    clock.stop();
  }
}

/** Checks our hotkey is registered; commits our bucket location once if it differs. */
async function ensureRegisteredAndCommitted<K>(d: MinerDeps<K>): Promise<number> {
  const peers = await d.chain.metagraph(d.netuid);
  const i = peers.hotkeys.indexOf(d.signer.address);
  if (i < 0) {
    throw new Error(
      `Hotkey ${d.signer.address} is not registered on netuid ${d.netuid}: register it first (btcli subnet register)`,
    );
  }
  const commits = await d.chain.commitments(d.netuid);
  if (commits.get(d.signer.address) !== d.location) {
    await d.chain.setCommitment(d.key, d.netuid, d.location);
    log.info(`Committed bucket ${d.location} on chain`);
  }
  return peers.uids[i]!;
}

/**
 * Averages peers' states of w in, applies peers' deltas of w−1. With `trust` (the lead
 * validator's weights by hotkey), each peer counts in proportion to its weight and
 * peers the validator gave nothing are left out.
 */
export async function syncWindow(
  ctx: SliceContext,
  d: { params: Tensors; openStore: (l: string) => Store; metrics?: Metrics },
  peers: readonly Peer[],
  w: number,
  idxState: Map<string, Uint32Array>,
  idxDelta: Map<string, Uint32Array>,
  trust: Map<string, number> | null = null,
): Promise<{ states: number; deltas: number }> {
  const trusted = trust ? peers.filter((p) => (trust.get(p.hotkey) ?? 0) > 0) : peers;
  const [st, de] = await Promise.all([
    fetchSlices(ctx, trusted, d.openStore, "state", w, idxState),
    fetchSlices(ctx, trusted, d.openStore, "delta", w - 1, idxDelta),
  ]);
  const slices = (fs: Fetched[]) =>
    fs.map((f) => ({ key: f.peer.hotkey, values: f.slice, weight: trust?.get(f.peer.hotkey) }));
  averageStates(d.params, idxState, slices(st.accepted));
  applyDeltas(d.params, idxDelta, slices(de.accepted));
  return { states: st.accepted.length, deltas: de.accepted.length };
}

async function trainWindow<K>(
  d: MinerDeps<K>,
  o: MinerOptions,
  clock: BlockClock,
  w: number,
  pagesWindow: number,
  uid: number,
): Promise<Trained | null> {
  const L = d.hp.windowLength;
  const deadline = (w + 1) * L - 1;
  if (clock.block >= deadline) {
    log.warn(`Window ${w}: no time left to train (block ${clock.block}); skipping`);
    return null;
  }
  const batches = (await d.dataset.batchesFor(pagesWindow, uid)).slice(0, o.maxBatches ?? Infinity);
  let sum: Tensors | null = null, loss = 0, n = 0;
  const t0 = performance.now();
  for (const b of batches) {
    if (n > 0 && clock.block >= deadline) break;
    const r = await d.trainer.lossAndGrad(d.params, [b]);
    sum = addInto(sum, r.grads);
    loss += r.loss;
    n++;
  }
  if (!sum || n === 0) return null;
  const before = d.params;
  const after: Tensors = new Map([...before].map(([k, v]) => [k, v.slice()]));
  await d.trainer.step(after, d.opt, scaleInPlace(sum, 1 / n));
  const step = difference(before, after);
  for (const [k, v] of after) before.get(k)!.set(v); // params now hold the new values
  const tokens = n * d.hp.batchSize * d.hp.seqLen;
  const secs = (performance.now() - t0) / 1000;
  log.info(
    `Window ${w}: trained ${n} batches, loss ${(loss / n).toFixed(4)}, ${
      Math.round(tokens / secs)
    } tokens/s`,
    { window: w, batches: n, loss: loss / n, tokens, tokens_per_second: tokens / secs },
  );
  d.metrics.set("boltzmann_loss", loss / n, {}, "Training loss of the last window");
  d.metrics.set("boltzmann_tokens_per_second", tokens / secs, {}, "Training throughput");
  return { window: w, step, loss: loss / n, tokens, batches: n };
}

/** Uploads this miner's delta of window `v` (honest, or as its adversary role). */
async function publishDelta<K>(
  d: MinerDeps<K>,
  o: MinerOptions,
  ctx: SliceContext,
  clock: BlockClock,
  v: number,
  trained: Trained | null,
  idx: Map<string, Uint32Array>,
  lastDelta: Tensors | null,
): Promise<Tensors> {
  const honest = trained ? gather(trained.step, idx) : undefined;
  const stats = trained
    ? { loss: trained.loss, tokens: trained.tokens, batches: trained.batches }
    : { batches: 1, tokens: d.hp.batchSize * d.hp.seqLen };
  let delta = honest;
  const kind = o.adversary;
  if (kind && kind !== "lazy") {
    let other: Tensors | undefined;
    if (kind === "copycat" || kind === "noisy-copy") {
      // Wait a block so the victim's upload of the same window is there, then copy it.
      await clock.waitFor((v + 1) * d.hp.windowLength + 1, d.signal);
      other = await firstPeerDelta(d, ctx, v, idx);
    }
    const shape = new Map([...idx].map(([k, x]) => [k, new Float32Array(x.length)]));
    delta = adversaryDelta(kind, {
      honest,
      other,
      previous: lastDelta ?? undefined,
      shape,
      key: [d.signer.address, v],
    });
  }
  if (!delta) throw new Error(`Nothing to publish for window ${v}`);
  await publishSlice(ctx, d.store, d.signer, "delta", v, delta, stats);
  // `stale` re-uploads, next window, what a peer published in this one.
  return kind === "stale" ? (await firstPeerDelta(d, ctx, v, idx)) ?? delta : delta;
}

/** The delta of window v of the lowest-uid peer that has one (what a cheater copies). */
async function firstPeerDelta<K>(
  d: MinerDeps<K>,
  ctx: SliceContext,
  v: number,
  idx: Map<string, Uint32Array>,
): Promise<Tensors | undefined> {
  const peers = (await listPeers(d.chain, d.netuid)).filter((p) =>
    p.hotkey !== d.signer.address && !isValidator(p)
  );
  for (const p of peers) {
    const got = await fetchSlices(ctx, [p], d.openStore, "delta", v, idx);
    if (got.accepted[0]) return got.accepted[0].slice;
  }
  return undefined;
}
