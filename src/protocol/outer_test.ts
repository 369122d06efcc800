/**
 * Aggregation and the outer step: a hand-computed clipped weighted mean, independence of
 * arrival order, the outer step against the trainer's AdamW (an independent
 * implementation of PyTorch's), and the digest's definition.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { adamwStep, clipGrads, newAdamState } from "../train/adamw.ts";
import { aggregate, newOuterState, outerStep, paramsDigest } from "./outer.ts";

const t = (...v: number[]) => Float32Array.from(v);

Deno.test("aggregate: each peer clipped to the median norm, weighted, rounded once", () => {
  // norms 5, 1, 10 → median 5; the third is scaled by 1/2
  const peers = [
    { key: "b", weight: 1, update: new Map([["w", t(3, 4)]]) },
    { key: "a", weight: 2, update: new Map([["w", t(1, 0)]]) },
    { key: "c", weight: 1, update: new Map([["w", t(0, 10)]]) },
  ];
  const got = aggregate(peers).get("w")!;
  const want = [(3 * 1 + 1 * 2 + 0) / 4, (4 + 0 + 5) / 4].map(Math.fround);
  assert.deepEqual([...got], want);
  // weight 0 and NaN weights are left out
  const got2 = aggregate([...peers, { key: "d", weight: 0, update: new Map([["w", t(9, 9)]]) }]);
  assert.deepEqual([...got2.get("w")!], want);
});

Deno.test("aggregate: the same bits in any arrival order", () => {
  let s = 12345;
  const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32 - 0.5) * 1e-3;
  const peers = Array.from({ length: 5 }, (_, k) => ({
    key: `hk${k}`,
    weight: 0.1 + k,
    update: new Map([["w", Float32Array.from({ length: 1000 }, rnd)]]),
  }));
  const a = aggregate(peers).get("w")!;
  const b = aggregate([...peers].reverse()).get("w")!;
  const c = aggregate([peers[2]!, peers[0]!, peers[4]!, peers[1]!, peers[3]!]).get("w")!;
  assert.deepEqual(a, b);
  assert.deepEqual(a, c);
  assert.throws(() => aggregate([peers[0]!, peers[0]!]), /two updates/);
});

Deno.test("outer step: AdamW as the trainer's (PyTorch semantics), to float32 rounding", () => {
  const hp = {
    learningRate: 3e-3,
    beta1: 0.9,
    beta2: 0.95,
    eps: 1e-8,
    weightDecay: 0.1,
    gradClip: 1,
  };
  const p1 = new Map([["w", t(0.5, -0.25, 1, 0)], ["b", t(0.1)]]);
  const p2 = new Map([...p1].map(([k, v]) => [k, v.slice()]));
  const st = newOuterState(p1);
  const ad = newAdamState([{ name: "w", shape: [4], numel: 4 }, {
    name: "b",
    shape: [1],
    numel: 1,
  }]);
  for (let s = 0; s < 5; s++) {
    const g = new Map([["w", t(0.3 * s, -2, 0.01, 1)], ["b", t(-0.5)]]);
    outerStep(p1, st, g, hp);
    const g2 = new Map([...g].map(([k, v]) => [k, v.slice()]));
    clipGrads(g2, hp.gradClip);
    adamwStep(p2, ad, g2, hp);
  }
  for (const [k, v] of p1) {
    v.forEach((x, i) =>
      assert.ok(Math.abs(x - p2.get(k)![i]!) <= 2e-7 * Math.max(1, Math.abs(x)), k)
    );
  }
  assert.equal(st.step, 5);
});

Deno.test("paramsDigest: SHA-256 of name, NUL, u32 length, float32 bytes per tensor", () => {
  const p = new Map([["w", t(1, 2)]]);
  const h = createHash("sha256");
  h.update("w");
  h.update(Uint8Array.of(0, 2, 0, 0, 0));
  h.update(new Uint8Array(t(1, 2).buffer));
  assert.equal(paramsDigest(p), h.digest("hex"));
  assert.notEqual(paramsDigest(new Map([["w", t(1, 2.0000002)]])), paramsDigest(p));
});
