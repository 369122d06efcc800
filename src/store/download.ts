/**
 * Many downloads at once, bounded: at most `concurrency` requests in flight, each with
 * its own timeout and size cap, retried with jittered exponential backoff on transient
 * failures (timeouts, resets, 5xx), and a progress line (objects, MB, MB/s) once the
 * batch has taken more than a second. A failed object never fails the batch: each
 * result carries its bytes or its error.
 *
 * @module
 */
import { getLogger } from "../log.ts";
import { type Store, StoreError } from "./mod.ts";

const log = getLogger(["boltzmann", "store"]);

/** Retry policy. */
export interface RetryOptions {
  /** Retries after the first attempt; default 3. */
  retries?: number;
  /** Base backoff in ms: attempt `a` waits uniformly in [b·2^a / 2, b·2^a]; default 200. */
  backoffMs?: number;
  signal?: AbortSignal;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * Runs `fn` until it succeeds, retrying {@link StoreError}s marked retryable.
 * @throws {StoreError} the last error, its message prefixed with `what` and the attempt count
 */
export async function withRetry<T>(
  what: string,
  fn: (attempt: number) => Promise<T>,
  opts: RetryOptions = {},
): Promise<T> {
  const retries = opts.retries ?? 3, base = opts.backoffMs ?? 200;
  for (let a = 0;; a++) {
    try {
      return await fn(a);
    } catch (e) {
      const retryable = e instanceof StoreError && e.retryable;
      if (!retryable || a >= retries || opts.signal?.aborted) {
        if (!(e instanceof StoreError) || a === 0) throw e;
        const err = new StoreError(`${what} failed after ${a + 1} attempts: ${e.message}`, true);
        err.cause = e;
        throw err;
      }
      const wait = base * 2 ** a * (0.5 + Math.random() / 2);
      log.debug("{what}: {error}; retry {n} in {ms} ms", {
        what,
        error: e.message,
        n: a + 1,
        ms: Math.round(wait),
      });
      await sleep(wait, opts.signal);
    }
  }
}

/** One object to fetch. */
export interface DownloadItem {
  store: Store;
  key: string;
  /** Size cap of this object in bytes. */
  maxBytes: number;
}

/** The outcome for one {@link DownloadItem}: bytes, `null` (absent) or the error. */
export interface DownloadResult {
  item: DownloadItem;
  bytes: Uint8Array | null;
  error?: StoreError;
  ms: number;
}

/** Options of {@link downloadAll}. */
export interface DownloadOptions extends RetryOptions {
  /** Requests in flight at once; default 8. */
  concurrency?: number;
  /** Per-attempt timeout; default 30000 ms. */
  timeoutMs?: number;
  /** Receives the progress line (default: logged at info) every `progressMs` (default
   * 1000) once the batch has run `progressAfterMs` (default 1000), and once at the end. */
  onProgress?: (line: string) => void;
  progressMs?: number;
  progressAfterMs?: number;
}

/**
 * Fetches `items` with bounded parallelism; results are in the order of `items`.
 * Never throws for a single object's failure (see {@link DownloadResult.error}).
 */
export async function downloadAll(
  items: readonly DownloadItem[],
  opts: DownloadOptions = {},
): Promise<DownloadResult[]> {
  const conc = Math.max(1, opts.concurrency ?? 8), timeoutMs = opts.timeoutMs ?? 30_000;
  const results: DownloadResult[] = new Array(items.length);
  const t0 = performance.now();
  let next = 0, done = 0, bytes = 0;
  const progress = opts.onProgress ?? ((line: string) => log.info(line));
  const line = () => {
    const s = (performance.now() - t0) / 1000;
    const mb = bytes / 1e6;
    return `downloads ${done}/${items.length} objects, ${mb.toFixed(1)} MB, ` +
      `${(mb / Math.max(s, 1e-3)).toFixed(1)} MB/s, ${s.toFixed(1)} s`;
  };
  const period = opts.progressMs ?? 1000, after = opts.progressAfterMs ?? 1000;
  let timer: ReturnType<typeof setInterval> | undefined;
  const first = setTimeout(() => {
    progress(line());
    timer = setInterval(() => progress(line()), period);
  }, after);
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      const item = items[i]!;
      const s = performance.now();
      try {
        const b = await withRetry(
          `GET '${item.key}' from ${item.store.location}`,
          () =>
            item.store.get(item.key, { maxBytes: item.maxBytes, timeoutMs, signal: opts.signal }),
          opts,
        );
        results[i] = { item, bytes: b, ms: performance.now() - s };
        bytes += b?.length ?? 0;
      } catch (e) {
        const err = e instanceof StoreError ? e : new StoreError(String(e), false);
        results[i] = { item, bytes: null, error: err, ms: performance.now() - s };
      }
      done++;
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(conc, items.length) }, worker));
  } finally {
    clearTimeout(first);
    if (timer !== undefined) clearInterval(timer);
  }
  if (performance.now() - t0 > after) progress(line());
  return results;
}
