import assert from "node:assert/strict";
import {
  bf16ToF32,
  decodeSafetensors,
  type Dtype,
  DTYPE_SIZES,
  encodeSafetensors,
  f16ToF32,
  f32ToBf16,
  f32ToF16,
  parseSafetensorsHeader,
  SafetensorsError,
  safetensorsHeader,
  toFloat32,
} from "./safetensors.ts";

const GOLDEN = new URL("../tests/fixtures/golden/", import.meta.url);
const utf8 = (s: string) => new TextEncoder().encode(s);

/** A file from a header string and data bytes, with an explicit header length. */
function assemble(json: string, data: Uint8Array, n?: number): Uint8Array {
  const h = utf8(json);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(n ?? h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

function rejects(bytes: Uint8Array, pattern: RegExp, maxHeaderBytes?: number): void {
  assert.throws(
    () => decodeSafetensors(bytes, { maxHeaderBytes, label: "slice 'x.safetensors'" }),
    (e: unknown) => {
      assert.ok(e instanceof SafetensorsError, String(e));
      assert.match(e.message, /^Cannot read slice 'x\.safetensors': /);
      assert.match(e.message, pattern);
      assert.ok(!e.message.includes("\n"));
      return true;
    },
  );
}

Deno.test("encodeSafetensors() matches a hand-assembled file byte for byte", () => {
  // a: F32 [2] = [1, -2]; b: BF16 [1,1] = 1.5 (0x3FC0); metadata {k: v1}.
  const json = '{"__metadata__":{"k":"v1"},' +
    '"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},' +
    '"b":{"dtype":"BF16","shape":[1,1],"data_offsets":[8,10]}}';
  assert.equal(json.length, 137); // padded to 144 with seven spaces
  const expected = new Uint8Array([
    ...[144, 0, 0, 0, 0, 0, 0, 0],
    ...utf8(json),
    ...[0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20],
    ...[0x00, 0x00, 0x80, 0x3f], // 1.0f little-endian
    ...[0x00, 0x00, 0x00, 0xc0], // -2.0f
    ...[0xc0, 0x3f], // bf16 1.5
  ]);
  const got = encodeSafetensors([
    { name: "a", dtype: "F32", shape: [2], data: new Float32Array([1, -2]) },
    { name: "b", dtype: "BF16", shape: [1, 1], data: new Float32Array([1.5]) },
  ], { k: "v1" });
  assert.deepEqual(got, expected);
  const h = parseSafetensorsHeader(got);
  assert.equal(h.dataStart, 152);
  assert.deepEqual([...h.tensors.keys()], ["a", "b"]);
  assert.deepEqual(h.tensors.get("b"), { dtype: "BF16", shape: [1, 1], begin: 8, end: 10 });
});

Deno.test("encodeSafetensors() reproduces files Python's safetensors wrote, byte for byte", async () => {
  for (const dir of ["llama-micro", "llama-micro-tied"]) {
    for (const file of ["model.safetensors", "grads.safetensors", "logits.safetensors"]) {
      const bytes = await Deno.readFile(new URL(`${dir}/${file}`, GOLDEN));
      const { tensors, metadata } = decodeSafetensors(bytes);
      assert.ok(tensors.size > 0);
      const again = encodeSafetensors(
        [...tensors].map(([name, t]) => ({ name, ...t, data: t.bytes })),
        metadata,
      );
      assert.deepEqual(again, bytes, `${dir}/${file}`);
    }
  }
});

Deno.test("decodeSafetensors() reads Python-written golden checkpoints", async () => {
  const bytes = await Deno.readFile(new URL("llama-micro/model.safetensors", GOLDEN));
  const { tensors, metadata } = decodeSafetensors(bytes);
  assert.deepEqual(metadata, { format: "pt" });
  const e = tensors.get("model.embed_tokens.weight")!;
  assert.equal(e.dtype, "F32");
  assert.deepEqual(e.shape, [96, 16]);
  const v = toFloat32(e.dtype, e.bytes);
  assert.equal(v.length, 96 * 16);
  assert.ok(v.every(Number.isFinite));
  const norm = toFloat32("F32", tensors.get("model.norm.weight")!.bytes);
  assert.equal(norm.length, 16);
  assert.ok(tensors.has("lm_head.weight"));
  const logits = decodeSafetensors(
    await Deno.readFile(new URL("llama-micro/logits.safetensors", GOLDEN)),
  );
  assert.deepEqual(logits.metadata, {});
  assert.deepEqual(logits.tensors.get("logits")!.shape, [2, 12, 96]);
});

Deno.test("encodeSafetensors() round-trips every dtype and odd shapes", () => {
  const shapes = [[0], [3, 0], [1, 1, 1], [], [5], [2, 3]];
  const inputs = [];
  let k = 0;
  for (const dtype of Object.keys(DTYPE_SIZES) as Dtype[]) {
    for (const shape of shapes) {
      const n = shape.reduce((a, b) => a * b, 1) * DTYPE_SIZES[dtype];
      const data = new Uint8Array(n).map((_, i) => (i * 31 + k) & 0xff);
      inputs.push({ name: `t${k++}.${dtype}`, dtype, shape, data });
    }
  }
  const meta = { kind: "delta", window: "7", "ünïcode": "✓" };
  const bytes = encodeSafetensors(inputs, meta);
  assert.equal(parseSafetensorsHeader(bytes).dataStart % 8, 0);
  const { tensors, metadata } = decodeSafetensors(bytes);
  assert.deepEqual(metadata, meta);
  assert.deepEqual([...tensors.keys()], inputs.map((t) => t.name));
  for (const t of inputs) {
    const d = tensors.get(t.name)!;
    assert.equal(d.dtype, t.dtype);
    assert.deepEqual(d.shape, t.shape);
    assert.deepEqual(d.bytes, t.data);
  }
  // No tensors at all.
  const empty = decodeSafetensors(encodeSafetensors([]));
  assert.equal(empty.tensors.size, 0);
});

Deno.test("encodeSafetensors() converts float32 to F32, BF16, F16 and back", () => {
  const x = new Float32Array([0, -0, 1, -2.5, 3.140625, 1e-3, 65504, -1e-7]);
  for (const dtype of ["F32", "BF16", "F16"] as const) {
    const bytes = encodeSafetensors([{ name: "x", dtype, shape: [8], data: x }]);
    const t = decodeSafetensors(bytes).tensors.get("x")!;
    const y = toFloat32(t.dtype, t.bytes);
    const tol = dtype === "F32" ? 0 : dtype === "BF16" ? 2 ** -8 : 2 ** -11;
    x.forEach((v, i) => {
      assert.ok(
        Math.abs(y[i]! - v) <= tol * Math.abs(v) + (dtype === "F16" ? 2 ** -25 : 0),
        `${dtype} ${v} → ${y[i]}`,
      );
    });
  }
});

Deno.test("f32ToBf16() rounds to nearest even, keeps Inf/NaN", () => {
  const bits = (v: number) => f32ToBf16(new Float32Array([v]))[0];
  assert.equal(bits(1), 0x3f80);
  assert.equal(bits(-2), 0xc000);
  assert.equal(bits(1 + 2 ** -8), 0x3f80); // tie → even (down)
  assert.equal(bits(1 + 3 * 2 ** -8), 0x3f82); // tie → even (up)
  assert.equal(bits(1 + 2 ** -8 + 2 ** -20), 0x3f81); // above tie → up
  assert.equal(bits(3.4028234663852886e38), 0x7f80); // max float rounds to Inf
  assert.equal(bits(-Infinity), 0xff80);
  assert.ok(Number.isNaN(bf16ToF32(f32ToBf16(new Float32Array([NaN])))[0]));
  // Exact for every bf16 value: decode all 65536, re-encode, same bits (NaN aside).
  const all = new Uint16Array(65536).map((_, i) => i);
  const back = f32ToBf16(bf16ToF32(all));
  for (let i = 0; i < 65536; i++) {
    if ((i & 0x7f80) === 0x7f80 && (i & 0x7f)) assert.ok((back[i]! & 0x7f) !== 0);
    else assert.equal(back[i], i);
  }
});

Deno.test("f32ToF16() agrees with the platform Float16Array on edge and random values", () => {
  const xs = [
    0,
    -0,
    1,
    65504,
    65519.99,
    65520,
    1e6,
    -Infinity,
    2 ** -14,
    2 ** -24,
    2 ** -25,
    1.5 * 2 ** -25,
    3 * 2 ** -25,
    2 ** -26,
    1 - 2 ** -12,
    0.1,
  ];
  let s = 12345;
  for (let i = 0; i < 20000; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    xs.push((s / 2 ** 32 - 0.5) * 2 ** ((i % 50) - 30));
  }
  const src = new Float32Array(xs);
  const ours = f32ToF16(src);
  const ref = new Uint16Array(new Float16Array(src).buffer);
  assert.deepEqual(ours, ref);
  assert.equal(ours[1], 0x8000);
  assert.equal(ours[3], 0x7bff);
  assert.equal(ours[5], 0x7c00);
  // Decoding: every half value matches the platform's decoding.
  const all = new Uint16Array(65536).map((_, i) => i);
  const dec = f16ToF32(all);
  const refDec = new Float16Array(all.buffer);
  for (let i = 0; i < 65536; i++) {
    if (Number.isNaN(refDec[i])) assert.ok(Number.isNaN(dec[i]));
    else assert.equal(dec[i], refDec[i]);
  }
});

Deno.test("decodeSafetensors() rejects each malformed input with its reason", () => {
  const ok = (json: string, data = new Uint8Array(8)) => assemble(json, data);
  const f32 = (off: string, shape = "[2]") =>
    `"a":{"dtype":"F32","shape":${shape},"data_offsets":${off}}`;
  rejects(new Uint8Array(5), /shorter than the 8-byte header length/);
  const huge = new Uint8Array(4096);
  new DataView(huge.buffer).setBigUint64(0, 9_000_000_000_000_000_000n, true);
  rejects(huge, /header length 9000000000000000000 exceeds the cap/);
  rejects(assemble("{}", new Uint8Array(0), 100), /header length 100 exceeds file size 10/);
  rejects(ok(`{${f32("[0,8]")}}`), /header length \d+ exceeds the cap of 10 bytes/, 10);
  rejects(ok("{nope"), /header is not valid JSON/);
  rejects(assemble("{}", new Uint8Array(0)).fill(0xff, 8), /not valid UTF-8/);
  rejects(ok("[1,2]"), /header is not a JSON object/);
  rejects(ok(`{"a":5}`), /tensor 'a' is not an object/);
  rejects(ok(`{"a":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}}`), /unknown dtype "F33"/);
  rejects(ok(`{${f32("[0,8]", "[2.5]")}}`), /shape \[2\.5\], expected non-negative integers/);
  rejects(ok(`{${f32("[0,8]", "[-2]")}}`), /shape \[-2\]/);
  rejects(ok(`{${f32("[0,8]", '"2"')}}`), /shape "2"/);
  rejects(ok(`{${f32("[0]")}}`), /data_offsets \[0\], expected \[begin, end\]/);
  rejects(ok(`{${f32("[8,0]")}}`), /data_offsets \[8,0\]/);
  rejects(ok(`{${f32("[0,16]", "[4]")}}`), /ends at 16, past the data buffer of 8 bytes/);
  rejects(ok(`{${f32("[0,8]", "[3]")}}`), /holds 8 bytes but F32 \[3\] needs 12/);
  rejects(
    ok(`{${f32("[0,8]")},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`),
    /overlaps/,
  );
  rejects(ok(`{${f32("[0,4]", "[1]")}}`), /tensors cover 4 bytes but the data buffer holds 8/);
  rejects(
    ok(`{"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`),
    /gap in the data buffer before tensor 'b' \(0\.\.4\)/,
  );
  rejects(
    ok(`{"__metadata__":{"loss":1.5},${f32("[0,8]")}}`),
    /__metadata__ value 'loss' is 1\.5, not a string/,
  );
  rejects(ok(`{"__metadata__":[],${f32("[0,8]")}}`), /__metadata__ is not an object/);
  rejects(
    ok(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}}`),
    /unknown field 'x'/,
  );
  // A valid file truncated by one byte.
  const good = encodeSafetensors([{
    name: "w",
    dtype: "F32",
    shape: [4],
    data: new Float32Array(4),
  }]);
  decodeSafetensors(good);
  rejects(good.subarray(0, good.length - 1), /ends at 16, past the data buffer of 15 bytes/);
});

Deno.test("encodeSafetensors() refuses bad inputs", () => {
  const t = { name: "a", dtype: "F32" as const, shape: [2], data: new Float32Array(2) };
  assert.throws(() => encodeSafetensors([t, t]), /'a' is empty, reserved or repeated/);
  assert.throws(() => encodeSafetensors([{ ...t, name: "__metadata__" }]), /reserved/);
  assert.throws(() => encodeSafetensors([{ ...t, shape: [3] }]), /2 values for shape \[3\]/);
  assert.throws(() => encodeSafetensors([{ ...t, data: new Uint8Array(7) }]), /7 bytes/);
  assert.throws(() => encodeSafetensors([{ ...t, dtype: "I32" }]), /pass raw bytes/);
  assert.throws(
    () => encodeSafetensors([t], { n: 1 as unknown as string }),
    /metadata 'n' is not a string/,
  );
  const { header, offsets } = safetensorsHeader([t, { ...t, name: "b", dtype: "BF16" }]);
  assert.equal(header.length % 8, 0);
  assert.deepEqual(offsets, [[0, 8], [8, 12]]);
});
