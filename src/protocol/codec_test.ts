/**
 * Protocol-v2 codecs and upload: hand-computed decodes, round trips (decode(encode) is
 * exactly what error feedback subtracted), the error-feedback invariant over windows,
 * and the bad-input suite of the signed upload (each file rejected with its reason).
 */
import assert from "node:assert/strict";
import { Keyring } from "@polkadot/keyring";
import { cryptoWaitReady } from "@polkadot/util-crypto";
import { packBits, packTrits, unpackBits, unpackTrits } from "./bits.ts";
import {
  decodeUpdate,
  DEFAULT_CODEC,
  type EncodedUpdate,
  encodeUpdate,
  parseCodec,
  payloadCap,
  UploadRejected,
  VOCAB_TENSORS,
} from "./codec.ts";
import { paramTable } from "../model/params.ts";
import { PRESETS } from "../hparams.ts";
import { readUpload, type UploadExpect, writeUpload } from "./upload.ts";
import { safetensorsHeader } from "../safetensors.ts";
import { hex, signingMessage } from "../slices/wire.ts";
import { createHash } from "node:crypto";

await cryptoWaitReady();
const keyring = new Keyring({ type: "sr25519", ss58Format: 42 });
const kp = keyring.addFromUri("//Alice");
const ALICE = { address: kp.address, sign: (m: Uint8Array) => kp.sign(m) };
const FP = "00112233445566778899aabbccddeeff";

/** Deterministic pseudo-normal values (xorshift + Box–Muller). */
function normals(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0 || 1;
  const u = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) + 0.5) / 2 ** 32;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = scale * Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  }
  return out;
}

const PARAMS = [
  // 300 values: chunks of 128 leave a short last one; a vocabulary tensor (REST skips it).
  { name: "lm_head.weight", shape: [10, 30] },
  { name: "b.weight", shape: [7] },
];
function update(seed: number): Map<string, Float32Array> {
  return new Map(
    PARAMS.map((p, i) => [p.name, normals(p.shape[0]! * (p.shape[1] ?? 1), seed + i, 1e-3)]),
  );
}

const SPECS = [
  "f32",
  "dense:s8:128:q4",
  "dense:q4",
  "dense:q2:16",
  "dense:e3",
  "dense:e4:16",
  "dense:s4",
  "dense:s8",
  "dense:s8:16",
  "dense:s3:128",
  "topk:64:4",
  "topk:64:4:b1",
  "topk:64:4:f32",
  "topk:300:300:b2",
  "slices:10",
];
const CTX = { seed: "delta:0x" + "ab".repeat(32) };

Deno.test("bit and trit packing: hand-computed bytes, padding refused", () => {
  // 3-bit codes 5, 1, 7 LSB-first: 101 | 001 | 111 → bits 0..8 = 1,0,1,1,0,0,1,1,1
  assert.deepEqual([...packBits([5, 1, 7], 3)], [0b11001101, 0b1]);
  assert.deepEqual([...unpackBits(Uint8Array.of(0b11001101, 1), 3, 3)!], [5, 1, 7]);
  assert.equal(unpackBits(Uint8Array.of(0b11001101, 3), 3, 3), null); // padding bit set
  // trits 2,1,0,0,1 → 2 + 3 + 81 = 86
  assert.deepEqual([...packTrits([2, 1, 0, 0, 1, 2])], [86, 2]);
  assert.deepEqual([...unpackTrits(Uint8Array.of(86, 2), 6)!], [2, 1, 0, 0, 1, 2]);
  assert.equal(unpackTrits(Uint8Array.of(243), 5), null);
  assert.equal(unpackTrits(Uint8Array.of(86, 5), 6), null); // padding trit 1 in byte 2
});

Deno.test("parseCodec: canonical names, one-line errors", () => {
  assert.equal(parseCodec("dense:s4").name, "dense:s4:128");
  assert.equal(parseCodec("topk:4096:64").name, "topk:4096:64:b2");
  assert.equal(parseCodec(DEFAULT_CODEC).name, DEFAULT_CODEC);
  assert.equal(parseCodec("dense:s8:128:s8").name, "dense:s8:128"); // REST = QUANT: left out
  assert.deepEqual(
    [parseCodec("dense:s8:64:q4").quant, parseCodec("dense:s8:64:q4").rest],
    ["s8", "q4"],
  );
  for (
    const bad of [
      "",
      "dense",
      "dense:q9",
      "dense:s8:128:q9",
      "dense:s8:128:q4:x",
      "topk:64:65",
      "slices:0",
      "f32:1",
      "x",
    ]
  ) {
    assert.throws(
      () => parseCodec(bad),
      (e: Error) => e instanceof RangeError && !e.message.includes("\n"),
    );
  }
});

Deno.test("dense codecs decode to fround(level × scale): hand-computed", () => {
  const x = Float32Array.of(0.7, -0.1, 0.35, -0.7);
  const ef = new Map<string, Float32Array>();
  const spec = parseCodec("dense:q3:8");
  const enc = encodeUpdate(spec, new Map([["w", x]]), ef);
  const dec = decodeUpdate(spec, enc, [{ name: "w", shape: [4] }]).get("w")!;
  // q3: scale 0.7 (max), magnitudes round(|x|/0.7·3) = 3, 0, 2 (1.5 → 2), 3
  const s = Math.fround(0.7);
  assert.deepEqual([...dec], [s, 0, Math.fround((2 / 3) * s), -s]);
  assert.deepEqual([...ef.get("w")!], [...x].map((v, i) => Math.fround(v - dec[i]!)));
  // s3 with RMS scale: σ = √(mean x²)
  const spec3 = parseCodec("dense:s3:8");
  const e3 = encodeUpdate(spec3, new Map([["w", x]]), new Map());
  const sigma = Math.fround(Math.sqrt(x.reduce((a, v) => a + v * v, 0) / 4));
  const d3 = decodeUpdate(spec3, e3, [{ name: "w", shape: [4] }]).get("w")!;
  // |x|/σ = 1.40, 0.20, 0.70, 1.40 → +, 0, +, −
  const L = Math.fround(1.224 * sigma);
  assert.deepEqual([...d3], [L, 0, L, -L]);
  assert.equal(e3.bytes, 4 + 1); // one scale, four trits in one byte
  // s8: σ rounded to bfloat16 (0.52734375), 3-bit codes; x/σ = 1.33, −0.19, 0.66, −1.33 →
  // levels 1.344, −0.2451, 0.756, −1.344 (cuts 0.5006, 1.05, 1.748), codes 6, 3, 5, 1
  const spec8 = parseCodec("dense:s8:8");
  const e8 = encodeUpdate(spec8, new Map([["w", x]]), new Map());
  const u32 = new Uint32Array(Float32Array.of(sigma).buffer)[0]!;
  const s8 = new Float32Array(
    Uint32Array.of(((u32 + 0x7fff + ((u32 >>> 16) & 1)) >>> 16) << 16).buffer,
  )[0]!;
  assert.equal(e8.tensors.get("w.scale")!.dtype, "BF16");
  assert.equal(e8.bytes, 2 + 2); // one bfloat16 scale, four 3-bit codes in two bytes
  const d8 = decodeUpdate(spec8, e8, [{ name: "w", shape: [4] }]).get("w")!;
  assert.equal(s8, 0.52734375);
  assert.deepEqual([...d8], [1.344, -0.2451, 0.756, -1.344].map((l) => Math.fround(l * s8)));
  // codes 6, 3, 5, 1 in 3 bits each, LSB first: bits 0..11 = 011 110 101 100
  assert.deepEqual([...e8.tensors.get("w.code")!.bytes], [0b01011110, 0b0011]);
});

Deno.test("every codec: decode(upload) is what error feedback subtracted; sizes as payloadCap bounds", () => {
  for (const name of SPECS) {
    const spec = parseCodec(name);
    const ef = new Map<string, Float32Array>();
    const u = update(1);
    const before = new Map([...u].map(([k, v]) => [k, v.slice()]));
    const enc = encodeUpdate(spec, u, ef, CTX);
    assert.ok(enc.bytes <= payloadCap(spec, PARAMS), name);
    const file = writeUpload(enc, { window: 3, hotkey: ALICE.address, fingerprint: FP }, ALICE);
    const got = readUpload(file, { spec, params: PARAMS, fingerprint: FP, window: 3, ctx: CTX });
    for (const [k, x] of before) {
      const d = got.update.get(k)!, e = ef.get(k)!;
      for (let i = 0; i < x.length; i++) {
        assert.equal(e[i], Math.fround(x[i]! - d[i]!), `${name} ${k}[${i}]`);
      }
    }
    if (name === "f32" || name === "topk:300:300:b2") {
      // lossless / everything kept
      if (name === "f32") { for (const e of ef.values()) assert.ok(e.every((v) => v === 0)); }
    }
  }
});

Deno.test("error feedback: the sum of what was sent tracks the sum of updates", () => {
  for (const name of ["dense:s3", "topk:64:4", "dense:q2:16"]) {
    const spec = parseCodec(name);
    const ef = new Map<string, Float32Array>();
    const sent = new Map(
      PARAMS.map((p) => [p.name, new Float64Array(p.shape[0]! * (p.shape[1] ?? 1))]),
    );
    const truth = new Map([...sent].map(([k, v]) => [k, new Float64Array(v.length)]));
    for (let w = 0; w < 20; w++) {
      const u = update(100 + w);
      for (const [k, x] of u) x.forEach((v, i) => (truth.get(k)![i]! += v));
      const dec = decodeUpdate(spec, encodeUpdate(spec, u, ef), PARAMS);
      for (const [k, d] of dec) d.forEach((v, i) => (sent.get(k)![i]! += v));
    }
    // truth − sent = the residual left in ef (up to float32 rounding)
    for (const [k, t] of truth) {
      const s = sent.get(k)!, e = ef.get(k)!;
      for (let i = 0; i < t.length; i++) assert.ok(Math.abs(t[i]! - s[i]! - e[i]!) < 1e-7, name);
    }
  }
});

Deno.test("top-k keeps the k largest magnitudes per chunk, ties to the lower index", () => {
  const x = new Float32Array(8);
  x.set([0.1, -0.5, 0.5, 0.2, 0, 0.3, -0.3, 0.05]);
  const spec = parseCodec("topk:4:2:f32");
  const dec = decodeUpdate(spec, encodeUpdate(spec, new Map([["w", x]]), new Map()), [
    { name: "w", shape: [8] },
  ]).get("w")!;
  assert.deepEqual([...dec], [0, -0.5, 0.5, 0, 0, 0.3, -0.3, 0].map(Math.fround));
});

// ---- the bad-input suite: a valid file, then one fault each ----

const spec = parseCodec("topk:64:4");
const dspec = parseCodec("dense:s3");
const expectOf = (s = spec): UploadExpect => ({
  spec: s,
  params: PARAMS,
  fingerprint: FP,
  window: 3,
});

/** Re-signs tensors (possibly broken) as a well-formed, validly signed file. */
function forge(enc: EncodedUpdate, meta: Record<string, string> = {}): Uint8Array {
  const entries = [...enc.tensors].map(([name, t]) => ({ name, ...t }));
  const h = createHash("sha256");
  for (const e of entries) h.update(e.bytes);
  const md: Record<string, string> = {
    format: "boltzmann-update/1",
    codec: enc.codec,
    window: "3",
    hotkey: ALICE.address,
    fingerprint: FP,
    payload_sha256: h.digest("hex"),
    ...meta,
  };
  let pos = 0;
  const layout = entries.map((e) => {
    const begin = pos;
    pos += e.bytes.length;
    return { name: e.name, dtype: e.dtype, shape: e.shape, begin, end: pos };
  });
  md.signature = "0x" + hex(ALICE.sign(signingMessage(md, layout)));
  const { header, offsets } = safetensorsHeader(entries, md);
  const out = new Uint8Array(header.length + pos);
  out.set(header);
  entries.forEach((e, i) => out.set(e.bytes, header.length + offsets[i]![0]));
  return out;
}

function encoded(s = spec): EncodedUpdate {
  return encodeUpdate(s, update(7), new Map());
}

function rejects(bytes: Uint8Array, reason: string, s = spec): void {
  assert.throws(
    () => readUpload(bytes, expectOf(s)),
    (e: unknown) => e instanceof UploadRejected && e.reason === reason && !e.message.includes("\n"),
    `expected ${reason}`,
  );
}

function edit(enc: EncodedUpdate, name: string, f: (b: Uint8Array) => Uint8Array): EncodedUpdate {
  const t = enc.tensors.get(name)!;
  const bytes = f(t.bytes.slice());
  const tensors = new Map(enc.tensors);
  const size = t.dtype === "F32" ? 4 : t.dtype === "BF16" ? 2 : 1;
  tensors.set(name, { ...t, bytes, shape: [bytes.length / size] });
  return { ...enc, tensors };
}

Deno.test("upload: a forged-but-valid file reads (the forger matches docs/PROTOCOL.md)", () => {
  const r = readUpload(forge(encoded()), expectOf());
  assert.equal(r.meta.window, 3);
});

Deno.test("upload bad inputs: truncated, too large, tampered, wrong metadata", () => {
  const good = writeUpload(encoded(), { window: 3, hotkey: ALICE.address, fingerprint: FP }, ALICE);
  rejects(good.subarray(0, 5), "truncated");
  rejects(good.subarray(0, good.length - 3), "truncated");
  rejects(new Uint8Array(payloadCap(spec, PARAMS) + 100_000), "too-large");
  const flipped = good.slice();
  flipped[flipped.length - 1]! ^= 1;
  rejects(flipped, "payload-hash");
  rejects(forge(encoded(), { fingerprint: "ff" }), "wrong-fingerprint");
  rejects(forge(encoded(), { window: "4" }), "wrong-window");
  rejects(forge(encoded(), { codec: "topk:64:8:b2" }), "wrong-codec");
  rejects(forge(encoded(), { format: "boltzmann-slice/1" }), "wrong-format");
  const sig = good.slice();
  const text = new TextDecoder().decode(sig);
  const at = text.indexOf('"signature":"0x') + 16;
  sig[at] = sig[at] === 0x30 ? 0x31 : 0x30;
  rejects(sig, "bad-signature");
});

Deno.test("upload bad inputs: sizes, chunk over k, indices out of range or unsorted", () => {
  const e = encoded();
  const tensors = new Map(e.tensors);
  tensors.delete("b.weight.code");
  rejects(forge({ ...e, tensors }), "missing-tensor");
  const extra = new Map(e.tensors);
  extra.set("c.weight.code", { dtype: "U8", shape: [1], bytes: new Uint8Array(1) });
  rejects(forge({ ...e, tensors: extra }), "extra-tensor");
  rejects(forge(edit(e, "lm_head.weight.index", (b) => b.subarray(1))), "wrong-size");
  const dtype = new Map(e.tensors);
  const sc = e.tensors.get("lm_head.weight.scale")!;
  dtype.set("lm_head.weight.scale", { ...sc, dtype: "I32" });
  rejects(forge({ ...e, tensors: dtype }), "wrong-dtype");
  // chunk 0 of a.weight claims 5 > k = 4 (counts are one byte each)
  rejects(forge(edit(e, "lm_head.weight.count", (b) => (b[0] = 5, b))), "chunk-over-k");
  // b.weight has one chunk of 7 values, 4 kept, 6-bit indices: set the first to 63 ≥ 7
  rejects(forge(edit(e, "b.weight.index", (b) => (b[0] = b[0]! | 63, b))), "index-range");
  // swap the first two indices of b.weight's chunk (6 bits each): unsorted
  rejects(
    forge(edit(e, "b.weight.index", (b) => {
      const idx = unpackBits(b, 4, 6)!;
      [idx[0], idx[1]] = [idx[1]!, idx[0]!];
      return packBits(idx, 6);
    })),
    "index-order",
  );
});

Deno.test("upload bad inputs: NaN / negative / huge scales, codes out of range, NaN values", () => {
  const e = encoded();
  for (const v of [NaN, -1, Infinity, 1e31]) {
    rejects(
      forge(edit(e, "lm_head.weight.scale", (b) => {
        new DataView(b.buffer).setFloat32(0, v, true);
        return b;
      })),
      "bad-scale",
    );
  }
  const d = encoded(dspec);
  rejects(forge(edit(d, "lm_head.weight.code", (b) => (b[0] = 250, b))), "value-range", dspec);
  rejects(
    forge(edit(d, "lm_head.weight.scale", (b) => {
      new DataView(b.buffer).setFloat32(4, NaN, true);
      return b;
    })),
    "bad-scale",
    dspec,
  );
  const s8 = parseCodec("dense:s8");
  const e8 = encoded(s8);
  for (const bits of [0x7fc0, 0xff80, 0xbf80]) { // NaN, −Inf, −1 as bfloat16
    rejects(
      forge(edit(e8, "lm_head.weight.scale", (b) => (b[2] = bits & 255, b[3] = bits >> 8, b))),
      "bad-scale",
      s8,
    );
  }
  const asF32 = new Map(e8.tensors);
  const sc8 = e8.tensors.get("b.weight.scale")!;
  asF32.set("b.weight.scale", { dtype: "F32", shape: [1], bytes: new Uint8Array(4) });
  rejects(forge({ ...e8, tensors: asF32 }), "wrong-dtype", s8);
  asF32.set("b.weight.scale", { ...sc8, shape: [2], bytes: new Uint8Array(4) });
  rejects(forge({ ...e8, tensors: asF32 }), "wrong-size", s8);
  // b.weight: 7 codes of 3 bits = 21 bits in 3 bytes; bits 21..23 are padding
  rejects(forge(edit(e8, "b.weight.code", (b) => (b[2] = b[2]! | 0x80, b))), "value-range", s8);
  // The mask of scale-0 chunks: lm_head's chunk 1 (values 128..255) left all zero.
  const u = update(7);
  u.get("lm_head.weight")!.fill(0, 128, 256);
  const em = encodeUpdate(s8, u, new Map());
  assert.deepEqual([...em.tensors.get("lm_head.weight.mask")!.bytes], [0b101]);
  assert.equal(em.tensors.get("lm_head.weight.scale")!.bytes.length, 2 * 2);
  assert.ok(!em.tensors.has("b.weight.mask")); // every chunk sent: no mask
  readUpload(forge(em), expectOf(s8)); // valid as written
  assert.ok(em.bytes <= payloadCap(s8, PARAMS));
  for (
    const [fault, f] of [
      ["a bit past the chunks", (b: Uint8Array) => (b[0] = 0b1101, b)],
      ["every chunk marked", (b: Uint8Array) => (b[0] = 0b111, b)],
    ] as const
  ) {
    assert.throws(
      () => readUpload(forge(edit(em, "lm_head.weight.mask", f)), expectOf(s8)),
      (e: unknown) => e instanceof UploadRejected && e.reason === "bad-scale",
      fault,
    );
  }
  // Fewer chunks marked than scales sent; a marked chunk of scale 0; a 0 without a mask.
  rejects(forge(edit(em, "lm_head.weight.mask", (b) => (b[0] = 0b1, b))), "wrong-size", s8);
  rejects(forge(edit(em, "lm_head.weight.scale", (b) => (b[2] = b[3] = 0, b))), "bad-scale", s8);
  rejects(forge(edit(e8, "b.weight.scale", (b) => (b[0] = b[1] = 0, b))), "bad-scale", s8);
  const q = parseCodec("dense:q4");
  const eq = encoded(q);
  // code 8 = sign bit with magnitude 0: "-0" is not a level the encoder emits
  rejects(forge(edit(eq, "b.weight.code", (b) => (b[0] = 8, b))), "value-range", q);
  const f = parseCodec("f32");
  const ef = encoded(f);
  rejects(
    forge(edit(ef, "b.weight", (b) => {
      new DataView(b.buffer).setFloat32(8, NaN, true);
      return b;
    })),
    "non-finite",
    f,
  );
});

Deno.test("dense REST: the vocabulary tensors take QUANT, every other tensor REST", () => {
  // VOCAB_TENSORS names the model's own tensors (else REST would silently code them all).
  for (const preset of Object.values(PRESETS)) {
    const names = paramTable(preset.model).map((p) => p.name);
    for (const v of VOCAB_TENSORS) assert.ok(names.includes(v), `${preset.preset}: ${v}`);
  }
  const spec = parseCodec("dense:s8:128:q4");
  const enc = encodeUpdate(spec, update(3), new Map(), CTX);
  // s8 sends bfloat16 scales, q4 float32 ones; codes of 3 and 4 bits.
  assert.equal(enc.tensors.get("lm_head.weight.scale")!.dtype, "BF16");
  assert.equal(enc.tensors.get("b.weight.scale")!.dtype, "F32");
  assert.equal(enc.tensors.get("lm_head.weight.code")!.bytes.length, Math.ceil((300 * 3) / 8));
  assert.equal(enc.tensors.get("b.weight.code")!.bytes.length, Math.ceil((7 * 4) / 8));
  // A receiver that expects s8 everywhere refuses the upload (b's scale dtype differs).
  assert.throws(
    () => decodeUpdate(parseCodec("dense:s8:128"), enc, PARAMS, CTX),
    (e: Error) => e instanceof UploadRejected,
  );
});
