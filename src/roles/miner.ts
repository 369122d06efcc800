/**
 * The miner loop on protocol v2 (docs/PROTOCOL.md, "The window timeline"). For each
 * window w, from block w·L (windowPlan):
 *   1. θ_w: apply the lead validator's manifest of w−1 to θ_{w−1} and check the digest;
 *      re-sync from the lead's checkpoint + the manifests since when it disagrees, when
 *      we start late, or after a restart (shared.ts);
 *   2. the update: the mean gradient at θ_w on pages(w, uid) (protocol/update.ts), or
 *      whatever the miner's strategy makes of what it has (adversary.ts: devnet's
 *      cheaters plug in here, the loop has no branch per cheater);
 *   3. encode with error feedback (protocol/codec.ts), sign, upload before the deadline
 *      block (w+1)·L; a miner that misses it skips the window, never uploads late;
 *   4. status (θ_w digest, bytes moved) and retention.
 *
 * @module
 */
import type { Hparams } from "../hparams.ts";
import type { Tensors } from "../model/params.ts";
import type { Metrics } from "../metrics.ts";
import { getLogger } from "../log.ts";
import { redactCommitment } from "../chain/commitment.ts";
import type { Signer } from "../slices/wire.ts";
import type { Store } from "../store/mod.ts";
import type { Dataset } from "../data/mod.ts";
import type { Trainer } from "../train/trainer.ts";
import { computeUpdateWithStats, encodeUpdate, paramsDigest } from "../protocol/mod.ts";
import { BlockClock, type BlockSource, Stopped } from "./clock.ts";
import {
  checkUpload,
  downloadUpload,
  isValidator,
  type Peer,
  type PeerSource,
  publishUpload,
  refreshPeers,
  takeTraffic,
  type UploadContext,
  uploadContext,
} from "./exchange.ts";
import { HONEST, type Strategy } from "./adversary.ts";
import { windowAt, windowPlan } from "./plan.ts";
import { cleanOld, keepWindows, objectKey } from "./keys.ts";
import { peerHistory, waitForManifest } from "./history.ts";
import { catchUp, type ModelAt, outerHparams, startModel } from "./shared.ts";

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
  /** Signs uploads and manifests; `signer.address` is the hotkey's ss58. */
  signer: Signer;
  /** Our own bucket, and its location string as committed on chain. */
  store: Store;
  location: string;
  openStore: (location: string) => Store;
  dataset: Dataset;
  trainer: Trainer;
  /**
   * θ as we start (the deterministic init, or a checkpoint the user gave); the loop
   * replaces its values with the shared model's (the same arrays, updated in place).
   */
  params: Tensors;
  metrics: Metrics;
  signal: AbortSignal;
}

/** What a miner runs with. */
export type MinerDeps<K> = RoleDeps<K>;

/** Knobs of one miner. */
export interface MinerOptions {
  /** How it picks its upload (default: honest). */
  strategy?: Strategy;
  /** Stop after this many windows (devnet, tests). */
  maxWindows?: number;
  /** At most this many micro-batches per window. */
  maxBatches?: number;
  /** Called after each window (devnet progress, tests). */
  onWindow?: (w: number, info: WindowReport) => void | Promise<void>;
}

/** What a miner did in one window (also published as `status-{w}-{hotkey}.json`). */
export interface WindowReport {
  window: number;
  /** paramsDigest(θ_w) as we hold it (absent for a miner that does not follow θ). */
  digest?: string;
  resynced: boolean;
  loss?: number;
  batches: number;
  tokens: number;
  published: boolean;
  bytesUp: number;
  bytesDown: number;
}

/** Runs the miner until the signal aborts or `maxWindows` windows have passed. */
export async function runMiner<K>(d: MinerDeps<K>, o: MinerOptions = {}): Promise<void> {
  const { hp } = d;
  const L = hp.windowLength;
  const strategy = o.strategy ?? HONEST;
  const ctx = uploadContext(hp, d.metrics);
  const me = d.signer.address;
  const model: ModelAt = startModel(d.params);
  const ef: Tensors = new Map(); // error feedback: what compression has not sent yet
  const own = new Map<number, { hotkey: string; bytes: Uint8Array }>();
  const net = peerHistory({ hp, ctx, openStore: d.openStore, own });
  const clock = await BlockClock.start(d.chain);
  try {
    await clock.waitFor(0, d.signal);
    const uid = await ensureRegisteredAndCommitted(d);
    log.info(`Miner uid ${uid} (${me}) ${strategy === HONEST ? "honest" : `'${strategy.name}'`}`);
    let w = windowAt(clock.block, L) + 1;
    for (let done = 0; o.maxWindows === undefined || done < o.maxWindows; done++, w++) {
      const plan = windowPlan(w, L);
      await clock.waitFor(plan.start, d.signal);
      if (clock.block >= plan.lastUploadBlock) {
        // Behind the chain (a slow machine, a long re-sync): an update for a window that is
        // over would never be uploaded, so go straight to the current one.
        log.warn(`Window ${w}: over at block ${clock.block}; skipping to the current window`);
        const c = windowAt(clock.block, L);
        w = clock.block >= windowPlan(c, L).lastUploadBlock ? c : c - 1; // then w + 1
        continue;
      }
      const report: WindowReport = {
        window: w,
        resynced: false,
        batches: 0,
        tokens: 0,
        published: false,
        bytesUp: 0,
        bytesDown: 0,
      };
      try {
        net.peers = await refreshPeers(d.chain, d.netuid, net.peers);
        // 1. θ_w.
        const x: Parameters<Strategy["update"]>[0] = { key: [me, w] };
        let stats: { theta?: string; loss?: number; tokens?: number; batches?: number } = {};
        if (strategy.followsModel) {
          const c = await catchUp(model, w, net.history, {
            ...ctx,
            outer: outerHparams(hp),
            waitManifest: (v) =>
              waitForManifest(net.history, v, clock, plan.lastUploadBlock - 1, d.signal),
          });
          report.resynced = c.resynced;
          report.digest = paramsDigest(model.params);
          // 2. The update at θ_w on the strategy's pages.
          const batches = (await d.dataset.batchesFor(strategy.pagesWindow(w), uid))
            .slice(0, o.maxBatches ?? Infinity);
          const t0 = performance.now();
          const u = await computeUpdateWithStats(
            d.trainer,
            model.params,
            batches,
            model.outer,
            outerHparams(hp),
          );
          x.honest = u.update;
          stats = { theta: report.digest, loss: u.loss, tokens: u.tokens, batches: u.batches };
          Object.assign(report, { loss: u.loss, batches: u.batches, tokens: u.tokens });
          const secs = (performance.now() - t0) / 1000;
          log.info(
            `Window ${w}: gradient on ${u.batches} batches, loss ${u.loss.toFixed(4)}, ${
              Math.round(u.tokens / secs)
            } tokens/s`,
            { window: w, batches: u.batches, loss: u.loss, tokens: u.tokens },
          );
          d.metrics.set("boltzmann_loss", u.loss, {}, "Training loss of the last window");
        }
        if (strategy.needs === "now") {
          // Wait until the others have uploaded this window, then take one of theirs.
          await clock.waitFor(plan.lastUploadBlock - 1, d.signal);
          x.other = await peerUpdate(ctx, d, net.peers, w);
        } else if (strategy.needs === "before") {
          x.previous = x.other = await peerUpdate(ctx, d, net.peers, w - 1);
        }
        if (!x.honest && !x.other) x.shape = zerosLike(d.params);
        // 3. Encode with error feedback, sign, upload before the deadline.
        let enc;
        try {
          enc = encodeUpdate(ctx.spec, strategy.update(x), strategy.errorFeedback ? ef : new Map());
        } catch (e) {
          // A refused (non-finite) update leaves the error-feedback buffer partly added
          // to: start it again, or every later window would carry the damage.
          ef.clear();
          throw e;
        }
        if (clock.block > plan.lastUploadBlock) {
          log.warn(`Window ${w}: the deadline block ${plan.deadline} is here; skipping, not late`);
        } else {
          const bytes = await publishUpload(ctx, d.store, d.signer, w, enc, stats);
          own.set(w, { hotkey: me, bytes });
          own.delete(w - 2);
          report.published = true;
        }
        // 4. Status and retention.
        await cleanOld(d.store, me, w, keepWindows(hp)).catch((e) =>
          log.warn(`Cleaning old objects: ${(e as Error).message}`)
        );
      } catch (e) {
        if (e instanceof Stopped) throw e;
        log.warn(`Window ${w}: skipped (${(e as Error).message})`);
        d.metrics.inc("boltzmann_windows_skipped_total", {}, 1, "Windows skipped after errors");
      }
      await publishStatus(ctx, d.store, me, report);
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
export async function ensureRegisteredAndCommitted<K>(d: RoleDeps<K>): Promise<number> {
  const peers = await d.chain.metagraph(d.netuid);
  const i = peers.hotkeys.indexOf(d.signer.address);
  if (i < 0) {
    throw new Error(
      `Hotkey ${d.signer.address} is not registered on netuid ${d.netuid}: register it first (btcli subnet register)`,
    );
  }
  // A busy chain may time a transaction out and still include it later: before trying
  // again, give the first one time to show up.
  const committed = async () =>
    (await d.chain.commitments(d.netuid)).get(d.signer.address) === d.location;
  for (let attempt = 1; !(await committed()); attempt++) {
    try {
      await d.chain.setCommitment(d.key, d.netuid, d.location);
      log.info(`Committed bucket ${redactCommitment(d.location)} on chain`);
      break;
    } catch (e) {
      if (attempt >= 3 || d.signal.aborted) throw e;
      log.warn(`${(e as Error).message}; checking again, then retrying (${attempt} of 2)`);
      for (let i = 0; i < 10 && !d.signal.aborted; i++) {
        await new Promise((r) => setTimeout(r, 3000));
        if (await committed()) break;
      }
    }
  }
  return peers.uids[i]!;
}

/**
 * Writes `status-{w}-{hotkey}.json`: the θ_w digest we hold and the bytes we moved since
 * the last status (what devnet reports per participant and window). Never throws.
 */
export async function publishStatus(
  ctx: UploadContext,
  store: Store,
  hotkey: string,
  r: { window: number; digest?: string; resynced?: boolean; bytesUp: number; bytesDown: number },
): Promise<void> {
  const t = takeTraffic(ctx);
  r.bytesUp = t.up;
  r.bytesDown = t.down;
  const body = {
    window: r.window,
    digest: r.digest ?? null,
    resynced: r.resynced ?? false,
    bytes_up: t.up,
    bytes_down: t.down,
  };
  await store.put(
    objectKey("status", r.window, hotkey),
    new TextEncoder().encode(JSON.stringify(body)),
  ).catch((e) => log.warn(`Status of window ${r.window} not published: ${(e as Error).message}`));
}

/** The decoded update of window v of the lowest-uid other miner that has a valid one. */
async function peerUpdate<K>(
  ctx: UploadContext,
  d: MinerDeps<K>,
  peers: readonly Peer[],
  v: number,
): Promise<Tensors | undefined> {
  if (v < 0) return undefined;
  for (const p of peers) {
    if (p.hotkey === d.signer.address || isValidator(p)) continue;
    try {
      const got = await downloadUpload(ctx, p, d.openStore, v);
      if (got) return checkUpload(ctx, got.bytes, v, p.hotkey).update;
    } catch { /* not usable: try the next peer */ }
  }
  return undefined;
}

function zerosLike(t: Tensors): Tensors {
  return new Map([...t].map(([k, v]) => [k, new Float32Array(v.length)]));
}
