/**
 * Pages and batches: the {@link Dataset} interface miners, validators and `inspect` share,
 * the packing of rows into `[B, T]` token batches, and the embedded corpus as a Dataset.
 *
 * Packing (as the original): each row becomes `[BOS] + tokens + [EOS]`; a page's rows are
 * concatenated in order and cut into consecutive `batchSize × seqLen` batches, row-major;
 * tokens left over after the last whole batch are dropped. Each page is packed on its
 * own, so `batchesFor(w, uid)` is the batches of its pages in page order and a validator
 * can rebuild any one page's batches alone.
 *
 * Embedded split: documents whose index is a multiple of {@link HELD_OUT_EVERY} are held
 * out (evaluation only). The other documents' rows, in corpus order, are the training
 * rows; page `p` is training rows `[p·rowsPerPage, (p+1)·rowsPerPage)`, and rows after the
 * last whole page are never used.
 *
 * @module
 */
import type { Hparams } from "../hparams.ts";
import { pages } from "../window.ts";
import { type Corpus, loadEmbeddedCorpus } from "./corpus.ts";
import { BOS_ID, EOS_ID, tokenizer } from "./tokenizer.ts";

/** One row of a page, for people looking at what a miner trained on. */
export interface PageRow {
  /** Where it came from (document name, or dataset config and row index). */
  source: string;
  /** Its text. */
  text: string;
  /** Its token count, without BOS/EOS. */
  tokens: number;
}

/** A source of training pages and evaluation batches. */
export interface Dataset {
  readonly name: string;
  /** Number of training pages (held-out rows are never in any page). */
  readonly totalPages: number;
  /** The page numbers of (window, uid): window.pages(window, uid, hp.pagesPerWindow, totalPages). */
  pagesFor(window: number, uid: number): number[];
  /**
   * Token batches for those pages: each Int32Array of hp.batchSize·hp.seqLen ids,
   * row-major [B, T], rows packed with BOS/EOS. Identical for miner, validator, inspect.
   */
  batchesFor(window: number, uid: number): Promise<Int32Array[]>;
  /** Batches of one page number (validators compare against other pages). */
  pageBatches(page: number): Promise<Int32Array[]>;
  /** Up to n batches from the held-out split, deterministic (fewer if it has fewer). */
  evalBatches(n: number): Promise<Int32Array[]>;
  /** The rows of one page, decoded, for `boltzmann data`. */
  pageRows(page: number): Promise<PageRow[]>;
}

/** Every document whose index is a multiple of this is held out. */
export const HELD_OUT_EVERY = 20;

/**
 * Packs rows into batches (see the module doc).
 * @param rows token ids of each row, without BOS/EOS
 * @returns whole `[batchSize, seqLen]` batches, row-major
 * @example
 * ```ts
 * packRows([[5, 6], [7]], 1, 3); // [Int32Array [1, 5, 6], Int32Array [2, 1, 7]]
 * ```
 */
export function packRows(
  rows: Iterable<ArrayLike<number>>,
  batchSize: number,
  seqLen: number,
): Int32Array[] {
  const size = batchSize * seqLen;
  if (!Number.isSafeInteger(size) || batchSize < 1 || seqLen < 1) {
    throw new RangeError(`Invalid batch shape [${batchSize}, ${seqLen}]: expected integers >= 1`);
  }
  const out: Int32Array[] = [];
  let cur = new Int32Array(size), n = 0;
  const put = (id: number) => {
    cur[n++] = id;
    if (n === size) {
      out.push(cur);
      cur = new Int32Array(size);
      n = 0;
    }
  };
  for (const row of rows) {
    put(BOS_ID);
    for (let i = 0; i < row.length; i++) put(row[i]!);
    put(EOS_ID);
  }
  return out;
}

/** `f()` as a promise: a throw becomes a rejection, as callers of async methods expect. */
function settle<T>(f: () => T): Promise<T> {
  return new Promise((resolve) => resolve(f()));
}

function checkPage(page: number, total: number): void {
  if (!Number.isSafeInteger(page) || page < 0 || page >= total) {
    throw new RangeError(`Page ${page} out of range: this dataset has pages 0 to ${total - 1}`);
  }
}

/** The training and held-out row indices of a corpus, each in corpus order. */
export function corpusSplit(corpus: Corpus): { train: number[]; heldOut: number[] } {
  const train: number[] = [], heldOut: number[] = [];
  for (const [d, doc] of corpus.docs.entries()) {
    const into = d % HELD_OUT_EVERY === 0 ? heldOut : train;
    for (let r = 0; r < doc.rows; r++) into.push(doc.firstRow + r);
  }
  return { train, heldOut };
}

/** A corpus as a {@link Dataset} (exported for tests with a small corpus). */
export function corpusDataset(corpus: Corpus, hp: Hparams, name = "embedded"): Dataset {
  const { train, heldOut } = corpusSplit(corpus);
  const R = hp.rowsPerPage;
  const totalPages = Math.floor(train.length / R);
  if (totalPages < 1) {
    throw new RangeError(
      `Corpus '${name}' has ${train.length} training rows, fewer than one page of ${R}`,
    );
  }
  const rowsOf = (page: number) => {
    checkPage(page, totalPages);
    return train.slice(page * R, (page + 1) * R);
  };
  const ds: Dataset = {
    name,
    totalPages,
    pagesFor: (window, uid) => pages(window, uid, hp.pagesPerWindow, totalPages),
    async batchesFor(window, uid) {
      const out: Int32Array[] = [];
      for (const p of ds.pagesFor(window, uid)) out.push(...await ds.pageBatches(p));
      return out;
    },
    pageBatches: (page) =>
      settle(() => packRows(rowsOf(page).map((r) => corpus.row(r)), hp.batchSize, hp.seqLen)),
    evalBatches: (n) =>
      settle(() => {
        if (!Number.isSafeInteger(n) || n < 0) {
          throw new RangeError(`Invalid eval batch count ${n}: expected an integer >= 0`);
        }
        return packRows(heldOut.map((r) => corpus.row(r)), hp.batchSize, hp.seqLen).slice(0, n);
      }),
    pageRows: (page) =>
      settle(() => {
        const t = tokenizer();
        return rowsOf(page).map((r) => {
          const ids = corpus.row(r);
          return {
            source: `${corpus.docs[corpus.docOfRow(r)]!.name}, row ${r}`,
            text: t.decode(ids),
            tokens: ids.length,
          };
        });
      }),
  };
  return ds;
}

/**
 * The embedded corpus (no network) as the training data of `hp`.
 * Its name carries the asset's hash prefix, e.g. `embedded-v1:cd0a3523`.
 * @throws {Error} when the asset is missing or corrupt
 */
export async function embeddedDataset(hp: Hparams): Promise<Dataset> {
  const c = await loadEmbeddedCorpus();
  return corpusDataset(c, hp, `embedded-v1:${c.sha256.slice(0, 8)}`);
}
