/**
 * AWS Signature Version 4 (header form) with Web Crypto only: canonical request,
 * string to sign, signing key, `Authorization` header. S3 flavour: the path is
 * URI-encoded once and never normalised. Checked against AWS's published vectors in
 * `sigv4_test.ts`.
 *
 * Deliberately left out: presigned URLs, chunked (`aws-chunked`) payload signing and
 * SigV4A; S3 accepts a whole-body hash or `UNSIGNED-PAYLOAD`, which is all we send.
 *
 * @module
 */

/** Access key pair (and optional session token) for signing; never log it. */
export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** SHA-256 of the empty string, the payload hash of bodiless requests. */
export const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

const enc = new TextEncoder();

/** Lowercase hex of `b`. */
export function toHex(b: ArrayBuffer | Uint8Array): string {
  const u = b instanceof Uint8Array ? b : new Uint8Array(b);
  let s = "";
  for (let i = 0; i < u.length; i++) s += u[i]!.toString(16).padStart(2, "0");
  return s;
}

/** Hex SHA-256 of `data` (a string is UTF-8 encoded). */
export async function sha256Hex(data: Uint8Array | string): Promise<string> {
  const bytes = typeof data === "string" ? enc.encode(data) : data;
  return toHex(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
}

async function hmac(key: Uint8Array | string, msg: string): Promise<Uint8Array> {
  const k = await crypto.subtle.importKey(
    "raw",
    (typeof key === "string" ? enc.encode(key) : key) as Uint8Array<ArrayBuffer>,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, enc.encode(msg)));
}

/** RFC 3986 encoding as SigV4 wants it: unreserved characters kept, the rest %XX. */
export function uriEncode(s: string, keepSlash: boolean): string {
  let out = encodeURIComponent(s).replace(
    /[!'()*]/g,
    (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase(),
  );
  if (keepSlash) out = out.replaceAll("%2F", "/");
  return out;
}

/** The canonical query string: encoded keys and values sorted by key then value. */
export function canonicalQuery(params: URLSearchParams): string {
  const pairs: [string, string][] = [];
  for (const [k, v] of params) pairs.push([uriEncode(k, false), uriEncode(v, false)]);
  pairs.sort((
    a,
    b,
  ) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join("&");
}

/** What a request contributes to its signature. `path` is decoded (`/bucket/my key`). */
export interface SignableRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  /** Header names in any case; `host` must be present. All of them are signed. */
  headers: Record<string, string>;
  /** Hex SHA-256 of the body, or `UNSIGNED-PAYLOAD`. */
  payloadHash: string;
}

/** Lowercased, trimmed, sorted headers as `[name, value]`. */
function canonicalHeaderList(headers: Record<string, string>): [string, string][] {
  return Object.entries(headers)
    .map(([k, v]): [string, string] => [k.toLowerCase(), v.trim().replace(/\s+/g, " ")])
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

/** The canonical request of SigV4 step 1 (path encoded once, as S3 does). */
export function canonicalRequest(r: SignableRequest): string {
  const hs = canonicalHeaderList(r.headers);
  return [
    r.method.toUpperCase(),
    uriEncode(r.path, true),
    canonicalQuery(r.query),
    hs.map(([k, v]) => `${k}:${v}\n`).join(""),
    hs.map(([k]) => k).join(";"),
    r.payloadHash,
  ].join("\n");
}

/** `YYYYMMDD'T'HHMMSS'Z'` of `d`. */
export function amzDate(d: Date): string {
  return d.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

/** The string to sign of SigV4 step 2. */
export async function stringToSign(
  canonical: string,
  date: string,
  region: string,
  service: string,
): Promise<string> {
  const scope = `${date.slice(0, 8)}/${region}/${service}/aws4_request`;
  return ["AWS4-HMAC-SHA256", date, scope, await sha256Hex(canonical)].join("\n");
}

/** The signing key of SigV4 step 3: HMAC chain over date, region, service. */
export async function signingKey(
  secret: string,
  day: string,
  region: string,
  service: string,
): Promise<Uint8Array> {
  const kDate = await hmac("AWS4" + secret, day);
  const kRegion = await hmac(kDate, region);
  const kService = await hmac(kRegion, service);
  return await hmac(kService, "aws4_request");
}

/**
 * Signs `r`: returns the `Authorization` header value. `r.headers` must already hold
 * `host`, `x-amz-date` (equal to `date`) and, for S3, `x-amz-content-sha256`.
 *
 * @example
 * ```ts
 * const auth = await authorization(req, creds, "20150830T123600Z", "us-east-1", "s3");
 * ```
 */
export async function authorization(
  r: SignableRequest,
  creds: Credentials,
  date: string,
  region: string,
  service: string,
): Promise<string> {
  const canonical = canonicalRequest(r);
  const sts = await stringToSign(canonical, date, region, service);
  const key = await signingKey(creds.secretAccessKey, date.slice(0, 8), region, service);
  const sig = toHex(await hmac(key, sts));
  const signed = canonicalHeaderList(r.headers).map(([k]) => k).join(";");
  return `AWS4-HMAC-SHA256 Credential=${creds.accessKeyId}/${
    date.slice(0, 8)
  }/${region}/${service}/aws4_request, SignedHeaders=${signed}, Signature=${sig}`;
}
