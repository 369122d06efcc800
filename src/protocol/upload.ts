/**
 * The protocol-v2 upload: a miner's encoded update as a signed safetensors file
 * (docs/PROTOCOL.md, "Upload format"). The same conventions as the seed's slices
 * (src/slices/wire.ts): string metadata, the SHA-256 of the data buffer, and an sr25519
 * signature by the hotkey over the canonical text of every metadata value and every
 * tensor's name, dtype, shape and offsets. `format` is `boltzmann-update/1`, and `codec`
 * names the codec, so a slice can never pass for an update nor one codec for another.
 *
 * Reading is strict and ordered: size cap from the parameter table and codec, header cap,
 * layout, metadata, fingerprint / window / hotkey, payload hash, signature, then the
 * codec's own checks (codec.ts `decodeUpdate`). Each failure is an {@link UploadRejected}.
 *
 * @module
 */
import type { Reject } from "../rejection.ts";
import { type Signer, writeSigned } from "../slices/wire.ts";
import {
  type FramingReasons,
  parseSignedFile,
  signedMeta,
  verifySigned,
} from "../slices/validate.ts";
import {
  type CodecContext,
  type CodecSpec,
  decodeUpdate,
  type EncodedTensor,
  type EncodedUpdate,
  payloadCap,
  UploadRejected,
  type UploadRejectReason,
} from "./codec.ts";

/** Value of the `format` metadata key. */
export const UPLOAD_FORMAT = "boltzmann-update/1";

/** What an upload says about itself (signed). */
export interface UploadMeta {
  window: number;
  /** ss58 address of the signing hotkey. */
  hotkey: string;
  /** `modelFingerprint()` of the model (src/hparams.ts). */
  fingerprint: string;
  /** Digest of θ_w the update was computed at (outer.ts `paramsDigest`), when known. */
  theta?: string;
  loss?: number;
  tokens?: number;
  batches?: number;
}

/** What a receiver expects. */
export interface UploadExpect {
  spec: CodecSpec;
  /** The parameter table (sets every size). */
  params: ReadonlyArray<{ name: string; shape: readonly number[] }>;
  fingerprint: string;
  window?: number;
  hotkey?: string;
  /** Codec context (the slices codec's seed). */
  ctx?: CodecContext;
}

/** A validated upload. */
export interface ReadUpload {
  meta: UploadMeta;
  /** The upload's tensors: views into the bytes given to {@link readUpload}. */
  enc: EncodedUpdate;
  /** The decoded dense update, one tensor per parameter. */
  update: Map<string, Float32Array>;
  payloadSha256: string;
}

const reject: Reject<UploadRejectReason> = UploadRejected.reject;

/** An upload's reasons for the framing checks (a header over its cap is a bad layout). */
const UPLOAD_FRAMING: FramingReasons<UploadRejectReason> = {
  label: "upload",
  headerBeyondFile: "truncated",
  parser: (detail) => /past the data buffer|shorter/.test(detail) ? "truncated" : "bad-layout",
};

function metaStrings(meta: UploadMeta, codec: string): Record<string, string> {
  const int = (v: number | undefined) => v === undefined || (Number.isSafeInteger(v) && v >= 0);
  if (!int(meta.window) || !int(meta.tokens) || !int(meta.batches)) {
    throw new RangeError(
      "Invalid upload metadata: window, tokens and batches must be integers >= 0",
    );
  }
  if (meta.loss !== undefined && !Number.isFinite(meta.loss)) {
    throw new RangeError(`Invalid upload loss ${meta.loss}: expected a finite number`);
  }
  const m: Record<string, string> = {
    format: UPLOAD_FORMAT,
    codec,
    window: String(meta.window),
    hotkey: meta.hotkey,
    fingerprint: meta.fingerprint,
  };
  if (meta.theta !== undefined) m.theta = meta.theta;
  if (meta.loss !== undefined) m.loss = String(meta.loss);
  if (meta.tokens !== undefined) m.tokens = String(meta.tokens);
  if (meta.batches !== undefined) m.batches = String(meta.batches);
  return m;
}

/**
 * Signs and serialises an encoded update.
 * @returns the bytes to upload (their length is what a miner uploads per window)
 * @throws {RangeError} on a hotkey/signer mismatch or bad metadata
 */
export function writeUpload(enc: EncodedUpdate, meta: UploadMeta, signer: Signer): Uint8Array {
  if (signer.address !== meta.hotkey) {
    throw new RangeError(
      `Cannot sign an upload of hotkey '${meta.hotkey}' with the key of '${signer.address}'`,
    );
  }
  const tensors = [...enc.tensors].map(([name, t]) => ({ name, ...t }));
  return writeSigned(tensors, metaStrings(meta, enc.codec), signer);
}

/** The JSON-header cap: 2 KiB of metadata plus, per parameter, four tensors' entries. */
export function uploadHeaderCap(params: ReadonlyArray<{ name: string }>): number {
  let n = 2048;
  for (const p of params) n += 4 * (p.name.length + 8 + 96);
  return Math.ceil(n / 8) * 8;
}

/** The largest valid upload for `expect`: downloads stop here. */
export function uploadByteCap(expect: Pick<UploadExpect, "spec" | "params">): number {
  return 8 + uploadHeaderCap(expect.params) + payloadCap(expect.spec, expect.params);
}

function parseMeta(md: Record<string, string>, spec: CodecSpec): UploadMeta & { sig: string } {
  const r = signedMeta(md, UPLOAD_FORMAT, ["codec", "window", "hotkey", "fingerprint"], reject);
  if (md.codec !== spec.name) {
    reject("wrong-codec", `codec '${md.codec}', the network uses '${spec.name}'`);
  }
  const meta: UploadMeta = {
    window: r.uint("window")!,
    hotkey: md.hotkey!,
    fingerprint: md.fingerprint!,
  };
  if (md.theta !== undefined) {
    if (!/^[0-9a-f]{64}$/.test(md.theta)) reject("bad-metadata", "metadata 'theta' is not 64 hex");
    meta.theta = md.theta;
  }
  const loss = r.num("loss"), tokens = r.uint("tokens"), batches = r.uint("batches");
  if (loss !== undefined) meta.loss = loss;
  if (tokens !== undefined) meta.tokens = tokens;
  if (batches !== undefined) meta.batches = batches;
  return { ...meta, sig: md.signature! };
}

/**
 * Validates untrusted upload bytes and decodes them (order in the module doc).
 * @throws {UploadRejected} with the first failed check's reason
 */
export function readUpload(bytes: Uint8Array, expect: UploadExpect): ReadUpload {
  const header = parseSignedFile(
    bytes,
    { file: uploadByteCap(expect), header: uploadHeaderCap(expect.params) },
    UPLOAD_FRAMING,
    reject,
  );
  const m = parseMeta(header.metadata, expect.spec);
  if (m.fingerprint !== expect.fingerprint) {
    reject(
      "wrong-fingerprint",
      `model fingerprint '${m.fingerprint}', expected '${expect.fingerprint}'`,
    );
  }
  if (expect.window !== undefined && m.window !== expect.window) {
    reject("wrong-window", `window ${m.window}, expected ${expect.window}`);
  }
  if (expect.hotkey !== undefined && m.hotkey !== expect.hotkey) {
    reject("wrong-hotkey", `signed by hotkey '${m.hotkey}' but uploaded by '${expect.hotkey}'`);
  }
  const data = bytes.subarray(header.dataStart);
  const { payload, problem } = verifySigned(bytes, header, m.hotkey);
  if (problem) reject(problem.reason, problem.detail);
  // Views, not copies: the decoder copies only what it must (unaligned float32 values).
  const tensors = new Map<string, EncodedTensor>();
  let total = 0;
  for (const [name, t] of header.tensors) {
    tensors.set(name, { dtype: t.dtype, shape: t.shape, bytes: data.subarray(t.begin, t.end) });
    total += t.end - t.begin;
  }
  const enc: EncodedUpdate = { codec: expect.spec.name, tensors, bytes: total };
  const update = decodeUpdate(expect.spec, enc, expect.params, expect.ctx);
  const { sig: _s, ...meta } = m;
  return { meta, enc, update, payloadSha256: payload };
}
