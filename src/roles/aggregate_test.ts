import assert from "node:assert/strict";
import type { Tensors } from "../model/params.ts";
import { aggregate, applyDeltas, averageStates, type PeerSlice } from "./aggregate.ts";
import { fillNormal } from "../model/init.ts";

const T = (o: Record<string, number[]>): Tensors =>
  new Map(Object.entries(o).map(([k, v]) => [k, new Float32Array(v)]));
const arr = (t: Tensors, name: string) => Array.from(t.get(name)!);
const peer = (key: string, o: Record<string, number[]>, weight?: number): PeerSlice => ({
  key,
  values: T(o),
  weight,
});
const close = (got: number[], want: number[], eps = 1e-6) =>
  got.forEach((g, i) => assert.ok(Math.abs(g - want[i]!) <= eps, `[${i}] ${g} vs ${want[i]}`));

Deno.test("applyDeltas() subtracts the mean delta at the indices", () => {
  const params = T({ w: [10, 20, 30, 40], n: [1, 1] });
  const idx = new Map([["w", new Uint32Array([1, 3])], ["n", new Uint32Array([0])]]);
  // Equal norms per tensor, so clipping does nothing.
  const r = applyDeltas(params, idx, [
    peer("b", { w: [0.3, 0.4], n: [0.5] }),
    peer("a", { w: [0.4, 0.3], n: [-0.5] }),
  ]);
  assert.deepEqual(r.used, ["a", "b"]);
  const f = Math.fround;
  assert.deepEqual(arr(params, "w"), [10, f(20 - f(0.35)), 30, f(40 - f(0.35))]);
  close(arr(params, "n"), [1, 1]);
});

Deno.test("aggregate() weights peers and leaves out weight 0", () => {
  const lens = new Map([["w", 2]]);
  const { values, report } = aggregate(
    [peer("a", { w: [1, 0] }, 3), peer("b", { w: [0, 1] }, 1), peer("c", { w: [9, 9] }, 0)],
    lens,
    { clip: false },
  );
  close(arr(values, "w"), [0.75, 0.25]);
  assert.deepEqual(report.rejected, [{ key: "c", reason: "weight" }]);
});

Deno.test("aggregate() median mode takes the coordinate-wise median", () => {
  const lens = new Map([["w", 3]]);
  const peers = [
    peer("a", { w: [1, 5, -1] }),
    peer("b", { w: [2, -7, -2] }),
    peer("c", { w: [1e3, 6, -3] }),
  ];
  close(arr(aggregate(peers, lens, { mode: "median", clip: false }).values, "w"), [2, 5, -2]);
  close(
    arr(aggregate(peers.slice(0, 2), lens, { mode: "median", clip: false }).values, "w"),
    [1.5, -1, -1.5],
  );
});

function randomTensors(key: string, n: number, std = 1e-3): Tensors {
  const t = new Float32Array(n);
  fillNormal(t, std, ["aggregate-test", key]);
  return new Map([["w", t], ["v", t.slice(0, 17).map((x) => x * 2)]]);
}

Deno.test("aggregate() is bit-identical whatever order the peers arrive in", () => {
  const peers = ["h3", "h1", "h0", "h2", "h4"].map((k, i) => ({
    key: k,
    values: randomTensors(k, 1000, 10 ** -(i % 3 + 2)),
  }));
  const lens = new Map([["w", 1000], ["v", 17]]);
  for (const mode of ["mean", "median"] as const) {
    const ref = aggregate(peers, lens, { mode }).values;
    for (const order of [[4, 3, 2, 1, 0], [2, 0, 4, 1, 3], [1, 2, 3, 4, 0]]) {
      const got = aggregate(order.map((i) => peers[i]!), lens, { mode }).values;
      for (const name of lens.keys()) {
        assert.deepEqual(
          new Uint8Array(got.get(name)!.buffer),
          new Uint8Array(ref.get(name)!.buffer),
          `${mode} ${name} order ${order}`,
        );
      }
    }
  }
});

Deno.test("aggregate() clipping bounds a ×10 or ×1e6 delta to the median norm", () => {
  const n = 500, lens = new Map([["w", n], ["v", 17]]);
  const honest = ["a", "b", "c", "d"].map((k) => ({ key: k, values: randomTensors(k, n) }));
  const clean = aggregate(honest, lens).values.get("w")!;
  const honestNorm = Math.hypot(...honest[0]!.values.get("w")!);
  for (const k of [10, 1e6]) {
    const bad: PeerSlice = {
      key: "z",
      values: new Map([...honest[0]!.values].map(([nm, x]) => [nm, x.map((v) => -k * v)])),
    };
    const got = aggregate([...honest, bad], lens).values.get("w")!;
    // 4 honest + 1 bad clipped to the median norm: the bad peer moves the mean by at
    // most (median norm)/5 and the honest part shrinks to 4/5 of the clean mean.
    const diff = got.map((v, i) => v - (4 / 5) * clean[i]!);
    assert.ok(Math.hypot(...diff) <= (1.05 * honestNorm) / 5, `×${k}: ${Math.hypot(...diff)}`);
    assert.ok(got.every(Number.isFinite));
  }
});

Deno.test("aggregate() rejects NaN, Infinity, wrong shapes and zero deltas", () => {
  const lens = new Map([["w", 2]]);
  const { values, report } = aggregate(
    [
      peer("ok", { w: [1, 2] }),
      peer("nan", { w: [NaN, 2] }),
      peer("inf", { w: [1, -Infinity] }),
      peer("short", { w: [1] }),
      peer("extra", { w: [1, 2], x: [1] }),
      peer("other", { v: [1, 2] }),
      peer("zero", { w: [0, 0] }),
    ],
    lens,
  );
  assert.deepEqual(report.used, ["ok"]);
  assert.deepEqual(
    Object.fromEntries(report.rejected.map((r) => [r.key, r.reason])),
    {
      nan: "non-finite",
      inf: "non-finite",
      short: "shape",
      extra: "shape",
      other: "shape",
      zero: "zero",
    },
  );
  close(arr(values, "w"), [1, 2]);
});

Deno.test("applyDeltas() leaves the model alone when no delta is usable", () => {
  const params = T({ w: [1, 2] });
  const r = applyDeltas(params, new Map([["w", new Uint32Array([0, 1])]]), [
    peer("nan", { w: [NaN, 0] }),
  ]);
  assert.deepEqual(r.used, []);
  assert.deepEqual(arr(params, "w"), [1, 2]);
});

Deno.test("applyDeltas() rejects repeated keys, unknown parameters and bad indices", () => {
  const params = T({ w: [1, 2] });
  const idx = new Map([["w", new Uint32Array([0, 1])]]);
  assert.throws(
    () => applyDeltas(params, idx, [peer("a", { w: [1, 1] }), peer("a", { w: [1, 1] })]),
    /two slices from 'a'/,
  );
  assert.throws(() => applyDeltas(params, new Map([["q", new Uint32Array([0])]]), []), /'q'/);
  assert.throws(
    () => applyDeltas(params, new Map([["w", new Uint32Array([0, 2])]]), []),
    /out of range/,
  );
});

Deno.test("averageStates() averages peers with own values", () => {
  const params = T({ w: [1, 2, 3] });
  const idx = new Map([["w", new Uint32Array([0, 2])]]);
  // Deviations [1, 1] and [-1, -1] have equal norms: no clipping.
  const r = averageStates(params, idx, [peer("b", { w: [2, 4] }), peer("a", { w: [0, 2] })]);
  assert.deepEqual(r.used, ["a", "b"]);
  close(arr(params, "w"), [(1 + 2 + 0) / 3, 2, (3 + 4 + 2) / 3]);
  const same = T({ w: [5, 6] });
  averageStates(same, new Map([["w", new Uint32Array([0, 1])]]), [peer("a", { w: [5, 6] })]);
  assert.deepEqual(arr(same, "w"), [5, 6]);
});

Deno.test("averageStates() bounds a poisoned state and skips NaN", () => {
  const params = T({ w: [0, 0, 0, 0] });
  const idx = new Map([["w", new Uint32Array([0, 1, 2, 3])]]);
  averageStates(params, idx, [
    peer("a", { w: [0.01, 0, 0, 0] }),
    peer("b", { w: [0, 0.01, 0, 0] }),
    peer("c", { w: [0, 0, 0.01, 0] }),
    peer("evil", { w: [0, 0, 0, 1e9] }),
    peer("nan", { w: [NaN, NaN, NaN, NaN] }),
  ]);
  // Evil's deviation is clipped to the median norm 0.01, then averaged over 5 members.
  close(arr(params, "w"), [0.002, 0.002, 0.002, 0.002], 1e-9);
});

Deno.test("averageStates() is bit-identical whatever order the states arrive in", () => {
  const own = randomTensors("own", 300);
  const idx = new Map([["w", new Uint32Array(300).map((_, i) => i)], [
    "v",
    new Uint32Array(17).map((_, i) => i),
  ]]);
  const states = ["p", "q", "r"].map((k) => ({ key: k, values: randomTensors(k, 300) }));
  const run = (order: number[]) => {
    const p = new Map([...own].map(([n, x]) => [n, x.slice()]));
    averageStates(p, idx, order.map((i) => states[i]!));
    return p;
  };
  const a = run([0, 1, 2]), b = run([2, 0, 1]);
  for (const n of ["w", "v"]) {
    assert.deepEqual(new Uint8Array(a.get(n)!.buffer), new Uint8Array(b.get(n)!.buffer));
  }
});
