/**
 * `S3Store`: a {@link Store} on any S3 API (AWS S3, Cloudflare R2, MinIO) over `fetch`,
 * signed with our own SigV4 (`sigv4.ts`, Web Crypto). Downloads stream and stop at the
 * caller's size cap. Without credentials requests go unsigned (public buckets).
 * The only module that speaks the S3 protocol.
 *
 * Deliberately left out: multipart uploads (a slice is far below S3's 5 GB single-PUT
 * limit), versioning, ACLs.
 *
 * @module
 */
import { getLogger } from "../log.ts";
import type { GetOptions, ObjectInfo, Store } from "./mod.ts";
import { checkKey, ObjectTooLarge, StoreError } from "./mod.ts";
import { amzDate, authorization, type Credentials, EMPTY_SHA256, sha256Hex } from "./sigv4.ts";

const log = getLogger(["boltzmann", "store"]);

/** Where and how to reach a bucket. */
export interface S3Options {
  bucket: string;
  /** `https://host[:port]`; default `https://s3.{region}.amazonaws.com`. */
  endpoint?: string;
  /** Signing region; default `us-east-1` (R2 accepts `auto`). */
  region?: string;
  /** Absent: anonymous (unsigned) requests, enough to read a public bucket. */
  credentials?: Credentials;
  /** `https://host/bucket/key` instead of `https://bucket.host/key`; default: true when
   * `endpoint` is given (MinIO and most local servers), false for AWS. */
  pathStyle?: boolean;
  /** Key prefix (`a/b`): objects live at `a/b/<key>`; list() returns keys without it. */
  prefix?: string;
  /** Timeout of put/list/delete in ms (get takes its own); default 60000. */
  timeoutMs?: number;
}

/** Cap on one ListObjectsV2 page: a page of 1000 keys is about 300 kB of XML. */
const LIST_PAGE_CAP = 8 << 20;

function xmlText(s: string): string {
  return s.replace(/&(lt|gt|amp|quot|apos|#x[0-9a-fA-F]+|#\d+);/g, (_, e: string) => {
    if (e === "lt") return "<";
    if (e === "gt") return ">";
    if (e === "amp") return "&";
    if (e === "quot") return '"';
    if (e === "apos") return "'";
    return String.fromCodePoint(e[1] === "x" ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
  });
}

function tag(xml: string, name: string): string | undefined {
  const m = new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml);
  return m ? xmlText(m[1]!) : undefined;
}

/** An S3 bucket as a {@link Store}. */
export class S3Store implements Store {
  readonly location: string;
  readonly #endpoint: URL;
  readonly #region: string;
  readonly #creds?: Credentials;
  readonly #pathStyle: boolean;
  readonly #timeoutMs: number;
  readonly #prefix: string;

  constructor(readonly opts: S3Options) {
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(opts.bucket)) {
      throw new RangeError(
        `Invalid bucket name '${opts.bucket}': use 3-63 lowercase letters, digits, '.' and '-'`,
      );
    }
    this.#region = opts.region ?? "us-east-1";
    const ep = opts.endpoint ?? `https://s3.${this.#region}.amazonaws.com`;
    try {
      this.#endpoint = new URL(ep);
    } catch {
      throw new RangeError(`Invalid S3 endpoint '${ep}': expected a URL like https://host:port`);
    }
    this.#creds = opts.credentials;
    this.#pathStyle = opts.pathStyle ?? opts.endpoint !== undefined;
    this.#timeoutMs = opts.timeoutMs ?? 60_000;
    const p = opts.prefix;
    if (
      p !== undefined &&
      (!/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/.test(p) ||
        p.split("/").some((s) => s === "." || s === ".."))
    ) {
      throw new RangeError(`Invalid key prefix '${p}': segments of letters, digits, '.', '_', '-'`);
    }
    this.#prefix = p ? `${p}/` : "";
    this.location = `s3://${opts.bucket}${p ? `/${p}` : ""}`;
  }

  /** The URL of `key` (empty: the bucket itself), without query. */
  #url(key: string): URL {
    const u = new URL(this.#endpoint.href);
    const base = u.pathname.replace(/\/+$/, "");
    if (this.#pathStyle) {
      // No trailing slash on bucket-level requests: some servers refuse the signature.
      u.pathname = key
        ? `${base}/${this.opts.bucket}/${this.#prefix}${key}`
        : `${base}/${this.opts.bucket}`;
    } else {
      u.hostname = `${this.opts.bucket}.${u.hostname}`;
      u.pathname = `${base}/${key ? this.#prefix + key : ""}`;
    }
    return u;
  }

  /** Sends one signed (or anonymous) request. */
  async #send(
    method: string,
    url: URL,
    body: Uint8Array | undefined,
    signal: AbortSignal,
  ): Promise<Response> {
    const headers: Record<string, string> = {};
    if (this.#creds) {
      const payloadHash = body ? await sha256Hex(body) : EMPTY_SHA256;
      const date = amzDate(new Date());
      headers["host"] = url.host;
      headers["x-amz-date"] = date;
      headers["x-amz-content-sha256"] = payloadHash;
      if (this.#creds.sessionToken) headers["x-amz-security-token"] = this.#creds.sessionToken;
      headers["authorization"] = await authorization(
        {
          method,
          path: decodeURIComponent(url.pathname),
          query: url.searchParams,
          headers: { ...headers },
          payloadHash,
        },
        this.#creds,
        date,
        this.#region,
        "s3",
      );
      delete headers["host"]; // fetch sets it, to the same value
    }
    try {
      return await fetch(url, {
        method,
        headers,
        body: body as Uint8Array<ArrayBuffer> | undefined,
        signal,
      });
    } catch (e) {
      throw this.#netError(method, url, e, signal);
    }
  }

  #netError(method: string, url: URL, e: unknown, signal: AbortSignal): StoreError {
    if (e instanceof StoreError) return e;
    const what = `${method} ${this.location}${url.pathname.slice(url.pathname.indexOf("/", 1))}`;
    if (signal.aborted) {
      const r = signal.reason;
      if (r instanceof StoreError) return r;
      return new StoreError(`${what} was cancelled or timed out`, true);
    }
    return new StoreError(`${what} failed: ${(e as Error).message ?? e}`, true);
  }

  /** A StoreError from a non-2xx reply (its XML error code when present). */
  async #httpError(what: string, res: Response): Promise<StoreError> {
    let code = "";
    try {
      const text = await readCapped(res, 64 << 10);
      code = tag(text, "Code") ?? "";
      const msg = tag(text, "Message");
      if (msg) code += `: ${msg}`;
    } catch {
      // The error body is only decoration.
    }
    const hint = res.status === 403
      ? " (check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and the bucket's policy)"
      : "";
    return new StoreError(
      `${what} on ${this.location} failed: HTTP ${res.status}${code ? ` ${code}` : ""}${hint}`,
      res.status >= 500 || res.status === 429,
    );
  }

  #timer(ms: number, outer?: AbortSignal): { signal: AbortSignal; done(): void } {
    const ac = new AbortController();
    const t = setTimeout(
      () =>
        ac.abort(new StoreError(`S3 request to ${this.location} timed out after ${ms} ms`, true)),
      ms,
    );
    const onOuter = () => ac.abort(outer!.reason);
    outer?.addEventListener("abort", onOuter, { once: true });
    return {
      signal: ac.signal,
      done() {
        clearTimeout(t);
        outer?.removeEventListener("abort", onOuter);
      },
    };
  }

  async put(key: string, bytes: Uint8Array): Promise<void> {
    checkKey(key);
    const t = this.#timer(this.#timeoutMs);
    try {
      const res = await this.#send("PUT", this.#url(key), bytes, t.signal);
      if (!res.ok) throw await this.#httpError(`PUT '${key}'`, res);
      await res.body?.cancel();
      log.debug("put {key} {bytes} bytes to {location}", {
        key,
        bytes: bytes.length,
        location: this.location,
      });
    } finally {
      t.done();
    }
  }

  async get(key: string, opts: GetOptions): Promise<Uint8Array | null> {
    checkKey(key);
    const t = this.#timer(opts.timeoutMs, opts.signal);
    const url = this.#url(key);
    try {
      const res = await this.#send("GET", url, undefined, t.signal);
      if (res.status === 404) {
        await res.body?.cancel();
        return null;
      }
      if (!res.ok) throw await this.#httpError(`GET '${key}'`, res);
      const declared = res.headers.get("content-length");
      const len = declared === null ? undefined : Number(declared);
      if (len !== undefined && len > opts.maxBytes) {
        await res.body?.cancel();
        throw new ObjectTooLarge(key, opts.maxBytes, len);
      }
      try {
        return await readBody(res, key, opts.maxBytes, len);
      } catch (e) {
        throw this.#netError("GET", url, e, t.signal);
      }
    } finally {
      t.done();
    }
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    let token: string | undefined;
    do {
      const url = this.#url("");
      url.searchParams.set("list-type", "2");
      url.searchParams.set("prefix", this.#prefix + prefix);
      if (token) url.searchParams.set("continuation-token", token);
      const t = this.#timer(this.#timeoutMs);
      let xml: string;
      try {
        const res = await this.#send("GET", url, undefined, t.signal);
        if (!res.ok) throw await this.#httpError(`LIST '${prefix}*'`, res);
        xml = await readCapped(res, LIST_PAGE_CAP).catch((e) => {
          throw this.#netError("LIST", url, e, t.signal);
        });
      } finally {
        t.done();
      }
      for (const m of xml.matchAll(/<Contents>([\s\S]*?)<\/Contents>/g)) {
        const full = tag(m[1]!, "Key"), size = Number(tag(m[1]!, "Size"));
        const lm = new Date(tag(m[1]!, "LastModified") ?? 0);
        if (full?.startsWith(this.#prefix) && Number.isSafeInteger(size)) {
          out.push({ key: full.slice(this.#prefix.length), size, lastModified: lm });
        }
      }
      token = tag(xml, "IsTruncated") === "true" ? tag(xml, "NextContinuationToken") : undefined;
    } while (token);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    const t = this.#timer(this.#timeoutMs);
    try {
      const res = await this.#send("DELETE", this.#url(key), undefined, t.signal);
      if (!res.ok && res.status !== 404) throw await this.#httpError(`DELETE '${key}'`, res);
      await res.body?.cancel();
    } finally {
      t.done();
    }
  }
}

/** Reads a response body as text, refusing more than `cap` bytes. */
async function readCapped(res: Response, cap: number): Promise<string> {
  const bytes = await readBody(res, "(response)", cap, undefined);
  return new TextDecoder().decode(bytes);
}

/**
 * Reads `res`'s body into one array, cancelling the stream as soon as more than
 * `maxBytes` arrive; checks the total against `Content-Length` when declared.
 */
async function readBody(
  res: Response,
  key: string,
  maxBytes: number,
  declared: number | undefined,
): Promise<Uint8Array> {
  if (!res.body) return new Uint8Array(0);
  const reader = res.body.getReader();
  let buf = new Uint8Array(declared ?? Math.min(maxBytes, 1 << 20));
  let n = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (n + value.length > maxBytes) {
        await reader.cancel();
        throw new ObjectTooLarge(key, maxBytes, n + value.length);
      }
      if (n + value.length > buf.length) {
        const next = new Uint8Array(Math.min(maxBytes, Math.max(buf.length * 2, n + value.length)));
        next.set(buf.subarray(0, n));
        buf = next;
      }
      buf.set(value, n);
      n += value.length;
    }
  } finally {
    reader.releaseLock();
  }
  if (declared !== undefined && n !== declared) {
    throw new StoreError(`Short read of '${key}': ${n} of ${declared} bytes`, true);
  }
  return n === buf.length ? buf : buf.subarray(0, n);
}
