/**
 * The TypeScript protocol against tests/vectors/protocol.json, written by the independent
 * numpy reference scripts/protocol_ref.py: every codec's uploaded bytes, decoded values
 * and error-feedback buffers over three windows, the aggregate, and four outer steps
 * (plain and preconditioned) with their digests — all bit for bit.
 */
import assert from "node:assert/strict";
import type { Dtype } from "../safetensors.ts";
import { decodeUpdate, type EncodedTensor, encodeUpdate, parseCodec } from "./codec.ts";
import { aggregate, newOuterState, outerStep, paramsDigest, stateDigest } from "./outer.ts";

type HexMap = Record<string, string>;
const V = JSON.parse(
  await Deno.readTextFile(new URL("../../tests/vectors/protocol.json", import.meta.url)),
);
const shapes: Record<string, number[]> = V.shapes;
const params = Object.entries(shapes).map(([name, shape]) => ({ name, shape }));

function bytes(hex: string): Uint8Array {
  return Uint8Array.from(hex.match(/../g) ?? [], (h) => parseInt(h, 16));
}
function f32(hex: string): Float32Array {
  return new Float32Array(bytes(hex).buffer);
}
function tensors(m: HexMap): Map<string, Float32Array> {
  return new Map(Object.entries(m).map(([k, v]) => [k, f32(v)]));
}
function hex(t: Float32Array | Uint8Array): string {
  const b = t instanceof Uint8Array ? t : new Uint8Array(t.buffer, t.byteOffset, t.byteLength);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

Deno.test("codecs reproduce the Python reference's bytes, decodes and error feedback", () => {
  assert.ok(V.codecs.length >= 10);
  for (const c of V.codecs) {
    const spec = parseCodec(c.codec);
    assert.equal(spec.name, c.codec);
    const ef = new Map<string, Float32Array>();
    for (const [w, win] of c.windows.entries()) {
      const enc = encodeUpdate(spec, tensors(win.update), ef, { seed: win.seed });
      assert.deepEqual([...enc.tensors.keys()], Object.keys(win.tensors), `${c.codec} w${w}`);
      for (
        const [name, t] of Object.entries(win.tensors) as [string, { dtype: Dtype; hex: string }][]
      ) {
        const got = enc.tensors.get(name)!;
        assert.equal(got.dtype, t.dtype, `${c.codec} ${name}`);
        assert.equal(hex(got.bytes), t.hex, `${c.codec} w${w} ${name} bytes`);
      }
      for (const [name, h] of Object.entries(win.ef as HexMap)) {
        assert.equal(hex(ef.get(name)!), h, `${c.codec} w${w} ef ${name}`);
      }
      // Decoding the reference's bytes (not ours) gives the reference's values.
      const theirs = new Map<string, EncodedTensor>(
        Object.entries(win.tensors as Record<string, { dtype: Dtype; hex: string }>).map((
          [name, t],
        ) => {
          const b = bytes(t.hex);
          const size = t.dtype === "F32" ? 4 : t.dtype === "U16" || t.dtype === "BF16" ? 2 : 1;
          return [name, { dtype: t.dtype, shape: [b.length / size], bytes: b }];
        }),
      );
      const table = c.shapes
        ? Object.entries(c.shapes as Record<string, number[]>).map(([name, shape]) => ({
          name,
          shape,
        }))
        : params;
      const dec = decodeUpdate(spec, { codec: spec.name, tensors: theirs, bytes: 0 }, table, {
        seed: win.seed,
      });
      for (const [name, h] of Object.entries(win.decoded as HexMap)) {
        assert.equal(hex(dec.get(name)!), h, `${c.codec} w${w} decoded ${name}`);
      }
    }
  }
});

Deno.test("aggregate reproduces the Python reference bit for bit", () => {
  const peers = V.aggregate.peers.map((
    p: { key: string; weight: number; update: HexMap },
  ) => ({ key: p.key, weight: p.weight, update: tensors(p.update) }));
  const got = aggregate(peers);
  for (const [name, h] of Object.entries(V.aggregate.out as HexMap)) {
    assert.equal(hex(got.get(name)!), h, name);
  }
});

Deno.test("outer steps and digests reproduce the Python reference bit for bit", () => {
  for (const run of V.outer) {
    const p = tensors(run.params);
    const state = newOuterState(p);
    for (const [s, step] of run.steps.entries()) {
      outerStep(p, state, tensors(step.agg), run.hp);
      for (const [name, h] of Object.entries(step.params as HexMap)) {
        assert.equal(hex(p.get(name)!), h, `precondition=${run.hp.precondition} step ${s} ${name}`);
      }
      assert.equal(paramsDigest(p), step.params_digest);
      assert.equal(stateDigest(state), step.state_digest);
    }
  }
});
