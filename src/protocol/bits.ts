/**
 * Fixed-width bit packing (LSB first, the padding bits of the last byte zero) and
 * base-3 packing (five trits per byte, byte = t0 + 3·t1 + 9·t2 + 27·t3 + 81·t4). Pure.
 * Left out: what the codes mean (codec.ts maps them to values).
 *
 * @module
 */

/**
 * Bytes that `n` codes of `bits` bits take.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(packedBytes(5, 3), 2); // 15 bits
 * ```
 */
export function packedBytes(n: number, bits: number): number {
  return Math.ceil((n * bits) / 8);
}

/**
 * Packs `codes` (each < 2^bits) into bytes, LSB first.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.deepEqual(Array.from(packBits([1, 2, 3, 4, 5], 3)), [0b11010001, 0b01011000]);
 * ```
 */
export function packBits(codes: ArrayLike<number>, bits: number): Uint8Array {
  const out = new Uint8Array(packedBytes(codes.length, bits));
  if (bits > 24) return packWide(codes, bits, out);
  // An accumulator of < 8 pending bits plus one code: at most 31 bits, one int.
  const mask = (1 << bits) - 1;
  let acc = 0, nb = 0, pos = 0;
  for (let i = 0; i < codes.length; i++) {
    acc |= (codes[i]! & mask) << nb;
    nb += bits;
    while (nb >= 8) {
      out[pos++] = acc & 255;
      acc >>>= 8;
      nb -= 8;
    }
  }
  if (nb > 0) out[pos] = acc;
  return out;
}

/** {@link packBits} for codes wider than 24 bits (a byte at a time). */
function packWide(codes: ArrayLike<number>, bits: number, out: Uint8Array): Uint8Array {
  let pos = 0;
  for (let i = 0; i < codes.length; i++, pos += bits) {
    let c = codes[i]!, p = pos, left = bits;
    while (left > 0) {
      const byte = p >>> 3, off = p & 7, take = Math.min(8 - off, left);
      out[byte]! |= (c & ((1 << take) - 1)) << off;
      c >>>= take;
      p += take;
      left -= take;
    }
  }
  return out;
}

/**
 * Unpacks `n` codes of `bits` bits.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.deepEqual(Array.from(unpackBits(packBits([1, 2, 3, 4, 5], 3), 5, 3)!), [1, 2, 3, 4, 5]);
 * assert.equal(unpackBits(new Uint8Array(1), 5, 3), null); // 5 codes of 3 bits need 2 bytes
 * assert.equal(unpackBits(new Uint8Array([0, 0x80]), 5, 3), null); // a padding bit is set
 * ```
 * @returns the codes, or null when the byte count is wrong or a padding bit is set
 */
export function unpackBits(bytes: Uint8Array, n: number, bits: number): Uint32Array | null {
  if (bytes.length !== packedBytes(n, bits)) return null;
  const out = new Uint32Array(n);
  if (bits > 24) unpackWide(bytes, n, bits, out);
  else {
    const mask = (1 << bits) - 1;
    let acc = 0, nb = 0, pos = 0;
    for (let i = 0; i < n; i++) {
      while (nb < bits) {
        acc |= bytes[pos++]! << nb;
        nb += 8;
      }
      out[i] = acc & mask;
      acc >>>= bits;
      nb -= bits;
    }
  }
  return paddingClear(bytes, n * bits) ? out : null;
}

/**
 * Whether the bits of the last byte past the first `used` bits of `bytes` are zero.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(paddingClear(Uint8Array.of(0b0111), 3), true);
 * assert.equal(paddingClear(Uint8Array.of(0b1111), 3), false);
 * ```
 */
export function paddingClear(bytes: Uint8Array, used: number): boolean {
  return used % 8 === 0 || bytes[bytes.length - 1]! >>> (used % 8) === 0;
}

/** {@link unpackBits} for codes wider than 24 bits (a byte at a time). */
function unpackWide(bytes: Uint8Array, n: number, bits: number, out: Uint32Array): void {
  let pos = 0;
  for (let i = 0; i < n; i++, pos += bits) {
    let c = 0, p = pos, got = 0;
    while (got < bits) {
      const byte = p >>> 3, off = p & 7, take = Math.min(8 - off, bits - got);
      c |= ((bytes[byte]! >>> off) & ((1 << take) - 1)) << got;
      got += take;
      p += take;
    }
    out[i] = c >>> 0;
  }
}

/**
 * Bytes that `n` trits take.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(tritBytes(7), 2);
 * ```
 */
export function tritBytes(n: number): number {
  return Math.ceil(n / 5);
}

/**
 * Packs trits (0, 1, 2) five per byte; missing trits of the last byte are 0.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.deepEqual(Array.from(packTrits([0, 1, 2, 2, 1, 0, 1])), [0 + 3 + 18 + 54 + 81, 3]);
 * ```
 */
export function packTrits(trits: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(tritBytes(trits.length));
  for (let b = 0; b < out.length; b++) {
    let v = 0;
    for (let j = 4; j >= 0; j--) {
      const i = b * 5 + j;
      v = v * 3 + (i < trits.length ? trits[i]! : 0);
    }
    out[b] = v;
  }
  return out;
}

/**
 * Unpacks `n` trits.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.deepEqual(Array.from(unpackTrits(new Uint8Array([156, 3]), 7)!), [0, 1, 2, 2, 1, 0, 1]);
 * assert.equal(unpackTrits(new Uint8Array([243]), 1), null); // no byte of five trits is >= 243
 * assert.equal(unpackTrits(new Uint8Array([9]), 2), null); // padding trit 2 is not 0
 * ```
 * @returns the trits, or null when the byte count is wrong, a byte is ≥ 243 or a
 *   padding trit is not 0
 */
export function unpackTrits(bytes: Uint8Array, n: number): Uint8Array | null {
  if (bytes.length !== tritBytes(n)) return null;
  const out = new Uint8Array(n);
  for (let b = 0; b < bytes.length; b++) {
    let v = bytes[b]!;
    if (v >= 243) return null;
    for (let j = 0; j < 5; j++) {
      const t = v % 3;
      v = (v - t) / 3;
      const i = b * 5 + j;
      if (i < n) out[i] = t;
      else if (t !== 0) return null;
    }
  }
  return out;
}
