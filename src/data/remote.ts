/**
 * The original's data source as a {@link Dataset}: rows of `HuggingFaceFW/fineweb-edu-score-2`
 * through the Hugging Face datasets-server HTTP API
 * (`GET {base}/rows?dataset=…&config=…&split=…&offset=…&length=…`, at most 100 rows a
 * request). Page `p` is rows `[p·rowsPerPage, (p+1)·rowsPerPage)` of the chosen config and
 * split; each row's `text` is tokenized with the LLaMA-2 tokenizer and packed exactly as
 * the embedded corpus is (src/data/pages.ts).
 *
 * The split: with `A = floor(totalRows / rowsPerPage)` pages, the last
 * `max(1, floor(A / 100))` are held out for evaluation and the rest are training pages.
 * `totalRows` is the API's `num_rows_total` unless pinned: every peer must use the same
 * value, since it keys the page permutation.
 *
 * Network: each request has a timeout; network errors, 429 and 5xx are retried with
 * doubling backoff; other statuses fail at once. Responses are untrusted: bounded size,
 * checked shape. Pages are cached as small JSON files (atomic writes) under a size cap,
 * oldest evicted first.
 *
 * @module
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import type { Hparams } from "../hparams.ts";
import { getLogger } from "../log.ts";
import { pages } from "../window.ts";
import { type Dataset, packRows, type PageRow } from "./pages.ts";
import { tokenizer } from "./tokenizer.ts";

const log = getLogger(["boltzmann", "data"]);

/** The datasets-server of Hugging Face. */
export const HF_DATASETS_SERVER = "https://datasets-server.huggingface.co";
/** The original's dataset. */
export const FINEWEB_DATASET = "HuggingFaceFW/fineweb-edu-score-2";
/** Most rows one `/rows` request may ask for (the API's limit). */
const MAX_LENGTH = 100;
/** Largest response body accepted. */
const MAX_RESPONSE_BYTES = 64 << 20;

/** Where and how to fetch fineweb pages. Every field has a default. */
export interface FineWebOptions {
  /** Base URL of the datasets-server (tests point it at a local server). */
  baseUrl?: string;
  dataset?: string;
  config?: string;
  split?: string;
  /** Pin the number of rows instead of asking the server (all peers must agree). */
  totalRows?: number;
  /** Directory of the page cache; no cache when absent. */
  cacheDir?: string;
  /** Cache size cap in bytes (default 1 GiB). */
  cacheMaxBytes?: number;
  /** Per-request timeout (default 30 s). */
  timeoutMs?: number;
  /** Attempts per request (default 5). */
  attempts?: number;
  /** First retry delay, doubled after each failure (default 500 ms). */
  backoffMs?: number;
  fetch?: typeof fetch;
}

/** One `/rows` response, checked. */
export interface RowsPage {
  texts: string[];
  numRowsTotal: number;
}

type Resolved = Required<Omit<FineWebOptions, "totalRows" | "cacheDir">> & {
  totalRows?: number;
  cacheDir?: string;
};

function resolve(o: FineWebOptions): Resolved {
  return {
    baseUrl: (o.baseUrl ?? HF_DATASETS_SERVER).replace(/\/+$/, ""),
    dataset: o.dataset ?? FINEWEB_DATASET,
    config: o.config ?? "default",
    split: o.split ?? "train",
    totalRows: o.totalRows,
    cacheDir: o.cacheDir,
    cacheMaxBytes: o.cacheMaxBytes ?? 1 << 30,
    timeoutMs: o.timeoutMs ?? 30_000,
    attempts: Math.max(1, o.attempts ?? 5),
    backoffMs: o.backoffMs ?? 500,
    fetch: o.fetch ?? fetch,
  };
}

/** Checks a `/rows` JSON body: `{rows: [{row_idx, row: {text}}], num_rows_total}`. */
export function parseRows(body: unknown, offset: number, length: number): RowsPage {
  const b = body as { rows?: unknown; num_rows_total?: unknown } | null;
  if (typeof b !== "object" || b === null || !Array.isArray(b.rows)) {
    throw new Error("Invalid datasets-server response: no 'rows' array");
  }
  const total = b.num_rows_total;
  if (typeof total !== "number" || !Number.isSafeInteger(total) || total < 0) {
    throw new Error(`Invalid datasets-server response: num_rows_total ${JSON.stringify(total)}`);
  }
  const want = Math.max(0, Math.min(length, total - offset));
  if (b.rows.length !== want) {
    throw new Error(
      `Invalid datasets-server response: ${b.rows.length} rows at offset ${offset}, expected ${want}`,
    );
  }
  const texts = b.rows.map((r: unknown, i: number) => {
    const { row_idx, row } = (r ?? {}) as { row_idx?: unknown; row?: { text?: unknown } };
    if (row_idx !== offset + i) {
      throw new Error(
        `Invalid datasets-server response: row_idx ${JSON.stringify(row_idx)}, expected ${
          offset + i
        }`,
      );
    }
    if (typeof row?.text !== "string") {
      throw new Error(`Invalid datasets-server response: row ${offset + i} has no text`);
    }
    return row.text;
  });
  return { texts, numRowsTotal: total };
}

async function readBounded(res: Response, max: number): Promise<Uint8Array> {
  const declared = Number(res.headers.get("content-length") ?? "0");
  if (declared > max) {
    await res.body?.cancel();
    throw new Error(`Response of ${declared} bytes exceeds the ${max}-byte limit`);
  }
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const chunk of res.body ?? []) {
    n += chunk.length;
    if (n > max) throw new Error(`Response exceeds the ${max}-byte limit`);
    parts.push(chunk);
  }
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** A failure not worth retrying (a 4xx other than 429, or a malformed body). */
class Permanent extends Error {}

/**
 * Fetches rows `[offset, offset+length)` (length ≤ 100) with timeout and retries.
 * @throws {Error} one line naming the URL, the last reason and the fix
 */
export async function fetchRows(
  options: FineWebOptions,
  offset: number,
  length: number,
): Promise<RowsPage> {
  const o = resolve(options);
  if (!Number.isSafeInteger(offset) || offset < 0 || length < 1 || length > MAX_LENGTH) {
    throw new RangeError(`Invalid row range offset ${offset} length ${length}`);
  }
  const q = new URLSearchParams({
    dataset: o.dataset,
    config: o.config,
    split: o.split,
    offset: String(offset),
    length: String(length),
  });
  const url = `${o.baseUrl}/rows?${q}`;
  let last = "";
  for (let attempt = 1; attempt <= o.attempts; attempt++) {
    try {
      const res = await o.fetch(url, { signal: AbortSignal.timeout(o.timeoutMs) });
      const body = await readBounded(res, MAX_RESPONSE_BYTES);
      const text = new TextDecoder().decode(body);
      if (res.status === 429 || res.status >= 500) {
        throw new Error(`HTTP ${res.status}`);
      }
      if (!res.ok) {
        let why = text.slice(0, 200);
        try {
          why = String(JSON.parse(text).error ?? why);
        } catch { /* not JSON: keep the text */ }
        throw new Permanent(`HTTP ${res.status}: ${why}`);
      }
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        throw new Permanent("response is not JSON");
      }
      try {
        return parseRows(json, offset, length);
      } catch (e) {
        throw new Permanent((e as Error).message);
      }
    } catch (e) {
      const err = e as Error;
      last = err.name === "TimeoutError" ? `no answer within ${o.timeoutMs} ms` : err.message;
      if (e instanceof Permanent) {
        throw new Error(`Cannot fetch fineweb rows from ${url}: ${last}`);
      }
      if (attempt < o.attempts) {
        const wait = o.backoffMs * 2 ** (attempt - 1);
        log.warn("Fetching {url} failed ({why}); retry {attempt} in {wait} ms", {
          url,
          why: last,
          attempt,
          wait,
        });
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }
  throw new Error(
    `Cannot fetch fineweb rows from ${url} after ${o.attempts} attempts: ${last}; ` +
      `check the network (or HTTPS proxy), or train on the embedded corpus with --dataset embedded`,
  );
}

/** A size-capped directory of page files; oldest (by modification time) evicted first. */
class PageCache {
  constructor(private dir: string, private maxBytes: number) {}

  #path(key: string): string {
    return `${this.dir}/${bytesToHex(sha256(utf8ToBytes(key))).slice(0, 32)}.json`;
  }

  async get(key: string): Promise<string[] | undefined> {
    let raw: string;
    try {
      raw = await Deno.readTextFile(this.#path(key));
    } catch {
      return undefined;
    }
    try {
      const j = JSON.parse(raw);
      if (
        j.key === key && Array.isArray(j.texts) &&
        j.texts.every((t: unknown) => typeof t === "string")
      ) {
        return j.texts;
      }
    } catch { /* corrupt: refetch below */ }
    log.warn("Ignoring corrupt cache file {path}", { path: this.#path(key) });
    return undefined;
  }

  async put(key: string, texts: string[]): Promise<void> {
    await Deno.mkdir(this.dir, { recursive: true });
    const path = this.#path(key), tmp = `${path}.${crypto.randomUUID()}.tmp`;
    await Deno.writeTextFile(tmp, JSON.stringify({ key, texts }));
    await Deno.rename(tmp, path);
    await this.#evict();
  }

  async #evict(): Promise<void> {
    const files: { path: string; size: number; mtime: number }[] = [];
    for await (const e of Deno.readDir(this.dir)) {
      if (!e.isFile || !e.name.endsWith(".json")) continue;
      const path = `${this.dir}/${e.name}`;
      try {
        const st = await Deno.stat(path);
        files.push({ path, size: st.size, mtime: st.mtime?.getTime() ?? 0 });
      } catch { /* removed meanwhile */ }
    }
    let total = files.reduce((a, f) => a + f.size, 0);
    files.sort((a, b) => a.mtime - b.mtime || a.path.localeCompare(b.path));
    for (const f of files) {
      if (total <= this.maxBytes) break;
      await Deno.remove(f.path).catch(() => {});
      total -= f.size;
    }
  }
}

/**
 * fineweb-edu (or another datasets-server dataset with a `text` column) as a
 * {@link Dataset}. Asks the server for the row count unless `options.totalRows` is set.
 * @throws {Error} when the server cannot be reached or the split is too small
 */
export async function fineWebDataset(hp: Hparams, options: FineWebOptions = {}): Promise<Dataset> {
  const o = resolve(options);
  const R = hp.rowsPerPage;
  const totalRows = o.totalRows ?? (await fetchRows(o, 0, 1)).numRowsTotal;
  const allPages = Math.floor(totalRows / R);
  const evalPages = Math.max(1, Math.floor(allPages / 100));
  const totalPages = allPages - evalPages;
  if (totalPages < 1) {
    throw new Error(
      `Dataset '${o.dataset}' (${o.config}/${o.split}) has ${totalRows} rows: fewer than two pages of ${R}`,
    );
  }
  const cache = o.cacheDir ? new PageCache(o.cacheDir, o.cacheMaxBytes) : undefined;
  const recent = new Map<number, Promise<string[]>>();

  const fetchPage = async (page: number): Promise<string[]> => {
    const key = `${o.dataset}\0${o.config}\0${o.split}\0${page * R}\0${R}`;
    const hit = await cache?.get(key);
    if (hit) return hit;
    const texts: string[] = [];
    for (let off = page * R; off < (page + 1) * R; off += MAX_LENGTH) {
      const n = Math.min(MAX_LENGTH, (page + 1) * R - off);
      texts.push(...(await fetchRows(o, off, n)).texts);
    }
    if (texts.length !== R) {
      throw new Error(`Page ${page} of '${o.dataset}' has ${texts.length} rows, expected ${R}`);
    }
    await cache?.put(key, texts);
    return texts;
  };
  const pageTexts = (page: number): Promise<string[]> => {
    if (!Number.isSafeInteger(page) || page < 0 || page >= allPages) {
      return Promise.reject(
        new RangeError(`Page ${page} out of range: this dataset has pages 0 to ${allPages - 1}`),
      );
    }
    let p = recent.get(page);
    if (!p) {
      p = fetchPage(page);
      p.catch(() => recent.delete(page));
      recent.set(page, p);
      // Keep the few pages a window touches; older ones live in the disk cache.
      if (recent.size > 8) recent.delete(recent.keys().next().value!);
    }
    return p;
  };
  const batchesOf = async (page: number) => {
    const t = tokenizer();
    return packRows(
      (await pageTexts(page)).map((s) => t.encode(s, { bos: false })),
      hp.batchSize,
      hp.seqLen,
    );
  };
  const checkTrain = (page: number) => {
    if (!Number.isSafeInteger(page) || page < 0 || page >= totalPages) {
      throw new RangeError(
        `Page ${page} out of range: this dataset has pages 0 to ${totalPages - 1}`,
      );
    }
  };

  const ds: Dataset = {
    name: `fineweb:${o.dataset}/${o.config}/${o.split}`,
    totalPages,
    pagesFor: (window, uid) => pages(window, uid, hp.pagesPerWindow, totalPages),
    async batchesFor(window, uid) {
      const out: Int32Array[] = [];
      for (const p of ds.pagesFor(window, uid)) out.push(...await batchesOf(p));
      return out;
    },
    async pageBatches(page) {
      checkTrain(page);
      return await batchesOf(page);
    },
    async evalBatches(n) {
      if (!Number.isSafeInteger(n) || n < 0) {
        throw new RangeError(`Invalid eval batch count ${n}: expected an integer >= 0`);
      }
      const out: Int32Array[] = [];
      for (let p = totalPages; p < allPages && out.length < n; p++) out.push(...await batchesOf(p));
      return out.slice(0, n);
    },
    async pageRows(page): Promise<PageRow[]> {
      checkTrain(page);
      const t = tokenizer();
      return (await pageTexts(page)).map((text, i) => ({
        source: `${o.dataset}/${o.config}/${o.split} row ${page * R + i}`,
        text,
        tokens: t.encode(text, { bos: false }).length,
      }));
    },
  };
  return ds;
}
