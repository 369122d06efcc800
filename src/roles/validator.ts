/**
 * The validator loop on protocol v2 (docs/PROTOCOL.md, "The window timeline"). For each
 * window w (windowPlan):
 *   block w·L       θ_w: the lead (most stake) holds it already; any other validator
 *                   applies the lead's manifest of w−1 like a miner (shared.ts); held-out
 *                   loss of θ_w (the shared model's progress);
 *   block (w+1)·L   the deadline: fetch every miner's upload of w (the one fetch path,
 *                   strict). The lead publishes the signed manifest of exactly the valid
 *                   uploads it aggregates, each weighted by its moving score (its
 *                   weights on chain before it has scored; in the network's first
 *                   window a screen against its own gradient), applies it → θ_{w+1},
 *                   and puts θ_{w+1}'s digest in it;
 *   until (w+2)·L   score w's uploads at θ_w (score.ts: the gradient on the miner's own
 *                   pages against one on pages of the validator's secret choosing,
 *                   duplicates, stale copies, norm), rotating, while the window allows;
 *                   moving scores; every `weightsInterval` windows set weights on
 *                   chain; publish the scores and our status.
 * The lead also publishes a checkpoint (θ_w and the outer state) at its first window and
 * every `checkpointInterval` windows, so that anyone can re-sync.
 *
 * @module
 */
import type { Tensors } from "../model/params.ts";
import { getLogger } from "../log.ts";
import { computeUpdate, type OuterState, paramsDigest } from "../protocol/mod.ts";
import { allFinite, clone, cosine, norm, numel } from "../tensor_math.ts";
import { BlockClock, Stopped, yieldToIO } from "./clock.ts";
import {
  type Fetched,
  fetchUploads,
  isValidator,
  leadOf,
  type Peer,
  putObject,
  refreshPeers,
  trustWeights,
  type UploadContext,
  uploadContext,
} from "./exchange.ts";
import {
  DEFAULT_SCORE_PARAMS,
  duplicateSample,
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
import { encodeManifest, type ManifestEntry, sha256Hex } from "./manifest.ts";
import { windowAt, type WindowPlan, windowPlan } from "./plan.ts";
import { cleanOld, keepWindows } from "./keys.ts";
import { peerHistory, waitForManifest } from "./history.ts";
import {
  applyUpdates,
  catchUp,
  type History,
  type ModelAt,
  outerHparams,
  startModel,
} from "./shared.ts";
import {
  ensureRegisteredAndCommitted,
  publishStatus,
  type RoleChain,
  type RoleDeps,
  type WindowReport,
} from "./miner.ts";

const log = getLogger(["boltzmann", "validator"]);

/** Earned norms the norm reference remembers (about three windows of a full network). */
const RECENT_NORMS = 12;

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
  /** The secret that picks the comparison pages (default: random per process). */
  secret?: number;
  onWindow?: (w: number, r: ValidatorWindow) => void | Promise<void>;
}

/** One window's outcome, also published as `scores-{w}-{hotkey}.json`. */
export interface ValidatorWindow {
  window: number;
  heldOutLoss: number;
  /** paramsDigest(θ_w): the model every upload of w should have been computed at. */
  digest: string;
  /** Whether we led (published the manifest of w). */
  lead: boolean;
  /** Uploads the manifest of w aggregated (the lead's), by uid. */
  aggregated: number[];
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
    /** The θ digest the upload says it was computed at. */
    theta?: string;
  }[];
  rejected: { uid: number; hotkey: string; reason: string }[];
  unscored: number[];
  weights?: { uids: number[]; weights: number[] };
  bytesUp: number;
  bytesDown: number;
}

/** Runs the validator until the signal aborts or `maxWindows` windows have passed. */
export async function runValidator<K>(
  d: ValidatorDeps<K>,
  o: ValidatorOptions = {},
): Promise<void> {
  const { hp } = d;
  const L = hp.windowLength;
  const ctx = uploadContext(hp, d.metrics);
  const me = d.signer.address;
  const secret = o.secret ?? crypto.getRandomValues(new Uint32Array(1))[0]!;
  const model: ModelAt = startModel(d.params);
  const net = peerHistory({ hp, ctx, openStore: d.openStore });
  let moving = new Map<number, MovingScore>();
  // Duplicate samples of last window's uploads, by uploader (to find stale copies).
  let previous: { hotkey: string; sample: Tensors }[] = [];
  // The last RECENT_NORMS norms that earned a score, over however many windows: a window
  // that scored few uploads must not leave a ×10 update as its own reference.
  let recentNorms: number[] = [];
  let ledBefore = false;
  let weightsInFlight: Promise<void> | null = null;
  const lastTrust = { value: null as Map<string, number> | null };
  // Window w's scoring runs in the background while the loop goes on to w+1's deadline:
  // the lead's manifest, which every miner waits for, never waits for scoring.
  let scoring: Promise<void> = Promise.resolve();
  const clock = await BlockClock.start(d.chain);

  /**
   * Held-out loss of θ_w, then w's uploads scored until the next deadline; updates the moving
   * scores and what the next window's scoring reads (stale samples, recent norms).
   */
  const scoreJob = async (s: Scoring): Promise<Scored> => {
    const { plan, got, miners } = s;
    await yieldToIO();
    const heldOut = await d.trainer.loss(
      s.thetaW,
      await d.dataset.evalBatches(o.heldOutBatches ?? 2),
    );
    d.metrics.set("boltzmann_heldout_loss", heldOut, {}, "Held-out loss of the shared model");
    const r = await scoreUploads(d, o, clock, plan, s.thetaW, s.outerW, got, previous, {
      deadlineMs: s.deadlineMs,
      recentNorms,
      secret,
      miners,
      other: s.other,
      known: new Set([...moving.values()].map((m) => m.hotkey)),
    });
    previous = got.accepted.map((f) => ({
      hotkey: f.peer.hotkey,
      sample: duplicateSample(f.update),
    }));
    recentNorms = [...recentNorms, ...r.scored.filter((x) => x.score > 0).map((x) => x.norm)]
      .slice(-RECENT_NORMS);
    moving = updateMoving(
      moving,
      new Map(r.scored.map((x) => [x.uid, { hotkey: x.hotkey, score: x.score }])),
      hp.movingAlpha,
    );
    return { heldOut, ...r };
  };

  /** Weights, metrics and the published report of w. */
  const report = async (s: Scoring, r: Scored, aggregated: number[]) => {
    const { plan, got } = s;
    const w = plan.window;
    const heldOut = r.heldOut;
    const status: WindowReport = {
      window: w,
      digest: s.digest,
      resynced: s.resynced,
      batches: 0,
      tokens: 0,
      published: s.lead,
      bytesUp: 0,
      bytesDown: 0,
    };
    const out: ValidatorWindow = {
      window: w,
      heldOutLoss: heldOut,
      digest: s.digest,
      lead: s.lead,
      aggregated,
      scores: r.scored.map((x) => ({ ...x, moving: moving.get(x.uid)?.value ?? 0 })),
      rejected: got.rejected.map((x) => ({ uid: x.uid, hotkey: x.hotkey, reason: x.reason })),
      unscored: r.unscored,
      bytesUp: 0,
      bytesDown: 0,
    };
    // Weights on chain every weightsInterval windows, in the background: inclusion (and
    // finality) can take several blocks. One submission at a time.
    if ((w + 1) % hp.weightsInterval === 0) {
      const wts = weightsFromScores(moving);
      if (!wts.weights.some((x) => x > 0)) {
        // nothing earned yet
      } else if (weightsInFlight) {
        log.warn(`Window ${w}: the previous weights are still being submitted; not again`);
      } else {
        out.weights = wts;
        const line = wts.uids.map((u, i) => `${u}:${wts.weights[i]!.toFixed(4)}`).join(" ");
        weightsInFlight = d.chain
          .setWeights(d.key, d.netuid, wts.uids, wts.weights, o.versionKey ?? 0)
          .then(
            () => log.info(`Window ${w}: set weights ${line}`),
            (e) => log.warn(`Window ${w}: set_weights failed: ${(e as Error).message}`),
          )
          .finally(() => (weightsInFlight = null));
      }
    }
    for (const x of out.scores) {
      d.metrics.set("boltzmann_score", x.score, { uid: x.uid }, "Score of the last window");
      d.metrics.set("boltzmann_moving_score", x.moving, { uid: x.uid }, "Moving score");
    }
    await publishStatus(ctx, d.store, me, status);
    out.bytesUp = status.bytesUp;
    out.bytesDown = status.bytesDown;
    await d.store.put(plan.keys.scores(me), new TextEncoder().encode(JSON.stringify(out)))
      .catch((e) => log.warn(`Scores of window ${w} not published: ${(e as Error).message}`));
    await cleanOld(d.store, me, w, keepWindows(hp)).catch((e) =>
      log.warn(`Cleaning old objects: ${(e as Error).message}`)
    );
    log.info(
      `Window ${w}: held-out loss ${heldOut.toFixed(4)}; scores ${
        out.scores.map((x) => `${x.uid}=${x.score.toFixed(4)}`).join(" ")
      }`,
      {
        window: w,
        heldout_loss: heldOut,
        digest: s.digest,
        scores: Object.fromEntries(out.scores.map((x) => [x.uid, x.score])),
        rejected: out.rejected.length,
      },
    );
    await o.onWindow?.(w, out);
  };

  try {
    await clock.waitFor(0, d.signal);
    await ensureRegisteredAndCommitted(d);
    let w = windowAt(clock.block, L) + 1;
    let peersRead = false; // read at the last deadline for this window
    for (let done = 0; o.maxWindows === undefined || done < o.maxWindows; done++, w++) {
      const plan = windowPlan(w, L);
      await clock.waitFor(plan.start, d.signal);
      try {
        if (!peersRead) net.peers = await refreshPeers(d.chain, d.netuid, net.peers);
        peersRead = false;
        const lead = leadOf(net.peers)?.hotkey === me;
        // 1. θ_w, and what we score window w at.
        const resynced = await holdTheta(d, ctx, model, net.history, clock, plan, lead, ledBefore);
        ledBefore = lead;
        const digest = paramsDigest(model.params);
        const thetaW = clone(model.params);
        const outerW = cloneOuter(model.outer);
        // 2. The deadline: every miner's upload of w.
        await clock.waitFor(plan.deadline, d.signal);
        const deadlineMs = Date.now();
        const miners = net.peers.filter((p) => !isValidator(p));
        const got = await fetchUploads(ctx, miners, d.openStore, w);
        // 3. w−1's scores weight the manifest of w: their scoring stops at this deadline,
        // so waiting costs at most the gradient in flight.
        await scoring;
        const job: Scoring = {
          plan,
          thetaW,
          outerW,
          got,
          miners,
          deadlineMs,
          digest,
          resynced,
          lead,
        };
        // 4. The lead's manifest, and θ_{w+1}: first, since everyone waits for it. A lead
        // with nothing to weight by (the network's first window, or a new lead without a
        // row of weights on chain) screens the uploads against its secret gradient.
        let trust = lead ? await manifestTrust(d, net.peers, moving, lastTrust, w) : null;
        if (lead && !trust) {
          const screen = await screenUploads(d, o, plan, thetaW, outerW, got.accepted, secret);
          trust = screen.trust;
          job.other = screen.other; // scoring reuses the secret gradient
        }
        const aggregated = trust
          ? await publishManifest(d, ctx, model, plan, got.accepted, trust)
          : [];
        // The next window's peers, read now (its start is this deadline), while no
        // gradient runs: onnxruntime-node runs a graph synchronously on this thread, so
        // during scoring every chain answer waits behind a run, and a metagraph read
        // (several round trips) outlasts its timeout on a busy machine.
        net.peers = await refreshPeers(d.chain, d.netuid, net.peers);
        peersRead = true;
        // 5. Score w's uploads at θ_w (until the next deadline), in the background.
        scoring = scoreJob(job)
          .then((r) => report(job, r, aggregated))
          .catch((e) => {
            log.warn(`Window ${w}: scoring failed (${(e as Error).message})`);
            d.metrics.inc("boltzmann_windows_skipped_total", {}, 1, "Windows skipped after errors");
          });
      } catch (e) {
        if (e instanceof Stopped) throw e;
        log.warn(`Window ${w}: skipped (${(e as Error).message})`);
        d.metrics.inc("boltzmann_windows_skipped_total", {}, 1, "Windows skipped after errors");
      }
    }
  } catch (e) {
    if (!(e instanceof Stopped)) throw e;
  } finally {
    await scoring;
    await weightsInFlight;
    clock.stop();
  }
}

/** What window w's background scoring needs from the loop. */
interface Scoring {
  plan: WindowPlan;
  thetaW: Tensors;
  outerW: OuterState;
  got: { accepted: Fetched[]; rejected: { uid: number; hotkey: string; reason: string }[] };
  miners: Peer[];
  deadlineMs: number;
  digest: string;
  resynced: boolean;
  lead: boolean;
  /** The gradient on the secret pages at θ_w, when the lead's screen computed it. */
  other?: Tensors;
}

/** What scoring window w gave. */
type Scored = Awaited<ReturnType<typeof scoreUploads>> & { heldOut: number };

/**
 * Brings our θ to window w. A follower catches up on the lead's manifests (waiting for
 * the newest until the deadline). The lead is the authority: when its θ is not at w
 * (it starts, restarts, or just took the lead) it catches up on what it published
 * before as far as it can, then declares its θ to be θ_w and publishes a checkpoint so
 * that everyone re-syncs to it. Returns whether we re-synced.
 */
async function holdTheta<K>(
  d: ValidatorDeps<K>,
  ctx: UploadContext,
  model: ModelAt,
  history: History,
  clock: BlockClock,
  plan: WindowPlan,
  lead: boolean,
  ledBefore: boolean,
): Promise<boolean> {
  const w = plan.window;
  const opts = { ...ctx, outer: outerHparams(d.hp) };
  if (!lead) {
    const waitManifest = (v: number) => waitForManifest(history, v, clock, plan.deadline, d.signal);
    return (await catchUp(model, w, history, { ...opts, waitManifest })).resynced;
  }
  let resynced = false;
  const fresh = model.window !== w || !ledBefore;
  if (model.window !== w) {
    try {
      resynced = (await catchUp(model, w, history, { ...opts, waitManifest: history.manifest }))
        .resynced;
    } catch (e) {
      log.warn(
        `Window ${w}: leading from our own θ of window ${model.window} (${(e as Error).message})`,
      );
    }
    model.window = w;
  }
  if (fresh || w % d.hp.checkpointInterval === 0) {
    await publishCheckpoint(d.store, d.hp, model, d.signer.address).catch((e) =>
      log.warn(`Checkpoint of window ${w} not published: ${(e as Error).message}`)
    );
  }
  return resynced;
}

/**
 * What the lead weights window w's uploads by: its own moving scores (what its next
 * weights on chain will say, without their lag), else its row of weights on chain (a
 * lead that restarted or just took the lead), else null (nothing to weight by yet). The
 * chain not answering must not stop the manifest: last window's row serves.
 */
async function manifestTrust<K>(
  d: ValidatorDeps<K>,
  peers: readonly Peer[],
  moving: ReadonlyMap<number, MovingScore>,
  lastTrust: { value: Map<string, number> | null },
  w: number,
): Promise<Map<string, number> | null> {
  const own = trustOf(moving);
  if (own.size > 0) return own;
  return await trustWeights(d.chain, d.netuid, peers).then(
    (t) => (lastTrust.value = t),
    (e) => {
      log.warn(`Window ${w}: on-chain weights unread (${(e as Error).message})`);
      return lastTrust.value;
    },
  );
}

/** Hotkey → moving score, for the uids whose moving score is positive. */
function trustOf(moving: ReadonlyMap<number, MovingScore>): Map<string, number> {
  return new Map(
    [...moving.values()].filter((m) => m.value > 0).map((m) => [m.hotkey, m.value]),
  );
}

/**
 * The lead's step at the deadline: the manifest of exactly the valid uploads it fetched
 * whose uploader it trusts (a positive weight in `trust`), weighted by it; applied to
 * θ_w → θ_{w+1}; signed and published with both digests.
 * @returns the uids aggregated
 */
async function publishManifest<K>(
  d: ValidatorDeps<K>,
  ctx: UploadContext,
  model: ModelAt,
  plan: WindowPlan,
  accepted: readonly Fetched[],
  trust: ReadonlyMap<string, number>,
): Promise<number[]> {
  const use = accepted
    .map((f) => ({ f, weight: trust.get(f.peer.hotkey) ?? 0 }))
    .filter((x) => x.weight > 0);
  const entries: ManifestEntry[] = use.map(({ f, weight }) => ({
    uid: f.peer.uid,
    hotkey: f.peer.hotkey,
    sha256: sha256Hex(f.raw),
    bytes: f.raw.length,
    weight,
  }));
  const baseDigest = paramsDigest(model.params);
  const digest = applyUpdates(
    model,
    use.map(({ f, weight }) => ({ update: f.update, weight, key: f.peer.hotkey })),
    outerHparams(d.hp),
  );
  const bytes = encodeManifest({
    window: plan.window,
    lead: d.signer.address,
    fingerprint: ctx.fingerprint,
    codec: ctx.spec.name,
    baseDigest,
    digest,
    uploads: entries,
  }, d.signer);
  await putObject(ctx, d.store, plan.keys.manifest(d.signer.address), bytes);
  log.info(
    `Window ${plan.window}: manifest of ${entries.length} uploads, θ → ${digest.slice(0, 12)}`,
  );
  return entries.map((e) => e.uid).sort((a, b) => a - b);
}

function cloneOuter(s: OuterState): OuterState {
  return { ...s, m: clone(s.m), v: clone(s.v) };
}

/**
 * Pages of the validator's secret choosing for window w: a window number no miner is
 * assigned near w, derived from the secret, so no miner can train for them.
 */
export function secretWindow(secret: number, w: number): number {
  return 1_000_000 + (((secret ^ Math.imul(w + 1, 0x9e3779b1)) >>> 0) % 1_000_000_000);
}

/** The update at θ_w on the pages of the validator's secret choosing for window w. */
async function secretGradient<K>(
  d: ValidatorDeps<K>,
  o: ValidatorOptions,
  w: number,
  thetaW: Tensors,
  outerW: OuterState,
  secret: number,
): Promise<Tensors> {
  const k = Math.max(1, o.evalBatches ?? 2);
  const batches = (await d.dataset.batchesFor(secretWindow(secret, w), 0)).slice(0, k);
  await yieldToIO();
  return await computeUpdate(d.trainer, thetaW, batches, outerW, outerHparams(d.hp));
}

/**
 * The lead's trust when it has nothing to weight by (the network's first window): weight
 * 1 for each upload whose cosine with the secret gradient is at least half the median of
 * the positive cosines and at least 4/√(values), 0 for the rest. One gradient, so the
 * manifest is not late. An honest update at θ_w agrees with any gradient there (cosine ≈ 0.5 at the start); noise,
 * zeros and anything not a gradient at θ_w do not; a cheater that passes uploads a
 * gradient-like update, harmless to θ, and its scores then leave it out.
 */
async function screenUploads<K>(
  d: ValidatorDeps<K>,
  o: ValidatorOptions,
  plan: WindowPlan,
  thetaW: Tensors,
  outerW: OuterState,
  accepted: readonly Fetched[],
  secret: number,
): Promise<{ trust: Map<string, number>; other: Tensors }> {
  const other = await secretGradient(d, o, plan.window, thetaW, outerW, secret);
  // A non-finite update's cosine is NaN, which passes no comparison below.
  const cos = accepted.map((f) => cosine(f.update, other));
  // Noise has a cosine of about N(0, 1/n) with any gradient: without the floor 4/√n, a
  // lone noise upload (its own median) would pass half the time.
  const bar = Math.max(median(cos.filter((c) => c > 0)) / 2, 4 / Math.sqrt(numel(other)));
  const trust = new Map<string, number>();
  accepted.forEach((f, i) => {
    if (cos[i]! > 0 && cos[i]! >= bar) trust.set(f.peer.hotkey, 1);
  });
  log.info(
    `Window ${plan.window}: no scores yet; ${trust.size} of ${accepted.length} uploads agree with our gradient`,
  );
  return { trust, other };
}

/** Scores window w's uploads at θ_w; see the module doc and docs/INCENTIVES.md. */
async function scoreUploads<K>(
  d: ValidatorDeps<K>,
  o: ValidatorOptions,
  clock: BlockClock,
  plan: WindowPlan,
  thetaW: Tensors,
  outerW: OuterState,
  got: { accepted: Fetched[]; rejected: { uid: number; reason: string }[] },
  previous: { hotkey: string; sample: Tensors }[],
  x: {
    deadlineMs: number;
    recentNorms: number[];
    secret: number;
    miners: readonly Peer[];
    /** The gradient on the secret pages at θ_w, if already computed. */
    other?: Tensors;
    /** Hotkeys with a moving score (scored before). */
    known: ReadonlySet<string>;
  },
) {
  const w = plan.window;
  const k = Math.max(1, o.evalBatches ?? 2);
  const grad = async (batches: Int32Array[]) => {
    await yieldToIO();
    return await computeUpdate(d.trainer, thetaW, batches, outerW, outerHparams(d.hp));
  };
  // The next deadline comes first: a validator that is late scores nothing this window.
  const late = () => clock.block >= plan.scoreEnd;
  let otherGrad: Tensors | null = x.other ?? null;
  const other = async () => otherGrad ??= await secretGradient(d, o, w, thetaW, outerW, x.secret);

  // Fair rotation: start at a different miner each window; stop when the next deadline
  // is due (the rest stay unscored this window, their moving score unchanged). Uploaders
  // never scored go first: until they are, the lead leaves their uploads out of θ.
  const list = got.accepted;
  const start = list.length ? w % list.length : 0;
  const rotated = [...list.slice(start), ...list.slice(0, start)];
  const known = (f: Fetched) => x.known.has(f.peer.hotkey);
  const order = [...rotated.filter((f) => !known(f)), ...rotated.filter(known)];
  const measured: MeasuredUpload[] = [];
  const info = new Map<number, { loss?: number; batches?: number; theta?: string }>();
  const unscored: number[] = [];
  // Uploads that earn nothing whatever the gradient says (non-finite, zero, a copy of
  // last window's, a norm far outside recent honest norms) are measured without one:
  // the validator's time goes to the uploads that can earn.
  const dup = { ...DEFAULT_SCORE_PARAMS, duplicateCenter: true };
  const found = findDuplicates(
    order.map((f) => f.update),
    previous.map((p) => p.sample),
    dup.duplicateCos,
    dup.duplicateSample,
    dup.duplicateOverlap,
    {
      center: true,
      currentKeys: order.map((f) => f.peer.hotkey),
      previousKeys: previous.map((p) => p.hotkey),
    },
  );
  const stale = found.stale;
  // Copies of one another are measured one after another (the group follows its first
  // member in the rotation), and a group cut by the window's end stays unscored whole:
  // which copy keeps the credit is decided only with every copy measured.
  const groupOf = new Map<number, number[]>();
  for (const g of found.groups) for (const i of g) groupOf.set(i, g);
  const seq: number[] = [];
  for (let i = 0; i < order.length; i++) {
    if (!seq.includes(i)) seq.push(...(groupOf.get(i) ?? [i]));
  }
  // The norm reference: the median norm of every upload of this window (cheaters are
  // the minority, so a ×10 upload cannot move it), else of recently earned norms. Never
  // only of what earned before: a cheater that earned while honest uploads went unscored
  // would set the reference, and honest norms would then look "far" for good.
  const norms = order.map((f) => (allFinite(f.update) ? norm(f.update) : NaN));
  const usable = norms.filter((n) => n > 0);
  const refNorms = usable.length >= 3 ? usable : x.recentNorms;
  const ref = refNorms.length >= 3 ? median(refNorms) : 0;
  const normFar = new Set<number>();
  const hopeless = (f: Fetched, i: number) => {
    const n = norms[i]!;
    if (n > 0 && normFactor(n, ref, DEFAULT_SCORE_PARAMS.normTolerance) === 0) {
      normFar.add(f.peer.uid);
      return true;
    }
    return !(n > 0) || stale.has(i);
  };
  const measuredAt = new Set<number>();
  for (const i of seq) {
    const f = order[i]!;
    const cheap = hopeless(f, i);
    if (late() || (!cheap && measured.length > 0 && clock.block >= plan.scoreEnd - 1)) {
      unscored.push(f.peer.uid);
      continue;
    }
    const g = await other();
    // The pages the upload says it used, up to k: a one-batch update is compared with the
    // gradient of that batch (closer, and half the work of two).
    const kOwn = Math.min(k, Math.max(1, f.meta.batches ?? k));
    const own = cheap ? g : await grad((await d.dataset.batchesFor(w, f.peer.uid)).slice(0, kOwn));
    measured.push({
      uid: f.peer.uid,
      hotkey: f.peer.hotkey,
      delta: f.update,
      stats: measureDelta(f.update, own, g),
      late: f.uploadedAt > x.deadlineMs + 1000,
      uploadedAt: f.uploadedAt,
    });
    info.set(f.peer.uid, { loss: f.meta.loss, batches: f.meta.batches, theta: f.meta.theta });
    measuredAt.add(i);
  }
  for (const g of found.groups) {
    if (g.every((i) => measuredAt.has(i))) continue;
    for (const i of g) {
      const uid = order[i]!.peer.uid, at = measured.findIndex((m) => m.uid === uid);
      if (at >= 0) (measured.splice(at, 1), unscored.push(uid));
    }
  }
  const scores: WindowScore[] = scoreWindow(
    measured,
    previous.map((p) => p.sample),
    { duplicateCenter: true },
    refNorms,
    previous.map((p) => p.hotkey),
  );
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
  // A registered miner with a bucket but no valid upload this window scores 0.
  const seen = new Set(list.map((f) => f.peer.uid));
  for (const p of x.miners) {
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
  return { scored, unscored };
}
