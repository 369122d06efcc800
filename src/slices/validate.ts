/**
 * Validation of a downloaded slice, before a byte of it touches the model: size cap
 * from the parameter table, header cap, JSON, exact tensor names / dtypes / shapes,
 * offsets, metadata (format, version, fingerprint, kind, window, hotkey), payload hash,
 * signature, and finite values, in that order (docs/WIRE.md). Each rejection is a
 * {@link SliceRejected} with a reason from `SliceRejected.reasons` (the caller logs and
 * counts it).
 *
 * Left out: downloading (the size cap is passed to the store so it stops reading early;
 * src/store/download.ts) and what a rejection costs the uploader (the roles decide).
 *
 * @module
 */
import { createHash } from "node:crypto";
import { decodeAddress, sr25519Verify } from "@polkadot/util-crypto";
import type { ParamSpec, Tensors } from "../model/params.ts";
import {
  type Dtype,
  parseSafetensorsHeader,
  SafetensorsError,
  type SafetensorsHeader,
  toFloat32,
} from "../safetensors.ts";
import { DERIVATION_VERSION } from "../window.ts";
import type { SliceIndices } from "./gather.ts";
import {
  META_KEY_RE,
  META_VALUE_RE,
  signingMessage,
  SLICE_DTYPES,
  SLICE_FORMAT,
  type SliceDtype,
  type SliceMeta,
} from "./wire.ts";
import { type Reject, rejectionClass } from "../rejection.ts";

/**
 * A slice failed validation; `reason` is a short stable string for logs, metrics and
 * tests, `detail` says what exactly. `SliceRejected.reasons` lists every reason, in
 * validation order.
 */
export const SliceRejected = rejectionClass("SliceRejected", "Slice rejected", [
  "download-failed",
  "too-large",
  "truncated",
  "header-too-large",
  "header-beyond-file",
  "bad-json",
  "overlapping-offsets",
  "bad-layout",
  "bad-metadata",
  "wrong-format",
  "wrong-version",
  "wrong-fingerprint",
  "wrong-kind",
  "wrong-window",
  "wrong-hotkey",
  "missing-tensor",
  "extra-tensor",
  "wrong-dtype",
  "wrong-shape",
  "payload-hash",
  "bad-signature",
  "non-finite",
]);
/** A rejection reason. */
export type RejectReason = (typeof SliceRejected.reasons)[number];

/** What the receiver expects of a slice. */
export interface SliceExpect {
  /** The local parameter table (sets the size caps). */
  table: readonly ParamSpec[];
  /** The window's indices: the slice must hold exactly these tensors, each `[k]` long. */
  indices: SliceIndices;
  /** Our `modelFingerprint()`. */
  fingerprint: string;
  window?: number;
  kind?: "state" | "delta";
  /** The uploader's hotkey (the owner of the bucket / object key). */
  hotkey?: string;
  /** Default `DERIVATION_VERSION`. */
  version?: number;
  /** Accepted dtypes; default F32 and BF16. */
  dtypes?: readonly SliceDtype[];
}

/** A validated slice. */
export interface DecodedSlice {
  meta: SliceMeta;
  dtype: SliceDtype;
  /** Float32 values per tensor, in the order of `expect.indices`. */
  slice: Tensors;
  payloadSha256: string;
}

/**
 * The JSON-header cap for `table`: the metadata (≤ 2 KiB) plus, per tensor, its name
 * and 96 bytes of dtype, shape and offsets, rounded up to a multiple of 8.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const table = [{ name: "w", shape: [4], numel: 4 }];
 * assert.equal(headerCap(table), 2152); // 2048 + 1 + 96, rounded up to a multiple of 8
 * ```
 */
export function headerCap(table: readonly ParamSpec[]): number {
  let n = 2048;
  for (const p of table) n += p.name.length + 96;
  return Math.ceil(n / 8) * 8;
}

/**
 * The largest object a valid slice can be: 8 + {@link headerCap} + the values at
 * `indices` in `dtype` (default F32, the widest accepted). Downloads stop here.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const table = [{ name: "w", shape: [4], numel: 4 }];
 * const indices = new Map([["w", new Uint32Array([0, 2])]]);
 * assert.equal(sliceByteCap(table, indices), 8 + 2152 + 2 * 4);
 * assert.equal(sliceByteCap(table, indices, "BF16"), 8 + 2152 + 2 * 2);
 * ```
 */
export function sliceByteCap(
  table: readonly ParamSpec[],
  indices: SliceIndices,
  dtype: SliceDtype = "F32",
): number {
  let k = 0;
  for (const idx of indices.values()) k += idx.length;
  return 8 + headerCap(table) + k * (dtype === "F32" ? 4 : 2);
}

const reject: Reject<RejectReason> = SliceRejected.reject;

/** A slice's reasons for the framing checks of {@link parseSignedFile}. */
const SLICE_FRAMING: FramingReasons<RejectReason> = {
  label: "slice",
  headerTooLarge: "header-too-large",
  headerBeyondFile: "header-beyond-file",
  parser(msg) {
    if (/not valid UTF-8|not valid JSON|not a JSON object/.test(msg)) return "bad-json";
    if (/overlaps/.test(msg)) return "overlapping-offsets";
    if (/past the data buffer/.test(msg)) return "truncated";
    if (/__metadata__/.test(msg)) return "bad-metadata";
    return "bad-layout";
  },
};

/**
 * What a format calls the failures of {@link parseSignedFile}'s framing checks beyond the
 * two every signed format shares (`too-large`: the file is over its cap; `truncated`: it
 * is shorter than the 8-byte header length).
 */
export interface FramingReasons<R extends string> {
  /** The parser's label: its errors read `Cannot read LABEL: ...`. */
  label: string;
  /**
   * The header length is over its cap; absent, the parser's own cap check reports it
   * (its detail goes to {@link parser}).
   */
  headerTooLarge?: R;
  /** The header length runs past the end of the file. */
  headerBeyondFile: R;
  /** The reason for the parser's one-line detail (bad JSON, overlapping offsets, ...). */
  parser(detail: string): R;
}

/**
 * The framing checks every signed file gets before its metadata (slices and protocol-v2
 * uploads alike), in this order: the whole file within `caps.file` bytes, at least the
 * 8-byte header length, that length within `caps.header` and within the file, then the
 * safetensors header itself. Failures go to `reject` under the format's `reasons`; the
 * details drop the parser's `Cannot read LABEL: ` prefix (the rejection says what).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeSafetensors } from "../safetensors.ts";
 * const file = encodeSafetensors([{ name: "w", dtype: "F32", shape: [1], data: Float32Array.of(1) }]);
 * const reasons = { label: "thing", headerBeyondFile: "beyond", parser: () => "bad" };
 * const no = (reason: string, detail: string): never => {
 *   throw new Error(`${reason}: ${detail}`);
 * };
 * const caps = { file: 1000, header: 100 };
 * assert.equal(parseSignedFile(file, caps, reasons, no).tensors.get("w")?.end, 4);
 * assert.throws(() => parseSignedFile(file, { ...caps, file: 10 }, reasons, no), /^Error: too-large/);
 * assert.throws(() => parseSignedFile(file.subarray(0, 5), caps, reasons, no), /^Error: truncated/);
 * assert.throws(() => parseSignedFile(file.subarray(0, 20), caps, reasons, no), /^Error: beyond/);
 * assert.throws(() => parseSignedFile(file, { ...caps, header: 8 }, reasons, no), /^Error: bad/);
 * ```
 */
export function parseSignedFile<R extends string>(
  bytes: Uint8Array,
  caps: { file: number; header: number },
  reasons: FramingReasons<R>,
  reject: Reject<NoInfer<R> | "too-large" | "truncated">,
): SafetensorsHeader {
  const len = bytes.length;
  if (len > caps.file) reject("too-large", `${len} bytes exceeds the cap of ${caps.file}`);
  if (len < 8) reject("truncated", `${len} bytes, shorter than the 8-byte header length`);
  const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (reasons.headerTooLarge !== undefined && n > BigInt(caps.header)) {
    reject(reasons.headerTooLarge, `header length ${n} exceeds the cap of ${caps.header}`);
  }
  if (n > BigInt(len - 8)) {
    reject(reasons.headerBeyondFile, `header length ${n} exceeds file size ${len}`);
  }
  try {
    return parseSafetensorsHeader(bytes, len, {
      maxHeaderBytes: caps.header,
      label: reasons.label,
    });
  } catch (e) {
    if (!(e instanceof SafetensorsError)) throw e;
    const detail = e.message.replace(`Cannot read ${reasons.label}: `, "");
    return reject(reasons.parser(detail), detail);
  }
}

const UINT = /^(0|[1-9]\d{0,15})$/;
const NUM = /^-?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?$/;

/** Reads the numeric fields of checked metadata (see {@link signedMeta}). */
export interface MetaReader {
  /** An integer ≥ 0, or undefined when absent. */
  uint(key: string): number | undefined;
  /** A finite number, or undefined when absent. */
  num(key: string): number | undefined;
}

/**
 * The checks every signed file's metadata gets (slices and protocol-v2 uploads alike):
 * `format` is `format`, keys and values use the allowed characters, the `required` keys
 * and `payload_sha256` and `signature` are present and well-formed. Failures go to
 * `reject` (each format has its own rejection type); returns readers of the numeric
 * fields, which reject a malformed one as `bad-metadata`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const md = {
 *   format: "f/1",
 *   window: "7",
 *   loss: "2.5",
 *   payload_sha256: "ab".repeat(32),
 *   signature: "0x" + "cd".repeat(64),
 * };
 * const no = (reason: string, detail: string): never => {
 *   throw new Error(`${reason}: ${detail}`);
 * };
 * const r = signedMeta(md, "f/1", ["window"], no);
 * assert.deepEqual([r.uint("window"), r.num("loss"), r.uint("tokens")], [7, 2.5, undefined]);
 * assert.throws(() => signedMeta(md, "f/2", [], no), /^Error: wrong-format/);
 * assert.throws(() => signedMeta({ ...md, window: "-1" }, "f/1", [], no).uint("window"), /bad-metadata/);
 * ```
 */
export function signedMeta(
  md: Record<string, string>,
  format: string,
  required: readonly string[],
  reject: (reason: "wrong-format" | "bad-metadata", detail: string) => never,
): MetaReader {
  if (md.format !== format) {
    reject("wrong-format", `format is ${JSON.stringify(md.format)}, expected '${format}'`);
  }
  for (const [k, v] of Object.entries(md)) {
    if (!META_KEY_RE.test(k) || !META_VALUE_RE.test(v)) {
      reject(
        "bad-metadata",
        `metadata key ${
          JSON.stringify(k)
        } or its value has characters outside [a-z0-9_] / printable ASCII`,
      );
    }
  }
  for (const k of [...required, "payload_sha256", "signature"]) {
    if (md[k] === undefined) reject("bad-metadata", `metadata '${k}' is missing`);
  }
  if (!/^[0-9a-f]{64}$/.test(md.payload_sha256!)) {
    reject("bad-metadata", "metadata 'payload_sha256' is not 64 lowercase hex digits");
  }
  if (!/^0x[0-9a-f]{128}$/.test(md.signature!)) {
    reject("bad-metadata", "metadata 'signature' is not 0x and 128 lowercase hex digits");
  }
  return {
    uint(k) {
      const v = md[k];
      if (v === undefined) return undefined;
      if (!UINT.test(v) || !Number.isSafeInteger(Number(v))) {
        reject("bad-metadata", `metadata '${k}' is '${v}', expected an integer >= 0`);
      }
      return Number(v);
    },
    num(k) {
      const v = md[k];
      if (v === undefined) return undefined;
      if (!NUM.test(v) || !Number.isFinite(Number(v))) {
        reject("bad-metadata", `metadata '${k}' is '${v}', expected a finite number`);
      }
      return Number(v);
    },
  };
}

function parseMeta(md: Record<string, string>): SliceMeta & { payload: string; sig: string } {
  const r = signedMeta(
    md,
    SLICE_FORMAT,
    ["kind", "window", "hotkey", "fingerprint", "version"],
    reject,
  );
  if (md.kind !== "state" && md.kind !== "delta") {
    reject("bad-metadata", `metadata 'kind' is '${md.kind}', expected state or delta`);
  }
  const meta: SliceMeta = {
    kind: md.kind,
    window: r.uint("window")!,
    hotkey: md.hotkey!,
    fingerprint: md.fingerprint!,
    version: r.uint("version")!,
  };
  const loss = r.num("loss"), tokens = r.uint("tokens"), batches = r.uint("batches");
  if (loss !== undefined) meta.loss = loss;
  if (tokens !== undefined) meta.tokens = tokens;
  if (batches !== undefined) meta.batches = batches;
  return { ...meta, payload: md.payload_sha256!, sig: md.signature! };
}

function hexToBytes(h: string): Uint8Array {
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/**
 * The payload hash and the signature of a parsed signed file (see `writeSigned` in
 * wire.ts) against its `payload_sha256` and `signature` metadata, the signature
 * verified with `hotkey`'s public key. Returns the data buffer's SHA-256 and what is
 * wrong, `problem: null` when both hold. The metadata's format is the caller's to check.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Keyring } from "@polkadot/keyring";
 * import { cryptoWaitReady } from "@polkadot/util-crypto";
 * import { parseSafetensorsHeader } from "../safetensors.ts";
 * import { writeSigned } from "./wire.ts";
 * await cryptoWaitReady();
 * const keyring = new Keyring({ type: "sr25519", ss58Format: 42 });
 * const alice = keyring.addFromUri("//Alice"), bob = keyring.addFromUri("//Bob");
 * const signer = { address: alice.address, sign: (m: Uint8Array) => alice.sign(m) };
 * const t = { name: "t", dtype: "U8" as const, shape: [4], bytes: new Uint8Array([1, 2, 3, 4]) };
 * const file = writeSigned([t], {}, signer);
 * const header = parseSafetensorsHeader(file);
 * assert.equal(verifySigned(file, header, alice.address).problem, null);
 * assert.equal(verifySigned(file, header, bob.address).problem?.reason, "bad-signature");
 * const flipped = file.slice();
 * flipped[flipped.length - 1]! ^= 1;
 * assert.equal(verifySigned(flipped, header, alice.address).problem?.reason, "payload-hash");
 * ```
 */
export function verifySigned(
  bytes: Uint8Array,
  header: SafetensorsHeader,
  hotkey: string,
): {
  payload: string;
  problem: { reason: "payload-hash" | "bad-signature"; detail: string } | null;
} {
  const md = header.metadata;
  const payload = createHash("sha256").update(bytes.subarray(header.dataStart)).digest("hex");
  if (payload !== md.payload_sha256) {
    const detail = `payload SHA-256 ${payload} differs from the signed ${md.payload_sha256}`;
    return { payload, problem: { reason: "payload-hash", detail } };
  }
  const layout = [...header.tensors].map(([name, t]) => ({ name, ...t }));
  let ok = false;
  try {
    ok = sr25519Verify(
      signingMessage(md, layout),
      hexToBytes((md.signature ?? "").slice(2)),
      decodeAddress(hotkey),
    );
  } catch {
    ok = false; // an undecodable address or malformed key is as bad as a wrong signature
  }
  if (ok) return { payload, problem: null };
  const detail = `signature does not verify for hotkey '${hotkey}'`;
  return { payload, problem: { reason: "bad-signature", detail } };
}

/**
 * Validates untrusted slice bytes and decodes them; see the module doc for the order.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Keyring } from "@polkadot/keyring";
 * import { cryptoWaitReady } from "@polkadot/util-crypto";
 * await cryptoWaitReady();
 * const pair = new Keyring({ type: "sr25519", ss58Format: 42 }).addFromUri("//Alice");
 * const signer = { address: pair.address, sign: (m: Uint8Array) => pair.sign(m) };
 * import { encodeSlice } from "./wire.ts";
 * const table = [{ name: "w", shape: [4], numel: 4 }];
 * const indices = new Map([["w", new Uint32Array([0, 2])]]);
 * const meta = { kind: "delta" as const, window: 3, hotkey: signer.address, fingerprint: "ab", version: 1 };
 * const bytes = encodeSlice(new Map([["w", new Float32Array([0.5, -1])]]), meta, signer, "F32");
 * const expect = { table, indices, fingerprint: "ab", window: 3, kind: "delta" as const };
 * const d = decodeSlice(bytes, { ...expect, hotkey: signer.address });
 * assert.deepEqual(d.slice.get("w"), new Float32Array([0.5, -1]));
 * // The same bytes claimed for another window, or with one byte flipped, are rejected.
 * assert.throws(() => decodeSlice(bytes, { ...expect, window: 4 }), (e) =>
 *   e instanceof SliceRejected && e.reason === "wrong-window");
 * const flipped = bytes.slice();
 * flipped[flipped.length - 1]! ^= 1;
 * assert.throws(() => decodeSlice(flipped, expect), (e) =>
 *   e instanceof SliceRejected && e.reason === "payload-hash");
 * ```
 * @param bytes the whole object
 * @param expect what the receiver expects (table, indices, fingerprint, and optionally
 *   window, kind, uploader hotkey, version, dtypes)
 * @returns metadata and float32 values (fresh arrays, never views of `bytes`)
 * @throws {SliceRejected} with the first failed check's reason
 */
export function decodeSlice(bytes: Uint8Array, expect: SliceExpect): DecodedSlice {
  const header = parseSignedFile(
    bytes,
    { file: sliceByteCap(expect.table, expect.indices, "F32"), header: headerCap(expect.table) },
    SLICE_FRAMING,
    reject,
  );
  const m = parseMeta(header.metadata);
  const version = expect.version ?? DERIVATION_VERSION;
  if (m.version !== version) {
    reject("wrong-version", `index-derivation version ${m.version}, expected ${version}`);
  }
  if (m.fingerprint !== expect.fingerprint) {
    reject(
      "wrong-fingerprint",
      `model fingerprint '${m.fingerprint}', expected '${expect.fingerprint}'`,
    );
  }
  if (expect.kind !== undefined && m.kind !== expect.kind) {
    reject("wrong-kind", `kind '${m.kind}', expected '${expect.kind}'`);
  }
  if (expect.window !== undefined && m.window !== expect.window) {
    reject("wrong-window", `window ${m.window}, expected ${expect.window}`);
  }
  if (expect.hotkey !== undefined && m.hotkey !== expect.hotkey) {
    reject("wrong-hotkey", `signed by hotkey '${m.hotkey}' but uploaded by '${expect.hotkey}'`);
  }
  for (const name of expect.indices.keys()) {
    if (!header.tensors.has(name)) reject("missing-tensor", `tensor '${name}' is missing`);
  }
  for (const name of header.tensors.keys()) {
    if (!expect.indices.has(name)) reject("extra-tensor", `unexpected tensor '${name}'`);
  }
  const dtypes = expect.dtypes ?? SLICE_DTYPES;
  let dtype: Dtype | undefined;
  for (const [name, t] of header.tensors) {
    if (!(dtypes as readonly string[]).includes(t.dtype)) {
      reject("wrong-dtype", `tensor '${name}' is ${t.dtype}, expected ${dtypes.join(" or ")}`);
    }
    if (dtype && t.dtype !== dtype) {
      reject("wrong-dtype", `tensor '${name}' is ${t.dtype} but the others are ${dtype}`);
    }
    dtype = t.dtype;
    const k = expect.indices.get(name)!.length;
    if (t.shape.length !== 1 || t.shape[0] !== k) {
      reject(
        "wrong-shape",
        `tensor '${name}' has shape ${JSON.stringify(t.shape)}, expected [${k}]`,
      );
    }
  }
  const data = bytes.subarray(header.dataStart);
  const { payload, problem } = verifySigned(bytes, header, m.hotkey);
  if (problem) reject(problem.reason, problem.detail);
  const slice: Tensors = new Map();
  for (const name of expect.indices.keys()) {
    const t = header.tensors.get(name)!;
    const v = toFloat32(t.dtype, data.subarray(t.begin, t.end));
    for (let j = 0; j < v.length; j++) {
      const x = v[j]!;
      if (x - x !== 0) reject("non-finite", `tensor '${name}' holds ${x} at position ${j}`);
    }
    slice.set(name, v);
  }
  const { payload: _p, sig: _s, ...meta } = m;
  return { meta, dtype: (dtype ?? "F32") as SliceDtype, slice, payloadSha256: payload };
}
