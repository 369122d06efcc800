/**
 * The slice wire format (docs/WIRE.md is the contract): a safetensors file with one
 * 1-D tensor per parameter (its values at the window's indices), string metadata
 * naming what it is, the SHA-256 of the data buffer, and an sr25519 signature by the
 * hotkey over the SHA-256 of a canonical text that lists every metadata value and
 * every tensor's name, dtype, shape and offsets. So the signature binds kind, window,
 * hotkey, fingerprint, derivation version, training stats, layout and payload.
 *
 * Encoding only. Left out: decoding untrusted bytes (validate.ts), object names
 * (src/roles/keys.ts) and uploading (src/store/).
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { Tensors } from "../model/params.ts";
import { type Dtype, safetensorsHeader, tensorBytes } from "../safetensors.ts";

/** Value of the `format` metadata key; a new layout or signing rule gets a new one. */
export const SLICE_FORMAT = "boltzmann-slice/1";

/** Element types a slice may carry. */
export type SliceDtype = "F32" | "BF16";
/** Accepted slice dtypes. */
export const SLICE_DTYPES: readonly SliceDtype[] = ["F32", "BF16"];

/** What a slice says about itself (the signed metadata, minus hashes). */
export interface SliceMeta {
  kind: "state" | "delta";
  window: number;
  /** ss58 address of the hotkey that signs it. */
  hotkey: string;
  /** `modelFingerprint()` of the model config (src/hparams.ts). */
  fingerprint: string;
  /** `DERIVATION_VERSION` of src/window.ts the indices came from. */
  version: number;
  loss?: number;
  tokens?: number;
  batches?: number;
}

/** Signs with a hotkey (sr25519). The chain module's wallets implement it. */
export interface Signer {
  /** ss58 address of the key. */
  address: string;
  /** 64-byte sr25519 signature of `message`. */
  sign(message: Uint8Array): Uint8Array;
}

/** One tensor's layout line in the signed text. */
export interface LayoutEntry {
  name: string;
  dtype: string;
  shape: readonly number[];
  begin: number;
  end: number;
}

/** Metadata keys: lowercase words (values are printable ASCII, so no newline forges a line). */
export const META_KEY_RE = /^[a-z][a-z0-9_]*$/;
/** Metadata values: printable ASCII. */
export const META_VALUE_RE = /^[\x20-\x7e]*$/;

/**
 * The 32-byte message a slice's signature covers: SHA-256 of the UTF-8 text
 * `boltzmann-slice/1\n`, then `meta KEY=VALUE\n` for every metadata key except
 * `signature` in ascending byte order, then `tensor NAME DTYPE D0,D1,.. BEGIN END\n`
 * for every tensor in data order.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const layout = [{ name: "w", dtype: "F32", shape: [2], begin: 0, end: 8 }];
 * const m = signingMessage({ kind: "delta", window: "3" }, layout);
 * assert.equal(m.length, 32);
 * // The signature itself is not signed; any other key or layout change is.
 * assert.deepEqual(signingMessage({ kind: "delta", window: "3", signature: "x" }, layout), m);
 * assert.notDeepEqual(signingMessage({ kind: "delta", window: "4" }, layout), m);
 * assert.throws(() => signingMessage({ Kind: "delta" }, layout), RangeError);
 * ```
 * @throws {RangeError} on a metadata key or value outside the allowed characters
 */
export function signingMessage(
  metadata: Readonly<Record<string, string>>,
  layout: readonly LayoutEntry[],
): Uint8Array {
  let text = `${SLICE_FORMAT}\n`;
  for (const k of Object.keys(metadata).filter((k) => k !== "signature").sort()) {
    const v = metadata[k]!;
    if (!META_KEY_RE.test(k) || !META_VALUE_RE.test(v)) {
      throw new RangeError(
        `Invalid slice metadata '${k}': keys are [a-z0-9_], values printable ASCII`,
      );
    }
    text += `meta ${k}=${v}\n`;
  }
  for (const t of layout) {
    if (!/^[\x21-\x7e]+$/.test(t.name)) {
      throw new RangeError(
        `Invalid tensor name '${t.name}': expected printable ASCII without spaces`,
      );
    }
    text += `tensor ${t.name} ${t.dtype} ${t.shape.join(",")} ${t.begin} ${t.end}\n`;
  }
  return new Uint8Array(createHash("sha256").update(text).digest());
}

/**
 * Lowercase hex.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(hex(new Uint8Array([0, 15, 255])), "000fff");
 * ```
 */
export function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/**
 * The metadata strings of `meta` (without `payload_sha256` and `signature`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const m = metaStrings({ kind: "state", window: 7, hotkey: "5F", fingerprint: "ab", version: 1 });
 * assert.deepEqual(m, {
 *   format: "boltzmann-slice/1",
 *   kind: "state",
 *   window: "7",
 *   hotkey: "5F",
 *   fingerprint: "ab",
 *   version: "1",
 * });
 * ```
 */
export function metaStrings(meta: SliceMeta): Record<string, string> {
  const m: Record<string, string> = {
    format: SLICE_FORMAT,
    kind: meta.kind,
    window: String(meta.window),
    hotkey: meta.hotkey,
    fingerprint: meta.fingerprint,
    version: String(meta.version),
  };
  if (meta.loss !== undefined) m.loss = String(meta.loss);
  if (meta.tokens !== undefined) m.tokens = String(meta.tokens);
  if (meta.batches !== undefined) m.batches = String(meta.batches);
  return m;
}

function checkMeta(meta: SliceMeta): void {
  const int = (v: number | undefined) => v === undefined || (Number.isSafeInteger(v) && v >= 0);
  if (meta.kind !== "state" && meta.kind !== "delta") {
    throw new RangeError(`Invalid slice kind '${meta.kind}': expected state or delta`);
  }
  if (!int(meta.window) || !int(meta.version) || !int(meta.tokens) || !int(meta.batches)) {
    throw new RangeError(
      "Invalid slice metadata: window, version, tokens and batches must be integers >= 0",
    );
  }
  if (meta.loss !== undefined && !Number.isFinite(meta.loss)) {
    throw new RangeError(`Invalid slice loss ${meta.loss}: expected a finite number`);
  }
}

/**
 * Encodes and signs a slice.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Keyring } from "@polkadot/keyring";
 * import { cryptoWaitReady } from "@polkadot/util-crypto";
 * await cryptoWaitReady();
 * const pair = new Keyring({ type: "sr25519", ss58Format: 42 }).addFromUri("//Alice");
 * const signer = { address: pair.address, sign: (m: Uint8Array) => pair.sign(m) };
 * import { decodeSafetensors } from "../safetensors.ts";
 * const meta = { kind: "delta" as const, window: 3, hotkey: signer.address, fingerprint: "ab", version: 1 };
 * const bytes = encodeSlice(new Map([["w", new Float32Array([0.5, -1])]]), meta, signer, "BF16");
 * const { tensors, metadata } = decodeSafetensors(bytes);
 * assert.deepEqual([tensors.get("w")!.dtype, metadata.kind, metadata.window], ["BF16", "delta", "3"]);
 * assert.match(metadata.signature!, /^0x[0-9a-f]{128}$/);
 * assert.throws(
 *   () => encodeSlice(new Map([["w", new Float32Array([NaN])]]), meta, signer, "F32"),
 *   RangeError,
 * );
 * ```
 * @param slice one float32 tensor per parameter, in the order to write (table order)
 * @param meta what the slice is; `meta.hotkey` must be `signer.address`
 * @param dtype `F32` (exact, as the original) or `BF16` (half the bytes; see docs/WIRE.md)
 * @returns the safetensors bytes to upload under `sliceKey(kind, window, hotkey)`
 * @throws {RangeError} on a hotkey/signer mismatch, bad metadata or a non-finite value
 */
export function encodeSlice(
  slice: Tensors,
  meta: SliceMeta,
  signer: Signer,
  dtype: SliceDtype = "F32",
): Uint8Array {
  checkMeta(meta);
  if (signer.address !== meta.hotkey) {
    throw new RangeError(
      `Cannot sign a slice of hotkey '${meta.hotkey}' with the key of '${signer.address}'`,
    );
  }
  const entries = [...slice].map(([name, data]) => {
    for (let j = 0; j < data.length; j++) {
      if (!Number.isFinite(data[j]!)) {
        throw new RangeError(
          `Refusing to publish slice tensor '${name}': value ${
            data[j]
          } at position ${j} is not finite`,
        );
      }
    }
    return { name, dtype, shape: [data.length], data };
  });
  const tensors = entries.map((e) => ({ ...e, bytes: tensorBytes(e) }));
  return writeSigned(tensors, metaStrings(meta), signer);
}

/** One tensor of a signed file, its bytes already in `dtype`. */
export interface SignedTensor {
  name: string;
  dtype: Dtype;
  shape: readonly number[];
  bytes: Uint8Array;
}

/**
 * A signed safetensors file of `tensors` (in this order) and `metadata`, to which it adds
 * `payload_sha256` (SHA-256 of the data buffer) and `signature` (the signer's sr25519
 * signature of {@link signingMessage}). The slice and the protocol-v2 upload formats are
 * both written here.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Keyring } from "@polkadot/keyring";
 * import { cryptoWaitReady } from "@polkadot/util-crypto";
 * import { decodeSafetensors } from "../safetensors.ts";
 * await cryptoWaitReady();
 * const pair = new Keyring({ type: "sr25519", ss58Format: 42 }).addFromUri("//Alice");
 * const signer = { address: pair.address, sign: (m: Uint8Array) => pair.sign(m) };
 * const bytes = new Uint8Array([1, 2, 3, 4]);
 * const file = writeSigned([{ name: "t", dtype: "U8", shape: [4], bytes }], { kind: "x" }, signer);
 * const { metadata } = decodeSafetensors(file);
 * assert.equal(metadata.payload_sha256, "9f64a747e1b97f131fabb6b447296c9b6f0201e79fb3c5356e6c77e89b6a806a");
 * assert.match(metadata.signature!, /^0x[0-9a-f]{128}$/);
 * ```
 * @throws {RangeError} on metadata outside the allowed characters, or a signer that does
 *   not return 64 bytes
 */
export function writeSigned(
  tensors: readonly SignedTensor[],
  metadata: Record<string, string>,
  signer: Signer,
): Uint8Array {
  const h = createHash("sha256");
  for (const t of tensors) h.update(t.bytes);
  metadata.payload_sha256 = h.digest("hex");
  let pos = 0;
  const layout = tensors.map((t) => {
    const begin = pos;
    pos += t.bytes.length;
    return { name: t.name, dtype: t.dtype, shape: t.shape, begin, end: pos };
  });
  const sig = signer.sign(signingMessage(metadata, layout));
  if (sig.length !== 64) throw new RangeError(`Signer returned ${sig.length} bytes, expected 64`);
  metadata.signature = "0x" + hex(sig);
  const { header, offsets } = safetensorsHeader(tensors, metadata);
  const out = new Uint8Array(header.length + pos);
  out.set(header, 0);
  tensors.forEach((t, i) => out.set(t.bytes, header.length + offsets[i]![0]));
  return out;
}
