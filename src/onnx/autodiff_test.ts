/**
 * Every backward rule against central finite differences in float64 (ONNX Runtime CPU
 * runs all of these ops in double), plus exact-value checks of the walk itself.
 */
import assert from "node:assert/strict";
import { Graph, type T } from "./graph.ts";
import * as o from "./ops.ts";
import { grad, sumTo } from "./autodiff.ts";
import { Session } from "./run.ts";

/** Deterministic pseudo-random numbers in [-1, 1) (no Math.random in tests). */
function rand(n: number, seed: number): Float64Array {
  let s = seed >>> 0 || 1;
  return Float64Array.from({ length: n }, () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) / 4294967296) * 2 - 1;
  });
}

interface In {
  shape: number[];
  /** "pos": values in [0.5, 1.5); "int": fixed int64 values. */
  kind?: "pos" | "int";
  ints?: number[];
}

/**
 * Builds `f(inputs)`, takes L = Σ f · r for a random r, and compares autodiff's dL/dx
 * with (L(x + h) − L(x − h)) / 2h for every element of every float input.
 */
async function checkGrad(name: string, ins: In[], f: (xs: T[]) => T, tol = 1e-7): Promise<void> {
  const g = new Graph();
  const xs = ins.map((s, i) => g.input(`x${i}`, s.kind === "int" ? "int64" : "float64", s.shape));
  const y = f(xs);
  const r = g.constant(rand(y.shape.reduce((a, b) => a * b, 1), 99), "float64", y.shape);
  const loss = o.sumAll(o.mul(y, r));
  const floats = xs.filter((x) => x.dtype === "float64");
  const grads = grad(loss, floats);
  g.output(loss, "loss");
  grads.forEach((gx, i) => g.output(gx, `g${i}`));
  const s = await Session.create(g.encode(), { threads: 1 });
  try {
    const vals = ins.map((s, i) => {
      const n = s.shape.reduce((a, b) => a * b, 1);
      if (s.kind === "int") return BigInt64Array.from(s.ints!.map(BigInt));
      const v = rand(n, 7 + i * 31);
      return s.kind === "pos" ? v.map((x) => 1 + x / 2) : v;
    });
    const feeds = () =>
      Object.fromEntries(vals.map((v, i) => [`x${i}`, { data: v, dims: ins[i]!.shape }]));
    const res = await s.run(feeds());
    const h = 1e-5;
    let fi = 0;
    for (let i = 0; i < ins.length; i++) {
      if (ins[i]!.kind === "int") continue;
      const v = vals[i] as Float64Array, an = res[`g${fi++}`]!.data as Float64Array;
      assert.equal(an.length, v.length, `${name}: gradient ${i} size`);
      for (let j = 0; j < v.length; j++) {
        const x0 = v[j]!;
        v[j] = x0 + h;
        const lp = (await s.run(feeds(), ["loss"])).loss!.data[0] as number;
        v[j] = x0 - h;
        const lm = (await s.run(feeds(), ["loss"])).loss!.data[0] as number;
        v[j] = x0;
        const num = (lp - lm) / (2 * h);
        assert.ok(
          Math.abs(num - an[j]!) <= tol * Math.max(1, Math.abs(num)),
          `${name}: d/dx${i}[${j}] autodiff ${an[j]} vs finite difference ${num}`,
        );
      }
    }
  } finally {
    await s.release();
  }
}

const CASES: [string, In[], (xs: T[]) => T][] = [
  ["Add (broadcast)", [{ shape: [2, 3] }, { shape: [3] }], ([a, b]) => o.add(a!, b!)],
  ["Sub (broadcast)", [{ shape: [2, 1] }, { shape: [2, 3] }], ([a, b]) => o.sub(a!, b!)],
  ["Mul (broadcast)", [{ shape: [2, 3, 1] }, { shape: [1, 4] }], ([a, b]) => o.mul(a!, b!)],
  ["Div", [{ shape: [2, 3] }, { shape: [2, 3], kind: "pos" }], ([a, b]) => o.div(a!, b!)],
  ["Pow", [{ shape: [4], kind: "pos" }, { shape: [4] }], ([a, b]) => o.pow(a!, b!)],
  ["Neg", [{ shape: [5] }], ([a]) => o.neg(a!)],
  ["Exp", [{ shape: [5] }], ([a]) => o.exp(a!)],
  ["Log", [{ shape: [5], kind: "pos" }], ([a]) => o.log(a!)],
  ["Sqrt", [{ shape: [5], kind: "pos" }], ([a]) => o.sqrt(a!)],
  ["Sigmoid", [{ shape: [5] }], ([a]) => o.sigmoid(a!)],
  ["Softmax", [{ shape: [2, 5] }], ([a]) => o.softmax(a!, -1)],
  ["Softmax axis 0", [{ shape: [3, 2] }], ([a]) => o.softmax(a!, 0)],
  ["Identity", [{ shape: [3] }], ([a]) => o.identity(a!)],
  [
    "MatMul (batched, broadcast)",
    [{ shape: [2, 3, 4] }, { shape: [4, 2] }],
    ([a, b]) => o.matmul(a!, b!),
  ],
  [
    "MatMul (4-D)",
    [{ shape: [2, 1, 2, 3] }, { shape: [1, 2, 3, 2] }],
    ([a, b]) => o.matmul(a!, b!),
  ],
  ["Gemm", [{ shape: [3, 4] }, { shape: [4, 2] }], ([a, b]) => o.gemm(a!, b!)],
  ["Gemm transA", [{ shape: [4, 3] }, { shape: [4, 2] }], ([a, b]) => o.gemm(a!, b!, true)],
  ["Gemm transB", [{ shape: [3, 4] }, { shape: [2, 4] }], ([a, b]) => o.gemm(a!, b!, false, true)],
  [
    "Gemm transA transB",
    [{ shape: [4, 3] }, { shape: [2, 4] }],
    ([a, b]) => o.gemm(a!, b!, true, true),
  ],
  ["ReduceSum keepdims", [{ shape: [2, 3, 2] }], ([a]) => o.reduceSum(a!, [0, 2], true)],
  ["ReduceSum dropdims", [{ shape: [2, 3, 2] }], ([a]) => o.reduceSum(a!, [1], false)],
  ["ReduceMax", [{ shape: [3, 4] }], ([a]) => o.reduceMax(a!, [1], false)],
  ["Reshape", [{ shape: [2, 6] }], ([a]) => o.reshape(a!, [3, 4])],
  ["Transpose", [{ shape: [2, 3, 4] }], ([a]) => o.transpose(a!, [2, 0, 1])],
  ["Expand", [{ shape: [3, 1] }], ([a]) => o.expand(a!, [2, 3, 4])],
  ["Slice", [{ shape: [4, 5] }], ([a]) => o.slice(a!, [1, -3], [3, 5], [0, 1])],
  ["Pad", [{ shape: [2, 3] }], ([a]) => o.pad(a!, [1, 0, 0, 2])],
  ["Concat", [{ shape: [2, 1] }, { shape: [2, 3] }], ([a, b]) => o.concat([a!, b!, a!], 1)],
  [
    "Gather (repeated rows)",
    [{ shape: [5, 3] }, { shape: [2, 3], kind: "int", ints: [4, 0, 4, 2, 2, 4] }],
    ([w, i]) => o.gather(w!, i!),
  ],
  [
    "Where",
    [{ shape: [2, 3] }, { shape: [3] }],
    ([a, b]) => o.where(o.equal(a!.g.constant([1, 0, 1], "float64", [3]), 1), a!, b!),
  ],
  [
    "SoftmaxCrossEntropyLoss (mean)",
    [{ shape: [4, 5] }, { shape: [4], kind: "int", ints: [0, 4, 4, 2] }],
    ([z, l]) => o.softmaxCrossEntropy(z!, l!).loss,
  ],
  ["rmsNorm (composite)", [{ shape: [2, 4] }, { shape: [4] }], ([x, w]) => o.rmsNorm(x!, w!, 1e-5)],
  ["silu (composite)", [{ shape: [6] }], ([x]) => o.silu(x!)],
  ["reduceMean (composite)", [{ shape: [2, 3] }], ([x]) => o.reduceMean(x!, [0])],
];

for (const [name, ins, f] of CASES) {
  Deno.test(`grad() ${name} matches finite differences`, () => checkGrad(name, ins, f));
}

Deno.test("grad() Cast float64→float32→float64 matches finite differences (float32 tolerance)", () =>
  checkGrad(
    "Cast",
    [{ shape: [4] }],
    ([x]) => o.cast(o.mul(o.cast(x!, "float32"), 3), "float64"),
    2e-2,
  ));

Deno.test("grad() sums gradients of a tensor used twice and gives zeros to unused inputs", async () => {
  const g = new Graph();
  const x = g.input("x", "float64", [2]), u = g.input("u", "float64", [3]);
  const loss = o.sumAll(o.add(o.mul(x, x), x)); // d/dx = 2x + 1
  const [gx, gu] = grad(loss, [x, u]);
  g.output(gx!, "gx");
  g.output(gu!, "gu");
  const s = await Session.create(g.encode());
  const r = await s.run({
    x: { data: Float64Array.of(3, -2), dims: [2] },
    u: { data: new Float64Array(3), dims: [3] },
  });
  assert.deepEqual([...r.gx!.data as Float64Array], [7, -3]);
  assert.deepEqual([...r.gu!.data as Float64Array], [0, 0, 0]);
  await s.release();
});

Deno.test("sumTo() undoes broadcasting exactly", async () => {
  const g = new Graph();
  const x = g.input("x", "float64", [2, 2, 3]);
  g.output(sumTo(x, [2, 1]), "a");
  g.output(sumTo(x, [3]), "b");
  const s = await Session.create(g.encode());
  const r = await s.run({
    x: { data: Float64Array.from({ length: 12 }, (_, i) => i), dims: [2, 2, 3] },
  });
  assert.deepEqual([...r.a!.data as Float64Array], [
    0 + 1 + 2 + 6 + 7 + 8,
    3 + 4 + 5 + 9 + 10 + 11,
  ]);
  assert.deepEqual(r.a!.dims, [2, 1]);
  assert.deepEqual([...r.b!.data as Float64Array], [18, 22, 26]);
  await s.release();
});

Deno.test("grad() names the op that has no rule and skips integer inputs", () => {
  const g = new Graph();
  const x = g.input("x", "float64", [2]);
  const [y] = g.node("Tanh", [x], [{ dtype: "float64", shape: [2] }]);
  assert.throws(() => grad(o.sumAll(y!), [x]), /No gradient rule for op 'Tanh'/);
  const i = g.input("i", "int64", [2]);
  const w = g.input("w", "float64", [3, 2]);
  const [gw, gi] = grad(o.sumAll(o.gather(w, i)), [w, i]);
  assert.deepEqual(gw!.shape, [3, 2]);
  assert.equal(gi!.dtype, "int64");
});

Deno.test("ops infer shapes and reject mismatches at build time", () => {
  const g = new Graph();
  const a = g.input("a", "float32", [2, 3, 4]), b = g.input("b", "float32", [4, 5]);
  assert.deepEqual(o.matmul(a, b).shape, [2, 3, 5]);
  assert.deepEqual(o.add(a, g.input("c", "float32", [3, 1])).shape, [2, 3, 4]);
  assert.deepEqual(o.transpose(a, [1, 2, 0]).shape, [3, 4, 2]);
  assert.deepEqual(o.slice(a, [1], [100], [-1]).shape, [2, 3, 3]);
  assert.deepEqual(o.reshape(a, [-1, 4]).shape, [6, 4]);
  assert.throws(() => o.matmul(b, a), /MatMul inner dims differ/);
  assert.throws(() => o.add(a, b), /Cannot broadcast shapes \[2, 3, 4\] and \[4, 5\]/);
  assert.throws(() => o.reshape(a, [5, -1]), /Cannot reshape/);
  assert.throws(() => o.add(a, g.input("d", "float64", [4])), /Operand types differ/);
});
