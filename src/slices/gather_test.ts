import assert from "node:assert/strict";
import { gather, scatter } from "./gather.ts";

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
