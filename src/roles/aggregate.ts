/**
 * Robust, order-free application of peers' slices to the shared model: a scaled,
 * poisoned or broken slice must not blow the model up, and every participant that sees
 * the same slices must get the same bits whatever order they arrived in.
 *
 * Per peer and tensor: reject slices of the wrong shape, with NaN/±Inf, or (deltas) all
 * zero; clip each tensor's norm to the median norm of that tensor over the accepted
 * peers; then combine coordinate-wise by a weighted mean (default) or a median. Peers are
 * sorted by `key` (the hotkey) before any sum, and sums run in float64, so the result is
 * bit-identical for any arrival order. Pure: no I/O.
 *
 * @module
 */
import type { Tensors } from "../model/params.ts";
import { median } from "./score.ts";
import { normArray } from "../tensor_math.ts";

/** One peer's slice: values at the window's indices, one tensor per parameter. */
export interface PeerSlice {
  /** Unique, stable key (the uploader's hotkey); fixes the summation order. */
  key: string;
  values: Tensors;
  /** Relative weight in the mean (default 1; ≤ 0 leaves the peer out). */
  weight?: number;
}

/** How to combine peers. */
export interface AggregateOptions {
  /** `mean` (weighted, after clipping) or coordinate-wise `median` (weights only gate). */
  mode?: "mean" | "median";
  /** Clip each peer's tensor norm to the median over peers (default true). */
  clip?: boolean;
}

/** What happened to each peer. */
export interface AggregateReport {
  /** Keys combined, sorted. */
  used: string[];
  /** Keys left out, with the reason: `shape`, `non-finite`, `zero`, `weight`. */
  rejected: { key: string; reason: string }[];
  /** Per tensor, the clip norm used (0: no positive norms). */
  clipNorms: Map<string, number>;
}

function rejection(p: PeerSlice, lengths: Map<string, number>, dropZero: boolean): string | null {
  const w = p.weight ?? 1;
  if (!(Number.isFinite(w) && w > 0)) return "weight";
  if (p.values.size !== lengths.size) return "shape";
  for (const [name, n] of lengths) if (p.values.get(name)?.length !== n) return "shape";
  let nonzero = false;
  for (const x of p.values.values()) {
    for (let i = 0; i < x.length; i++) {
      const v = x[i]!;
      if (!Number.isFinite(v)) return "non-finite";
      if (v !== 0) nonzero = true;
    }
  }
  return dropZero && !nonzero ? "zero" : null;
}

/**
 * Combines peers' slices into one slice of the given lengths (see the module doc).
 * `selfWeight` adds an implicit all-zero member of that weight (used to average
 * deviations from one's own values). With no usable peer the result is all zeros.
 *
 * @param lengths number of values per parameter (the window's index counts)
 * @throws {RangeError} on two peers with the same key
 */
export function aggregate(
  peers: readonly PeerSlice[],
  lengths: ReadonlyMap<string, number>,
  opts: AggregateOptions & { dropZero?: boolean; selfWeight?: number } = {},
): { values: Tensors; report: AggregateReport } {
  const mode = opts.mode ?? "mean", clip = opts.clip ?? true, self = opts.selfWeight ?? 0;
  const sorted = [...peers].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i]!.key === sorted[i - 1]!.key) {
      throw new RangeError(`Cannot aggregate: two slices from '${sorted[i]!.key}'; pass one each`);
    }
  }
  const report: AggregateReport = { used: [], rejected: [], clipNorms: new Map() };
  const use: PeerSlice[] = [];
  const lens = new Map(lengths);
  for (const p of sorted) {
    const why = rejection(p, lens, opts.dropZero ?? true);
    if (why) report.rejected.push({ key: p.key, reason: why });
    else (use.push(p), report.used.push(p.key));
  }
  const weights = use.map((p) => p.weight ?? 1);
  const total = weights.reduce((a, b) => a + b, self);
  const out: Tensors = new Map();
  for (const [name, n] of lens) {
    const xs = use.map((p) => p.values.get(name)!);
    const norms = xs.map(normArray);
    const cap = median(norms.filter((v) => v > 0));
    report.clipNorms.set(name, cap);
    const scale = norms.map((v) => (clip && v > cap ? cap / v : 1));
    const acc = new Float32Array(n);
    if (mode === "mean") {
      if (total > 0) {
        const sum = new Float64Array(n);
        xs.forEach((x, k) => {
          const f = (weights[k]! * scale[k]!) / total;
          for (let j = 0; j < n; j++) sum[j]! += f * x[j]!;
        });
        acc.set(sum);
      }
    } else {
      const m = xs.length + (self > 0 ? 1 : 0);
      const buf = new Float64Array(m);
      for (let j = 0; m > 0 && j < n; j++) {
        for (let k = 0; k < xs.length; k++) buf[k] = scale[k]! * xs[k]![j]!;
        if (self > 0) buf[m - 1] = 0;
        acc[j] = medianInPlace(buf);
      }
    }
    out.set(name, acc);
  }
  return { values: out, report };
}

/** Median of a small buffer by insertion sort (mean of the middle two for even sizes). */
function medianInPlace(b: Float64Array): number {
  for (let i = 1; i < b.length; i++) {
    const v = b[i]!;
    let j = i - 1;
    for (; j >= 0 && b[j]! > v; j--) b[j + 1] = b[j]!;
    b[j + 1] = v;
  }
  const h = b.length >> 1;
  return b.length % 2 === 1 ? b[h]! : (b[h - 1]! + b[h]!) / 2;
}

function lengthsOf(
  params: Tensors,
  indices: ReadonlyMap<string, Uint32Array>,
): Map<string, number> {
  const out = new Map<string, number>();
  for (const [name, idx] of indices) {
    const p = params.get(name);
    if (!p) throw new RangeError(`Cannot apply slices: the model has no parameter '${name}'`);
    if (idx.length > 0 && idx[idx.length - 1]! >= p.length) {
      throw new RangeError(
        `Cannot apply slices: index ${idx[idx.length - 1]} is out of range for '${name}' ` +
          `(${p.length} values); derive indices from the same parameter table`,
      );
    }
    out.set(name, idx.length);
  }
  return out;
}

/**
 * Applies peers' slices to `params` at a window's indices, in place ({@link applyDeltas},
 * {@link averageStates}).
 *
 * @param indicesByParam sorted indices per parameter; every peer's tensor has that length
 * @throws {RangeError} on an unknown parameter, an index out of range, or a repeated key
 */
export type ApplySlices = (
  params: Tensors,
  indicesByParam: ReadonlyMap<string, Uint32Array>,
  slices: readonly PeerSlice[],
  opts?: AggregateOptions,
) => AggregateReport;

/**
 * `params[name][indices[j]] += sign · values[name][j]`, unless no peer was used (then
 * nothing moves). With sign ±1 the product is exact: the same bits as `+=` or `−=`.
 */
function addAt(
  params: Tensors,
  indicesByParam: ReadonlyMap<string, Uint32Array>,
  { values, report }: { values: Tensors; report: AggregateReport },
  sign: 1 | -1,
): AggregateReport {
  if (report.used.length === 0) return report;
  for (const [name, idx] of indicesByParam) {
    const p = params.get(name)!, d = values.get(name)!;
    for (let j = 0; j < idx.length; j++) p[idx[j]!]! += sign * d[j]!;
  }
  return report;
}

/**
 * Applies peers' deltas: `params[name][indices[j]] −= aggregated[j]` (a delta is
 * before − after, so applying it subtracts). Deltas that are all zero are left out
 * (they carry nothing and would only dilute the mean).
 */
export const applyDeltas: ApplySlices = (params, indicesByParam, deltas, opts = {}) =>
  addAt(params, indicesByParam, aggregate(deltas, lengthsOf(params, indicesByParam), opts), -1);

/**
 * Averages peers' `state` slices with one's own values at the indices: with no clipping,
 * `(own + Σ w·peer) / (1 + Σ w)`. Robustly, it combines the deviations `peer − own`
 * (clipped per tensor to their median norm, so one peer cannot drag a parameter far) with
 * one's own zero deviation, and adds the result to `own`.
 */
export const averageStates: ApplySlices = (params, indicesByParam, states, opts = {}) => {
  const lengths = lengthsOf(params, indicesByParam);
  const deviations = states.map((s): PeerSlice => {
    const values: Tensors = new Map();
    for (const [name, x] of s.values) {
      const idx = indicesByParam.get(name), p = params.get(name);
      if (!idx || !p || idx.length !== x.length) {
        values.set(name, x); // wrong shape: the aggregator rejects it
        continue;
      }
      values.set(name, x.map((v, j) => v - p[idx[j]!]!));
    }
    return { key: s.key, values, weight: s.weight };
  });
  const combined = aggregate(deviations, lengths, { ...opts, dropZero: false, selfWeight: 1 });
  return addAt(params, indicesByParam, combined, 1);
};
