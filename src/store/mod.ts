/**
 * Object storage for slices: the {@link Store} interface that miners, validators and
 * `inspect` use, the key syntax, and errors callers catch (object names and retention:
 * src/roles/keys.ts).
 * Implementations: `local.ts` (a directory), `s3.ts` (any S3 API); `resolve.ts` turns
 * `--bucket` into one; `download.ts` fetches many objects in parallel.
 *
 * Every byte a `get` returns is untrusted: the caller gives the size cap, and a store
 * stops reading at the cap instead of reading the rest.
 *
 * Left out: retries and back-off (callers decide; `StoreError.retryable` tells them
 * whether to), caching, and any notion of object contents (slices, checkpoints).
 *
 * @module
 */

/** One listed object. */
export interface ObjectInfo {
  key: string;
  size: number;
  lastModified: Date;
}

/** Bounds for one download. */
export interface GetOptions {
  /** The object is refused (with {@link ObjectTooLarge}) once more bytes than this arrive. */
  maxBytes: number;
  /** The whole request (headers and body) must finish within this many milliseconds. */
  timeoutMs: number;
  /** Cancels the request from outside. */
  signal?: AbortSignal;
}

/** A flat key → bytes store. Keys match {@link KEY_PATTERN}. */
export interface Store {
  /** Writes the whole object; readers see the old object or the new one, never a part. */
  put(key: string, bytes: Uint8Array): Promise<void>;
  /**
   * The whole object, or `null` when it does not exist.
   * @throws {ObjectTooLarge} when it exceeds `maxBytes` (reading stops there)
   * @throws {StoreError} on timeouts, network and server errors (`retryable` says which)
   */
  get(key: string, opts: GetOptions): Promise<Uint8Array | null>;
  /** Objects whose key starts with `prefix`, sorted by key. */
  list(prefix: string): Promise<ObjectInfo[]>;
  /** Removes the object; removing a missing object is not an error. */
  delete(key: string): Promise<void>;
  /** Where the store points, for logs and messages (`s3://bucket`, `file:///dir`); no secrets. */
  readonly location: string;
}

/** A store operation failed; `retryable` is true for timeouts, resets and 5xx replies. */
export class StoreError extends Error {
  override name = "StoreError";
  constructor(message: string, readonly retryable: boolean) {
    super(message);
  }
}

/** An object was larger than the caller's cap; the rest of it was not read. */
export class ObjectTooLarge extends StoreError {
  override name = "ObjectTooLarge";
  constructor(readonly key: string, readonly maxBytes: number, readonly seen: number) {
    super(
      `Object '${key}' exceeds the size cap of ${maxBytes} bytes (${seen} bytes seen); ` +
        "it was not read further",
      false,
    );
  }
}

/** Keys we accept: no separators or dot-dot, so a key is also a safe file name. */
export const KEY_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/;

/**
 * @throws {RangeError} on a key that does not match {@link KEY_PATTERN}
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * checkKey("delta-12-5F3sa.safetensors");
 * assert.throws(() => checkKey("../etc/passwd"), RangeError);
 * assert.throws(() => checkKey("a/b"), RangeError); // a key is also a safe file name
 * ```
 */
export function checkKey(key: string): void {
  if (!KEY_PATTERN.test(key) || key.includes("..")) {
    throw new RangeError(
      `Invalid object key '${key}': use letters, digits, '.', '_' and '-' (at most 255)`,
    );
  }
}
