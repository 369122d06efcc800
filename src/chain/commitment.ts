/**
 * The bucket commitment: the one line a miner or validator publishes on chain so that any
 * peer can read its bucket with nothing else — endpoint (or R2 account), region, bucket,
 * key prefix and optional public read-only keys. Pure: no I/O, no chain, no store.
 *
 * Format (docs/CHAIN.md, "Bucket commitments"): `b1` then `;key=value` fields, printable
 * ASCII only, at most {@link MAX_COMMITMENT_TEXT} bytes:
 *
 *     b1;b=my-bucket;g=eu-west-1                        AWS S3 (no endpoint)
 *     b1;r2=<32 hex account id>;b=my-bucket;k=<id>:<secret>   Cloudflare R2 with read keys
 *     b1;e=https://s3.example.org:9000;b=bucket;p=team/a     any S3 endpoint
 *     b1;e=file:///abs/dir                              a directory (local networks only)
 *
 * Everything read from chain is untrusted: {@link parseCommitment} is strict (lengths,
 * characters, every field's shape, no unknown or repeated field) and, on public networks,
 * accepts only `https` endpoints whose host is a public name or address.
 *
 * @module
 */
import { type Reject, rejectionClass } from "../rejection.ts";

/** The version tag every commitment starts with. */
export const COMMITMENT_TAG = "b1";

/**
 * Longest commitment we read: three `Raw128` fields, today's runtime's `MaxFields` (3) ×
 * 128 bytes. One that fits in 128 bytes is a single field, which the Python SDK's
 * `get_commitment` (first field only) returns whole.
 */
export const MAX_COMMITMENT_TEXT = 384;

/** Where a bucket is, as committed. Absent fields take the defaults in docs/CHAIN.md. */
export interface BucketLocation {
  /** `https://host[:port]`; `http://…` or `file:///abs/dir` on local networks only. */
  endpoint?: string;
  /** Cloudflare account id (32 hex digits): endpoint `https://<id>.r2.cloudflarestorage.com`. */
  r2Account?: string;
  /** S3 bucket name; absent only for a `file://` endpoint. */
  bucket?: string;
  /** Signing region; default `auto` for R2, else `us-east-1`. */
  region?: string;
  /** Key prefix (`a/b`, no leading or trailing `/`): objects live at `<prefix>/<key>`. */
  prefix?: string;
  /** Read-only keys for peers. They are public: anyone can read them off the chain. */
  read?: { accessKeyId: string; secretAccessKey: string };
}

/** How strictly to check: public networks (finney, test) or a local one. */
export type CommitmentPolicy = "public" | "local";

/**
 * A commitment that {@link parseCommitment} refused; `reason` is a short stable code (a
 * metrics label), one of `CommitmentRejected.reasons`.
 */
export const CommitmentRejected = rejectionClass("CommitmentRejected", undefined, [
  "too_long",
  "bad_characters",
  "bad_format",
  "unknown_field",
  "duplicate_field",
  "missing_bucket",
  "bad_bucket",
  "bad_endpoint",
  "insecure_endpoint",
  "file_endpoint",
  "private_endpoint",
  "bad_region",
  "bad_prefix",
  "bad_credentials",
]);
/** Why a commitment was refused. */
export type RejectReason = (typeof CommitmentRejected.reasons)[number];

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const R2_ACCOUNT = /^[0-9a-f]{32}$/;
const REGION = /^[a-z0-9][a-z0-9-]{0,30}[a-z0-9]$/;
const PREFIX_SEGMENT = /^[A-Za-z0-9._-]{1,64}$/;
const KEY_ID = /^[A-Za-z0-9]{3,128}$/;
const SECRET = /^[A-Za-z0-9/+=]{3,128}$/;
const MAX_PREFIX = 64;
const MAX_ENDPOINT = 128;
const FIELDS = ["e", "r2", "b", "g", "p", "k"] as const;
type Field = typeof FIELDS[number];

const reject: Reject<RejectReason> = CommitmentRejected.reject;

/** Printable form of untrusted text for messages: at most 48 characters, no controls. */
function show(s: string): string {
  const t = s.length > 48 ? `${s.slice(0, 48)}…` : s;
  return JSON.stringify(t).replace(/[^\x20-\x7e]/g, "?");
}

/**
 * Parses and checks a commitment read from chain.
 * @throws {CommitmentRejected} naming the first problem found
 */
export function parseCommitment(text: string, policy: CommitmentPolicy): BucketLocation {
  const bytes = new TextEncoder().encode(text).length;
  if (bytes > MAX_COMMITMENT_TEXT) {
    reject("too_long", `${bytes} bytes, more than the ${MAX_COMMITMENT_TEXT} allowed`);
  }
  const bad = /[^\x21-\x7e]/.exec(text);
  if (bad) {
    const cp = bad[0].codePointAt(0)!.toString(16).padStart(4, "0");
    reject("bad_characters", `U+${cp} at offset ${bad.index}: only printable ASCII is allowed`);
  }
  const parts = text.split(";");
  if (parts[0] !== COMMITMENT_TAG) {
    reject(
      "bad_format",
      `${
        show(text)
      } does not start with '${COMMITMENT_TAG};' (a miner on an older boltzmann, or not a bucket)`,
    );
  }
  const got = new Map<Field, string>();
  for (const part of parts.slice(1)) {
    const eq = part.indexOf("=");
    if (eq <= 0) reject("bad_format", `field ${show(part)} is not key=value`);
    const k = part.slice(0, eq), v = part.slice(eq + 1);
    if (!(FIELDS as readonly string[]).includes(k)) reject("unknown_field", `field ${show(k)}`);
    if (got.has(k as Field)) reject("duplicate_field", `field '${k}' appears twice`);
    if (v === "") reject("bad_format", `field '${k}' is empty`);
    got.set(k as Field, v);
  }
  const loc: BucketLocation = {};
  const e = got.get("e"), r2 = got.get("r2");
  if (e !== undefined && r2 !== undefined) {
    reject("bad_format", "both 'e' (endpoint) and 'r2' (R2 account) are set; use one");
  }
  if (e !== undefined) loc.endpoint = checkEndpoint(e, policy);
  if (r2 !== undefined) {
    if (!R2_ACCOUNT.test(r2)) {
      reject("bad_endpoint", `R2 account ${show(r2)} is not 32 lowercase hex digits`);
    }
    loc.r2Account = r2;
  }
  const isFile = loc.endpoint?.startsWith("file://") ?? false;
  const b = got.get("b");
  if (b !== undefined) {
    if (isFile) reject("bad_format", "a file:// endpoint takes no bucket");
    if (!BUCKET.test(b) || b.includes("..") || /^\d+\.\d+\.\d+\.\d+$/.test(b)) {
      reject("bad_bucket", `${show(b)} is not 3-63 lowercase letters, digits, '.' and '-'`);
    }
    loc.bucket = b;
  } else if (!isFile) {
    reject("missing_bucket", "no 'b' (bucket) field");
  }
  const g = got.get("g");
  if (g !== undefined) {
    if (isFile) reject("bad_format", "a file:// endpoint takes no region");
    if (!REGION.test(g)) {
      reject("bad_region", `${show(g)} is not 2-32 lowercase letters, digits, '-'`);
    }
    loc.region = g;
  }
  const p = got.get("p");
  if (p !== undefined) {
    if (isFile) reject("bad_format", "a file:// endpoint takes no prefix");
    loc.prefix = checkPrefix(p);
  }
  const k = got.get("k");
  if (k !== undefined) {
    if (isFile) reject("bad_format", "a file:// endpoint takes no keys");
    const colon = k.indexOf(":");
    const id = k.slice(0, colon), secret = k.slice(colon + 1);
    if (colon < 0 || !KEY_ID.test(id) || !SECRET.test(secret)) {
      reject(
        "bad_credentials",
        "'k' must be ACCESS_KEY_ID:SECRET (3-128 letters/digits, then 3-128 of A-Z a-z 0-9 / + =)",
      );
    }
    loc.read = { accessKeyId: id, secretAccessKey: secret };
  }
  return loc;
}

function checkPrefix(p: string): string {
  if (p.length > MAX_PREFIX) {
    reject("bad_prefix", `${p.length} characters, more than ${MAX_PREFIX}`);
  }
  const segs = p.split("/");
  for (const s of segs) {
    if (!PREFIX_SEGMENT.test(s) || s === "." || s === "..") {
      reject(
        "bad_prefix",
        `${
          show(p)
        }: segments of letters, digits, '.', '_', '-' joined by '/', no '..' or empty segment`,
      );
    }
  }
  return p;
}

/** Checks an endpoint and returns it as written (it must already be in canonical form). */
function checkEndpoint(e: string, policy: CommitmentPolicy): string {
  if (e.length > MAX_ENDPOINT) {
    reject("bad_endpoint", `endpoint is ${e.length} characters, more than ${MAX_ENDPOINT}`);
  }
  const scheme = /^([a-z][a-z0-9+.-]*):/.exec(e)?.[1];
  if (scheme === "file") {
    if (policy === "public") {
      reject("file_endpoint", `${show(e)}: file:// buckets are only for local networks`);
    }
    if (!/^file:\/\/\/[A-Za-z0-9._\/-]*$/.test(e) || /\/\.\.?(\/|$)/.test(e)) {
      reject("bad_endpoint", `${show(e)} is not file:///absolute/dir (letters, digits, . _ - /)`);
    }
    return e;
  }
  if (scheme !== "https" && scheme !== "http") {
    reject("bad_endpoint", `${show(e)}: expected https://host[:port]`);
  }
  if (scheme === "http" && policy === "public") {
    reject("insecure_endpoint", `${show(e)}: public networks accept only https endpoints`);
  }
  let u: URL;
  try {
    u = new URL(e);
  } catch {
    return reject("bad_endpoint", `${show(e)} is not a URL`);
  }
  if (u.username || u.password || u.search || u.hash || (u.pathname !== "/" && u.pathname !== "")) {
    reject("bad_endpoint", `${show(e)}: only scheme://host[:port], no path, query or user`);
  }
  // The URL parser's own reading of the host (0x7f.1 and 2130706433 are 127.0.0.1).
  if (policy === "public") {
    const why = nonPublicHost(u.hostname);
    if (why) {
      reject("private_endpoint", `${show(e)}: host is ${why}; public networks need a public host`);
    }
  }
  // Non-canonical spellings (numeric hosts, upper case, trailing slash, :443) are refused:
  // what a peer checks must be exactly what it connects to.
  if (`${u.protocol}//${u.host}` !== e) {
    reject("bad_endpoint", `${show(e)} is not in canonical form (${u.protocol}//${u.host})`);
  }
  return e;
}

/**
 * Why `host` (a URL's normalised hostname) is not a public host, or null when it is.
 * Refuses loopback, private, link-local, shared, reserved and multicast addresses,
 * `localhost` and single-label or local-only names.
 */
export function nonPublicHost(host: string): string | null {
  if (host.startsWith("[")) return nonPublicIpv6(host.slice(1, -1));
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (v4) return nonPublicIpv4(v4.slice(1).map(Number));
  const labels = host.split(".");
  if (labels.length < 2) return `a single-label name (${host})`;
  const last2 = labels.slice(-2).join(".");
  if (host === "localhost" || labels.at(-1) === "localhost") return "a loopback name";
  if (
    ["local", "internal", "lan", "intranet", "corp"].includes(labels.at(-1)!) ||
    last2 === "home.arpa"
  ) {
    return `a local-only name (${host})`;
  }
  if (/^\d+$/.test(labels.at(-1)!)) return `not a valid public name (${host})`;
  return null;
}

function nonPublicIpv4([a, b, c]: number[]): string | null {
  if (a === 127) return "a loopback address";
  if (a === 10 || (a === 172 && b! >= 16 && b! <= 31) || (a === 192 && b === 168)) {
    return "a private address";
  }
  if (a === 169 && b === 254) return "a link-local address";
  if (a === 100 && b! >= 64 && b! <= 127) return "a shared (CGNAT) address";
  if (
    a === 0 || a! >= 224 || (a === 192 && b === 0 && (c === 0 || c === 2)) ||
    (a === 198 && (b === 18 || b === 19)) || (a === 198 && b === 51 && c === 100) ||
    (a === 203 && b === 0 && c === 113)
  ) {
    return "a reserved or multicast address";
  }
  return null;
}

/** Expands an IPv6 literal (as the URL parser writes it) into 8 numbers, or null. */
function ipv6Groups(s: string): number[] | null {
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const part = (h: string) => (h === "" ? [] : h.split(":"));
  const head = part(halves[0]!), tail = halves.length === 2 ? part(halves[1]!) : [];
  const fill = 8 - head.length - tail.length;
  if (halves.length === 1 ? fill !== 0 : fill < 1) return null;
  const all = [...head, ...Array(halves.length === 2 ? fill : 0).fill("0"), ...tail];
  if (!all.every((g) => /^[0-9a-f]{1,4}$/.test(g))) return null;
  return all.map((g) => parseInt(g, 16));
}

function nonPublicIpv6(s: string): string | null {
  const g = ipv6Groups(s);
  if (!g) return "not a valid IPv6 address";
  if (g.every((x) => x === 0)) return "the unspecified address";
  if (g.slice(0, 7).every((x) => x === 0) && g[7] === 1) return "a loopback address";
  // IPv4-mapped (::ffff:a.b.c.d) and NAT64 (64:ff9b::a.b.c.d) carry an IPv4 address.
  const mapped = g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff;
  const nat64 = g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0);
  if (mapped || nat64) {
    return nonPublicIpv4([g[6]! >> 8, g[6]! & 255, g[7]! >> 8, g[7]! & 255]);
  }
  if ((g[0]! & 0xfe00) === 0xfc00) return "a private (unique local) address";
  if ((g[0]! & 0xffc0) === 0xfe80) return "a link-local address";
  if ((g[0]! & 0xe000) !== 0x2000 || (g[0] === 0x2001 && g[1] === 0xdb8)) {
    return "a reserved or multicast address";
  }
  return null;
}

/**
 * The commitment text for `loc`, fields in canonical order (`e`|`r2`, `b`, `g`, `p`, `k`).
 * Checked with the local policy (anything a local network accepts); callers check the
 * network's policy with {@link parseCommitment} too.
 * @throws {CommitmentRejected} when `loc` would not parse back to itself
 */
export function encodeCommitment(loc: BucketLocation): string {
  const f: string[] = [COMMITMENT_TAG];
  if (loc.endpoint !== undefined) f.push(`e=${loc.endpoint}`);
  if (loc.r2Account !== undefined) f.push(`r2=${loc.r2Account}`);
  if (loc.bucket !== undefined) f.push(`b=${loc.bucket}`);
  if (loc.region !== undefined) f.push(`g=${loc.region}`);
  if (loc.prefix !== undefined) f.push(`p=${loc.prefix}`);
  if (loc.read) f.push(`k=${loc.read.accessKeyId}:${loc.read.secretAccessKey}`);
  const text = f.join(";");
  const back = parseCommitment(text, "local");
  if (JSON.stringify(back) !== JSON.stringify(normalised(loc))) {
    reject("bad_format", `location does not encode to itself (got ${show(text)})`);
  }
  return text;
}

function normalised(loc: BucketLocation): BucketLocation {
  const out: BucketLocation = {};
  for (const k of ["endpoint", "r2Account", "bucket", "region", "prefix", "read"] as const) {
    if (loc[k] !== undefined) (out as Record<string, unknown>)[k] = loc[k];
  }
  return out;
}

/** The R2 endpoint of an account. */
export function r2Endpoint(account: string): string {
  return `https://${account}.r2.cloudflarestorage.com`;
}

/** The account id when `endpoint` is an R2 account endpoint, else null. */
export function r2AccountOf(endpoint: string): string | null {
  return /^https:\/\/([0-9a-f]{32})\.r2\.cloudflarestorage\.com\/?$/.exec(endpoint)?.[1] ?? null;
}

/**
 * The commitment text with its credential field's value replaced by `<redacted>`, for
 * logs: the read keys are public on chain, but a log is copied to places the chain is not
 * (bug reports, CI output), and a key there looks leaked. Text-level, so it never throws,
 * even on text that does not parse.
 *
 * @example
 * ```ts
 * redactCommitment("b1;b=my-bucket;k=AKIA123:s3cr3t"); // "b1;b=my-bucket;k=<redacted>"
 * ```
 */
export function redactCommitment(text: string): string {
  return text.split(";").map((f) => f.startsWith("k=") ? "k=<redacted>" : f).join(";");
}

/** One line for logs and `inspect`: where the bucket is, never the keys. */
export function describeLocation(loc: BucketLocation): string {
  if (loc.endpoint?.startsWith("file://")) return loc.endpoint;
  const where = loc.r2Account
    ? `R2 account ${loc.r2Account}`
    : loc.endpoint ?? `AWS ${loc.region ?? "us-east-1"}`;
  const path = `s3://${loc.bucket}${loc.prefix ? `/${loc.prefix}` : ""}`;
  return `${path} on ${where}${loc.read ? " (read keys committed)" : ""}`;
}

/**
 * The policy for a chain: `local` for `--subtensor.network local`, or an explicit
 * endpoint on a loopback host (a chain on this machine is a local network); `public`
 * otherwise (finney, test, and any other endpoint — strict unless told).
 */
export function policyFor(network?: string, chainEndpoint?: string): CommitmentPolicy {
  if (network === "local") return "local";
  if (network === undefined && chainEndpoint !== undefined) {
    try {
      const h = new URL(chainEndpoint).hostname;
      if (h === "localhost" || h === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(h)) return "local";
    } catch { /* not a URL: connecting will say so */ }
  }
  return "public";
}

/** A hotkey whose commitment was refused. */
export interface RefusedCommitment {
  hotkey: string;
  reason: RejectReason;
  detail: string;
}

/**
 * Splits a subnet's commitments (hotkey → text) into the ones that parse under `policy`
 * and the refused ones with their reasons.
 */
export function screenCommitments(
  commitments: ReadonlyMap<string, string>,
  policy: CommitmentPolicy,
): { accepted: Map<string, string>; refused: RefusedCommitment[] } {
  const accepted = new Map<string, string>(), refused: RefusedCommitment[] = [];
  for (const [hotkey, text] of commitments) {
    try {
      parseCommitment(text, policy);
      accepted.set(hotkey, text);
    } catch (e) {
      if (!(e instanceof CommitmentRejected)) throw e;
      refused.push({ hotkey, reason: e.reason, detail: e.detail });
    }
  }
  return { accepted, refused };
}

/** Counts of refused commitments by reason (every reason present, zeros included). */
export function countByReason(refused: readonly RefusedCommitment[]): Record<RejectReason, number> {
  const out = CommitmentRejected.zeroCounts();
  for (const r of refused) out[r.reason]++;
  return out;
}
