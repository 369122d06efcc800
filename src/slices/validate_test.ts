/**
 * The wire format and its validation: round trips in both dtypes, the signed text
 * against a hand-written fixture, a forger written from docs/WIRE.md alone (so encoder
 * and spec agree), and the bad-input suite: each file rejected with its reason, counted,
 * and the model left untouched.
 */
import assert from "node:assert/strict";
import { Keyring } from "@polkadot/keyring";
import { cryptoWaitReady } from "@polkadot/util-crypto";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import type { ParamSpec, Tensors } from "../model/params.ts";
import { encodeSafetensors, tensorBytes, type TensorInput } from "../safetensors.ts";
import { LocalStore } from "../store/local.ts";
import { ObjectTooLarge } from "../store/mod.ts";
import { DERIVATION_VERSION, sliceIndices } from "../window.ts";
import { gather, scatter } from "./gather.ts";
import {
  decodeSlice,
  headerCap,
  type RejectReason,
  sliceByteCap,
  type SliceExpect,
  SliceRejected,
} from "./validate.ts";
import { encodeSlice, type Signer, signingMessage, type SliceMeta } from "./wire.ts";

await cryptoWaitReady();
const keyring = new Keyring({ type: "sr25519", ss58Format: 42 });
function signer(uri: string): Signer {
  const kp = keyring.addFromUri(uri);
  return { address: kp.address, sign: (m) => kp.sign(m) };
}
const ALICE = signer("//Alice");
const BOB = signer("//Bob");
const FP = "00112233445566778899aabbccddeeff";
const EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

const TABLE: ParamSpec[] = [
  { name: "a", shape: [4, 5], numel: 20 },
  { name: "d", shape: [4, 5], numel: 20 },
  { name: "b", shape: [7], numel: 7 },
  { name: "c", shape: [1], numel: 1 },
];
const SEED = "delta:0x" + "ab".repeat(32);
const INDICES = new Map(TABLE.map((p) => [p.name, sliceIndices(SEED, p.name, p.numel, 3)]));
const EXPECT: SliceExpect = {
  table: TABLE,
  indices: INDICES,
  fingerprint: FP,
  window: 42,
  kind: "delta",
  hotkey: ALICE.address,
};
const META: SliceMeta = {
  kind: "delta",
  window: 42,
  hotkey: ALICE.address,
  fingerprint: FP,
  version: DERIVATION_VERSION,
  loss: 2.5,
  tokens: 4096,
  batches: 3,
};

function params(): Tensors {
  return new Map(
    TABLE.map((p) => [
      p.name,
      Float32Array.from({ length: p.numel }, (_, i) => Math.sin(i + p.name.charCodeAt(0))),
    ]),
  );
}
const SLICE = gather(params(), INDICES);

Deno.test("Keyring //Alice is the well-known dev address", () => {
  assert.equal(ALICE.address, "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY");
});

Deno.test("signingMessage() hashes the canonical text of docs/WIRE.md (hand-written fixture)", () => {
  const md = {
    format: "boltzmann-slice/1",
    kind: "delta",
    window: "42",
    hotkey: ALICE.address,
    fingerprint: FP,
    version: "1",
    loss: "2.5",
    tokens: "4096",
    batches: "3",
    payload_sha256: EMPTY,
    signature: "0x00", // never part of the signed text
  };
  const layout = [
    { name: "a", dtype: "BF16", shape: [6], begin: 0, end: 12 },
    { name: "b", dtype: "BF16", shape: [2], begin: 12, end: 16 },
  ];
  // printf '...' | sha256sum of the text listed in docs/WIRE.md.
  assert.equal(
    bytesToHex(signingMessage(md, layout)),
    "df6730ff2557965f745e17527d03f49540c61c3c007328ceedf83e5fe264bfd7",
  );
  assert.throws(() => signingMessage({ ...md, loss: "1\nmeta kind=state" }, layout), RangeError);
});

for (const dtype of ["F32", "BF16"] as const) {
  Deno.test(`encodeSlice()/decodeSlice() round trip in ${dtype}`, () => {
    const bytes = encodeSlice(SLICE, META, ALICE, dtype);
    assert.ok(bytes.length <= sliceByteCap(TABLE, INDICES));
    const d = decodeSlice(bytes, EXPECT);
    assert.deepEqual(d.meta, META);
    assert.equal(d.dtype, dtype);
    assert.deepEqual([...d.slice.keys()], ["a", "d", "b", "c"]);
    for (const [name, v] of SLICE) {
      const got = d.slice.get(name)!;
      assert.equal(got.length, v.length);
      for (let j = 0; j < v.length; j++) {
        // bf16 keeps 8 significant bits: round-to-nearest relative error <= 2^-8.
        const tol = dtype === "F32" ? 0 : Math.abs(v[j]!) * 2 ** -8;
        assert.ok(Math.abs(got[j]! - v[j]!) <= tol, `${name}[${j}] ${got[j]} vs ${v[j]}`);
      }
    }
    // Layout on the wire: header padded to 8, data right after, tensors in given order.
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    assert.equal(n % 8, 0);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
    const size = dtype === "F32" ? 4 : 2;
    assert.deepEqual(header.a, { dtype, shape: [6], data_offsets: [0, 6 * size] });
    assert.deepEqual(header.c.data_offsets, [14 * size, 15 * size]);
    assert.equal(bytes.length, 8 + n + 15 * size);
    assert.equal(header.__metadata__.payload_sha256, bytesToHex(sha256(bytes.subarray(8 + n))));
  });
}

Deno.test("decodeSlice() takes optional stats as absent and accepts a slice without expectations of window/kind/hotkey", () => {
  const meta = { ...META, loss: undefined, tokens: undefined, batches: undefined };
  delete meta.loss, delete meta.tokens, delete meta.batches;
  const d = decodeSlice(encodeSlice(SLICE, meta, ALICE), {
    table: TABLE,
    indices: INDICES,
    fingerprint: FP,
  });
  assert.deepEqual(d.meta, {
    kind: "delta",
    window: 42,
    hotkey: ALICE.address,
    fingerprint: FP,
    version: 1,
  });
});

Deno.test("encodeSlice() refuses another key's hotkey and non-finite values", () => {
  assert.throws(() => encodeSlice(SLICE, META, BOB), /Cannot sign a slice of hotkey/);
  const bad = new Map(SLICE);
  bad.set("b", new Float32Array([1, NaN]));
  assert.throws(() => encodeSlice(bad, META, ALICE), /not finite/);
});

/**
 * An independent writer following docs/WIRE.md: metadata + payload hash, canonical
 * text, sr25519 over its SHA-256. Lets the suite make well-signed files of any shape.
 */
function forge(
  entries: TensorInput[],
  md: Record<string, string>,
  key: Signer,
  opts: { payloadOverride?: string } = {},
): Uint8Array {
  const datas = entries.map((e) => tensorBytes(e.dtype === "BF16" ? e : { ...e, dtype: "F32" }));
  const total = datas.reduce((a, d) => a + d.length, 0);
  const all = new Uint8Array(total);
  let pos = 0;
  const layout: string[] = [];
  entries.forEach((e, i) => {
    all.set(datas[i]!, pos);
    layout.push(
      `tensor ${e.name} ${e.dtype} ${e.shape.join(",")} ${pos} ${pos + datas[i]!.length}\n`,
    );
    pos += datas[i]!.length;
  });
  const meta = { ...md, payload_sha256: opts.payloadOverride ?? bytesToHex(sha256(all)) };
  let text = "boltzmann-slice/1\n";
  for (const k of Object.keys(meta).sort()) text += `meta ${k}=${meta[k as keyof typeof meta]}\n`;
  text += layout.join("");
  const sig = key.sign(sha256(new TextEncoder().encode(text)));
  return encodeSafetensors(
    entries.map((e, i) => ({ ...e, data: datas[i]! })),
    { ...meta, signature: "0x" + bytesToHex(sig) },
  );
}

const MD: Record<string, string> = {
  format: "boltzmann-slice/1",
  kind: "delta",
  window: "42",
  hotkey: ALICE.address,
  fingerprint: FP,
  version: String(DERIVATION_VERSION),
};
const ENTRIES: TensorInput[] = [...SLICE].map(([name, v]) => ({
  name,
  dtype: "F32",
  shape: [v.length],
  data: v,
}));

Deno.test("a file forged from the spec alone is accepted (encoder and WIRE.md agree)", () => {
  const d = decodeSlice(forge(ENTRIES, MD, ALICE), EXPECT);
  assert.deepEqual(d.slice, SLICE);
  assert.equal(d.meta.window, 42);
});

function header(bytes: Uint8Array): { n: number; json: Record<string, unknown> } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { n, json: JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) };
}

/** The file with its JSON header replaced (re-padded) and the same data buffer. */
function withHeader(bytes: Uint8Array, json: unknown): Uint8Array {
  const { n } = header(bytes);
  const h = new TextEncoder().encode(JSON.stringify(json));
  const pad = Math.ceil(h.length / 8) * 8;
  const out = new Uint8Array(8 + pad + bytes.length - 8 - n).fill(0x20, 8, 8 + pad);
  new DataView(out.buffer).setBigUint64(0, BigInt(pad), true);
  out.set(h, 8);
  out.set(bytes.subarray(8 + n), 8 + pad);
  return out;
}

const GOOD = encodeSlice(SLICE, META, ALICE, "F32");

function badCases(): [string, RejectReason, Uint8Array, Partial<SliceExpect>?][] {
  const g = header(GOOD);
  const md = g.json.__metadata__ as Record<string, string>;
  const nan = ENTRIES.map((e) => (e.name === "b" ? { ...e, data: new Float32Array([1, NaN]) } : e));
  const inf = ENTRIES.map((
    e,
  ) => (e.name === "c" ? { ...e, data: new Float32Array([Infinity]) } : e));
  const flipped = GOOD.slice();
  flipped[flipped.length - 3]! ^= 0x40;
  // New payload, header's payload hash updated to match, old signature kept.
  const rehashed = withHeader(flipped, {
    ...g.json,
    __metadata__: { ...md, payload_sha256: bytesToHex(sha256(flipped.subarray(8 + g.n))) },
  });
  const a = g.json.a as { data_offsets: number[] }, d = g.json.d as { data_offsets: number[] };
  const swapped = withHeader(GOOD, {
    ...g.json,
    a: { ...a, data_offsets: d.data_offsets },
    d: { ...d, data_offsets: a.data_offsets },
  });
  const overlap = withHeader(GOOD, {
    ...g.json,
    d: { ...d, data_offsets: [a.data_offsets[0]! + 4, a.data_offsets[1]! + 4] },
  });
  const hugeHeader = GOOD.slice();
  new DataView(hugeHeader.buffer).setBigUint64(0, BigInt(headerCap(TABLE) + 8), true);
  const beyond = GOOD.slice();
  new DataView(beyond.buffer).setBigUint64(0, BigInt(GOOD.length), true);
  const badJson = GOOD.slice();
  badJson[8] = "x".charCodeAt(0);
  const bobSlice = encodeSlice(SLICE, { ...META, hotkey: BOB.address }, BOB);
  const bobAsAlice = withHeader(bobSlice, {
    ...header(bobSlice).json,
    __metadata__: { ...(header(bobSlice).json.__metadata__ as object), hotkey: ALICE.address },
  });
  const big = new Uint8Array(sliceByteCap(TABLE, INDICES) + 1);
  big.set(GOOD);
  return [
    ["truncated data", "truncated", GOOD.subarray(0, GOOD.length - 10)],
    ["shorter than 8 bytes", "truncated", GOOD.subarray(0, 5)],
    ["header length beyond the file", "header-beyond-file", beyond],
    ["header over the cap", "header-too-large", hugeHeader],
    ["invalid JSON", "bad-json", badJson],
    ["object larger than the cap", "too-large", big],
    [
      "extra tensor",
      "extra-tensor",
      forge(
        [...ENTRIES, { name: "z", dtype: "F32", shape: [1], data: new Float32Array(1) }],
        MD,
        ALICE,
      ),
    ],
    ["missing tensor", "missing-tensor", forge(ENTRIES.filter((e) => e.name !== "b"), MD, ALICE)],
    [
      "wrong dtype (I32)",
      "wrong-dtype",
      forge(ENTRIES.map((e) => ({ ...e, dtype: "I32" })), MD, ALICE),
    ],
    [
      "mixed dtypes",
      "wrong-dtype",
      forge(ENTRIES.map((e) => (e.name === "c" ? { ...e, dtype: "BF16" } : e)), MD, ALICE),
    ],
    [
      "wrong shape (2-D)",
      "wrong-shape",
      forge(ENTRIES.map((e) => (e.name === "a" ? { ...e, shape: [2, 3] } : e)), MD, ALICE),
    ],
    [
      "wrong shape (length)",
      "wrong-shape",
      forge(
        ENTRIES.map((e) => (e.name === "a" ? { ...e, shape: [5], data: new Float32Array(5) } : e)),
        MD,
        ALICE,
      ),
    ],
    ["overlapping offsets", "overlapping-offsets", overlap],
    ["NaN", "non-finite", forge(nan, MD, ALICE)],
    ["+Inf", "non-finite", forge(inf, MD, ALICE)],
    ["wrong window", "wrong-window", encodeSlice(SLICE, { ...META, window: 41 }, ALICE)],
    ["wrong kind", "wrong-kind", encodeSlice(SLICE, { ...META, kind: "state" }, ALICE)],
    [
      "wrong fingerprint",
      "wrong-fingerprint",
      encodeSlice(SLICE, { ...META, fingerprint: "ff" }, ALICE),
    ],
    [
      "wrong derivation version",
      "wrong-version",
      encodeSlice(SLICE, { ...META, version: 99 }, ALICE),
    ],
    [
      "unknown format",
      "wrong-format",
      forge(ENTRIES, { ...MD, format: "boltzmann-slice/0" }, ALICE),
    ],
    ["non-numeric window", "bad-metadata", forge(ENTRIES, { ...MD, window: "4e1" }, ALICE)],
    ["signature by another key", "bad-signature", forge(ENTRIES, MD, BOB)],
    ["tampered payload, old signature", "payload-hash", flipped],
    ["tampered payload and hash, old signature", "bad-signature", rehashed],
    ["tensors' offsets swapped, old signature", "bad-signature", swapped],
    ["replay of another hotkey's slice under our hotkey", "bad-signature", bobAsAlice],
    ["another hotkey's valid slice uploaded as ours", "wrong-hotkey", bobSlice],
    ["payload hash not hex", "bad-metadata", forge(ENTRIES, MD, ALICE, { payloadOverride: "zz" })],
  ];
}

Deno.test("the bad-input suite: each file rejected with its reason, model untouched", () => {
  const cases = badCases();
  const counts = new Map<string, number>();
  for (const [what, reason, bytes, extra] of cases) {
    const p = params(), before = structuredClone(p);
    let r: InstanceType<typeof SliceRejected>;
    try {
      scatter(p, INDICES, decodeSlice(bytes, { ...EXPECT, ...extra }).slice);
      assert.fail(`${what}: accepted`);
    } catch (e) {
      if (!(e instanceof SliceRejected)) throw e;
      r = e;
    }
    assert.equal(r.reason, reason, `${what}: ${r.message}`);
    assert.ok(!r.message.includes("\n"), what);
    assert.deepEqual(p, before, what);
    counts.set(r.reason, (counts.get(r.reason) ?? 0) + 1);
  }
  assert.equal(counts.get("bad-signature"), 4);
  assert.equal(counts.get("truncated"), 2);
  // And the good file passes the same gate.
  assert.deepEqual(decodeSlice(GOOD, EXPECT).slice, SLICE);
});

Deno.test("BF16 slices can be refused by policy; F32 is the default expectation's widest", () => {
  const bf = encodeSlice(SLICE, META, ALICE, "BF16");
  assert.throws(
    () => decodeSlice(bf, { ...EXPECT, dtypes: ["F32"] }),
    (e: unknown) => e instanceof SliceRejected && e.reason === "wrong-dtype",
  );
  assert.equal(sliceByteCap(TABLE, INDICES, "BF16") - headerCap(TABLE) - 8, 15 * 2);
});

Deno.test("a download from a store stops at the slice byte cap", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const s = new LocalStore(dir);
    const cap = sliceByteCap(TABLE, INDICES);
    await s.put("big", new Uint8Array(cap + 1));
    await assert.rejects(s.get("big", { maxBytes: cap, timeoutMs: 1000 }), ObjectTooLarge);
    await s.put("good", GOOD);
    const bytes = await s.get("good", { maxBytes: cap, timeoutMs: 1000 });
    assert.deepEqual(decodeSlice(bytes!, EXPECT).slice, SLICE);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
