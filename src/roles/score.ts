/**
 * The incentive rule: how a validator turns one window's uploads into scores, the
 * per-uid moving average, and the weights it sets on chain. Pure functions, no I/O; the
 * rule and the reason for each part are in docs/INCENTIVES.md.
 *
 * In short, for a miner's decoded update δ (protocol v2: a gradient-like direction at
 * the shared θ_w, so descent is cos > 0; the names say "delta" from the seed protocol):
 * `score = max(0, cos(δ, ĝ_own) − cos(δ, ĝ_other) − z·σ₀) · normFactor`, and 0 for
 * late, non-finite, zero, stale, duplicate or non-descent uploads. ĝ_own is the gradient
 * at θ_w on the miner's own pages, ĝ_other on pages of the validator's secret choosing,
 * σ₀ the spread that margin would have for an update carrying no information. Copies
 * are found by cosine on a stride sample, and for sparse (top-k) codecs also by the
 * overlap of their non-zero coordinates.
 *
 * Deliberately left out: computing gradients, fetching uploads, talking to the chain.
 *
 * @module
 */
import type { Tensors } from "../model/params.ts";
import { allFinite, cosine, dotArray, norm, numel } from "../tensor_math.ts";

/** Knobs of the rule; defaults in {@link DEFAULT_SCORE_PARAMS}. */
export interface ScoreParams {
  /** Margins below `z` null standard deviations count as chance and earn nothing. */
  z: number;
  /**
   * Norms within [ref/tol, ref·tol] of the window's reference norm keep full credit, those
   * beyond a factor tol² none (see {@link normFactor}); must be > 1.
   */
  normTolerance: number;
  /** Absolute norm above which a delta earns nothing (Infinity: none). */
  normCap: number;
  /** Two uploads with cosine at or above this (on the comparison sample) are copies. */
  duplicateCos: number;
  /**
   * Two sparse uploads (top-k codecs: under half the sampled coordinates non-zero) whose
   * non-zero coordinates overlap at least this much (Jaccard, on the sample) are copies.
   */
  duplicateOverlap: number;
  /**
   * Compare uploads after subtracting the window's mean (protocol v2: gradients at one θ
   * share a common direction that would make honest uploads look like copies).
   */
  duplicateCenter: boolean;
  /** Coordinates compared by the duplicate detector (a fixed stride sample). */
  duplicateSample: number;
  /** Use the mean of per-tensor cosines instead of one cosine over all tensors. */
  perTensor: boolean;
}

/** The defaults; docs/INCENTIVES.md says why each has its value. */
export const DEFAULT_SCORE_PARAMS: Readonly<ScoreParams> = Object.freeze({
  z: 3,
  normTolerance: 1.5,
  normCap: Infinity,
  duplicateCos: 0.97,
  duplicateOverlap: 0.9,
  duplicateCenter: false,
  duplicateSample: 1 << 16,
  perTensor: false,
});

/**
 * The per-tensor variant the original validator used: the mean over tensors of each
 * tensor's own cosine (a tensor where either side is all zeros counts as 0).
 */
export function cosinePerTensor(a: Tensors, b: Tensors): number {
  if (a.size === 0) return 0;
  let s = 0;
  for (const [name, x] of a) {
    const y = b.get(name);
    if (!y || y.length !== x.length || a.size !== b.size) {
      throw new RangeError(`Cannot compare tensors: '${name}' differs in length or is missing`);
    }
    const nx = Math.sqrt(dotArray(x, x)), ny = Math.sqrt(dotArray(y, y));
    if (nx > 0 && ny > 0) s += dotArray(x, y) / (nx * ny);
  }
  return s / a.size;
}

// ---------------------------------------------------------------------------------------
// One delta against the validator's gradients.

/** What {@link measureDelta} finds; enough to score without keeping the gradients. */
export interface DeltaStats {
  /** cos(δ, ĝ_own). */
  cosOwn: number;
  /** cos(δ, ĝ_other). */
  cosOther: number;
  /** cosOwn − cosOther. */
  margin: number;
  /**
   * σ₀: the standard deviation the margin would have if δ were a random direction
   * (√((2 − 2·cos(ĝ_own, ĝ_other)) / n) over n values; per tensor in the per-tensor variant).
   */
  noise: number;
  /** ‖δ‖. */
  norm: number;
  /** False when δ holds NaN or ±Infinity (then every other field is 0). */
  finite: boolean;
  /** False when δ's names or lengths do not match the gradients (then all fields 0). */
  shapeOk: boolean;
}

function sameShape(a: Tensors, b: Tensors): boolean {
  if (a.size !== b.size) return false;
  for (const [name, x] of a) if (b.get(name)?.length !== x.length) return false;
  return true;
}

/**
 * Measures a delta against the gradient on the miner's own pages and on other pages.
 *
 * @param delta the miner's δ at the window's indices (untrusted: may hold NaN or wrong shapes)
 * @param gradOwn the validator's ĝ on the miner's assigned pages, same indices
 * @param gradOther the validator's ĝ on pages that are not the miner's, same indices
 * @param perTensor use the per-tensor cosine variant
 * @throws {RangeError} when gradOwn and gradOther differ in names or lengths (a caller bug)
 */
export function measureDelta(
  delta: Tensors,
  gradOwn: Tensors,
  gradOther: Tensors,
  perTensor = false,
): DeltaStats {
  if (!sameShape(gradOwn, gradOther)) {
    throw new RangeError(
      "Cannot measure delta: gradOwn and gradOther differ in names or lengths; " +
        "gather both at the same indices",
    );
  }
  const empty = { cosOwn: 0, cosOther: 0, margin: 0, noise: 0, norm: 0 };
  if (!sameShape(delta, gradOwn)) return { ...empty, finite: true, shapeOk: false };
  if (!allFinite(delta)) return { ...empty, finite: false, shapeOk: true };
  const cos = perTensor ? cosinePerTensor : cosine;
  const cosOwn = cos(delta, gradOwn), cosOther = cos(delta, gradOther);
  let noise: number;
  if (perTensor) {
    let v = 0;
    for (const [name, x] of gradOwn) {
      const one = new Map([[name, x]]), other = new Map([[name, gradOther.get(name)!]]);
      v += (2 - 2 * cosine(one, other)) / x.length;
    }
    noise = gradOwn.size === 0 ? 0 : Math.sqrt(v) / gradOwn.size;
  } else {
    const n = numel(gradOwn);
    noise = n === 0 ? 0 : Math.sqrt((2 - 2 * cosine(gradOwn, gradOther)) / n);
  }
  return {
    cosOwn,
    cosOther,
    margin: cosOwn - cosOther,
    noise,
    norm: norm(delta),
    finite: true,
    shapeOk: true,
  };
}

/** A miner's score for one window, with the numbers behind it and why it lost credit. */
export interface WindowScore {
  /** Non-negative; 0 for any upload that earns nothing. */
  score: number;
  cosOwn: number;
  cosOther: number;
  margin: number;
  noise: number;
  norm: number;
  /** Reference norm the norm factor used (0: none). */
  refNorm: number;
  /** Why the score is 0 or reduced: `late`, `shape`, `non-finite`, `zero`, `stale`,
   * `duplicate`, `not-descent`, `no-margin`, `norm-cap`, `norm-high`, `norm-low`. */
  reasons: string[];
}

/** Facts about an upload that come from the whole window, not from δ alone. */
export interface ScoreContext {
  /** Median norm of the window's credible uploads (0 or absent: no norm penalty). */
  refNorm?: number;
  /** Uploaded after the window's deadline. */
  late?: boolean;
  /** A copy of another upload of the same window that keeps the credit. */
  duplicate?: boolean;
  /** A copy of an upload of the previous window. */
  stale?: boolean;
}

/**
 * The norm factor, with r = max(n/ref, ref/n): 1 while r ≤ tol, 0 from r ≥ tol², and
 * linear in log r between (so ×10 or ×0.1 earns nothing at the default tol 1.5).
 */
export function normFactor(n: number, ref: number, tolerance: number): number {
  if (!(ref > 0)) return 1;
  if (!(n > 0)) return 0;
  const r = Math.max(n / ref, ref / n);
  if (r <= tolerance) return 1;
  return Math.max(0, 2 - Math.log(r) / Math.log(tolerance));
}

/** Applies the rule to measured stats; see the module doc and docs/INCENTIVES.md. */
export function finalizeScore(
  s: DeltaStats,
  ctx: ScoreContext = {},
  params: Readonly<ScoreParams> = DEFAULT_SCORE_PARAMS,
): WindowScore {
  const refNorm = ctx.refNorm ?? 0;
  const out: WindowScore = {
    score: 0,
    cosOwn: s.cosOwn,
    cosOther: s.cosOther,
    margin: s.margin,
    noise: s.noise,
    norm: s.norm,
    refNorm,
    reasons: [],
  };
  const zeroIf = (cond: boolean | undefined, reason: string) => {
    if (cond) out.reasons.push(reason);
  };
  zeroIf(ctx.late, "late");
  zeroIf(!s.shapeOk, "shape");
  zeroIf(!s.finite, "non-finite");
  zeroIf(s.shapeOk && s.finite && s.norm === 0, "zero");
  zeroIf(ctx.stale, "stale");
  zeroIf(ctx.duplicate, "duplicate");
  zeroIf(s.norm > params.normCap, "norm-cap");
  if (out.reasons.length > 0) return out;
  if (s.cosOwn <= 0) {
    out.reasons.push("not-descent");
    return out;
  }
  const excess = s.margin - params.z * s.noise;
  if (!(excess > 0)) {
    out.reasons.push("no-margin");
    return out;
  }
  const f = normFactor(s.norm, refNorm, params.normTolerance);
  if (f < 1) out.reasons.push(s.norm > refNorm ? "norm-high" : "norm-low");
  out.score = excess * f;
  return out;
}

/** Input of {@link scoreDelta}. */
export interface ScoreInput extends ScoreContext {
  delta: Tensors;
  gradOwn: Tensors;
  gradOther: Tensors;
  params?: Partial<ScoreParams>;
}

/**
 * Scores one delta on its own: {@link measureDelta} then {@link finalizeScore}. The
 * window-level facts (reference norm, duplicate, stale, late) come in through the input;
 * {@link scoreWindow} derives them for a whole window.
 */
export function scoreDelta(input: ScoreInput): WindowScore {
  const p = { ...DEFAULT_SCORE_PARAMS, ...input.params };
  const s = measureDelta(input.delta, input.gradOwn, input.gradOther, p.perTensor);
  return finalizeScore(s, input, p);
}

// ---------------------------------------------------------------------------------------
// The whole window: duplicates, stale copies, the reference norm.

/**
 * What the duplicate detector keeps of an upload: its stride sample as one tensor, so a
 * validator can compare next window's uploads with this one's without holding it whole.
 */
export function duplicateSample(
  a: Tensors,
  k = DEFAULT_SCORE_PARAMS.duplicateSample,
  n = numel(a),
): Tensors {
  return new Map([["sample", Float32Array.from(sample(a, k, n))]]);
}

/**
 * Stride sample of a delta's values (all tensors in key order, flattened). A tensor
 * that is already a sample (one tensor named `sample`) is returned as it is.
 */
function sample(a: Tensors, k: number, total = numel(a)): Float64Array {
  if (a.size === 1 && a.has("sample")) return Float64Array.from(a.get("sample")!);
  return strideSample(a, k, total);
}

function strideSample(a: Tensors, k: number, n: number): Float64Array {
  const stride = Math.max(1, Math.ceil(n / k));
  const out = new Float64Array(Math.ceil(n / stride));
  let g = 0, j = 0;
  for (const x of a.values()) {
    // Global positions 0, stride, 2·stride, ... of the flattened delta.
    let i = (stride - (g % stride)) % stride;
    for (; i < x.length; i += stride) out[j++] = x[i]!;
    g += x.length;
  }
  return out;
}

function cosArr(x: Float64Array, y: Float64Array): number {
  if (x.length !== y.length) return 0;
  let xy = 0, xx = 0, yy = 0;
  for (let i = 0; i < x.length; i++) {
    xy += x[i]! * y[i]!;
    xx += x[i]! * x[i]!;
    yy += y[i]! * y[i]!;
  }
  return xx === 0 || yy === 0 ? 0 : xy / Math.sqrt(xx * yy);
}

/** Jaccard overlap of the non-zero coordinates; -1 unless both are sparse (< half non-zero). */
function overlap(x: Float64Array, y: Float64Array): number {
  if (x.length !== y.length) return -1;
  let both = 0, either = 0, nx = 0, ny = 0;
  for (let i = 0; i < x.length; i++) {
    const a = x[i] !== 0, b = y[i] !== 0;
    if (a) nx++;
    if (b) ny++;
    if (a && b) both++;
    if (a || b) either++;
  }
  if (2 * nx >= x.length || 2 * ny >= y.length || either === 0) return -1;
  return both / either;
}

/** The element-wise mean of equally long samples. */
function meanOf(xs: readonly Float64Array[]): Float64Array {
  const m = new Float64Array(xs[0]!.length);
  for (const x of xs) for (let i = 0; i < m.length; i++) m[i]! += x[i]! / xs.length;
  return m;
}

/** Subtracts the element-wise mean of `xs` from each (in place), when there are ≥ 3. */
function centerAll(xs: Float64Array[]): void {
  if (xs.length < 3) return;
  const m = meanOf(xs);
  for (const x of xs) for (let i = 0; i < m.length; i++) x[i]! -= m[i]!;
}

/** Result of {@link findDuplicates}. */
export interface Duplicates {
  /** Groups (size ≥ 2) of current uploads that are copies of each other, by index. */
  groups: number[][];
  /** Indices of current uploads that copy an upload of the previous window. */
  stale: Set<number>;
}

/**
 * Finds near-identical uploads: pairs of the current window whose cosine on a fixed
 * stride sample of `sampleSize` coordinates is ≥ `threshold`, or, both sparse, whose
 * non-zero coordinates overlap ≥ `overlapThreshold` (grouped transitively), and current
 * uploads that match any upload of the previous window the same way (`previous` may hold
 * full updates or their {@link duplicateSample}s).
 * All-zero and non-finite deltas never match (they are zeroed by other rules).
 */
export function findDuplicates(
  current: readonly Tensors[],
  previous: readonly Tensors[],
  threshold = DEFAULT_SCORE_PARAMS.duplicateCos,
  sampleSize = DEFAULT_SCORE_PARAMS.duplicateSample,
  overlapThreshold = DEFAULT_SCORE_PARAMS.duplicateOverlap,
  o: { center?: boolean; currentKeys?: readonly string[]; previousKeys?: readonly string[] } = {},
): Duplicates {
  const usable = (t: Tensors) => allFinite(t) && norm(t) > 0;
  const n = current.length ? numel(current[0]!) : 0;
  const cur = current.map((t) => (usable(t) ? sample(t, sampleSize, n) : null));
  const prevKeys = previous.map((_, i) => o.previousKeys?.[i]).filter((_, i) =>
    usable(previous[i]!)
  );
  const prev = previous.filter(usable).map((t) => sample(t, sampleSize, n));
  // Supports compare the uploads as sent (centering would make every support the union).
  const raw = new Map<Float64Array, Float64Array>();
  const curUsable = cur.filter((x): x is Float64Array => x !== null);
  // Against the previous window, current uploads are centered by the previous window's
  // mean (when it has one: 3 or more): a copy of an old upload minus that mean is the old
  // upload's own residual, while the two windows' means differ (θ moved), so centering
  // each side by its own window would hide the copy.
  const centerPrev = o.center === true && prev.length >= 3;
  const m = centerPrev ? meanOf(prev) : null;
  const vsPrev = new Map(curUsable.map((x) => [x, m ? x.map((v, i) => v - m[i]!) : x.slice()]));
  for (const x of [...cur, ...prev]) if (x) raw.set(x, x.slice());
  if (centerPrev) centerAll(prev);
  // At one shared θ every honest gradient shares a large common direction: within a
  // window, compare what is left after its mean, where honest uploads differ and copies
  // do not (fewer than 3: no common part to remove).
  if (o.center && curUsable.length >= 3) centerAll(curUsable);
  const same = (a: Float64Array, b: Float64Array) =>
    cosArr(a, b) >= threshold ||
    overlap(raw.get(a) ?? a, raw.get(b) ?? b) >= overlapThreshold;
  const sameAsOld = (a: Float64Array, b: Float64Array) =>
    cosArr(vsPrev.get(a)!, b) >= threshold ||
    overlap(raw.get(a) ?? a, raw.get(b) ?? b) >= overlapThreshold;
  const parent = cur.map((_, i) => i);
  const root = (i: number): number => (parent[i] === i ? i : (parent[i] = root(parent[i]!)));
  for (let i = 0; i < cur.length; i++) {
    for (let j = i + 1; j < cur.length; j++) {
      const a = cur[i], b = cur[j];
      if (a && b && same(a, b)) parent[root(j)] = root(i);
    }
  }
  const byRoot = new Map<number, number[]>();
  cur.forEach((_, i) => byRoot.set(root(i), [...(byRoot.get(root(i)) ?? []), i]));
  const stale = new Set<number>();
  cur.forEach((a, i) => {
    const own = o.currentKeys?.[i];
    // One's own last upload is not "stale" to oneself: error feedback carries part of it.
    if (a && prev.some((b, j) => (own === undefined || prevKeys[j] !== own) && sameAsOld(a, b))) {
      stale.add(i);
    }
  });
  return { groups: [...byRoot.values()].filter((g) => g.length > 1), stale };
}

/** Median of a list (mean of the middle two for even length); 0 for an empty list. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** One measured upload of the window being scored. */
export interface MeasuredUpload {
  uid: number;
  hotkey: string;
  delta: Tensors;
  stats: DeltaStats;
  late?: boolean;
  /** When the validator first saw the upload (ms); breaks near-ties between copies. */
  uploadedAt?: number;
}

/**
 * Which copy in a group of near-identical uploads keeps the credit: among the members
 * whose margin is within z·σ₀ of the best margin (the pages that produced a delta explain
 * it best), the earliest `uploadedAt`; then the larger margin; then the smaller hotkey.
 */
export function keeper(group: readonly MeasuredUpload[], z: number): MeasuredUpload {
  const best = Math.max(...group.map((u) => u.stats.margin));
  const near = group.filter((u) => u.stats.margin >= best - z * u.stats.noise);
  const t = (u: MeasuredUpload) => u.uploadedAt ?? Infinity;
  return near.sort((a, b) =>
    t(a) - t(b) || b.stats.margin - a.stats.margin || (a.hotkey < b.hotkey ? -1 : 1)
  )[0]!;
}

/**
 * Scores every measured upload of a window:
 * 1. copies of an upload of the previous window are `stale`;
 * 2. within a group of near-identical uploads only the {@link keeper} keeps credit, the
 *    others are `duplicate`;
 * 3. the reference norm is the median norm of the uploads that would earn a score
 *    before the norm factor (credible uploads), so a ×10 or ×0 delta stands out;
 * 4. {@link finalizeScore} for each.
 *
 * @param uploads every upload of window w the validator measured
 * @param previous the deltas of window w−1 (all uploaders)
 * @param recentNorms norms of uploads that earned a score in recent windows; they join
 *   this window's credible norms in the reference median
 * @param previousKeys the uploaders of `previous` (an upload is not stale to its own uploader)
 * @returns scores in the order of `uploads`
 */
export function scoreWindow(
  uploads: readonly MeasuredUpload[],
  previous: readonly Tensors[],
  params: Partial<ScoreParams> = {},
  recentNorms: readonly number[] = [],
  previousKeys?: readonly string[],
): WindowScore[] {
  const p = { ...DEFAULT_SCORE_PARAMS, ...params };
  const dups = findDuplicates(
    uploads.map((u) => u.delta),
    previous,
    p.duplicateCos,
    p.duplicateSample,
    p.duplicateOverlap,
    {
      center: p.duplicateCenter,
      currentKeys: uploads.map((u) => u.hotkey),
      previousKeys: previousKeys,
    },
  );
  const loser = new Set<number>();
  for (const g of dups.groups) {
    const keep = keeper(g.map((i) => uploads[i]!), p.z);
    for (const i of g) if (uploads[i] !== keep) loser.add(i);
  }
  const ctx = (i: number): ScoreContext => ({
    late: uploads[i]!.late,
    duplicate: loser.has(i),
    stale: dups.stale.has(i),
  });
  const credible = uploads
    .map((u, i) => ({ u, s: finalizeScore(u.stats, ctx(i), p) }))
    .filter((x) => x.s.score > 0)
    .map((x) => x.u.stats.norm);
  // The reference includes credible norms of recent windows: when a validator scored
  // only a few uploads this window, one scaled delta must not be its own reference.
  const refNorm = median([...credible, ...recentNorms]);
  return uploads.map((u, i) => finalizeScore(u.stats, { ...ctx(i), refNorm }, p));
}

// ---------------------------------------------------------------------------------------
// Moving average and weights.

/** A uid's moving score, tied to the hotkey that earned it. */
export interface MovingScore {
  hotkey: string;
  value: number;
}

/**
 * One step of the per-uid moving average: `value = alpha·prev + (1 − alpha)·score` for
 * each uid scored this window. A uid whose hotkey changed starts again from 0 (a new
 * owner must not inherit the old one's standing); uids not scored this window keep
 * their value (the validator may evaluate only some miners per window — pass score 0
 * for a miner known to have uploaded nothing).
 *
 * @param alpha weight of the past, in [0, 1)
 * @returns a new map; `prev` is not modified
 */
export function updateMoving(
  prev: ReadonlyMap<number, MovingScore>,
  windowScores: ReadonlyMap<number, { hotkey: string; score: number }>,
  alpha: number,
): Map<number, MovingScore> {
  if (!(alpha >= 0 && alpha < 1)) {
    throw new RangeError(`Invalid moving-average alpha ${alpha}: expected a number in [0, 1)`);
  }
  const out = new Map(prev);
  for (const [uid, { hotkey, score }] of windowScores) {
    const old = prev.get(uid);
    const base = old && old.hotkey === hotkey ? old.value : 0;
    const s = Number.isFinite(score) ? Math.max(0, score) : 0;
    out.set(uid, { hotkey, value: alpha * base + (1 - alpha) * s });
  }
  return out;
}

/**
 * Normalised non-negative weights from moving scores, uids ascending. All zero when no
 * uid has a positive score.
 */
export function weightsFromScores(
  moving: ReadonlyMap<number, MovingScore>,
): { uids: number[]; weights: number[] } {
  const uids = [...moving.keys()].sort((a, b) => a - b);
  const vals = uids.map((u) => Math.max(0, moving.get(u)!.value));
  const total = vals.reduce((a, b) => a + b, 0);
  return { uids, weights: vals.map((v) => (total > 0 ? v / total : 0)) };
}
