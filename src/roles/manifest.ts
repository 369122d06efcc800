/**
 * The lead validator's manifest of window w: exactly which uploads every participant
 * aggregates into θ_{w+1}, with the weight of each, pinned by the SHA-256 of the upload's
 * bytes, and the digests of θ_w (what the uploads were computed at) and θ_{w+1} (what
 * applying them must give). Signed by the lead's hotkey (sr25519) over the SHA-256 of the
 * canonical JSON text of every field but the signature. docs/PROTOCOL.md, "Manifests".
 *
 * The rule that keeps a race at the deadline from splitting the network: nobody decides
 * for themselves which uploads made it in time; everyone applies the manifest.
 *
 * Deliberately left out: fetching (exchange.ts) and applying (shared.ts).
 *
 * @module
 */
import { createHash } from "node:crypto";
import { decodeAddress, sr25519Verify } from "@polkadot/util-crypto";
import type { Signer } from "../slices/wire.ts";

/** Value of `format`; a new layout or signing rule gets a new one. */
export const MANIFEST_FORMAT = "boltzmann-manifest/1";
/** Largest manifest accepted (bytes). */
export const MANIFEST_MAX_BYTES = 1 << 20;
/** Most uploads one manifest may list. */
export const MANIFEST_MAX_UPLOADS = 4096;

/** One upload the manifest pins. */
export interface ManifestEntry {
  uid: number;
  hotkey: string;
  /** Hex SHA-256 of the upload's bytes, as the lead downloaded them. */
  sha256: string;
  bytes: number;
  /** Weight in the aggregate (> 0, finite). */
  weight: number;
}

/** The manifest of one window. */
export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  window: number;
  /** The lead validator's hotkey (the signer). */
  lead: string;
  fingerprint: string;
  codec: string;
  /** paramsDigest(θ_w). */
  baseDigest: string;
  /** paramsDigest(θ_{w+1}) after applying the entries. */
  digest: string;
  /** Sorted by hotkey, one per hotkey. */
  uploads: ManifestEntry[];
}

const HEX64 = /^[0-9a-f]{64}$/;
const SS58 = /^[1-9A-HJ-NP-Za-km-z]{40,60}$/;

/** The canonical text of a manifest (fixed key order, no signature). */
function canonical(m: Manifest): string {
  return JSON.stringify({
    format: m.format,
    window: m.window,
    lead: m.lead,
    fingerprint: m.fingerprint,
    codec: m.codec,
    base_digest: m.baseDigest,
    digest: m.digest,
    uploads: m.uploads.map((u) => ({
      uid: u.uid,
      hotkey: u.hotkey,
      sha256: u.sha256,
      bytes: u.bytes,
      weight: u.weight,
    })),
  });
}

function message(m: Manifest): Uint8Array {
  return createHash("sha256").update(canonical(m)).digest();
}

/** Hex SHA-256 of bytes (what a manifest pins an upload by). */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** The signed manifest file's bytes. Entries are sorted by hotkey here. */
export function encodeManifest(m: Omit<Manifest, "format">, signer: Signer): Uint8Array {
  const full: Manifest = {
    ...m,
    format: MANIFEST_FORMAT,
    uploads: [...m.uploads].sort((a, b) => (a.hotkey < b.hotkey ? -1 : 1)),
  };
  if (full.lead !== signer.address) {
    throw new RangeError(`Manifest lead '${full.lead}' is not the signer '${signer.address}'`);
  }
  const sig = signer.sign(message(full));
  const text = canonical(full).slice(0, -1) +
    `,"signature":"0x${Array.from(sig, (b) => b.toString(16).padStart(2, "0")).join("")}"}`;
  return new TextEncoder().encode(text);
}

/** A manifest failed validation. */
export class ManifestRejected extends Error {
  override name = "ManifestRejected";
  constructor(detail: string) {
    super(`Manifest rejected: ${detail}`);
  }
}

/** What the receiver expects of a manifest. */
export interface ManifestExpect {
  window: number;
  lead: string;
  fingerprint: string;
  codec: string;
}

/**
 * Parses and checks a downloaded manifest: size, JSON shape and types, window, lead,
 * fingerprint, codec, digests, entries (ss58 hotkeys, sorted and unique, hex hashes,
 * byte counts, finite positive weights), and the lead's signature.
 * @throws {ManifestRejected} one line naming the first problem
 */
export function decodeManifest(bytes: Uint8Array, expect: ManifestExpect): Manifest {
  const bad = (why: string): never => {
    throw new ManifestRejected(why);
  };
  if (bytes.length > MANIFEST_MAX_BYTES) bad(`${bytes.length} bytes, over the cap`);
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    return bad("not UTF-8 JSON");
  }
  if (typeof j !== "object" || j === null || Array.isArray(j)) bad("not a JSON object");
  const str = (k: string, re?: RegExp): string => {
    const v = j[k];
    if (typeof v !== "string" || (re && !re.test(v))) bad(`field '${k}' missing or malformed`);
    return v as string;
  };
  if (str("format") !== MANIFEST_FORMAT) bad(`format is not ${MANIFEST_FORMAT}`);
  if (j.window !== expect.window) bad(`window ${j.window}, expected ${expect.window}`);
  if (str("lead") !== expect.lead) bad(`lead '${j.lead}', expected '${expect.lead}'`);
  if (str("fingerprint") !== expect.fingerprint) bad("model fingerprint differs");
  if (str("codec") !== expect.codec) bad(`codec '${j.codec}', expected '${expect.codec}'`);
  const baseDigest = str("base_digest", HEX64), digest = str("digest", HEX64);
  const sig = str("signature", /^0x[0-9a-f]{128}$/);
  const list = j.uploads;
  if (!Array.isArray(list) || list.length > MANIFEST_MAX_UPLOADS) bad("uploads not a short list");
  const uploads: ManifestEntry[] = [];
  for (const [i, e] of (list as unknown[]).entries()) {
    const o = e as Record<string, unknown>;
    if (
      typeof o !== "object" || o === null ||
      !Number.isSafeInteger(o.uid) || (o.uid as number) < 0 || (o.uid as number) > 65535 ||
      typeof o.hotkey !== "string" || !SS58.test(o.hotkey) ||
      typeof o.sha256 !== "string" || !HEX64.test(o.sha256) ||
      !Number.isSafeInteger(o.bytes) || (o.bytes as number) < 0 ||
      typeof o.weight !== "number" || !Number.isFinite(o.weight) || !(o.weight > 0)
    ) bad(`upload entry ${i} malformed`);
    if (i > 0 && !(uploads[i - 1]!.hotkey < (o.hotkey as string))) {
      bad("upload entries not sorted by hotkey or repeated");
    }
    uploads.push({
      uid: o.uid as number,
      hotkey: o.hotkey as string,
      sha256: o.sha256 as string,
      bytes: o.bytes as number,
      weight: o.weight as number,
    });
  }
  const m: Manifest = {
    format: MANIFEST_FORMAT,
    window: expect.window,
    lead: expect.lead,
    fingerprint: expect.fingerprint,
    codec: expect.codec,
    baseDigest,
    digest,
    uploads,
  };
  let ok = false;
  try {
    const raw = new Uint8Array(64);
    for (let i = 0; i < 64; i++) raw[i] = parseInt(sig.slice(2 + 2 * i, 4 + 2 * i), 16);
    ok = sr25519Verify(message(m), raw, decodeAddress(expect.lead));
  } catch {
    ok = false;
  }
  if (!ok) bad(`signature does not verify for lead '${expect.lead}'`);
  return m;
}
