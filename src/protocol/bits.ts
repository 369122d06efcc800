/**
 * Fixed-width bit packing (LSB first, the padding bits of the last byte zero) and
 * base-3 packing (five trits per byte, byte = t0 + 3·t1 + 9·t2 + 27·t3 + 81·t4). Pure.
 *
 * @module
 */

/** Bytes that `n` codes of `bits` bits take. */
export function packedBytes(n: number, bits: number): number {
  return Math.ceil((n * bits) / 8);
}

/** Packs `codes` (each < 2^bits) into bytes, LSB first. */
export function packBits(codes: ArrayLike<number>, bits: number): Uint8Array {
  const out = new Uint8Array(packedBytes(codes.length, bits));
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
 * @returns the codes, or null when the byte count is wrong or a padding bit is set
 */
export function unpackBits(bytes: Uint8Array, n: number, bits: number): Uint32Array | null {
  if (bytes.length !== packedBytes(n, bits)) return null;
  const out = new Uint32Array(n);
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
  const used = n * bits;
  if (used % 8 !== 0 && bytes[bytes.length - 1]! >>> (used % 8) !== 0) return null;
  return out;
}

/** Bytes that `n` trits take. */
export function tritBytes(n: number): number {
  return Math.ceil(n / 5);
}

/** Packs trits (0, 1, 2) five per byte; missing trits of the last byte are 0. */
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
