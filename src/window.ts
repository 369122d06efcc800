/**
 * The windowing module: every number that miners, validators and `inspect` must derive
 * identically from chain facts. Pure functions, integer arithmetic only (no floating
 * point in a derivation, so any language reproduces it bit for bit), no I/O, never
 * `Math.random`. Specified in docs/PROTOCOL.md; vectors in tests/vectors/window.json.
 *
 * Deliberately left out: fetching block hashes (the chain module does that), and which
 * block a window's work must finish by (the roles decide that).
 *
 * @module
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { utf8ToBytes } from "@noble/hashes/utils.js";

/** Version of the index and page derivations; carried in every slice's metadata. */
export const DERIVATION_VERSION = 1;

function checkInt(what: string, v: number, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (!Number.isSafeInteger(v) || v < min || v > max) {
    throw new RangeError(
      `Invalid ${what} ${JSON.stringify(v)}: expected an integer from ${min} to ${max}`,
    );
  }
}

/**
 * The window a block belongs to: `floor(block / windowLength)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(windowOf(0, 4), 0);
 * assert.equal(windowOf(7, 4), 1);
 * assert.equal(windowOf(8, 4), 2);
 * assert.throws(() => windowOf(-1, 4), RangeError);
 * ```
 * @throws {RangeError} on a negative block or a window length < 1
 */
export function windowOf(block: number, windowLength: number): number {
  checkInt("block", block, 0);
  checkInt("window length", windowLength, 1);
  return Math.floor(block / windowLength);
}

/**
 * The first block of window `w`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(windowStart(3, 4), 12);
 * assert.equal(windowOf(windowStart(3, 4), 4), 3);
 * ```
 */
export function windowStart(w: number, windowLength: number): number {
  checkInt("window", w, 0);
  checkInt("window length", windowLength, 1);
  return w * windowLength;
}

/**
 * The block whose hash seeds the indices of `kind` slices for window `w`.
 * - `state` slices for `w` are published while `w-1` closes: seeded by `w`'s first block.
 * - `delta` slices for `w` are seeded by the first block of `w+1`, a hash nobody knows
 *   until window `w` has closed, so no miner can train only the sampled indices.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(seedBlock("state", 3, 4), 12); // window 3's first block
 * assert.equal(seedBlock("delta", 3, 4), 16); // window 4's first block
 * ```
 */
export function seedBlock(kind: "state" | "delta", w: number, windowLength: number): number {
  return windowStart(kind === "state" ? w : w + 1, windowLength);
}

/**
 * The seed string for `kind` indices, from the hash of {@link seedBlock}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const hash = "0x" + "ab".repeat(32);
 * assert.equal(sliceSeed("delta", hash), `delta:${hash}`);
 * assert.throws(() => sliceSeed("delta", "0xAB"), /expected 0x and 64 lowercase hex digits/);
 * ```
 * @throws {RangeError} on a hash that is not 0x and 64 lowercase hex digits
 */
export function sliceSeed(kind: "state" | "delta", blockHash: string): string {
  if (!/^0x[0-9a-f]{64}$/.test(blockHash)) {
    throw new RangeError(
      `Invalid block hash '${blockHash}': expected 0x and 64 lowercase hex digits`,
    );
  }
  return `${kind}:${blockHash}`;
}

/** 32-bit integer mixer ("lowbias32", C. Wellons): the Feistel round function's core. */
function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

const ROUNDS = 6;

/**
 * Eight 32-bit big-endian words of SHA-256 over `parts` joined by NUL bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const k = keyWords(["a", 1]); // SHA-256 of the bytes "a\0" + "1"
 * assert.equal(k.length, 8);
 * assert.equal(k[0], 95012201);
 * assert.deepEqual(k, keyWords(["a", "1"])); // numbers join as their decimal text
 * ```
 */
export function keyWords(parts: readonly (string | number)[]): Uint32Array {
  const d = sha256(utf8ToBytes(parts.join("\0")));
  const v = new DataView(d.buffer, d.byteOffset, d.byteLength);
  const out = new Uint32Array(8);
  for (let i = 0; i < 8; i++) out[i] = v.getUint32(4 * i, false);
  return out;
}

/**
 * A keyed pseudo-random permutation of [0, n): an alternating unbalanced Feistel network
 * over `bits = max(2, ceil(log2 n))` bits (left half `bits >> 1`, right the rest), six
 * rounds, round `r` adds key word `r` then applies {@link mix32}; cycle-walking maps it
 * onto [0, n). Returns a function x → π(x).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const pi = feistel(keyWords(["k"]), 10);
 * const image = Array.from({ length: 10 }, (_, i) => pi(i));
 * assert.deepEqual(image, [4, 6, 1, 5, 8, 0, 3, 9, 7, 2]);
 * assert.deepEqual([...image].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
 * ```
 * @throws {RangeError} on n outside [1, 2^32]
 */
export function feistel(key: Uint32Array, n: number): (x: number) => number {
  checkInt("permutation size", n, 1, 2 ** 32);
  let bits = 2;
  while (2 ** bits < n) bits++;
  const lb = bits >>> 1, rb = bits - lb;
  const lm = (2 ** lb) - 1, rm = (2 ** rb) - 1;
  const [k0, k1, k2, k3, k4, k5] = Array.from(key.subarray(0, ROUNDS)) as number[];
  return (x: number): number => {
    do {
      let l = x >>> rb, r = x & rm;
      // Rounds unrolled (ROUNDS = 6): even rounds update the left half, odd the right.
      l ^= mix32((r + k0!) >>> 0) & lm;
      r ^= mix32((l + k1!) >>> 0) & rm;
      l ^= mix32((r + k2!) >>> 0) & lm;
      r ^= mix32((l + k3!) >>> 0) & rm;
      l ^= mix32((r + k4!) >>> 0) & lm;
      r ^= mix32((l + k5!) >>> 0) & rm;
      x = ((l << rb) | r) >>> 0;
    } while (x >= n);
    return x;
  };
}

/**
 * Number of indices a tensor of `numel` sends at `compression`: `max(1, floor(numel / c))`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(sliceSize(1000, 10), 100);
 * assert.equal(sliceSize(1005, 10), 100);
 * assert.equal(sliceSize(3, 10), 1); // every tensor sends at least one value
 * ```
 * @throws {RangeError} on numel outside [1, 2^32] or compression < 1
 */
export function sliceSize(numel: number, compression: number): number {
  checkInt("numel", numel, 1, 2 ** 32);
  checkInt("compression", compression, 1);
  return Math.max(1, Math.floor(numel / compression));
}

/**
 * The slice indices of one tensor: a uniform subset of exactly
 * {@link sliceSize}(numel, compression) distinct indices, sorted ascending. They are
 * π(0) … π(k-1) for the {@link feistel} permutation of [0, numel) keyed by
 * SHA-256(`"boltzmann/slice-indices/v1" NUL seed NUL paramName NUL numel NUL compression`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const seed = sliceSeed("delta", "0x" + "00".repeat(32));
 * assert.deepEqual(Array.from(sliceIndices(seed, "w", 20, 5)), [0, 3, 6, 17]);
 * const big = sliceIndices(seed, "w", 1000, 10);
 * assert.equal(big.length, 100);
 * assert.ok(big.every((v, i) => i === 0 || v > big[i - 1]!)); // sorted, distinct
 * ```
 * @throws {RangeError} on numel or compression < 1
 */
export function sliceIndices(
  seed: string,
  paramName: string,
  numel: number,
  compression: number,
): Uint32Array {
  const k = sliceSize(numel, compression);
  const pi = feistel(
    keyWords(["boltzmann/slice-indices/v1", seed, paramName, numel, compression]),
    numel,
  );
  const out = new Uint32Array(k);
  if (k === numel) {
    for (let i = 0; i < k; i++) out[i] = i;
    return out;
  }
  for (let i = 0; i < k; i++) out[i] = pi(i);
  sortDistinct(out, numel);
  return out;
}

/** Bits per bucket in {@link sortDistinct}: a 32 KiB bitmap stays in the L1/L2 cache. */
const BUCKET_BITS = 18;
let scratch = new Uint32Array(0);
const bitmap = new Int32Array(1 << (BUCKET_BITS - 5));

/**
 * Sorts distinct values below `n` in place: one counting pass into buckets of
 * 2^18 values, then per bucket mark a cache-sized bitmap and read it back in order.
 * O(k + n/32), several times faster than a comparison sort.
 */
function sortDistinct(vals: Uint32Array, n: number): void {
  const k = vals.length;
  const nb = Math.ceil(n / (1 << BUCKET_BITS));
  const starts = new Int32Array(nb + 1);
  for (let i = 0; i < k; i++) starts[(vals[i]! >>> BUCKET_BITS) + 1]!++;
  for (let b = 0; b < nb; b++) starts[b + 1]! += starts[b]!;
  if (scratch.length < k) scratch = new Uint32Array(k);
  const tmp = scratch;
  const fill = starts.slice(0, nb);
  for (let i = 0; i < k; i++) {
    const v = vals[i]!;
    tmp[fill[v >>> BUCKET_BITS]!++] = v;
  }
  let j = 0;
  for (let b = 0; b < nb; b++) {
    const lo = starts[b]!, hi = starts[b + 1]!;
    if (lo === hi) continue;
    const base = b << BUCKET_BITS;
    const words = Math.ceil(Math.min(n - base, 1 << BUCKET_BITS) / 32);
    bitmap.fill(0, 0, words);
    for (let i = lo; i < hi; i++) {
      const x = tmp[i]! - base;
      bitmap[x >>> 5]! |= 1 << (x & 31);
    }
    for (let w = 0; w < words; w++) {
      let v = bitmap[w]!;
      while (v !== 0) {
        const low = v & -v;
        vals[j++] = base + w * 32 + (31 - Math.clz32(low));
        v ^= low;
      }
    }
  }
}

/**
 * The data pages of (window, uid): `n` page numbers in [0, totalPages). They are
 * π(uid·n + i mod totalPages) for i < n, with π the {@link feistel} permutation of
 * [0, totalPages) keyed by SHA-256(`"boltzmann/pages/v1" NUL window NUL totalPages`),
 * so within one window no two uids share a page while uid·n + n ≤ totalPages.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.deepEqual(pages(12, 3, 2, 100), [62, 13]);
 * const all = [0, 1, 2, 3].flatMap((uid) => pages(12, uid, 2, 100));
 * assert.equal(new Set(all).size, 8); // no two uids share a page
 * ```
 * @throws {RangeError} on a bad window, uid, count or total
 */
export function pages(window: number, uid: number, n: number, totalPages: number): number[] {
  checkInt("window", window, 0);
  checkInt("uid", uid, 0, 65535);
  checkInt("page count", n, 1, 1 << 20);
  checkInt("total pages", totalPages, 1, 2 ** 32);
  const pi = feistel(keyWords(["boltzmann/pages/v1", window, totalPages]), totalPages);
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(pi((uid * n + i) % totalPages));
  return out;
}
