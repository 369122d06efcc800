/**
 * The LLaMA-2 tokenizer (SentencePiece BPE, 32000 pieces, byte fallback, dummy-prefix
 * space), as the original boltzmann used through Hugging Face.
 *
 * Two implementations behind one {@link Tokenizer} interface:
 * - {@link referenceTokenizer}: `llama-tokenizer-js@1.2.2` (MIT) as published. Exact for
 *   LLaMA-2 but slow (a linked list of objects and a string-keyed merge map per call).
 * - {@link tokenizer}: our own encoder on the same vocabulary and merge table. It splits
 *   the text before every "▁" that follows a non-"▁" character — no LLaMA-2 piece
 *   contains such a pair (checked when the tables are built), so BPE never merges across
 *   that point and each piece of text can be encoded alone — and caches the encoding of
 *   each piece. BPE on a cache miss runs on typed arrays with a binary heap, ordered
 *   like SentencePiece: lowest merge rank first, then leftmost. Its output equals the
 *   reference's on the whole embedded corpus (src/data/tokenizer_test.ts).
 *
 * Deliberately left out: other vocabularies, special-token parsing in text ("<s>" in
 * text is three ordinary characters, as in SentencePiece), truncation.
 *
 * @module
 */
import llamaTokenizer from "llama-tokenizer-js";

/** A text tokenizer with the LLaMA-2 conventions. */
export interface Tokenizer {
  /**
   * Token ids of `text`, with the dummy-prefix space SentencePiece adds.
   * Starts with {@link Tokenizer.bos} unless `options.bos` is false (as Hugging Face's
   * `tokenizer(text)` and llama-tokenizer-js do).
   */
  encode(text: string, options?: { bos?: boolean }): Int32Array;
  /**
   * Text of `ids`: control tokens (unk, BOS, EOS) are skipped, byte tokens are joined into
   * UTF-8 (invalid sequences become U+FFFD), and the dummy-prefix space is removed from the
   * start and after each BOS. `decode(encode(s)) === s` for any well-formed string `s`
   * without "▁" (U+2581, which SentencePiece reads as a space).
   * @throws {RangeError} on an id outside [0, vocabSize)
   */
  decode(ids: ArrayLike<number>): string;
  readonly bos: number;
  readonly eos: number;
  readonly vocabSize: number;
}

/** Beginning-of-sequence id of LLaMA-2. */
export const BOS_ID = 1;
/** End-of-sequence id of LLaMA-2 (the separator between packed rows). */
export const EOS_ID = 2;
/** Vocabulary size of LLaMA-2. */
export const VOCAB_SIZE = 32000;
/** The piece "▁" (a space). */
const SPACE_ID = 29871;
/** Byte token `<0xXX>` has id `BYTE_BASE + 0xXX`. */
const BYTE_BASE = 3;
/** Segments cached before the cache is cleared (bounds memory on unbounded input). */
const CACHE_LIMIT = 1 << 18;

/** The package's own instance (built when the module loads, about 0.1 s). */
const llama = () => llamaTokenizer;

function checkIds(ids: ArrayLike<number>): void {
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (!Number.isInteger(id) || id < 0 || id >= VOCAB_SIZE) {
      throw new RangeError(
        `Invalid token id ${id} at position ${i}: expected an integer from 0 to ${VOCAB_SIZE - 1}`,
      );
    }
  }
}

/** UTF-8 bytes of each piece for decoding: "▁" → space, byte tokens → their byte. */
function pieceBytes(vocab: readonly string[]): Uint8Array[] {
  const enc = new TextEncoder();
  return vocab.map((s, id) => {
    if (id < BYTE_BASE) return new Uint8Array(0);
    if (id < BYTE_BASE + 256) return Uint8Array.of(id - BYTE_BASE);
    return enc.encode(s.replaceAll("\u2581", " "));
  });
}

/** Decoding shared by both implementations (the reference's own decode drops only one BOS). */
function decodeWith(pieces: readonly Uint8Array[], ids: ArrayLike<number>): string {
  checkIds(ids);
  let len = 0;
  for (let i = 0; i < ids.length; i++) len += pieces[ids[i]!]!.length;
  const out = new Uint8Array(len);
  let o = 0, atStart = true;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (id === BOS_ID) atStart = true;
    if (id < BYTE_BASE) continue;
    const p = pieces[id]!;
    // The dummy prefix: one space SentencePiece put before the text of each sequence.
    const skip = atStart && p[0] === 0x20 && id >= BYTE_BASE + 256 ? 1 : 0;
    out.set(skip ? p.subarray(1) : p, o);
    o += p.length - skip;
    atStart = false;
  }
  return new TextDecoder().decode(out.subarray(0, o));
}

/** `llama-tokenizer-js` as published: the reference the fast encoder is checked against. */
export function referenceTokenizer(): Tokenizer {
  const t = llama();
  const pieces = pieceBytes(t.vocabById);
  return {
    bos: BOS_ID,
    eos: EOS_ID,
    vocabSize: VOCAB_SIZE,
    encode(text, options) {
      if (text.length === 0) return Int32Array.from(options?.bos === false ? [] : [BOS_ID]);
      return Int32Array.from(t.encode(text, options?.bos !== false, true, false));
    },
    decode: (ids) => decodeWith(pieces, ids),
  };
}

/** The merge table of the fast encoder. */
interface Tables {
  /** Id of each single-code-point piece, by code point (BMP); -1 where none. */
  charId: Int32Array;
  /** Same for code points above the BMP. */
  astral: Map<number, number>;
  /** (left id · 32000 + right id) → merge rank (0 = first merge). */
  rank: Map<number, number>;
  /** Id of the piece a merge of each rank produces. */
  merged: Int32Array;
  pieces: Uint8Array[];
}

function buildTables(): Tables {
  const t = llama();
  const vocab = t.vocabById;
  if (vocab.length !== VOCAB_SIZE) {
    throw new Error(`LLaMA vocabulary has ${vocab.length} pieces, expected ${VOCAB_SIZE}`);
  }
  const charId = new Int32Array(0x10000).fill(-1);
  const astral = new Map<number, number>();
  vocab.forEach((s, id) => {
    if (id < BYTE_BASE + 256) return;
    // The segmentation below is exact only if no piece joins a non-"▁" with a "▁".
    if (/[^\u2581]\u2581/u.test(s)) throw new Error(`LLaMA piece ${id} '${s}' spans a word start`);
    const cp = s.codePointAt(0)!;
    if (s.length !== (cp > 0xffff ? 2 : 1)) return;
    if (cp > 0xffff) astral.set(cp, id);
    else charId[cp] = id;
  });
  charId[0x20] = SPACE_ID;
  // The reference keys merges "left right" with values 1, 3, 5, ... in merge order.
  const rank = new Map<number, number>();
  const merged = new Int32Array(t.merges.size);
  for (const [key, prio] of t.merges as Map<string, number>) {
    const sp = key.indexOf(" ");
    const l = key.slice(0, sp), r = key.slice(sp + 1);
    const a = t.vocabByString.get(l)!, b = t.vocabByString.get(r)!;
    const m = t.vocabByString.get(l + r);
    const k = (prio - 1) / 2;
    if (m === undefined || !Number.isInteger(k) || k >= merged.length) {
      throw new Error(`LLaMA merge '${key}' has no result piece or rank ${prio}`);
    }
    rank.set(a * VOCAB_SIZE + b, k);
    merged[k] = m;
  }
  return { charId, astral, rank, merged, pieces: pieceBytes(vocab) };
}

/** Growable int32 output buffer. */
class IdBuf {
  a = new Int32Array(1024);
  n = 0;
  push(v: number): void {
    if (this.n === this.a.length) this.grow(1);
    this.a[this.n++] = v;
  }
  append(v: Int32Array): void {
    if (this.n + v.length > this.a.length) this.grow(v.length);
    this.a.set(v, this.n);
    this.n += v.length;
  }
  private grow(extra: number): void {
    const b = new Int32Array(Math.max(this.a.length * 2, this.n + extra));
    b.set(this.a.subarray(0, this.n));
    this.a = b;
  }
}

/** The fast exact encoder (see the module doc). */
class FastLlama implements Tokenizer {
  readonly bos = BOS_ID;
  readonly eos = EOS_ID;
  readonly vocabSize = VOCAB_SIZE;
  #t: Tables;
  #cache = new Map<string, Int32Array>();
  // Scratch arrays for BPE, grown as needed.
  #tok = new Int32Array(256);
  #next = new Int32Array(256);
  #prev = new Int32Array(256);
  #heap = new Float64Array(512);

  constructor(t: Tables) {
    this.#t = t;
  }

  encode(text: string, options?: { bos?: boolean }): Int32Array {
    const out = new IdBuf();
    if (options?.bos !== false) out.push(BOS_ID);
    if (text.length === 0) return out.a.slice(0, out.n);
    const s = " " + text;
    let start = 0;
    let prevSpace = true;
    for (let i = 1; i < s.length; i++) {
      const c = s.charCodeAt(i);
      const space = c === 0x20 || c === 0x2581;
      if (space && !prevSpace) {
        this.#segment(s.slice(start, i), out);
        start = i;
      }
      prevSpace = space;
    }
    this.#segment(s.slice(start), out);
    return out.a.slice(0, out.n);
  }

  decode(ids: ArrayLike<number>): string {
    return decodeWith(this.#t.pieces, ids);
  }

  #segment(seg: string, out: IdBuf): void {
    let ids = this.#cache.get(seg);
    if (!ids) {
      ids = this.#bpe(seg);
      if (this.#cache.size >= CACHE_LIMIT) this.#cache.clear();
      this.#cache.set(seg, ids);
    }
    out.append(ids);
  }

  /** Initial symbols (characters, or UTF-8 bytes of characters not in the vocabulary). */
  #symbols(seg: string): number {
    const { charId, astral } = this.#t;
    let n = 0;
    for (let i = 0; i < seg.length; i++) {
      if (n + 4 > this.#tok.length) this.#grow(n + 4);
      const cp = seg.codePointAt(i)!;
      let id = cp > 0xffff ? (astral.get(cp) ?? -1) : charId[cp]!;
      if (cp > 0xffff) i++;
      if (id >= 0) {
        this.#tok[n++] = id;
        continue;
      }
      // Byte fallback; a lone surrogate encodes as U+FFFD, as TextEncoder does.
      id = cp >= 0xd800 && cp <= 0xdfff ? 0xfffd : cp;
      if (id < 0x80) this.#tok[n++] = BYTE_BASE + id;
      else if (id < 0x800) {
        this.#tok[n++] = BYTE_BASE + (0xc0 | (id >> 6));
        this.#tok[n++] = BYTE_BASE + (0x80 | (id & 63));
      } else if (id < 0x10000) {
        this.#tok[n++] = BYTE_BASE + (0xe0 | (id >> 12));
        this.#tok[n++] = BYTE_BASE + (0x80 | ((id >> 6) & 63));
        this.#tok[n++] = BYTE_BASE + (0x80 | (id & 63));
      } else {
        this.#tok[n++] = BYTE_BASE + (0xf0 | (id >> 18));
        this.#tok[n++] = BYTE_BASE + (0x80 | ((id >> 12) & 63));
        this.#tok[n++] = BYTE_BASE + (0x80 | ((id >> 6) & 63));
        this.#tok[n++] = BYTE_BASE + (0x80 | (id & 63));
      }
    }
    return n;
  }

  #grow(n: number): void {
    const size = Math.max(n, this.#tok.length * 2);
    const t = new Int32Array(size);
    t.set(this.#tok);
    this.#tok = t;
    this.#next = new Int32Array(size);
    this.#prev = new Int32Array(size);
    // Each merge pops one entry and pushes at most two: the heap never exceeds 2n.
    this.#heap = new Float64Array(2 * size);
  }

  /**
   * BPE over one segment: repeatedly merge the adjacent pair of lowest rank, leftmost
   * first. Heap keys are `rank · 2^26 + position`; an entry is stale when the pair now at
   * its position has another rank (ranks identify pairs uniquely).
   */
  #bpe(seg: string): Int32Array {
    const n = this.#symbols(seg);
    if (n >= 1 << 26) throw new RangeError(`Text segment of ${n} symbols is too long to encode`);
    const { rank, merged } = this.#t;
    const tok = this.#tok, next = this.#next, prev = this.#prev, heap = this.#heap;
    let hn = 0;
    const push = (key: number) => {
      let i = hn++;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (heap[p]! <= key) break;
        heap[i] = heap[p]!;
        i = p;
      }
      heap[i] = key;
    };
    const pop = (): number => {
      const top = heap[0]!, last = heap[--hn]!;
      let i = 0;
      for (;;) {
        let c = 2 * i + 1;
        if (c >= hn) break;
        if (c + 1 < hn && heap[c + 1]! < heap[c]!) c++;
        if (heap[c]! >= last) break;
        heap[i] = heap[c]!;
        i = c;
      }
      heap[i] = last;
      return top;
    };
    const rankAt = (i: number): number => {
      const j = next[i]!;
      if (j < 0) return -1;
      return rank.get(tok[i]! * VOCAB_SIZE + tok[j]!) ?? -1;
    };
    for (let i = 0; i < n; i++) {
      prev[i] = i - 1;
      next[i] = i + 1 < n ? i + 1 : -1;
    }
    for (let i = 0; i + 1 < n; i++) {
      const r = rankAt(i);
      if (r >= 0) push(r * 67108864 + i);
    }
    let count = n;
    while (hn > 0) {
      const key = pop();
      const r = Math.floor(key / 67108864), i = key - r * 67108864;
      if (tok[i]! < 0 || rankAt(i) !== r) continue;
      const j = next[i]!;
      tok[i] = merged[r]!;
      tok[j] = -1;
      next[i] = next[j]!;
      if (next[j]! >= 0) prev[next[j]!] = i;
      count--;
      const p = prev[i]!;
      if (p >= 0) {
        const rp = rankAt(p);
        if (rp >= 0) push(rp * 67108864 + p);
      }
      const rn = rankAt(i);
      if (rn >= 0) push(rn * 67108864 + i);
    }
    const ids = new Int32Array(count);
    for (let i = 0, k = 0; i >= 0 && k < count; i = next[i]!) ids[k++] = tok[i]!;
    return ids;
  }
}

let tables: Tables | undefined;
let fast: FastLlama | undefined;

/**
 * A new instance of the fast tokenizer with an empty segment cache (for benchmarks that
 * measure the cold path; everything else should share {@link tokenizer}).
 */
export function newTokenizer(): Tokenizer {
  tables ??= buildTables();
  return new FastLlama(tables);
}

/**
 * The LLaMA-2 tokenizer (32000 pieces): our fast exact encoder. Built once per process
 * (about 0.2 s: the vocabulary and 61249 merges come from llama-tokenizer-js).
 *
 * @example
 * ```ts
 * const t = tokenizer();
 * t.encode("Hello world! The quick brown fox.");
 * // Int32Array [1, 15043, 3186, 29991, 450, 4996, 17354, 1701, 29916, 29889]
 * t.decode(t.encode("Hello")); // "Hello"
 * ```
 */
export function tokenizer(): Tokenizer {
  fast ??= newTokenizer() as FastLlama;
  return fast;
}
