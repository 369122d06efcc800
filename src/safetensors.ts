/**
 * A strict safetensors codec: the file format Python's `safetensors` writes and reads.
 *
 * Layout: an 8-byte little-endian u64 header length `N`, `N` bytes of UTF-8 JSON
 * `{"__metadata__": {str: str}, "name": {"dtype", "shape", "data_offsets": [begin, end]}}`
 * (padded with spaces to a multiple of 8, as the Rust writer does), then the data
 * buffer: every tensor's bytes, little-endian, row-major, contiguous. Offsets are
 * relative to the start of the data buffer.
 *
 * Decoding treats the bytes as untrusted: every length is bounded, every field checked,
 * and the tensors must tile the data buffer exactly (no gaps, overlaps or trailing
 * bytes). Each failure is a {@link SafetensorsError} with one line naming the problem.
 *
 * Also here: float32 ↔ bfloat16 / float16 conversions (round-to-nearest-even).
 * Left out: file I/O (callers read and write; see src/model/checkpoint.ts for streaming
 * large files with {@link safetensorsHeader} and {@link parseSafetensorsHeader}).
 *
 * @module
 */

/** Element types the codec knows, with their byte sizes (safetensors' names). */
export const DTYPE_SIZES = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
  U16: 2,
  I16: 2,
  F16: 2,
  BF16: 2,
  U32: 4,
  I32: 4,
  F32: 4,
  U64: 8,
  I64: 8,
  F64: 8,
} as const;

/** A safetensors element type name, e.g. `"F32"`. */
export type Dtype = keyof typeof DTYPE_SIZES;

/** The float types that convert to and from float32 here. */
export type FloatDtype = "F32" | "BF16" | "F16";

/** Default cap on the JSON header (the Rust reader's own limit is 100 MB). */
export const DEFAULT_MAX_HEADER_BYTES = 100_000_000;

/**
 * A decode or encode failure; the message is one line naming the problem.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const bad = new Uint8Array(8); // claims a 0-byte header: not JSON
 * assert.throws(() => decodeSafetensors(bad), SafetensorsError);
 * ```
 */
export class SafetensorsError extends Error {
  override name = "SafetensorsError";
}

/** One tensor to encode. A `Float32Array` is converted to `dtype` (F32/BF16/F16). */
export interface TensorInput {
  name: string;
  dtype: Dtype;
  shape: readonly number[];
  /** Raw little-endian bytes of `dtype`, or float32 values to convert. */
  data: Uint8Array | Float32Array;
}

/** A tensor's header entry, offsets relative to the data buffer. */
export interface TensorInfo {
  dtype: Dtype;
  shape: number[];
  begin: number;
  end: number;
}

/** A parsed, validated header. */
export interface SafetensorsHeader {
  /** Tensors in data order (ascending offsets). */
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
  /** Byte offset of the data buffer in the file: `8 + N`. */
  dataStart: number;
  /** Total file size the header was checked against. */
  fileSize: number;
}

/** A decoded tensor: its bytes are a view into the input (no copy). */
export interface DecodedTensor {
  dtype: Dtype;
  shape: number[];
  bytes: Uint8Array;
}

/** Options for parsing untrusted bytes. */
export interface DecodeOptions {
  /** Largest JSON header accepted, in bytes (default {@link DEFAULT_MAX_HEADER_BYTES}). */
  maxHeaderBytes?: number;
  /** Names the input in errors: "Cannot read {label}: ..." (default "safetensors"). */
  label?: string;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
if (!LITTLE_ENDIAN) throw new Error("Unsupported platform: boltzmann needs a little-endian CPU");

function isDtype(s: unknown): s is Dtype {
  return typeof s === "string" && Object.hasOwn(DTYPE_SIZES, s);
}

function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function fail(label: string, why: string): never {
  throw new SafetensorsError(`Cannot read ${label}: ${why}`);
}

/**
 * The header length `N` from the first 8 bytes, checked against the cap and file size.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const file = encodeSafetensors([
 *   { name: "w", dtype: "F32", shape: [2], data: new Float32Array([1, 2]) },
 * ]);
 * assert.equal(safetensorsHeaderLength(file.subarray(0, 8), file.length), 56);
 * assert.throws(() => safetensorsHeaderLength(file.subarray(0, 8), 40), SafetensorsError);
 * ```
 * @param first8 at least the first 8 bytes of the file
 * @param fileSize the whole file's size in bytes
 * @throws {SafetensorsError} when the file is shorter than 8 bytes, `N` exceeds the
 *   cap or runs past the end of the file
 */
export function safetensorsHeaderLength(
  first8: Uint8Array,
  fileSize: number,
  opts: DecodeOptions = {},
): number {
  const label = opts.label ?? "safetensors";
  const cap = opts.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
  if (fileSize < 8 || first8.length < 8) {
    fail(label, `file is ${fileSize} bytes, shorter than the 8-byte header length`);
  }
  const n = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(cap)) {
    fail(label, `header length ${n} exceeds the cap of ${cap} bytes`);
  }
  if (n > BigInt(fileSize - 8)) {
    fail(label, `header length ${n} exceeds file size ${fileSize}`);
  }
  return Number(n);
}

/**
 * Parse and validate the header of a safetensors file.
 * @param bytes the file's first `8 + N` bytes or more (the whole file is fine)
 * @param fileSize the whole file's size (default `bytes.length`); the tensors must
 *   exactly fill `fileSize - 8 - N` bytes
 * @returns the tensors in data order, the metadata and where the data starts
 * @throws {SafetensorsError} naming the first problem found
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const file = encodeSafetensors([{ name: "w", dtype: "F32", shape: [2], data: new Float32Array(2) }]);
 * const h = parseSafetensorsHeader(file);
 * assert.deepEqual(h.tensors.get("w"), { dtype: "F32", shape: [2], begin: 0, end: 8 });
 * assert.equal(h.dataStart % 8, 0);
 * // A header that claims more bytes than the file has is refused in one line.
 * assert.throws(() => parseSafetensorsHeader(file.subarray(0, 40)), SafetensorsError);
 * ```
 */
export function parseSafetensorsHeader(
  bytes: Uint8Array,
  fileSize: number = bytes.length,
  opts: DecodeOptions = {},
): SafetensorsHeader {
  const label = opts.label ?? "safetensors";
  const n = safetensorsHeaderLength(bytes, fileSize, opts);
  if (bytes.length < 8 + n) fail(label, `header needs ${8 + n} bytes, got ${bytes.length}`);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    fail(label, "header is not valid UTF-8");
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    fail(label, `header is not valid JSON (${(e as Error).message.split("\n")[0]})`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    fail(label, "header is not a JSON object");
  }
  const dataStart = 8 + n;
  const dataLength = fileSize - dataStart;
  let metadata: Record<string, string> = {};
  const list: [string, TensorInfo][] = [];
  for (const [name, v] of Object.entries(json as Record<string, unknown>)) {
    if (name === "__metadata__") {
      metadata = checkMetadata(label, v);
      continue;
    }
    list.push([name, checkEntry(label, name, v, dataLength)]);
  }
  // The tensors must tile [0, dataLength) exactly, in offset order.
  list.sort((a, b) => a[1].begin - b[1].begin || a[1].end - b[1].end);
  let pos = 0;
  for (const [name, t] of list) {
    if (t.begin < pos) fail(label, `tensor '${name}' overlaps the previous tensor at ${t.begin}`);
    if (t.begin > pos) {
      fail(label, `gap in the data buffer before tensor '${name}' (${pos}..${t.begin})`);
    }
    pos = t.end;
  }
  if (pos !== dataLength) {
    fail(label, `tensors cover ${pos} bytes but the data buffer holds ${dataLength}`);
  }
  return { tensors: new Map(list), metadata, dataStart, fileSize };
}

function checkMetadata(label: string, v: unknown): Record<string, string> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    fail(label, "__metadata__ is not an object of strings");
  }
  const out: Record<string, string> = {};
  for (const [k, s] of Object.entries(v as Record<string, unknown>)) {
    if (typeof s !== "string") {
      fail(label, `__metadata__ value '${k}' is ${JSON.stringify(s)}, not a string`);
    }
    out[k] = s;
  }
  return out;
}

function checkEntry(label: string, name: string, v: unknown, dataLength: number): TensorInfo {
  const where = `tensor '${name}'`;
  if (name.length === 0) fail(label, "a tensor has an empty name");
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    fail(label, `${where} is not an object with dtype, shape and data_offsets`);
  }
  const e = v as Record<string, unknown>;
  for (const k of Object.keys(e)) {
    if (k !== "dtype" && k !== "shape" && k !== "data_offsets") {
      fail(label, `${where} has an unknown field '${k}'`);
    }
  }
  const { dtype, shape, data_offsets: off } = e;
  if (!isDtype(dtype)) {
    fail(
      label,
      `${where} has unknown dtype ${JSON.stringify(dtype)}: expected one of ${
        Object.keys(DTYPE_SIZES).join(", ")
      }`,
    );
  }
  if (
    !Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)
  ) {
    fail(label, `${where} has shape ${JSON.stringify(shape)}, expected non-negative integers`);
  }
  if (
    !Array.isArray(off) || off.length !== 2 || !off.every((o) => Number.isSafeInteger(o)) ||
    off[0] < 0 || off[1] < off[0]
  ) {
    fail(label, `${where} has data_offsets ${JSON.stringify(off)}, expected [begin, end]`);
  }
  const [begin, end] = off as [number, number];
  if (end > dataLength) {
    fail(label, `${where} ends at ${end}, past the data buffer of ${dataLength} bytes`);
  }
  const numel = numelOf(shape as number[]);
  const want = numel * DTYPE_SIZES[dtype];
  if (!Number.isSafeInteger(numel) || end - begin !== want) {
    fail(
      label,
      `${where} holds ${end - begin} bytes but ${dtype} ${JSON.stringify(shape)} needs ${want}`,
    );
  }
  return { dtype, shape: shape as number[], begin, end };
}

/**
 * Decode a whole safetensors file held in memory.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const file = encodeSafetensors(
 *   [{ name: "w", dtype: "F32", shape: [2], data: new Float32Array([1, 2]) }],
 *   { window: "7" },
 * );
 * const { tensors, metadata } = decodeSafetensors(file);
 * const w = tensors.get("w")!;
 * assert.deepEqual([w.dtype, w.shape, metadata.window], ["F32", [2], "7"]);
 * assert.deepEqual(toFloat32(w.dtype, w.bytes), new Float32Array([1, 2]));
 * ```
 * @returns tensors in data order (byte views into `bytes`, no copy) and the metadata
 * @throws {SafetensorsError} naming the first problem found
 */
export function decodeSafetensors(
  bytes: Uint8Array,
  opts: DecodeOptions = {},
): { tensors: Map<string, DecodedTensor>; metadata: Record<string, string> } {
  const h = parseSafetensorsHeader(bytes, bytes.length, opts);
  const tensors = new Map<string, DecodedTensor>();
  for (const [name, t] of h.tensors) {
    tensors.set(name, {
      dtype: t.dtype,
      shape: t.shape,
      bytes: bytes.subarray(h.dataStart + t.begin, h.dataStart + t.end),
    });
  }
  return { tensors, metadata: h.metadata };
}

/**
 * The header of a file holding `entries` in the given order: 8-byte length, compact JSON
 * (`__metadata__` first when non-empty, as Python writes it), space padding to a
 * multiple of 8. Use it to stream a large file: write this, then each tensor's bytes.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const { header, offsets } = safetensorsHeader([
 *   { name: "a", dtype: "F32", shape: [2] },
 *   { name: "b", dtype: "BF16", shape: [3] },
 * ]);
 * assert.equal(header.length % 8, 0);
 * assert.deepEqual(offsets, [[0, 8], [8, 14]]); // byte ranges after the header
 * ```
 * @throws {SafetensorsError} on a duplicate or reserved name, unknown dtype or bad shape
 */
export function safetensorsHeader(
  entries: readonly { name: string; dtype: Dtype; shape: readonly number[] }[],
  metadata: Record<string, string> = {},
): { header: Uint8Array; offsets: [number, number][] } {
  const obj: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") {
        throw new SafetensorsError(`Cannot write safetensors: metadata '${k}' is not a string`);
      }
    }
    obj.__metadata__ = metadata;
  }
  const offsets: [number, number][] = [];
  let pos = 0;
  for (const e of entries) {
    if (e.name === "__metadata__" || e.name.length === 0 || Object.hasOwn(obj, e.name)) {
      throw new SafetensorsError(
        `Cannot write safetensors: tensor name '${e.name}' is empty, reserved or repeated`,
      );
    }
    if (!isDtype(e.dtype)) {
      throw new SafetensorsError(`Cannot write safetensors: unknown dtype '${e.dtype}'`);
    }
    if (!e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new SafetensorsError(
        `Cannot write safetensors: tensor '${e.name}' has shape ${JSON.stringify(e.shape)}`,
      );
    }
    const size = numelOf(e.shape) * DTYPE_SIZES[e.dtype];
    offsets.push([pos, pos + size]);
    obj[e.name] = { dtype: e.dtype, shape: [...e.shape], data_offsets: [pos, pos + size] };
    pos += size;
  }
  const json = new TextEncoder().encode(JSON.stringify(obj));
  const padded = Math.ceil(json.length / 8) * 8;
  const header = new Uint8Array(8 + padded).fill(0x20);
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(json, 8);
  return { header, offsets };
}

/**
 * The bytes of one tensor in `dtype`: float32 values are converted (F32, BF16, F16);
 * raw bytes pass through after a size check against the shape.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const b = tensorBytes({ name: "x", dtype: "BF16", shape: [2], data: new Float32Array([1, -2]) });
 * assert.deepEqual(Array.from(b), [0x80, 0x3f, 0x00, 0xc0]); // little-endian bf16 bits
 * assert.throws(
 *   () => tensorBytes({ name: "x", dtype: "I32", shape: [1], data: new Float32Array(1) }),
 *   SafetensorsError,
 * );
 * ```
 * @throws {SafetensorsError} when sizes disagree or a Float32Array meets a non-float dtype
 */
export function tensorBytes(t: TensorInput): Uint8Array {
  const numel = numelOf(t.shape);
  if (t.data instanceof Float32Array) {
    if (t.data.length !== numel) {
      throw new SafetensorsError(
        `Cannot write safetensors: tensor '${t.name}' has ${t.data.length} values for shape ${
          JSON.stringify(t.shape)
        }`,
      );
    }
    if (t.dtype === "F32") {
      return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    }
    if (t.dtype === "BF16") return new Uint8Array(f32ToBf16(t.data).buffer);
    if (t.dtype === "F16") return new Uint8Array(f32ToF16(t.data).buffer);
    throw new SafetensorsError(
      `Cannot write safetensors: tensor '${t.name}' is float32 data for dtype ${t.dtype}; pass raw bytes`,
    );
  }
  const want = numel * (DTYPE_SIZES[t.dtype] ?? NaN);
  if (t.data.length !== want) {
    throw new SafetensorsError(
      `Cannot write safetensors: tensor '${t.name}' has ${t.data.length} bytes, ${t.dtype} ${
        JSON.stringify(t.shape)
      } needs ${want}`,
    );
  }
  return t.data;
}

/**
 * Encode tensors (in the given order) and string metadata as one safetensors file.
 * @throws {SafetensorsError} on a bad name, dtype, shape or size
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const bytes = encodeSafetensors(
 *   [{ name: "w", dtype: "BF16", shape: [3], data: new Float32Array([1, 2, 3]) }],
 *   { kind: "state" },
 * );
 * assert.equal(decodeSafetensors(bytes).metadata.kind, "state");
 * assert.throws(
 *   () => encodeSafetensors([{ name: "w", dtype: "F32", shape: [4], data: new Float32Array(3) }]),
 *   SafetensorsError,
 * );
 * ```
 */
export function encodeSafetensors(
  tensors: readonly TensorInput[],
  metadata: Record<string, string> = {},
): Uint8Array {
  const datas = tensors.map(tensorBytes);
  const { header, offsets } = safetensorsHeader(tensors, metadata);
  const total = offsets.length ? offsets[offsets.length - 1]![1] : 0;
  const out = new Uint8Array(header.length + total);
  out.set(header, 0);
  datas.forEach((d, i) => out.set(d, header.length + offsets[i]![0]));
  return out;
}

/**
 * A decoded float tensor's values as a fresh float32 array.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const bits = new Uint16Array([0x3f80, 0xc000]); // bf16 1 and -2
 * assert.deepEqual(toFloat32("BF16", new Uint8Array(bits.buffer)), new Float32Array([1, -2]));
 * assert.throws(() => toFloat32("I32", new Uint8Array(4)), SafetensorsError);
 * ```
 * @throws {SafetensorsError} for a non-float dtype
 */
export function toFloat32(dtype: Dtype, bytes: Uint8Array): Float32Array {
  // Copy first: the view may sit at an offset that is not a multiple of the item size.
  const copy = bytes.slice();
  switch (dtype) {
    case "F32":
      return new Float32Array(copy.buffer);
    case "BF16":
      return bf16ToF32(new Uint16Array(copy.buffer));
    case "F16":
      return f16ToF32(new Uint16Array(copy.buffer));
    case "F64":
      return Float32Array.from(new Float64Array(copy.buffer));
    default:
      throw new SafetensorsError(`Cannot convert ${dtype} to float32: not a float dtype`);
  }
}

/**
 * float32 → bfloat16 bits, round to nearest even; NaN stays NaN (quiet).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const b = f32ToBf16(new Float32Array([1, 1 + 2 ** -8, NaN]));
 * // 1 + 2^-8 lies halfway between two bf16 values: it rounds to the even one, 1.
 * assert.deepEqual(Array.from(b), [0x3f80, 0x3f80, 0x7fc0]);
 * ```
 */
export function f32ToBf16(src: Float32Array): Uint16Array {
  const u = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < u.length; i++) {
    const x = u[i]!;
    if ((x & 0x7fffffff) > 0x7f800000) out[i] = (x >>> 16) | 0x0040;
    else out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
  return out;
}

/**
 * bfloat16 bits → float32 (exact).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.deepEqual(bf16ToF32(new Uint16Array([0x3f80, 0x4049])), new Float32Array([1, 3.140625]));
 * const x = new Float32Array([0.5, -8, 1e-3]);
 * assert.deepEqual(bf16ToF32(f32ToBf16(bf16ToF32(f32ToBf16(x)))), bf16ToF32(f32ToBf16(x)));
 * ```
 */
export function bf16ToF32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  const u = new Uint32Array(out.buffer);
  for (let i = 0; i < src.length; i++) u[i] = src[i]! << 16;
  return out;
}

/**
 * float32 → IEEE float16 bits, round to nearest even; overflow → ±Inf; NaN stays NaN.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const h = f32ToF16(new Float32Array([1, 65520, 0.1]));
 * assert.deepEqual(Array.from(h), [0x3c00, 0x7c00, 0x2e66]); // 65520 overflows to +Inf
 * ```
 */
export function f32ToF16(src: Float32Array): Uint16Array {
  const u = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < u.length; i++) {
    const x = u[i]!;
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    let mant = x & 0x7fffff;
    if (exp === 0xff) {
      out[i] = sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
      continue;
    }
    const e = exp - 127 + 15;
    if (e >= 0x1f) {
      out[i] = sign | 0x7c00;
    } else if (e <= 0) {
      // Subnormal half (or zero): shift the full significand right, round to even.
      if (e < -10) {
        out[i] = sign;
        continue;
      }
      mant |= 0x800000;
      const shift = 14 - e;
      const half = 1 << (shift - 1);
      const rest = mant & ((1 << shift) - 1);
      let h = mant >>> shift;
      if (rest > half || (rest === half && (h & 1))) h++;
      out[i] = sign | h;
    } else {
      let h = (e << 10) | (mant >>> 13);
      const rest = mant & 0x1fff;
      if (rest > 0x1000 || (rest === 0x1000 && (h & 1))) h++; // may carry into Inf: correct
      out[i] = sign | h;
    }
  }
  return out;
}

/**
 * IEEE float16 bits → float32 (exact).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const x = f16ToF32(new Uint16Array([0x3c00, 0x2e66, 0x0001]));
 * assert.deepEqual(x, new Float32Array([1, 0.0999755859375, 2 ** -24])); // smallest subnormal
 * ```
 */
export function f16ToF32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const h = src[i]!;
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >>> 10) & 0x1f, m = h & 0x3ff;
    if (e === 0) out[i] = s * m * 2 ** -24;
    else if (e === 0x1f) out[i] = m ? NaN : s * Infinity;
    else out[i] = s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return out;
}
