import assert from "node:assert/strict";
import {
  addInto,
  allFinite,
  clone,
  cosine,
  countNonFinite,
  difference,
  dot,
  norm,
  sameBits,
  scaleInPlace,
} from "./tensor_math.ts";

const T = (o: Record<string, number[]>) =>
  new Map(Object.entries(o).map(([k, v]) => [k, new Float32Array(v)]));

Deno.test("dot, norm, cosine over all tensors (hand-computed)", () => {
  const a = T({ x: [1, 2], y: [2] }), b = T({ x: [3, 0], y: [-1] });
  assert.equal(dot(a, b), 1); // 3 + 0 − 2
  assert.equal(norm(a), 3);
  assert.ok(Math.abs(cosine(a, b) - 1 / (3 * Math.sqrt(10))) < 1e-12);
  assert.equal(cosine(a, T({ x: [0, 0], y: [0] })), 0);
  assert.throws(() => dot(a, T({ x: [1], y: [1] })), /'x' has 2 values/);
});

Deno.test("finiteness, copies, sums, differences, bit equality", () => {
  assert.equal(countNonFinite(new Float32Array([1, NaN, Infinity, -Infinity, 0])), 3);
  assert.ok(allFinite(T({ x: [1, -2] })));
  assert.ok(!allFinite(T({ x: [1, NaN] })));
  const a = T({ x: [1, 2] });
  const c = clone(a);
  c.get("x")![0] = 5;
  assert.equal(a.get("x")![0], 1);
  assert.deepEqual(addInto(clone(a), a).get("x"), new Float32Array([2, 4]));
  assert.deepEqual(scaleInPlace(clone(a), -0.5).get("x"), new Float32Array([-0.5, -1]));
  assert.deepEqual(difference(a, c).get("x"), new Float32Array([-4, 0]));
  assert.ok(sameBits(a, clone(a)));
  assert.ok(!sameBits(a, c));
  assert.ok(!sameBits(T({ x: [0] }), T({ x: [-0] }))); // bits, not values
});
