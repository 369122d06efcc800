/**
 * Update codecs of protocol v2 (docs/PROTOCOL.md, "Codecs"): how a miner's update becomes
 * the few bytes it uploads, with error feedback, and how every receiver turns them back
 * into a dense update, strictly. Pure functions. Left out: the signed file around the
 * tensors (upload.ts), combining many miners' updates (outer.ts) and choosing a codec
 * (the network's hyper-parameters do).
 *
 * Spec grammar (`parseCodec`):
 * - `f32`: every value as float32 (the dense reference, 1×).
 * - `dense:QUANT[:CHUNK[:REST]]`: every value, quantized per chunk of CHUNK values (default 128)
 *   against one float32 scale per chunk; QUANT is `qB` (sign + B−1-bit magnitude of the
 *   chunk's max |x|, B in 2..8), `s4` (4 levels at ±0.4528σ, ±1.5104σ: the Lloyd–Max
 *   levels of a normal, σ the chunk's RMS; 2 bits), `s8` (the 8 Lloyd–Max levels ±0.2451σ …
 *   ±2.152σ; 3 bits, σ sent as bfloat16) or `s3` (3 levels 0, ±1.2240σ; five
 *   per byte), or `eB` (sign + B−1-bit exponent: |level| = r^−k of the chunk's max |x|,
 *   r = 8, 4, 2 for B = 2, 3, 4, nearest in log scale — relative precision for small values,
 *   no dead zone, the sign always kept). A chunk whose scale is 0 sends no codes and no
 *   scale: a `P.mask` bit marks each chunk that has them. REST,
 *   when given, is the quantizer of every tensor but the vocabulary's (`VOCAB_TENSORS`):
 *   `dense:s8:128:q4` codes the embedding and lm_head with s8, the blocks with q4.
 * - `topk:CHUNK:K[:VALUES]`: per chunk, the K largest |x| (fewer when fewer are nonzero),
 *   indices packed in ⌈log2 CHUNK⌉ bits, values `f32`, `b1` (sign × the chunk's mean |x|
 *   of the kept) or `b2` (sign + which of two magnitudes, default).
 * - `slices:R`: the seed's random-index slices at compression R (indices derived from the
 *   window's seed by src/window.ts, never sent), float32 values.
 *
 * Every decoded value is `fround(LEVEL[code] · scale)` (one float64 product rounded once),
 * so every machine decodes the same bits.
 *
 * @module
 */
import type { Dtype } from "../safetensors.ts";
import { sliceIndices } from "../window.ts";
import { packBits, packedBytes, paddingClear, tritBytes, unpackBits } from "./bits.ts";
import { type Reject, rejectionClass } from "../rejection.ts";

/** A parsed codec spec. `name` is the canonical text. */
export interface CodecSpec {
  readonly name: string;
  readonly kind: "f32" | "dense" | "topk" | "slices";
  /** Values per chunk (dense, topk). */
  readonly chunk: number;
  /** Kept values per chunk (topk). */
  readonly k: number;
  /** `qB`, `eB`, `s4`, `s8`, `s3` (dense) or `f32`, `b1`, `b2` (topk). */
  readonly quant: string;
  /**
   * Dense: the quantizer of every tensor but the vocabulary's ({@link VOCAB_TENSORS});
   * `quant` when the spec names none.
   */
  readonly rest: string;
  /** Compression of the slices codec. */
  readonly compression: number;
}

/** The default codec (see docs/PERFORMANCE.md, "Protocol v2 frontier"). */
export const DEFAULT_CODEC = "dense:s8:128:q4";

/**
 * The vocabulary tensors (one row per token): a dense spec's QUANT applies to these, its
 * REST to every other tensor. They are 95 % of the tiny model's values, the transformer
 * blocks the other 5 %, so finer codes for the blocks cost few bytes (docs/PERFORMANCE.md).
 */
export const VOCAB_TENSORS: readonly string[] = ["model.embed_tokens.weight", "lm_head.weight"];

/** The quantizer (or top-k values) of tensor `name` under `spec`: REST applies to dense only. */
function quantOf(spec: CodecSpec, name: string): string {
  return spec.kind === "dense" && !VOCAB_TENSORS.includes(name) ? spec.rest : spec.quant;
}

/** One uploaded tensor: raw little-endian bytes of `dtype`. */
export interface EncodedTensor {
  dtype: Dtype;
  shape: number[];
  bytes: Uint8Array;
}

/** What a miner uploads: its tensors by name, and their total payload bytes. */
export interface EncodedUpdate {
  codec: string;
  tensors: Map<string, EncodedTensor>;
  /** Sum of the tensors' byte lengths (the signed file adds its header; see upload.ts). */
  bytes: number;
}

/** Extra inputs some codecs need: the window's index seed (slices). */
export interface CodecContext {
  seed?: string;
}

/**
 * An upload failed validation; `reason` is a short stable code, the message says what
 * exactly. `UploadRejected.reasons` lists every reason.
 */
export const UploadRejected = rejectionClass("UploadRejected", "Upload rejected", [
  "too-large",
  "truncated",
  "bad-layout",
  "bad-metadata",
  "wrong-format",
  "wrong-codec",
  "wrong-fingerprint",
  "wrong-window",
  "wrong-hotkey",
  "missing-tensor",
  "extra-tensor",
  "wrong-dtype",
  "wrong-size",
  "payload-hash",
  "bad-signature",
  "bad-scale",
  "chunk-over-k",
  "index-range",
  "index-order",
  "value-range",
  "non-finite",
]);
/** An upload rejection reason. */
export type UploadRejectReason = (typeof UploadRejected.reasons)[number];
const reject: Reject<UploadRejectReason> = UploadRejected.reject;

/** Lloyd–Max levels of a unit normal (in units of σ) and their decision thresholds. */
const S4_LEVELS = [-1.5104, -0.4528, 0.4528, 1.5104];
const S4_CUT = 0.9816;
const S3_LEVELS = [-1.224, 0, 1.224];
/** 8-level Lloyd–Max of a unit normal (Max 1960): levels and the positive cuts. */
const S8_LEVELS = [-2.152, -1.344, -0.756, -0.2451, 0.2451, 0.756, 1.344, 2.152];
const S8_CUTS = [0.5006, 1.05, 1.748];
const S3_CUT = 0.612;
const EXP_CUTS: Record<number, number[]> = { 2: expCuts(2), 3: expCuts(3), 4: expCuts(4) };
/** Largest accepted scale: keeps every decoded value finite. */
export const MAX_SCALE = 1e30;

function usage(text: string, why: string): never {
  throw new RangeError(
    `Invalid codec '${text}': ${why}; use f32, dense:s8:128:q4, dense:q4[:128], dense:e3[:128], dense:s4[:128], dense:s8[:128], dense:s3[:128], ` +
      `topk:4096:64[:b2|b1|f32] or slices:100`,
  );
}

function intIn(text: string, s: string | undefined, lo: number, hi: number, what: string): number {
  if (s === undefined || !/^[1-9]\d*$/.test(s) || +s < lo || +s > hi) {
    usage(text, `${what} must be an integer in [${lo}, ${hi}]`);
  }
  return +s;
}

/**
 * Parses a codec spec (grammar in the module doc).
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(parseCodec("topk:64:4").name, "topk:64:4:b2"); // the canonical text
 * assert.deepEqual([parseCodec("dense:s3").kind, parseCodec("dense:s3").chunk], ["dense", 128]);
 * assert.throws(() => parseCodec("dense:q4:4"), /CHUNK must be an integer in \[8, /);
 * ```
 * @throws {RangeError} one line naming the problem and the accepted forms
 */
export function parseCodec(text: string): CodecSpec {
  const parts = text.trim().split(":");
  const base = { chunk: 0, k: 0, quant: "", rest: "", compression: 0 };
  switch (parts[0]) {
    case "f32":
      if (parts.length !== 1) usage(text, "f32 takes no arguments");
      return { ...base, name: "f32", kind: "f32" };
    case "dense": {
      if (parts.length < 2 || parts.length > 4) usage(text, "expected dense:QUANT[:CHUNK[:REST]]");
      const q = parts[1]!, rest = parts[3] ?? q;
      for (const x of [q, rest]) {
        if (!/^(q[2-8]|e[2-4]|s8|s4|s3)$/.test(x)) usage(text, `unknown quantizer '${x}'`);
      }
      const chunk = parts[2] === undefined ? 128 : intIn(text, parts[2], 8, 1 << 20, "CHUNK");
      const name = `dense:${q}:${chunk}${rest === q ? "" : `:${rest}`}`;
      return { ...base, name, kind: "dense", chunk, quant: q, rest };
    }
    case "topk": {
      if (parts.length < 3 || parts.length > 4) usage(text, "expected topk:CHUNK:K[:VALUES]");
      const chunk = intIn(text, parts[1], 2, 1 << 16, "CHUNK");
      const k = intIn(text, parts[2], 1, chunk, "K");
      const q = parts[3] ?? "b2";
      if (!/^(f32|b1|b2)$/.test(q)) usage(text, `unknown top-k values '${q}'`);
      return { ...base, name: `topk:${chunk}:${k}:${q}`, kind: "topk", chunk, k, quant: q };
    }
    case "slices": {
      if (parts.length !== 2) usage(text, "expected slices:COMPRESSION");
      const compression = intIn(text, parts[1], 1, 1 << 30, "COMPRESSION");
      return { ...base, name: `slices:${compression}`, kind: "slices", compression };
    }
    default:
      usage(text, `unknown codec '${parts[0]}'`);
  }
}

/** Bits of one dense code, or 0 for trits. */
function denseBits(q: string): number {
  return q[0] === "q" || q[0] === "e" ? +q.slice(1) : q === "s4" ? 2 : q === "s8" ? 3 : 0;
}

/** Ratio between consecutive magnitudes of the exponent quantizer `eB`. */
function expRatio(b: number): number {
  return b === 2 ? 8 : b === 3 ? 4 : 2;
}

/** Decision thresholds of `eB`: |t| ≥ T[k] picks magnitude k (T[k] = √(1/r) / r^k). */
function expCuts(b: number): number[] {
  const r = expRatio(b), n = 1 << (b - 1), out: number[] = [];
  let p = 1;
  for (let k = 0; k < n - 1; k++, p *= r) out.push(Math.sqrt(1 / r) / p);
  return out;
}

/** Level of a dense code (in units of the chunk's scale). */
function denseLevel(q: string, code: number): number {
  if (q === "s4") return S4_LEVELS[code]!;
  if (q === "s3") return S3_LEVELS[code]!;
  if (q === "s8") return S8_LEVELS[code]!;
  const b = +q.slice(1), m = (1 << (b - 1)) - 1;
  const mag = code & m;
  if (q[0] === "e") {
    let l = 1;
    for (let k = 0; k < mag; k++) l /= expRatio(b);
    return code >> (b - 1) ? -l : l;
  }
  return code >> (b - 1) ? -(mag / m) : mag / m;
}

/** Number of codes a dense quantizer can emit (the valid range). */
function denseCodeCount(q: string): number {
  return q === "s3" ? 3 : 1 << denseBits(q);
}

/** The dtype of a dense quantizer's scales: BF16 for `s8` (its 3-bit codes leave no room). */
function scaleDtype(q: string): "F32" | "BF16" {
  return q === "s8" ? "BF16" : "F32";
}

const BF = new Float32Array(1), BU = new Uint32Array(BF.buffer);

/**
 * `x` rounded to bfloat16 (nearest, ties to even), as a float32 value.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(bf16Round(1 + 2 ** -9), 1); // under half a step (2^-7 near 1): down
 * assert.equal(bf16Round(1 + 3 * 2 ** -8), 1 + 2 ** -6); // a tie: to the even mantissa
 * ```
 */
export function bf16Round(x: number): number {
  BF[0] = x;
  const u = BU[0]!;
  BU[0] = ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) << 16;
  return BF[0]!;
}

function chunks(n: number, c: number): number {
  return Math.ceil(n / c);
}

function f32Bytes(x: Float32Array): Uint8Array {
  return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
}

function u8(bytes: Uint8Array): EncodedTensor {
  return { dtype: "U8", shape: [bytes.length], bytes };
}

function f32t(x: Float32Array): EncodedTensor {
  return { dtype: "F32", shape: [x.length], bytes: f32Bytes(x) };
}

/** Float32 values that are bfloat16 already, as a BF16 tensor (their upper halves). */
function bf16t(x: Float32Array): EncodedTensor {
  const u = new Uint32Array(x.buffer, x.byteOffset, x.length), h = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) h[i] = u[i]! >>> 16;
  return { dtype: "BF16", shape: [x.length], bytes: new Uint8Array(h.buffer) };
}

/** Quickselect: the k-th largest (1-based) of a[0..n). Reorders a. */
function kthLargest(a: Float64Array, n: number, k: number): number {
  let lo = 0, hi = n - 1;
  const target = k - 1;
  while (lo < hi) {
    const pivot = a[(lo + hi) >> 1]!;
    let i = lo, j = hi;
    while (i <= j) {
      while (a[i]! > pivot) i++;
      while (a[j]! < pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i] = a[j]!;
        a[j] = t;
        i++;
        j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else break;
  }
  return a[target]!;
}

/**
 * Codes of every dense quantizer as small numbers, so that the hot loops switch once
 * per chunk, never compare strings per value.
 */
const DenseKind = { S4: 0, S3: 1, Q: 2, E: 3, S8: 4 } as const;
type DenseKind = typeof DenseKind[keyof typeof DenseKind];

/** A dense quantizer resolved once per tensor: kind, code bits, levels and cuts. */
interface DenseQuant {
  kind: DenseKind;
  /** Bits per code (0 for the trits of s3). */
  bits: number;
  /** LEVEL[code], in units of the chunk's scale (denseLevel, tabulated). */
  level: Float64Array;
  /** Codes a chunk can hold: count, and the one invalid code of qB ("−0"), else −1. */
  count: number;
  negZero: number;
}

function denseQuant(q: string): DenseQuant {
  const bits = denseBits(q), count = denseCodeCount(q);
  const level = Float64Array.from({ length: count }, (_, c) => denseLevel(q, c));
  const kind = q === "s4"
    ? DenseKind.S4
    : q === "s3"
    ? DenseKind.S3
    : q === "s8"
    ? DenseKind.S8
    : q[0] === "q"
    ? DenseKind.Q
    : DenseKind.E;
  return { kind, bits, level, count, negZero: kind === DenseKind.Q ? 1 << (bits - 1) : -1 };
}

/**
 * The dense codec of one tensor, in place on `x` (the error-feedback buffer), chunk by
 * chunk while the chunk is in cache: x += u (each sum rounded to float32, refused when
 * not finite), the chunk's scale, its codes, packed as they are made (LSB first, or five
 * trits per byte), and x −= the decoded value fround(LEVEL[code] · scale). The code of
 * t = x / scale: s4 and s3 by their decision thresholds, qB the magnitude round(|t|·m)
 * (m = 2^(B−1)−1; magnitude 0 has no sign), eB the number of thresholds T[k] above |t|
 * (T decreasing: the first k with |t| ≥ T[k]). Codes are sums of comparisons, not
 * branches: the signs of a gradient are a coin toss no branch predictor can learn.
 */
function encodeDense(
  q: string,
  C: number,
  name: string,
  x: Float32Array,
  u: Float32Array,
): [Float32Array, Uint8Array] {
  const n = x.length, nc = chunks(n, C), Q = denseQuant(q), level = Q.level;
  const scales = new Float32Array(nc);
  const bits = Q.bits, b1 = bits - 1, m = (1 << b1) - 1, kind = Q.kind;
  const byMax = kind === DenseKind.Q || kind === DenseKind.E;
  const byExp = kind === DenseKind.E;
  const cuts = Float64Array.from(byExp ? EXP_CUTS[bits]! : []);
  const nCuts = cuts.length;
  const out = new Uint8Array(kind === DenseKind.S3 ? tritBytes(n) : packedBytes(n, bits));
  // Decoded values of this chunk's codes (s4, s3, s8).
  const D = new Float64Array(8);
  const [c0, c1, c2] = S8_CUTS as [number, number, number];
  // Bit writer (acc holds nb < 8 pending bits) and trit writer (trits of weight p).
  let pos = 0, acc = 0, nb = 0, p = 1;
  for (let c = 0; c < nc; c++) {
    const lo = c * C, hi = Math.min(n, lo + C);
    // Error feedback and the scale: the max |x| (qB, eB) or the RMS (s4, s3), float64.
    let s = 0;
    for (let i = lo; i < hi; i++) {
      const w = x[i]! + u[i]!;
      if (w - w !== 0) notFinite(name, w, i);
      x[i] = w;
      const f = x[i]!;
      s = byMax ? Math.max(s, Math.abs(f)) : s + f * f;
    }
    if (!byMax) s = Math.fround(Math.sqrt(s / (hi - lo)));
    if (kind === DenseKind.S8) s = bf16Round(s);
    scales[c] = s;
    if (!(s > 0)) continue;
    // One loop per Lloyd–Max quantizer, each with its own copy of the bit writer, on
    // purpose: this is the encoder's whole cost, and both merges tried (the code chosen per
    // element, or codes into a chunk buffer packed by one shared loop) were 3–35 % slower
    // (2026-12-02). qB and eB (not the default) share one loop at about the same speed.
    switch (kind) {
      case DenseKind.S4:
        for (let k = 0; k < 4; k++) D[k] = Math.fround(level[k]! * s);
        for (let i = lo; i < hi; i++) {
          const v = x[i]!, t = v / s;
          const code = +(t >= -S4_CUT) + +(t >= 0) + +(t >= S4_CUT);
          x[i] = v - D[code]!;
          acc |= code << nb;
          if ((nb += 2) === 8) {
            out[pos++] = acc;
            acc = nb = 0;
          }
        }
        break;
      case DenseKind.S8:
        for (let k = 0; k < 8; k++) D[k] = Math.fround(level[k]! * s);
        for (let i = lo; i < hi; i++) {
          const v = x[i]!, t = v / s;
          // 4 + k for t ≥ 0, 3 − k below, k = the number of cuts |t| reaches.
          const code = +(t > -c2) + +(t > -c1) + +(t > -c0) + +(t >= 0) + +(t >= c0) +
            +(t >= c1) + +(t >= c2);
          x[i] = v - D[code]!;
          acc |= code << nb;
          nb += 3;
          if (nb >= 8) {
            out[pos++] = acc & 255;
            acc >>>= 8;
            nb -= 8;
          }
        }
        break;
      case DenseKind.S3:
        for (let k = 0; k < 3; k++) D[k] = Math.fround(level[k]! * s);
        for (let i = lo; i < hi; i++) {
          const v = x[i]!, t = v / s;
          const code = +(t >= -S3_CUT) + +(t > S3_CUT);
          x[i] = v - D[code]!;
          acc += code * p;
          if ((p *= 3) === 243) {
            out[pos++] = acc;
            acc = 0;
            p = 1;
          }
        }
        break;
      case DenseKind.Q:
      case DenseKind.E:
        // qB and eB share one loop: a sign bit above a magnitude (qB's magnitude 0 has
        // no sign). The branch on `byExp` is the same for the whole tensor.
        for (let i = lo; i < hi; i++) {
          const v = x[i]!, t = v / s, a = Math.abs(t);
          let mag = 0;
          if (byExp) { for (let j = 0; j < nCuts; j++) mag += +(a < cuts[j]!); }
          else mag = Math.min(m, Math.round(a * m));
          const code = ((+(t < 0) & +(byExp || mag > 0)) << b1) | mag;
          x[i] = v - Math.fround(level[code]! * s);
          acc |= code << nb;
          nb += bits;
          if (nb >= 8) {
            out[pos++] = acc & 255;
            acc >>>= 8;
            nb -= 8;
          }
        }
        break;
    }
  }
  if (kind === DenseKind.S3 ? p > 1 : nb > 0) out[pos++] = acc;
  // Fewer bytes than the bound only when a chunk's scale is 0 (it sends no codes).
  return [scales, pos === out.length ? out : out.slice(0, pos)];
}

/** The refusal of an error-feedback sum that is not finite (a damaged update). */
function notFinite(name: string, v: number, i: number): never {
  throw new RangeError(
    `Refusing to encode '${name}': value ${v} at ${i} is not finite (damaged update)`,
  );
}

/**
 * Encodes one tensor of the error-feedback buffer `x` (x += u first where the codec
 * fuses it, dense) and subtracts what the tensors decode to from it, in place (x −=
 * decoded, each difference rounded once to float32).
 */
function encodeTensor(
  spec: CodecSpec,
  name: string,
  x: Float32Array,
  u: Float32Array,
  ctx: CodecContext,
): [string, EncodedTensor][] {
  const n = x.length;
  if (spec.kind === "dense") {
    const q = quantOf(spec, name);
    const [all, packed] = encodeDense(q, spec.chunk, name, x, u);
    // Chunks of scale 0 (embedding rows never touched) are marked in a mask, not sent.
    const scales = all.filter((v) => v > 0);
    const st = scaleDtype(q) === "BF16" ? bf16t(scales) : f32t(scales);
    if (scales.length === all.length) return [[`${name}.scale`, st], [`${name}.code`, u8(packed)]];
    const mask = packBits(Array.from(all, (v) => +(v > 0)), 1);
    return [[`${name}.mask`, u8(mask)], [`${name}.scale`, st], [`${name}.code`, u8(packed)]];
  }
  for (let i = 0; i < n; i++) {
    const v = (x[i] = x[i]! + u[i]!);
    if (v - v !== 0) notFinite(name, v, i);
  }
  if (spec.kind === "f32") {
    const sent = x.slice();
    x.fill(0); // x − x
    return [[name, f32t(sent)]];
  }
  if (spec.kind === "slices") {
    const idx = sliceIndices(seedOf(ctx), name, n, spec.compression);
    const v = new Float32Array(idx.length);
    for (let j = 0; j < idx.length; j++) {
      v[j] = x[idx[j]!]!;
      x[idx[j]!] = 0;
    }
    return [[name, f32t(v)]];
  }
  // topk
  const C = spec.chunk, nc = chunks(n, C), q = spec.quant;
  const k = spec.k, ib = indexBits(C), nS = q === "b2" ? 2 : q === "b1" ? 1 : 0;
  const counts = k > 255 ? new Uint16Array(nc) : new Uint8Array(nc);
  const scales = new Float32Array(nc * nS);
  const most = Math.min(n, nc * k);
  const idxCodes = new Uint32Array(most), valCodes = new Uint8Array(most);
  const vals = q === "f32" ? new Float32Array(most) : new Float32Array(0);
  const scratch = new Float64Array(C);
  const keep = new Int32Array(k);
  let total = 0;
  for (let c = 0; c < nc; c++) {
    const lo = c * C, hi = Math.min(n, lo + C);
    let nz = 0, kept = 0;
    for (let i = lo; i < hi; i++) if (x[i] !== 0) scratch[nz++] = Math.abs(x[i]!);
    if (nz <= k) {
      for (let i = lo; i < hi; i++) if (x[i] !== 0) keep[kept++] = i;
    } else {
      const t = kthLargest(scratch, nz, k);
      let above = 0;
      for (let i = lo; i < hi; i++) if (Math.abs(x[i]!) > t) above++;
      let ties = k - above;
      for (let i = lo; i < hi; i++) {
        const a = Math.abs(x[i]!);
        if (a > t || (a === t && ties-- > 0)) keep[kept++] = i;
      }
    }
    counts[c] = kept;
    const at = total;
    total += kept;
    for (let e = 0; e < kept; e++) idxCodes[at + e] = keep[e]! - lo;
    if (q === "f32") {
      for (let e = 0; e < kept; e++) {
        const i = keep[e]!;
        vals[at + e] = x[i]!;
        x[i] = 0; // x − x
      }
      continue;
    }
    let sum = 0;
    for (let e = 0; e < kept; e++) sum += Math.abs(x[keep[e]!]!);
    const mean = kept ? sum / kept : 0;
    if (q === "b1") {
      const s = Math.fround(mean);
      scales[c] = s;
      for (let e = 0; e < kept; e++) {
        const i = keep[e]!, neg = x[i]! < 0 ? 1 : 0;
        valCodes[at + e] = neg;
        x[i] = x[i]! - Math.fround((neg ? -1 : 1) * s);
      }
      continue;
    }
    let sl = 0, nl = 0, sh = 0, nh = 0;
    for (let e = 0; e < kept; e++) {
      const a = Math.abs(x[keep[e]!]!);
      if (a > mean) (sh += a, nh++);
      else (sl += a, nl++);
    }
    const lo_ = Math.fround(nl ? sl / nl : 0), hi_ = Math.fround(nh ? sh / nh : lo_);
    scales[2 * c] = lo_;
    scales[2 * c + 1] = hi_;
    for (let e = 0; e < kept; e++) {
      const i = keep[e]!, v = x[i]!, a = Math.abs(v), neg = v < 0 ? 1 : 0, big = a > mean ? 1 : 0;
      valCodes[at + e] = (neg << 1) | big;
      x[i] = v - Math.fround((neg ? -1 : 1) * (big ? hi_ : lo_));
    }
  }
  const out: [string, EncodedTensor][] = [
    [`${name}.count`, {
      dtype: k > 255 ? "U16" : "U8",
      shape: [nc],
      bytes: new Uint8Array(counts.buffer),
    }],
    [`${name}.index`, u8(packBits(idxCodes.subarray(0, total), ib))],
  ];
  if (q === "f32") out.push([`${name}.value`, f32t(vals.slice(0, total))]);
  else {
    out.push([`${name}.scale`, f32t(scales)]);
    out.push([`${name}.code`, u8(packBits(valCodes.subarray(0, total), q === "b2" ? 2 : 1))]);
  }
  return out;
}

function indexBits(chunk: number): number {
  return Math.max(1, Math.ceil(Math.log2(chunk)));
}

function seedOf(ctx: CodecContext): string {
  if (ctx.seed === undefined) {
    throw new RangeError("The slices codec needs the window's index seed (ctx.seed)");
  }
  return ctx.seed;
}

/**
 * Error feedback and compression, in place on `ef`: ef += update; the tensors that
 * encode ef under `spec`; ef −= what they decode to (so what is dropped now is sent later).
 * Tensors are written in `update`'s order (the parameter table's).
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const spec = parseCodec("dense:q4:8");
 * const update = new Map([["w", new Float32Array([1, -0.5, 0.25, 0, 2, 2, -2, 1.5])]]);
 * const ef = new Map<string, Float32Array>();
 * const enc = encodeUpdate(spec, update, ef);
 * assert.equal(enc.bytes, 8); // one float32 scale and eight 4-bit codes
 * // What was not sent stays in the error-feedback buffer: sent + kept = the update.
 * const sent = decodeUpdate(spec, enc, [{ name: "w", shape: [8] }]).get("w")!;
 * sent.forEach((v, i) => assert.ok(Math.abs(v + ef.get("w")![i]! - update.get("w")![i]!) < 1e-6));
 * ```
 * @throws {RangeError} when ef lacks a tensor of update or sizes differ, or a value is not
 *   finite (ef is then partly updated: discard it)
 */
export function encodeUpdate(
  spec: CodecSpec,
  update: Map<string, Float32Array>,
  ef: Map<string, Float32Array>,
  ctx: CodecContext = {},
): EncodedUpdate {
  const tensors = new Map<string, EncodedTensor>();
  let bytes = 0;
  for (const [name, u] of update) {
    let e = ef.get(name);
    if (!e) ef.set(name, e = new Float32Array(u.length));
    if (e.length !== u.length) {
      throw new RangeError(
        `Error-feedback buffer of '${name}' has ${e.length} values, the update ${u.length}`,
      );
    }
    for (const [tn, t] of encodeTensor(spec, name, e, u, ctx)) {
      tensors.set(tn, t);
      bytes += t.bytes.length;
    }
  }
  return { codec: spec.name, tensors, bytes };
}

/**
 * The tensor names (in order) an upload of `spec` may hold for one parameter (a dense
 * `P.mask` only when some chunk's scale is 0).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.deepEqual(tensorNames(parseCodec("dense:q4:8"), "w"), ["w.mask", "w.scale", "w.code"]);
 * assert.deepEqual(tensorNames(parseCodec("f32"), "w"), ["w"]);
 * ```
 */
export function tensorNames(spec: CodecSpec, name: string): string[] {
  switch (spec.kind) {
    case "f32":
    case "slices":
      return [name];
    case "dense":
      return [`${name}.mask`, `${name}.scale`, `${name}.code`];
    case "topk":
      return spec.quant === "f32"
        ? [`${name}.count`, `${name}.index`, `${name}.value`]
        : [`${name}.count`, `${name}.index`, `${name}.scale`, `${name}.code`];
  }
}

/**
 * The largest payload (tensor bytes) a valid upload of `spec` can have for `params`:
 * the download cap before any parsing.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const params = [{ name: "w", shape: [2, 4] }];
 * assert.equal(payloadCap(parseCodec("f32"), params), 32);
 * assert.equal(payloadCap(parseCodec("dense:q4:8"), params), 8);
 * ```
 */
export function payloadCap(
  spec: CodecSpec,
  params: ReadonlyArray<{ name: string; shape: readonly number[] }>,
): number {
  let b = 0;
  for (const p of params) {
    const n = p.shape.reduce((a, d) => a * d, 1);
    const nc = spec.chunk ? chunks(n, spec.chunk) : 0;
    if (spec.kind === "f32") b += 4 * n;
    else if (spec.kind === "slices") b += 4 * Math.max(1, Math.floor(n / spec.compression));
    else if (spec.kind === "dense") {
      const q = quantOf(spec, p.name);
      const sb = scaleDtype(q) === "BF16" ? 2 : 4;
      const codes = (m: number) => q === "s3" ? tritBytes(m) : packedBytes(m, denseBits(q));
      // Every chunk sent, or a mask and every chunk but the shortest (the last).
      const last = n - (nc - 1) * spec.chunk;
      b += Math.max(sb * nc + codes(n), Math.ceil(nc / 8) + sb * (nc - 1) + codes(n - last));
    } else {
      const kk = Math.min(n, nc * spec.k);
      b += nc * (spec.k > 255 ? 2 : 1) + packedBytes(kk, indexBits(spec.chunk));
      if (spec.quant === "f32") b += 4 * kk;
      else {b += 4 * nc * (spec.quant === "b2" ? 2 : 1) +
          packedBytes(kk, spec.quant === "b2" ? 2 : 1);}
    }
  }
  return b;
}

function need(
  enc: EncodedUpdate,
  name: string,
  dtype: Dtype,
  len: number,
): EncodedTensor {
  const t = enc.tensors.get(name);
  if (!t) reject("missing-tensor", `tensor '${name}' is missing`);
  if (t.dtype !== dtype) reject("wrong-dtype", `tensor '${name}' is ${t.dtype}, expected ${dtype}`);
  const size = dtype === "F32" ? 4 : dtype === "U16" || dtype === "BF16" ? 2 : 1;
  if (t.shape.length !== 1 || t.shape[0] !== len || t.bytes.length !== len * size) {
    reject(
      "wrong-size",
      `tensor '${name}' has shape ${
        JSON.stringify(t.shape)
      } (${t.bytes.length} bytes), expected [${len}]`,
    );
  }
  return t;
}

/** The float32 values of `t`: a view, or a copy where the bytes sit at an unaligned offset. */
function f32View(t: EncodedTensor): Float32Array {
  const b = t.bytes;
  if (b.byteOffset % 4 === 0) return new Float32Array(b.buffer, b.byteOffset, b.length / 4);
  const c = b.slice();
  return new Float32Array(c.buffer, 0, c.length / 4);
}

function bf16View(t: EncodedTensor): Float32Array {
  const h = new Uint16Array(t.bytes.slice().buffer), u = new Uint32Array(h.length);
  for (let i = 0; i < h.length; i++) u[i] = h[i]! << 16;
  return new Float32Array(u.buffer);
}

function checkScales(name: string, s: Float32Array): void {
  for (let i = 0; i < s.length; i++) {
    const v = s[i]!;
    if (!(v >= 0 && v <= MAX_SCALE)) {
      reject("bad-scale", `scale ${i} of '${name}' is ${v}, expected a finite value in [0, 1e30]`);
    }
  }
}

/**
 * A dense tensor's scale per chunk, 0 for the chunks its mask leaves out. Exactly one
 * form is valid: without `P.mask` every scale is positive; with it, the mask marks at
 * least one chunk 0 and no bit past the last chunk, and `P.scale` holds the marked
 * chunks' scales, each positive.
 */
function denseScales(enc: EncodedUpdate, name: string, q: string, nc: number): Float32Array {
  const sd = scaleDtype(q), view = (t: EncodedTensor) => sd === "BF16" ? bf16View(t) : f32View(t);
  const positive = (s: Float32Array) => {
    checkScales(`${name}.scale`, s);
    const at = s.indexOf(0);
    if (at >= 0) {
      reject("bad-scale", `scale ${at} of '${name}.scale' is 0: chunks of scale 0 go in the mask`);
    }
    return s;
  };
  if (!enc.tensors.has(`${name}.mask`)) return positive(view(need(enc, `${name}.scale`, sd, nc)));
  const bits = unpackBits(need(enc, `${name}.mask`, "U8", packedBytes(nc, 1)).bytes, nc, 1);
  if (!bits) reject("bad-scale", `tensor '${name}.mask' marks chunks past ${nc}`);
  const marked = bits.reduce((a, b) => a + b, 0);
  if (marked === nc) reject("bad-scale", `tensor '${name}.mask' marks every chunk: send no mask`);
  const some = positive(view(need(enc, `${name}.scale`, sd, marked)));
  const out = new Float32Array(nc);
  for (let c = 0, j = 0; c < nc; c++) if (bits[c]) out[c] = some[j++]!;
  return out;
}

/**
 * The dense codes of one tensor into `out`: each chunk of positive scale s takes the
 * next codes, out[i] = fround(LEVEL[code] · s). Refuses (value-range) padding bits or
 * trits that are not 0, a byte of trits ≥ 243, and the "−0" code of qB, with the same
 * messages as unpacking first and checking the codes after.
 */
function decodeDense(
  q: string,
  C: number,
  name: string,
  scales: Float32Array,
  bytes: Uint8Array,
  m: number,
  out: Float32Array,
): void {
  const n = out.length, nc = scales.length, Q = denseQuant(q), level = Q.level;
  const s3 = Q.kind === DenseKind.S3;
  const padded = () =>
    reject("value-range", `tensor '${name}.code' holds a code or padding out of range`);
  if (
    s3 ? m % 5 !== 0 && bytes[bytes.length - 1]! >= 3 ** (m % 5) : !paddingClear(bytes, m * Q.bits)
  ) {
    padded();
  }
  const bits = Q.bits, mask = (1 << bits) - 1, negZero = Q.negZero;
  // Decoded values of this chunk's codes (up to 3 bits): one lookup per value.
  const D = new Float64Array(8);
  // Bit reader (acc holds nb unread bits) and trit reader (nb trits left in acc).
  let pos = 0, acc = 0, nb = 0, j = 0;
  for (let c = 0; c < nc; c++) {
    const s = scales[c]!;
    if (!(s > 0)) continue;
    const lo = c * C, hi = Math.min(n, lo + C);
    let i = lo;
    if (s3) {
      for (let k = 0; k < 3; k++) D[k] = Math.fround(level[k]! * s);
      for (; i < hi; i++, j++) {
        if (nb === 0) {
          acc = bytes[pos++]!;
          if (acc >= 243) padded();
          if (i + 5 <= hi) {
            // A whole byte: its five trits from the table.
            const at = acc * 5;
            out[i] = D[TRITS[at]!]!;
            out[i + 1] = D[TRITS[at + 1]!]!;
            out[i + 2] = D[TRITS[at + 2]!]!;
            out[i + 3] = D[TRITS[at + 3]!]!;
            out[i + 4] = D[TRITS[at + 4]!]!;
            i += 4;
            j += 4;
            continue;
          }
          nb = 5;
        }
        const t = acc % 3;
        acc = (acc - t) / 3;
        nb--;
        out[i] = D[t]!;
      }
    } else if (bits === 2) {
      // s4 (the default), e2 and q2: four codes per byte.
      for (let k = 0; k < 4; k++) D[k] = Math.fround(level[k]! * s);
      if (negZero < 0) {
        // Every code is a level: whole bytes while aligned.
        for (; nb === 0 && i + 4 <= hi; i += 4, j += 4) {
          const b = bytes[pos++]!;
          out[i] = D[b & 3]!;
          out[i + 1] = D[(b >>> 2) & 3]!;
          out[i + 2] = D[(b >>> 4) & 3]!;
          out[i + 3] = D[b >>> 6]!;
        }
      }
      for (; i < hi; i++, j++) {
        if (nb === 0) {
          acc = bytes[pos++]!;
          nb = 8;
        }
        const code = acc & 3;
        acc >>>= 2;
        nb -= 2;
        if (code === negZero) badCode(code, j, name, q);
        out[i] = D[code]!;
      }
    } else if (bits === 3 && negZero < 0) {
      // s8 and e3: every 3-bit code is a level; eight codes per three bytes while aligned.
      for (let k = 0; k < 8; k++) D[k] = Math.fround(level[k]! * s);
      for (; nb === 0 && i + 8 <= hi; i += 8, j += 8, pos += 3) {
        const w = bytes[pos]! | (bytes[pos + 1]! << 8) | (bytes[pos + 2]! << 16);
        out[i] = D[w & 7]!;
        out[i + 1] = D[(w >>> 3) & 7]!;
        out[i + 2] = D[(w >>> 6) & 7]!;
        out[i + 3] = D[(w >>> 9) & 7]!;
        out[i + 4] = D[(w >>> 12) & 7]!;
        out[i + 5] = D[(w >>> 15) & 7]!;
        out[i + 6] = D[(w >>> 18) & 7]!;
        out[i + 7] = D[w >>> 21]!;
      }
      for (; i < hi; i++, j++) {
        if (nb < 3) {
          acc |= bytes[pos++]! << nb;
          nb += 8;
        }
        out[i] = D[acc & 7]!;
        acc >>>= 3;
        nb -= 3;
      }
    } else {
      for (; i < hi; i++, j++) {
        if (nb < bits) {
          acc |= bytes[pos++]! << nb;
          nb += 8;
        }
        const code = acc & mask;
        acc >>>= bits;
        nb -= bits;
        if (code === negZero) badCode(code, j, name, q);
        out[i] = Math.fround(level[code]! * s);
      }
    }
  }
}

/** The five trits of every byte below 243 (TRITS[5·b + k] = trit k of b). */
const TRITS = (() => {
  const t = new Uint8Array(243 * 5);
  for (let b = 0; b < 243; b++) {
    for (let k = 0, v = b; k < 5; k++, v = (v - (v % 3)) / 3) {
      t[5 * b + k] = v % 3;
    }
  }
  return t;
})();

function badCode(code: number, j: number, name: string, q: string): never {
  reject("value-range", `code ${code} at ${j} of '${name}.code' is not a level of ${q}`);
}

function decodeTensor(
  spec: CodecSpec,
  enc: EncodedUpdate,
  name: string,
  n: number,
  ctx: CodecContext,
): Float32Array {
  const out = new Float32Array(n);
  if (spec.kind === "f32" || spec.kind === "slices") {
    const idx = spec.kind === "slices"
      ? sliceIndices(seedOf(ctx), name, n, spec.compression)
      : undefined;
    const v = f32View(need(enc, name, "F32", idx ? idx.length : n));
    for (let j = 0; j < v.length; j++) {
      const x = v[j]!;
      if (x - x !== 0) reject("non-finite", `tensor '${name}' holds ${x} at position ${j}`);
      out[idx ? idx[j]! : j] = x;
    }
    return out;
  }
  const C = spec.chunk, nc = chunks(n, C), q = quantOf(spec, name);
  if (spec.kind === "dense") {
    const scales = denseScales(enc, name, q, nc);
    let m = 0;
    for (let c = 0; c < nc; c++) if (scales[c]! > 0) m += Math.min(n, (c + 1) * C) - c * C;
    const codeT = need(
      enc,
      `${name}.code`,
      "U8",
      q === "s3" ? tritBytes(m) : packedBytes(m, denseBits(q)),
    );
    decodeDense(q, C, name, scales, codeT.bytes, m, out);
    return out;
  }
  const k = spec.k, ib = indexBits(C);
  const countT = need(enc, `${name}.count`, k > 255 ? "U16" : "U8", nc);
  const cb = countT.bytes.slice();
  const counts = k > 255 ? new Uint16Array(cb.buffer, 0, nc) : cb;
  let total = 0;
  for (let c = 0; c < nc; c++) {
    const len = Math.min(n, (c + 1) * C) - c * C;
    if (counts[c]! > Math.min(k, len)) {
      reject(
        "chunk-over-k",
        `chunk ${c} of '${name}' keeps ${counts[c]} values, at most ${Math.min(k, len)}`,
      );
    }
    total += counts[c]!;
  }
  const idx = unpackBits(need(enc, `${name}.index`, "U8", packedBytes(total, ib)).bytes, total, ib);
  if (!idx) reject("index-range", `tensor '${name}.index' has padding bits set`);
  let vals: Float32Array | undefined, scales: Float32Array | undefined;
  let codes: Uint32Array | null = null;
  const nS = q === "b2" ? 2 : 1;
  if (q === "f32") vals = f32View(need(enc, `${name}.value`, "F32", total));
  else {
    scales = f32View(need(enc, `${name}.scale`, "F32", nc * nS));
    checkScales(`${name}.scale`, scales);
    codes = unpackBits(need(enc, `${name}.code`, "U8", packedBytes(total, nS)).bytes, total, nS);
    if (!codes) reject("value-range", `tensor '${name}.code' has padding bits set`);
  }
  let j = 0;
  for (let c = 0; c < nc; c++) {
    const lo = c * C, len = Math.min(n, lo + C) - lo;
    let prev = -1;
    for (let e = 0; e < counts[c]!; e++, j++) {
      const i = idx[j]!;
      if (i >= len) reject("index-range", `index ${i} in chunk ${c} of '${name}' is ≥ ${len}`);
      if (i <= prev) {
        reject("index-order", `indices of chunk ${c} of '${name}' are not strictly ascending`);
      }
      prev = i;
      let v: number;
      if (vals) {
        v = vals[j]!;
        if (v - v !== 0) reject("non-finite", `value ${j} of '${name}' is ${v}`);
      } else {
        const code = codes![j]!;
        const s = q === "b2" ? scales![2 * c + (code & 1)]! : scales![c]!;
        v = Math.fround(((q === "b2" ? code >> 1 : code) ? -1 : 1) * s);
      }
      out[lo + i] = v;
    }
  }
  return out;
}

/**
 * Strict decoding of an upload's tensors into one dense update per parameter: sizes
 * from the parameter table, chunk counts within k, indices in range and ascending,
 * codes among the quantizer's levels, scales finite in [0, 1e30], values finite.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const spec = parseCodec("dense:q4:8");
 * const update = new Map([["w", new Float32Array([1, -0.5, 0.25, 0, 2, 2, -2, 1.5])]]);
 * const enc = encodeUpdate(spec, update, new Map());
 * const params = [{ name: "w", shape: [8] }];
 * assert.equal(decodeUpdate(spec, enc, params).get("w")![4], 2); // the chunk's max is exact
 * // An upload in another codec than the network's is refused with a stable reason.
 * assert.throws(() => decodeUpdate(parseCodec("f32"), enc, params), (e) =>
 *   e instanceof UploadRejected && e.reason === "wrong-codec");
 * ```
 * @throws {UploadRejected} naming the first problem
 */
export function decodeUpdate(
  spec: CodecSpec,
  enc: EncodedUpdate,
  params: ReadonlyArray<{ name: string; shape: readonly number[] }>,
  ctx: CodecContext = {},
): Map<string, Float32Array> {
  if (enc.codec !== spec.name) {
    reject("wrong-codec", `upload uses codec '${enc.codec}', the network '${spec.name}'`);
  }
  const expected = new Set<string>();
  for (const p of params) for (const t of tensorNames(spec, p.name)) expected.add(t);
  for (const t of enc.tensors.keys()) {
    if (!expected.has(t)) reject("extra-tensor", `unexpected tensor '${t}'`);
  }
  const out = new Map<string, Float32Array>();
  for (const p of params) {
    const n = p.shape.reduce((a, d) => a * d, 1);
    out.set(p.name, decodeTensor(spec, enc, p.name, n, ctx));
  }
  return out;
}
