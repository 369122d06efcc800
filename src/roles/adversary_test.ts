import assert from "node:assert/strict";
import type { Tensors } from "../model/params.ts";
import { ADVERSARIES, adversaryDelta } from "./adversary.ts";
import { cosine, norm } from "../tensor_math.ts";
import { fillNormal } from "../model/init.ts";

function tensors(key: string): Tensors {
  const a = new Float32Array(4000), b = new Float32Array(1000);
  fillNormal(a, 1e-3, ["adv-test", key, "a"]);
  fillNormal(b, 1e-3, ["adv-test", key, "b"]);
  return new Map([["a", a], ["b", b]]);
}

const bytes = (t: Tensors) => [...t].map(([n, x]) => [n, Array.from(x)]);

Deno.test("adversaryDelta() produces each cheat from its inputs", () => {
  const honest = tensors("h"), other = tensors("o"), previous = tensors("p");
  const before = [bytes(honest), bytes(other), bytes(previous)];
  const ctx = { honest, other, previous, key: ["hk", 7] };
  assert.equal(norm(adversaryDelta("zero", ctx)), 0);
  assert.deepEqual(bytes(adversaryDelta("copycat", ctx)), bytes(other));
  assert.notEqual(adversaryDelta("copycat", ctx).get("a"), other.get("a")); // a copy
  assert.deepEqual(bytes(adversaryDelta("stale", ctx)), bytes(previous));
  assert.deepEqual(bytes(adversaryDelta("lazy", ctx)), bytes(honest));
  const scaled = adversaryDelta("scaled", ctx);
  assert.deepEqual(
    Array.from(scaled.get("b")!),
    Array.from(honest.get("b")!, (v) => Math.fround(v * 10)),
  );
  const noisy = adversaryDelta("noisy-copy", ctx);
  const c = cosine(noisy, other); // noise 0.1 × RMS: cos ≈ 1/√1.01
  assert.ok(c > 0.99 && c < 0.999, `noisy-copy cos ${c}`);
  const rnd = adversaryDelta("random", ctx);
  assert.ok(Math.abs(cosine(rnd, honest)) < 0.05);
  assert.ok(Math.abs(norm(rnd) / norm(honest) - 1) < 0.05, "random matches the honest RMS");
  assert.deepEqual([bytes(honest), bytes(other), bytes(previous)], before, "inputs untouched");
});

Deno.test("adversaryDelta() is reproducible from its key and differs across keys", () => {
  const other = tensors("o");
  for (const kind of ["random", "noisy-copy"] as const) {
    const a = adversaryDelta(kind, { other, key: ["hk", 1] });
    const b = adversaryDelta(kind, { other, key: ["hk", 1] });
    const c = adversaryDelta(kind, { other, key: ["hk", 2] });
    assert.deepEqual(bytes(a), bytes(b), kind);
    assert.notDeepEqual(bytes(a), bytes(c), kind);
  }
});

Deno.test("adversaryDelta() handles a first window and missing inputs", () => {
  const shape = tensors("s");
  const stale = adversaryDelta("stale", { shape, key: [] });
  assert.equal(norm(stale), 0);
  assert.equal(stale.get("a")!.length, 4000);
  const r = adversaryDelta("random", {
    shape: new Map([["w", new Float32Array(2)]]),
    key: [],
    std: 2,
  });
  assert.equal(r.get("w")!.length, 2);
  for (const kind of ADVERSARIES) {
    if (kind === "stale") continue;
    assert.throws(() => adversaryDelta(kind, { key: [] }), /needs ctx\./, kind);
  }
});
