import assert from "node:assert/strict";
import { addScaled, averageInto, gather, meanSlice, scatter } from "./gather.ts";

const idx = (...v: number[]) => new Uint32Array(v);

Deno.test("gather() picks the values at the indices; scatter() writes them back", () => {
  const params = new Map([
    ["a", Float32Array.from({ length: 10 }, (_, i) => i * 1.5)],
    ["b", new Float32Array([7])],
  ]);
  const indices = new Map([["a", idx(0, 3, 9)], ["b", idx(0)]]);
  const s = gather(params, indices);
  assert.deepEqual([...s.keys()], ["a", "b"]);
  assert.deepEqual(s.get("a"), new Float32Array([0, 4.5, 13.5]));
  assert.deepEqual(s.get("b"), new Float32Array([7]));
  const again = gather(params, indices, s);
  assert.equal(again.get("a"), s.get("a")); // reused, same values
  assert.deepEqual(again.get("a"), new Float32Array([0, 4.5, 13.5]));
  scatter(
    params,
    indices,
    new Map([["a", new Float32Array([-1, -2, -3])], ["b", new Float32Array([0])]]),
  );
  assert.deepEqual(params.get("a"), new Float32Array([-1, 1.5, 3, -2, 6, 7.5, 9, 10.5, 12, -3]));
  assert.deepEqual(params.get("b"), new Float32Array([0]));
});

Deno.test("gather()/scatter() refuse unknown names, out-of-range indices, wrong lengths", () => {
  const params = new Map([["a", new Float32Array(4)]]);
  assert.throws(() => gather(params, new Map([["x", idx(0)]])), /Unknown parameter 'x'/);
  assert.throws(() => gather(params, new Map([["a", idx(1, 4)]])), /index 4 is out of range/);
  assert.throws(
    () => scatter(params, new Map([["a", idx(1, 2)]]), new Map([["a", new Float32Array(3)]])),
    /has 3 values, expected 2/,
  );
  assert.throws(() => scatter(params, new Map([["a", idx(1)]]), new Map()), /has no values/);
});

Deno.test("averageInto() sets the mean at the indices and leaves the rest alone", () => {
  const params = new Map([["a", new Float32Array([1, 1, 1, 1])]]);
  const indices = new Map([["a", idx(1, 2)]]);
  averageInto(params, indices, new Map());
  assert.deepEqual(params.get("a"), new Float32Array([1, 1, 1, 1]));
  averageInto(
    params,
    indices,
    new Map([
      ["hk1", new Map([["a", new Float32Array([2, -4])]])],
      ["hk2", new Map([["a", new Float32Array([4, 0])]])],
      ["hk3", new Map([["a", new Float32Array([6, 1])]])],
    ]),
  );
  assert.deepEqual(params.get("a"), new Float32Array([1, 4, -1, 1]));
});

Deno.test("meanSlice() gives the same bits whatever the order the slices arrived in", () => {
  const indices = new Map([["a", idx(0, 1, 2)]]);
  const vals = [[1e8, 1, -1e8], [3.25, 1e-7, 5], [-7, 2 ** -20, 1e-3]];
  const mk = (order: number[]) =>
    new Map(order.map((i) => [`hk${i}`, new Map([["a", new Float32Array(vals[i]!)]])]));
  const m1 = meanSlice(indices, mk([0, 1, 2])).get("a")!;
  const m2 = meanSlice(indices, mk([2, 0, 1])).get("a")!;
  assert.deepEqual(new Uint32Array(m1.buffer), new Uint32Array(m2.buffer));
  // float64 accumulation: (1e8 + 3.25 - 7) / 3 rounded once to float32
  assert.equal(m1[0], Math.fround((1e8 + 3.25 - 7) / 3));
});

Deno.test("addScaled() applies the negated mean delta (before - after)", () => {
  const params = new Map([["a", new Float32Array([10, 10, 10])]]);
  const indices = new Map([["a", idx(0, 2)]]);
  addScaled(params, indices, new Map([["a", new Float32Array([0.5, -1])]]), -1);
  assert.deepEqual(params.get("a"), new Float32Array([9.5, 10, 11]));
});
