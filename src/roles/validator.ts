/**
 * The validator loop. For each window w:
 *   block w·L+1      sync exactly as miners do (peers' `state` of w, `delta` of w−1) → θ_w;
 *                    held-out loss of θ_w (the shared model's progress);
 *   block (w+1)·L+2  fetch every miner's `delta` of w (uploads after block (w+1)·L+1 are
 *                    late), recompute each miner's gradient at θ_w on its own pages and
 *                    one gradient on held-out pages, score (score.ts: own-vs-other
 *                    margin, duplicates, stale copies, norm), in a rotating order while the
 *                    window allows; update the moving average; every `weightsInterval`
 *                    windows set weights on chain; publish the scores as JSON.
 * The lead validator (highest stake) also publishes a full checkpoint every
 * `checkpointInterval` windows so late joiners can start from it.
 *
 * @module
 */
import { paramTable, type Tensors } from "../model/params.ts";
import { getLogger } from "../log.ts";
import { windowOf } from "../window.ts";
import { gather } from "../slices/gather.ts";
import { BlockClock, Stopped } from "./clock.ts";
import {
  fetchSlices,
  isValidator,
  listPeers,
  type Peer,
  sliceContext,
  trustWeights,
  windowIndices,
} from "./exchange.ts";
import { allFinite, norm } from "../tensor_math.ts";
import {
  DEFAULT_SCORE_PARAMS,
  findDuplicates,
  measureDelta,
  type MeasuredUpload,
  median,
  type MovingScore,
  normFactor,
  scoreWindow,
  updateMoving,
  weightsFromScores,
  type WindowScore,
} from "./score.ts";
import { publishCheckpoint } from "./checkpoints.ts";
import { type RoleChain, type RoleDeps, syncWindow } from "./miner.ts";

const log = getLogger(["boltzmann", "validator"]);

/** The chain calls a validator makes. */
export interface ValidatorChain<K> extends RoleChain<K> {
  setWeights(
    key: K,
    netuid: number,
    uids: number[],
    weights: number[],
    versionKey: number,
  ): Promise<void>;
}

/** What a validator runs with. */
export type ValidatorDeps<K> = RoleDeps<K, ValidatorChain<K>>;

/** Knobs of one validator. */
export interface ValidatorOptions {
  maxWindows?: number;
  /** At most this many of a miner's batches are recomputed (default 2). */
  evalBatches?: number;
  /** Held-out batches for the shared model's loss (default 2). */
  heldOutBatches?: number;
  /** Version key passed to set_weights. */
  versionKey?: number;
  onWindow?: (w: number, r: ValidatorWindow) => void | Promise<void>;
}

/** One window's outcome, also published as `scores-{w}-{hotkey}.json`. */
export interface ValidatorWindow {
  window: number;
  heldOutLoss: number;
  scores: {
    uid: number;
    hotkey: string;
    score: number;
    moving: number;
    cosOwn: number;
    cosOther: number;
    norm: number;
    reasons: string[];
    loss?: number;
    batches?: number;
  }[];
  rejected: { uid: number; hotkey: string; reason: string }[];
  unscored: number[];
  weights?: { uids: number[]; weights: number[] };
}

/** Runs the validator until the signal aborts or `maxWindows` windows have passed. */
export async function runValidator<K>(
  d: ValidatorDeps<K>,
  o: ValidatorOptions = {},
): Promise<void> {
  const { hp } = d;
  const L = hp.windowLength;
  const table = paramTable(hp.model);
  const ctx = sliceContext(hp, table, "F32", d.metrics);
  const me = d.signer.address;
  const clock = await BlockClock.start(d.chain);
  let moving = new Map<number, MovingScore>();
  let previous: Tensors[] = [];
  let recentNorms: number[][] = []; // norms that earned a score, last few windows
  try {
    await clock.waitFor(0, d.signal);
    const mg = await d.chain.metagraph(d.netuid);
    if (!mg.hotkeys.includes(me)) {
      throw new Error(
        `Hotkey ${me} is not registered on netuid ${d.netuid}: register it first (btcli subnet register)`,
      );
    }
    const commits = await d.chain.commitments(d.netuid);
    if (commits.get(me) !== d.location) await d.chain.setCommitment(d.key, d.netuid, d.location);
    let w = windowOf(clock.block, L) + 1;
    for (let done = 0; o.maxWindows === undefined || done < o.maxWindows; done++, w++) {
      try {
        await clock.waitFor(w * L + 1, d.signal);
        const hash = await clock.hashOf(w * L);
        const all = await listPeers(d.chain, d.netuid);
        const peers = all.filter((p) => p.hotkey !== me);
        await syncWindow(
          ctx,
          d,
          peers,
          w,
          windowIndices("state", hash, table, hp.compression),
          windowIndices("delta", hash, table, hp.compression),
          await trustWeights(d.chain, d.netuid, all),
        );
        const heldOut = await d.trainer.loss(
          d.params,
          await d.dataset.evalBatches(o.heldOutBatches ?? 2),
        );
        d.metrics.set("boltzmann_heldout_loss", heldOut, {}, "Held-out loss of the shared model");
        if (w % hp.checkpointInterval === 0 && isLead(peers, mg.stake, mg.hotkeys, me)) {
          await publishCheckpoint(d.store, hp, d.params, w, me).catch((e) =>
            log.warn(`Checkpoint of window ${w} not published: ${(e as Error).message}`)
          );
        }
        // Score window w's deltas once their deadline has passed.
        await clock.waitFor((w + 1) * L + 1, d.signal);
        const deadlineMs = Date.now();
        await clock.waitFor((w + 1) * L + 2, d.signal);
        const r = await scoreDeltas(
          d,
          o,
          ctx,
          clock,
          peers,
          w,
          previous,
          deadlineMs,
          recentNorms.flat(),
        );
        previous = r.deltas;
        recentNorms = [...recentNorms, r.scored.filter((s) => s.score > 0).map((s) => s.norm)]
          .slice(-3);
        moving = updateMoving(
          moving,
          new Map(r.scored.map((s) => [s.uid, { hotkey: s.hotkey, score: s.score }])),
          hp.movingAlpha,
        );
        const out: ValidatorWindow = {
          window: w,
          heldOutLoss: heldOut,
          scores: r.scored.map((s) => ({ ...s, moving: moving.get(s.uid)?.value ?? 0 })),
          rejected: r.rejected,
          unscored: r.unscored,
        };
        if ((w + 1) % hp.weightsInterval === 0) {
          const wts = weightsFromScores(moving);
          if (wts.weights.some((x) => x > 0)) {
            try {
              await d.chain.setWeights(d.key, d.netuid, wts.uids, wts.weights, o.versionKey ?? 0);
              out.weights = wts;
              log.info(
                `Window ${w}: set weights ${
                  wts.uids.map((u, i) => `${u}:${wts.weights[i]!.toFixed(4)}`).join(" ")
                }`,
              );
            } catch (e) {
              log.warn(`Window ${w}: set_weights failed: ${(e as Error).message}`);
            }
          }
        }
        for (const s of out.scores) {
          d.metrics.set("boltzmann_score", s.score, { uid: s.uid }, "Score of the last window");
          d.metrics.set("boltzmann_moving_score", s.moving, { uid: s.uid }, "Moving score");
        }
        await d.store.put(
          `scores-${w}-${me}.json`,
          new TextEncoder().encode(JSON.stringify(out)),
        ).catch((e) => log.warn(`Scores of window ${w} not published: ${(e as Error).message}`));
        await d.store.delete(`scores-${w - hp.maxHistory}-${me}.json`).catch(() => {});
        log.info(
          `Window ${w}: held-out loss ${heldOut.toFixed(4)}; scores ${
            out.scores.map((s) => `${s.uid}=${s.score.toFixed(4)}`).join(" ")
          }`,
          {
            window: w,
            heldout_loss: heldOut,
            scores: Object.fromEntries(out.scores.map((s) => [s.uid, s.score])),
            rejected: out.rejected.length,
          },
        );
        await o.onWindow?.(w, out);
      } catch (e) {
        if (e instanceof Stopped) throw e;
        log.warn(`Window ${w}: skipped (${(e as Error).message})`);
        d.metrics.inc("boltzmann_windows_skipped_total", {}, 1, "Windows skipped after errors");
      }
    }
  } catch (e) {
    if (!(e instanceof Stopped)) throw e;
  } finally {
    clock.stop();
  }
}

/** The highest-stake participant with a permit (ties: smallest hotkey) publishes checkpoints. */
function isLead(peers: readonly Peer[], stake: number[], hotkeys: string[], me: string): boolean {
  const mine = stake[hotkeys.indexOf(me)] ?? 0;
  return !peers.some((p) =>
    isValidator(p) && (p.stake > mine || (p.stake === mine && p.hotkey < me))
  );
}

async function scoreDeltas<K>(
  d: ValidatorDeps<K>,
  o: ValidatorOptions,
  ctx: ReturnType<typeof sliceContext>,
  clock: BlockClock,
  peers: readonly Peer[],
  w: number,
  previous: Tensors[],
  deadlineMs: number,
  recentNorms: number[],
) {
  const L = d.hp.windowLength;
  const table = ctx.table;
  const idx = windowIndices("delta", await clock.hashOf((w + 1) * L), table, d.hp.compression);
  const miners = peers.filter((p) => !isValidator(p));
  const got = await fetchSlices(ctx, miners, d.openStore, "delta", w, idx);
  const other = gather(
    (await d.trainer.lossAndGrad(d.params, await d.dataset.evalBatches(1))).grads,
    idx,
  );
  // Fair rotation: start at a different miner each window; stop when the next window's
  // scoring is due (the rest stay unscored this window, their moving score unchanged).
  const list = got.accepted;
  const start = list.length ? w % list.length : 0;
  const order = [...list.slice(start), ...list.slice(0, start)];
  const measured: MeasuredUpload[] = [];
  const info = new Map<number, { loss?: number; batches?: number }>();
  const unscored: number[] = [];
  // Uploads that earn nothing whatever the gradient says (non-finite, zero, a copy of
  // last window's, a norm far outside recent honest norms) are measured without one:
  // the validator's time goes to the uploads that can earn.
  const stale = findDuplicates(order.map((f) => f.slice), previous).stale;
  const ref = recentNorms.length >= 3 ? median(recentNorms) : 0;
  const normFar = new Set<number>();
  const hopeless = (f: (typeof order)[number], i: number) => {
    const n = allFinite(f.slice) ? norm(f.slice) : NaN;
    if (n > 0 && normFactor(n, ref, DEFAULT_SCORE_PARAMS.normTolerance) === 0) {
      normFar.add(f.peer.uid);
      return true;
    }
    return !(n > 0) || stale.has(i);
  };
  for (const [i, f] of order.entries()) {
    const cheap = hopeless(f, i);
    if (!cheap && measured.length > 0 && clock.block >= (w + 2) * L) {
      unscored.push(f.peer.uid);
      continue;
    }
    let own = other;
    if (!cheap) {
      const k = Math.max(1, Math.min(o.evalBatches ?? 2, f.meta.batches ?? 1));
      const batches = (await d.dataset.batchesFor(w, f.peer.uid)).slice(0, k);
      own = gather((await d.trainer.lossAndGrad(d.params, batches)).grads, idx);
    }
    measured.push({
      uid: f.peer.uid,
      hotkey: f.peer.hotkey,
      delta: f.slice,
      stats: measureDelta(f.slice, own, other),
      late: f.uploadedAt > deadlineMs + 1000,
      uploadedAt: f.uploadedAt,
    });
    info.set(f.peer.uid, { loss: f.meta.loss, batches: f.meta.batches });
  }
  const scores: WindowScore[] = scoreWindow(measured, previous, {}, recentNorms);
  const scored = measured.map((m, i) => ({
    uid: m.uid,
    hotkey: m.hotkey,
    score: scores[i]!.score,
    cosOwn: scores[i]!.cosOwn,
    cosOther: scores[i]!.cosOther,
    norm: scores[i]!.norm,
    reasons: normFar.has(m.uid) ? [...scores[i]!.reasons, "norm-far"] : scores[i]!.reasons,
    ...info.get(m.uid),
  }));
  // A registered miner with a bucket but no valid delta this window scores 0.
  const seen = new Set(list.map((f) => f.peer.uid));
  for (const p of miners) {
    if (!seen.has(p.uid)) {
      scored.push({
        uid: p.uid,
        hotkey: p.hotkey,
        score: 0,
        cosOwn: 0,
        cosOther: 0,
        norm: 0,
        reasons: [got.rejected.find((r) => r.uid === p.uid)?.reason ?? "missing"],
      });
    }
  }
  scored.sort((a, b) => a.uid - b.uid);
  return {
    scored,
    deltas: list.map((f) => f.slice),
    rejected: got.rejected.map((r) => ({ uid: r.uid, hotkey: r.hotkey, reason: r.reason })),
    unscored,
  };
}
