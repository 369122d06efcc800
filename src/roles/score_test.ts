import assert from "node:assert/strict";
import type { Tensors } from "../model/params.ts";
import {
  cosinePerTensor,
  DEFAULT_SCORE_PARAMS,
  type DeltaStats,
  finalizeScore,
  findDuplicates,
  keeper,
  measureDelta,
  type MeasuredUpload,
  median,
  normFactor,
  scoreDelta,
  scoreWindow,
  updateMoving,
  weightsFromScores,
} from "./score.ts";
import { cosine, norm } from "../tensor_math.ts";
import { ADVERSARIES } from "./adversary.ts";
import { simulate, WORLD, type WorldOptions } from "../../tests/_synthetic.ts";

const T = (o: Record<string, number[]>): Tensors =>
  new Map(Object.entries(o).map(([k, v]) => [k, new Float32Array(v)]));

const close = (a: number, b: number, eps = 1e-9) =>
  assert.ok(Math.abs(a - b) <= eps, `${a} is not within ${eps} of ${b}`);

Deno.test("cosine() and norm() match hand-computed values", () => {
  close(cosine(T({ w: [3, 4], b: [0] }), T({ w: [4, 3], b: [0] })), 24 / 25);
  const a = T({ x: [1, 0], y: [0, 2] }), b = T({ x: [1, 1], y: [0, -1] });
  close(norm(a), Math.sqrt(5));
  close(cosine(a, b), -1 / Math.sqrt(15));
  close(cosinePerTensor(a, b), (Math.SQRT1_2 - 1) / 2);
  assert.equal(cosine(T({ w: [0, 0] }), T({ w: [1, 2] })), 0);
});

Deno.test("cosine() rejects tensors of different names or lengths", () => {
  assert.throws(() => cosine(T({ w: [1, 2] }), T({ w: [1] })), /same shapes/);
  assert.throws(() => cosine(T({ w: [1] }), T({ v: [1] })), /same shapes/);
  assert.throws(() => cosine(T({ w: [1] }), T({ w: [1], v: [1] })), /same parameters/);
});

Deno.test("measureDelta() computes the margin and its null spread by hand", () => {
  const s = measureDelta(T({ w: [1, 0] }), T({ w: [1, 0] }), T({ w: [0, 1] }));
  assert.deepEqual(s, {
    cosOwn: 1,
    cosOther: 0,
    margin: 1,
    noise: 1, // √((2 − 2·0) / 2)
    norm: 1,
    finite: true,
    shapeOk: true,
  });
  // Per-tensor: each tensor's cosine averaged; σ₀ = √Σ((2 − 2 cos_t)/n_t) / T.
  const p = measureDelta(
    T({ a: [1, 0], b: [2] }),
    T({ a: [1, 0], b: [1] }),
    T({ a: [0, 1], b: [1] }),
    true,
  );
  close(p.cosOwn, 1);
  close(p.cosOther, 0.5);
  close(p.noise, Math.sqrt(1 + 0) / 2);
});

Deno.test("measureDelta() flags NaN, Infinity and wrong shapes without throwing", () => {
  const g = T({ w: [1, 0] });
  assert.equal(measureDelta(T({ w: [NaN, 0] }), g, g).finite, false);
  assert.equal(measureDelta(T({ w: [Infinity, 0] }), g, g).finite, false);
  assert.equal(measureDelta(T({ w: [1] }), g, g).shapeOk, false);
  assert.equal(measureDelta(T({ v: [1, 0] }), g, g).shapeOk, false);
  assert.throws(() => measureDelta(g, g, T({ w: [1] })), /gradOwn and gradOther/);
  const r = scoreDelta({ delta: T({ w: [NaN, 1] }), gradOwn: g, gradOther: g });
  assert.equal(r.score, 0);
  assert.deepEqual(r.reasons, ["non-finite"]);
});

Deno.test("normFactor() is 1 inside the band, 0 beyond tol², log-linear between", () => {
  assert.equal(normFactor(1, 1, 1.5), 1);
  assert.equal(normFactor(1.5, 1, 1.5), 1);
  assert.equal(normFactor(1 / 1.5, 1, 1.5), 1);
  close(normFactor(1.5 ** 1.5, 1, 1.5), 0.5, 1e-12);
  close(normFactor(1.5 ** -1.5, 1, 1.5), 0.5, 1e-12);
  assert.equal(normFactor(2.25, 1, 1.5), 0);
  assert.equal(normFactor(10, 1, 1.5), 0);
  assert.equal(normFactor(0, 1, 1.5), 0);
  assert.equal(normFactor(5, 0, 1.5), 1); // no reference: no penalty
});

Deno.test("finalizeScore() applies the rule and names its reasons", () => {
  const s: DeltaStats = {
    cosOwn: 0.3,
    cosOther: 0.1,
    margin: 0.2,
    noise: 0.01,
    norm: 2,
    finite: true,
    shapeOk: true,
  };
  close(finalizeScore(s, { refNorm: 2 }).score, 0.2 - 3 * 0.01);
  close(finalizeScore(s, { refNorm: 2 / 1.5 ** 1.5 }).score, (0.2 - 0.03) * 0.5, 1e-12);
  assert.deepEqual(finalizeScore(s, { refNorm: 2 / 1.5 ** 1.5 }).reasons, ["norm-high"]);
  assert.deepEqual(finalizeScore(s, { refNorm: 20 }).reasons, ["norm-low"]);
  assert.equal(finalizeScore(s, { refNorm: 20 }).score, 0);
  const zero = (ctx: object, st: Partial<DeltaStats> = {}) => {
    const r = finalizeScore({ ...s, ...st }, ctx);
    assert.equal(r.score, 0);
    return r.reasons;
  };
  assert.deepEqual(zero({ late: true }), ["late"]);
  assert.deepEqual(zero({ duplicate: true }), ["duplicate"]);
  assert.deepEqual(zero({ stale: true, late: true }), ["late", "stale"]);
  assert.deepEqual(zero({}, { norm: 0 }), ["zero"]);
  assert.deepEqual(zero({}, { cosOwn: -0.1 }), ["not-descent"]);
  assert.deepEqual(zero({}, { margin: 0.02 }), ["no-margin"]);
  const capped = finalizeScore(s, {}, { ...DEFAULT_SCORE_PARAMS, normCap: 1 });
  assert.deepEqual(capped.reasons, ["norm-cap"]);
});

function measured(
  w: ReturnType<typeof simulate>[number],
  perTensor = false,
): (MeasuredUpload & { role: string })[] {
  return w.uploads.map((u, i) => ({
    ...u,
    stats: measureDelta(u.delta, w.gradOwn[i]!, w.gradOther[i]!, perTensor),
  }));
}

function separation(sim: ReturnType<typeof simulate>, perTensor: boolean) {
  const honestCos: number[] = [];
  for (const w of sim) {
    const ups = measured(w, perTensor);
    const scores = scoreWindow(ups, w.previous, { perTensor });
    const honest = ups.flatMap((u, i) => (u.role === "honest" ? [scores[i]!] : []));
    const weakest = Math.min(...honest.map((s) => s.score));
    assert.ok(weakest > 0, `window ${w.window}: an honest miner scored 0`);
    honestCos.push(...honest.map((s) => s.cosOwn));
    ups.forEach((u, i) => {
      if (u.role === "honest") return;
      const s = scores[i]!;
      assert.ok(
        s.score < weakest,
        `window ${w.window}: ${u.role} scored ${s.score} ≥ weakest honest ${weakest}`,
      );
    });
  }
  return honestCos;
}

Deno.test("scoreWindow() ranks every adversary below the weakest honest miner", () => {
  const cos = separation(simulate(WORLD, 4, ADVERSARIES, 6), false);
  // The synthetic AdamW deltas are only modestly aligned, like a real step.
  assert.ok(Math.max(...cos) < 0.6 && Math.min(...cos) > 0.1, `honest cos ${cos}`);
});

Deno.test("scoreWindow() separates with weak honest alignment and the per-tensor variant", () => {
  // Micro-batch noise the validator does not share dominates: honest cos ≈ 0.2.
  const hard: WorldOptions = {
    ...WORLD,
    seed: "hard",
    specific: 1,
    batchNoise: 2.5,
    shape: [["a", 24000], ["b", 8000]],
  };
  const sim = simulate(hard, 4, ADVERSARIES, 5);
  const cos = separation(sim, true);
  assert.ok(Math.max(...cos) < 0.3, `honest cos ${cos}`);
  separation(sim, false);
});

Deno.test("honest miners hold ≥ 90% of the weight after a few windows", () => {
  let moving = new Map<number, { hotkey: string; value: number }>();
  const sim = simulate(WORLD, 4, ADVERSARIES, 5);
  for (const w of sim) {
    const scores = scoreWindow(measured(w), w.previous);
    moving = updateMoving(
      moving,
      new Map(w.uploads.map((u, i) => [u.uid, { hotkey: u.hotkey, score: scores[i]!.score }])),
      0.9,
    );
  }
  const { uids, weights } = weightsFromScores(moving);
  close(weights.reduce((a, b) => a + b, 0), 1, 1e-12);
  const honest = uids.reduce((a, u, i) => a + (u < 4 ? weights[i]! : 0), 0);
  assert.ok(honest >= 0.9, `honest weight ${honest}`);
  for (let i = 4; i < uids.length; i++) {
    assert.ok(weights[i]! < Math.min(...weights.slice(0, 4)), `uid ${uids[i]}: ${weights[i]}`);
  }
});

Deno.test("findDuplicates() groups copies, finds stale re-uploads, spares honest peers", () => {
  const a = T({ w: [1, 2, 3, 4] }), b = T({ w: [4, 3, 2, 1] }), c = T({ w: [-1, 2, -3, 4] });
  const bf16ish = T({ w: [1.001, 2, 3, 4] }); // cos ≈ 0.99999: a rounding-level copy
  const d = findDuplicates([a, b, a, bf16ish, c], [c]);
  assert.deepEqual(d.groups, [[0, 2, 3]]);
  assert.deepEqual([...d.stale], [4]);
  const none = findDuplicates([a, b, T({ w: [0, 0, 0, 0] }), T({ w: [0, 0, 0, 0] })], []);
  assert.deepEqual(none.groups, []); // zero deltas never match (they are zeroed anyway)
});

Deno.test("findDuplicates() compares a stride sample consistently across tensors", () => {
  const big = new Float32Array(1000).map((_, i) => Math.sin(i));
  const x = new Map([["p", big], ["q", big.slice(0, 7)]]);
  const y = new Map([["p", big.slice()], ["q", big.slice(0, 7)]]);
  assert.deepEqual(findDuplicates([x, y], [], 0.9999, 10).groups, [[0, 1]]);
});

Deno.test("keeper() gives a copy's credit to its own pages, then to the earliest upload", () => {
  const up = (hotkey: string, margin: number, uploadedAt?: number): MeasuredUpload => ({
    uid: 0,
    hotkey,
    delta: new Map(),
    uploadedAt,
    stats: {
      cosOwn: 0.3,
      cosOther: 0.3 - margin,
      margin,
      noise: 0.01,
      norm: 1,
      finite: true,
      shapeOk: true,
    },
  });
  // Clear margin wins even when the copy claims an earlier upload time.
  assert.equal(keeper([up("copy", 0.0, 1), up("orig", 0.2, 5)], 3).hotkey, "orig");
  // Margins within noise: the earlier upload keeps credit.
  assert.equal(keeper([up("orig", 0.10, 1), up("copy", 0.11, 5)], 3).hotkey, "orig");
  // No times: larger margin, then smaller hotkey.
  assert.equal(keeper([up("b", 0.1), up("a", 0.1)], 3).hotkey, "a");
});

Deno.test("updateMoving() averages, keeps unscored uids, resets on a new hotkey", () => {
  let m = updateMoving(new Map(), new Map([[1, { hotkey: "A", score: 1 }]]), 0.9);
  close(m.get(1)!.value, 0.1);
  m = updateMoving(
    m,
    new Map([[1, { hotkey: "A", score: 1 }], [2, { hotkey: "B", score: 2 }]]),
    0.9,
  );
  close(m.get(1)!.value, 0.19);
  close(m.get(2)!.value, 0.2);
  const kept = updateMoving(m, new Map([[2, { hotkey: "B", score: 0 }]]), 0.9);
  close(kept.get(1)!.value, 0.19);
  close(kept.get(2)!.value, 0.18);
  const reset = updateMoving(m, new Map([[1, { hotkey: "C", score: 1 }]]), 0.9);
  assert.equal(reset.get(1)!.hotkey, "C");
  close(reset.get(1)!.value, 0.1); // not 0.9·0.19 + 0.1
  const bad = updateMoving(m, new Map([[2, { hotkey: "B", score: NaN }]]), 0.5);
  close(bad.get(2)!.value, 0.1);
  assert.throws(() => updateMoving(m, new Map(), 1), /alpha/);
  close(m.get(1)!.value, 0.19); // inputs untouched
});

Deno.test("weightsFromScores() normalises non-negative scores by uid", () => {
  const m = new Map([
    [3, { hotkey: "c", value: 3 }],
    [1, { hotkey: "a", value: 1 }],
    [2, { hotkey: "b", value: -5 }],
  ]);
  assert.deepEqual(weightsFromScores(m), { uids: [1, 2, 3], weights: [0.25, 0, 0.75] });
  assert.deepEqual(weightsFromScores(new Map([[0, { hotkey: "a", value: 0 }]])), {
    uids: [0],
    weights: [0],
  });
});

Deno.test("median() of odd, even and empty lists", () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([]), 0);
});

Deno.test("findDuplicates() catches sparse copies by the overlap of their non-zero coordinates", () => {
  // Two top-k-like uploads: the same 50 non-zero coordinates of 1000, values re-signed at
  // random so their cosine is ~0 — a copy of the index set with made-up values.
  const n = 1000;
  const a = new Float32Array(n), b = new Float32Array(n), c = new Float32Array(n);
  for (let j = 0; j < 50; j++) {
    a[j * 20] = 1 + (j % 3);
    b[j * 20] = j % 2 ? 1 : -1;
    c[j * 20 + 7] = 1; // another index set: an honest miner's own top-k
  }
  const t = (x: Float32Array) => new Map([["w", x]]);
  assert.ok(Math.abs(cosine(t(a), t(b))) < 0.5);
  const d = findDuplicates([t(a), t(b), t(c)], []);
  assert.deepEqual(d.groups, [[0, 1]]);
  // A copy of last window's index set is stale the same way; dense uploads never match by overlap.
  assert.deepEqual([...findDuplicates([t(b)], [t(a)]).stale], [0]);
  const dense = (s: number) => new Float32Array(n).map((_, i) => Math.sin(i * s) + 2);
  const e = findDuplicates([t(dense(1)), t(dense(2))], [], 0.9999);
  assert.deepEqual(e.groups, []);
});

Deno.test("findDuplicates() with centering: honest uploads sharing zeros and a common direction are not copies", () => {
  // Three gradients at one θ: a large common direction, independent page parts, and the
  // same coordinates quantized to 0 (as a 3-level codec does); plus an exact copy of one.
  const n = 4000;
  const common = Float32Array.from({ length: n }, (_, i) => Math.sin(i));
  const page = (s: number) =>
    Float32Array.from(
      { length: n },
      (_, i) => (i % 3 === 0 ? 0 : common[i]! + 0.3 * Math.sin(i * s)),
    );
  const t = (x: Float32Array) => new Map([["w", x]]);
  const ups = [t(page(1.7)), t(page(2.9)), t(page(4.3))];
  assert.ok(cosine(ups[0]!, ups[1]!) > 0.9, "raw cosines look like copies");
  const opts = { center: true };
  assert.deepEqual(findDuplicates(ups, [], 0.97, 1 << 16, 0.9, opts).groups, []);
  const withCopy = [...ups, t(ups[1]!.get("w")!.slice())];
  assert.deepEqual(findDuplicates(withCopy, [], 0.97, 1 << 16, 0.9, opts).groups, [[1, 3]]);
  // Not stale to its own uploader; stale to another's.
  const keys = { ...opts, currentKeys: ["a"], previousKeys: ["a", "b", "c"] };
  assert.equal(findDuplicates([ups[0]!], ups, 0.97, 1 << 16, 0.9, keys).stale.size, 0);
  const other = { ...opts, currentKeys: ["z"], previousKeys: ["a", "b", "c"] };
  assert.equal(findDuplicates([ups[0]!], ups, 0.97, 1 << 16, 0.9, other).stale.size, 1);
});

Deno.test("findDuplicates() with centering finds a stale copy after θ moved between windows", () => {
  // Two windows' gradients: each window's own common direction (θ moved: the two differ)
  // plus page parts; the stale upload is last window's upload of another miner, requantized.
  const n = 4000;
  const dir = (s: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * s));
  const window = (common: Float32Array, seeds: number[]) =>
    seeds.map((s) => new Map([["w", common.map((c, i) => c + 0.3 * Math.sin(i * s + 1))]]));
  const before = window(dir(0.37), [1.7, 2.9, 4.3, 5.1]);
  const now = window(dir(0.61), [6.7, 7.3, 8.9]);
  const copy = new Map([["w", before[0]!.get("w")!.map((v, i) => v * (1 + 0.02 * Math.cos(i)))]]);
  const keys = {
    center: true,
    currentKeys: ["h1", "h2", "h3", "stale"],
    previousKeys: ["h1", "h2", "h3", "h4"],
  };
  const found = findDuplicates([...now, copy], before, 0.97, 1 << 16, 0.9, keys);
  assert.deepEqual([...found.stale], [3]);
  assert.deepEqual(found.groups, []);
});
