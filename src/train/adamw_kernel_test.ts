import assert from "node:assert/strict";
import { adamwLoop, adamwTensor, type TensorStep, wasmKernelAvailable } from "./adamw_kernel.ts";
import { AdamPool, blockedNorm, canShareByAddress, JOB, sumSquares } from "./parallel.ts";
import { blockOf, residentModel } from "./resident.ts";
import { adamScalars, adamwStep, adamwStepPooled, clipGrads, newAdamState } from "./adamw.ts";
import type { Tensors } from "../model/params.ts";

/**
 * The optimizer loop as it was before the WebAssembly kernel (clipGrads' scaling, then
 * adamwStep's loop), copied verbatim: the kernel must reproduce it bit for bit.
 */
const originalStep: TensorStep = (p, g, m, v, s) => {
  if (s.scale < 1) { for (let i = 0; i < g.length; i++) g[i]! *= s.scale; }
  const b1 = s.beta1, b2 = s.beta2, eps = s.eps, decay = s.decay, stepSize = s.stepSize;
  const bc2Sqrt = s.bc2Sqrt;
  for (let i = 0; i < p.length; i++) {
    const gi = g[i]!;
    const mi = (m[i] = b1 * m[i]! + (1 - b1) * gi);
    const vi = (v[i] = b2 * v[i]! + (1 - b2) * gi * gi);
    p[i] = p[i]! * decay - stepSize * mi / (Math.sqrt(vi) / bc2Sqrt + eps);
  }
};

/** The protocol's outer AdamW loop (src/protocol/outer.ts, 2026-12-01), copied verbatim. */
const protocolOuterStep: TensorStep = (p, x, m, v, s) => {
  if (s.scale < 1) { for (let i = 0; i < x.length; i++) x[i] = x[i]! * s.scale; }
  const b1 = s.beta1, b2 = s.beta2, c1 = 1 - b1, c2 = 1 - b2, eps = s.eps;
  const decay = s.decay, stepSize = s.stepSize, bc2Sqrt = s.bc2Sqrt;
  for (let i = 0; i < p.length; i++) {
    const gi = x[i]!;
    m[i] = b1 * m[i]! + c1 * gi;
    v[i] = b2 * v[i]! + c2 * (gi * gi);
    p[i] = p[i]! * decay - (stepSize * m[i]!) / (Math.sqrt(v[i]!) / bc2Sqrt + eps);
  }
};

/** xorshift32, so the tensors are the same on every run. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13, x >>>= 0, x ^= x >>> 17, x ^= x << 5, x >>>= 0;
    return x / 2 ** 32;
  };
}

// Edge values: signed zeros, the smallest subnormal, the largest subnormal, the smallest
// normal, values near float32's limit, and ordinary ones.
const EDGES = [0, -0, 1e-45, -1e-45, 1.1754942e-38, 1.17549435e-38, 3e38, -3e38, 1, -1, 1e-20];

/** n values: random over many magnitudes, every 7th an edge value. */
function tensor(n: number, seed: number, nonNegative = false): Float32Array {
  const r = rng(seed), out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const x = i % 7 === 3
      ? EDGES[Math.floor(r() * EDGES.length)]!
      : (r() - 0.5) * 10 ** Math.floor(r() * 16 - 12);
    out[i] = nonNegative ? Math.abs(x) : x;
  }
  return out;
}

const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

function assertSameBits(a: Float32Array, b: Float32Array, what: string): void {
  const x = bits(a), y = bits(b);
  assert.equal(x.length, y.length);
  for (let i = 0; i < x.length; i++) {
    if (x[i] !== y[i]) {
      assert.fail(
        `${what}[${i}]: ${a[i]} (0x${x[i]!.toString(16)}) vs ${b[i]} (0x${y[i]!.toString(16)})`,
      );
    }
  }
}

const quad = (n: number, seed: number) => ({
  p: tensor(n, seed),
  g: tensor(n, seed + 1),
  m: tensor(n, seed + 2),
  v: tensor(n, seed + 3, true), // a second moment is never negative
});
const copy = (q: ReturnType<typeof quad>) => ({
  p: q.p.slice(),
  g: q.g.slice(),
  m: q.m.slice(),
  v: q.v.slice(),
});

const HP = { learningRate: 3e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };

Deno.test("the WebAssembly AdamW kernel instantiates here (SIMD)", () => {
  assert.ok(wasmKernelAvailable());
});

Deno.test("adamwTensor() gives the original loop's bits, with and without clipping", () => {
  // 40,003 elements: two full staging chunks plus an odd tail.
  for (const [t, scale] of [[1, 1], [2, 0.37], [1000, 1e-3]] as const) {
    const a = quad(40_003, t), b = copy(a), c = copy(a);
    const s = adamScalars(HP, t, scale);
    originalStep(a.p, a.g, a.m, a.v, s);
    adamwTensor(b.p, b.g, b.m, b.v, s);
    adamwLoop(c.p, c.g, c.m, c.v, s);
    for (const k of ["p", "g", "m", "v"] as const) {
      assertSameBits(b[k], a[k], `kernel ${k} (step ${t})`);
      assertSameBits(c[k], a[k], `loop ${k} (step ${t})`);
    }
  }
});

Deno.test("adamwTensor({outer}) gives the protocol outer step's bits, one thread and three", async () => {
  for (const [t, scale] of [[1, 1], [7, 0.25]] as const) {
    const a = quad(40_003, 50 + t), b = copy(a), c = copy(a), d = copy(a);
    const s = { ...adamScalars(HP, t, scale), outer: true };
    protocolOuterStep(a.p, a.g, a.m, a.v, s);
    adamwTensor(b.p, b.g, b.m, b.v, s);
    adamwLoop(c.p, c.g, c.m, c.v, s);
    const pool = new AdamPool(3);
    try {
      await pool.run([d], s);
    } finally {
      pool.close();
    }
    for (const k of ["p", "g", "m", "v"] as const) {
      assertSameBits(b[k], a[k], `kernel ${k} (step ${t})`);
      assertSameBits(c[k], a[k], `loop ${k} (step ${t})`);
      assertSameBits(d[k], a[k], `pool ${k} (step ${t})`);
    }
  }
  // The two forms really differ (the outer step reads the rounded moments).
  const a = quad(40_003, 9), b = copy(a);
  adamwLoop(a.p, a.g, a.m, a.v, adamScalars(HP, 1));
  adamwLoop(b.p, b.g, b.m, b.v, { ...adamScalars(HP, 1), outer: true });
  assert.notDeepEqual(bits(a.p), bits(b.p));
});

Deno.test("AdamPool's workers give the same bits as one thread", async () => {
  const pool = new AdamPool(3, false); // the two workers do every job
  try {
    assert.ok(canShareByAddress(), "tests run with -A: workers must be able to view tensors");
    assert.equal(pool.threads, 3);
    // The last quad's arrays are views at an offset into larger buffers (as tensors
    // decoded from one checkpoint file are): workers must honour the offset.
    const big = quad(300_017, 60);
    const at = (x: Float32Array) => x.subarray(1001, 1001 + 290_000);
    const offset = { p: at(big.p), g: at(big.g), m: at(big.m), v: at(big.v) };
    const qs = [quad(70_001, 10), quad(5, 20), quad(0, 30), quad(33_000, 40), offset];
    const ref = qs.map(copy);
    const s = adamScalars(HP, 3, 0.5);
    await pool.run(qs, s);
    const whole = copy(big);
    for (const [i, r] of ref.entries()) {
      originalStep(r.p, r.g, r.m, r.v, s);
      for (const k of ["p", "g", "m", "v"] as const) {
        assertSameBits(qs[i]![k], r[k], `tensor ${i} ${k}`);
      }
    }
    // Outside the views nothing moved.
    for (const k of ["p", "g", "m", "v"] as const) {
      assertSameBits(whole[k].subarray(0, 1001), quad(300_017, 60)[k].subarray(0, 1001), k);
      assertSameBits(whole[k].subarray(291_001), quad(300_017, 60)[k].subarray(291_001), k);
    }
  } finally {
    pool.close();
  }
});

Deno.test("adamwStepPooled() = clipGrads + adamwStep, and adamwStep = the original loop", async () => {
  const table = [{ name: "a", shape: [9001], numel: 9001 }, { name: "b", shape: [3], numel: 3 }];
  const mk = (seed: number): Tensors =>
    new Map(table.map((p, i) => [p.name, tensor(p.numel, seed + i)]));
  const p1 = mk(1), g1 = mk(5), p2 = mk(1), g2 = mk(5), p3 = mk(1), g3 = mk(5);
  const o1 = newAdamState(table), o2 = newAdamState(table);
  const { scale } = clipGrads(g1, 1);
  assert.ok(scale < 1);
  adamwStep(p1, o1, g1, HP);
  const pool = new AdamPool(2);
  try {
    await adamwStepPooled(pool, p2, o2, g2, HP, scale);
  } finally {
    pool.close();
  }
  const z = () => new Map(table.map((p) => [p.name, new Float32Array(p.numel)]));
  const m3 = z(), v3 = z();
  for (const { name } of table) {
    originalStep(p3.get(name)!, g3.get(name)!, m3.get(name)!, v3.get(name)!, {
      ...adamScalars(HP, 1, scale),
    });
    assertSameBits(p1.get(name)!, p3.get(name)!, `adamwStep ${name}`);
    assertSameBits(p2.get(name)!, p3.get(name)!, `pooled ${name}`);
    assertSameBits(g2.get(name)!, g3.get(name)!, `pooled clipped grad ${name}`);
    assertSameBits(o2.m.get(name)!, m3.get(name)!, `pooled m ${name}`);
    assertSameBits(o2.v.get(name)!, v3.get(name)!, `pooled v ${name}`);
  }
  assert.equal(o1.step, 1);
  assert.equal(o2.step, 1);
});

/** A resident block for `sizes` filled from quad(n, seed + i), and plain copies of it. */
function residentQuads(sizes: number[], seed: number) {
  const table = sizes.map((n, i) => ({ name: `t${i}`, shape: [n], numel: n }));
  const r = residentModel(table);
  assert.ok(r, "tests run with -A: resident blocks need the ffi permission");
  const qs = table.map((t, i) => {
    const src = quad(t.numel, seed + 10 * i);
    const q = {
      p: r.params.get(t.name)!,
      g: r.grads.get(t.name)!,
      m: r.opt.m.get(t.name)!,
      v: r.opt.v.get(t.name)!,
    };
    for (const k of ["p", "g", "m", "v"] as const) q[k].set(src[k]);
    return q;
  });
  return { r, qs, ref: qs.map(copy) };
}

Deno.test("resident tensors: one thread and workers give the original loop's bits", async () => {
  for (const outer of [false, true]) {
    for (const mainWorks of [true, false]) {
      const { r, qs, ref } = residentQuads([300_001, 7, 40_000, 1], 70);
      assert.equal(blockOf(qs[0]!.p)!.memory, blockOf(qs[3]!.v)!.memory);
      const s = { ...adamScalars(HP, 4, 0.3), outer };
      const pool = new AdamPool(3, mainWorks);
      try {
        await pool.run(qs, s);
      } finally {
        pool.close();
      }
      for (const [i, q] of ref.entries()) {
        (outer ? protocolOuterStep : originalStep)(q.p, q.g, q.m, q.v, s);
        for (const k of ["p", "g", "m", "v"] as const) {
          assertSameBits(qs[i]![k], q[k], `resident ${outer} ${mainWorks} tensor ${i} ${k}`);
        }
      }
      assert.ok(r.params.size === 4);
    }
  }
  // An odd-length subarray in the middle of a resident tensor: its neighbour is untouched.
  const { qs, ref } = residentQuads([1001], 90);
  const sub = (x: Float32Array) => x.subarray(100, 333);
  const s = adamScalars(HP, 2);
  adamwTensor(sub(qs[0]!.p), sub(qs[0]!.g), sub(qs[0]!.m), sub(qs[0]!.v), s);
  const r0 = ref[0]!;
  originalStep(sub(r0.p), sub(r0.g), sub(r0.m), sub(r0.v), s);
  for (const k of ["p", "g", "m", "v"] as const) assertSameBits(qs[0]![k], r0[k], `sub ${k}`);
});

Deno.test("AdamPool.norm() = blockedNorm() bit for bit on any threads; both ≈ the plain sum", async () => {
  // Hand-checked: 1² + 2² + … + 7² = 140 (four running sums and a tail of three).
  assert.equal(sumSquares(Float32Array.of(1, 2, 3, 4, 5, 6, 7), 0, 7), 140);
  const { qs } = residentQuads([JOB + 3, 5, 2 * JOB], 110);
  const tensors = [qs[0]!.g, tensor(JOB * 3 + 17, 120), qs[1]!.g, new Float32Array(0), qs[2]!.m];
  const want = blockedNorm(tensors);
  let plain = 0;
  for (const x of tensors) for (const y of x) plain += y * y;
  assert.ok(Math.abs(want - Math.sqrt(plain)) <= 1e-12 * want, `${want} vs ${Math.sqrt(plain)}`);
  for (const [threads, mainWorks] of [[1, true], [3, false], [2, true]] as const) {
    const pool = new AdamPool(threads, mainWorks);
    try {
      assert.equal(await pool.norm(tensors), want, `${threads} threads`);
    } finally {
      pool.close();
    }
  }
  // firstNonFinite() names the first tensor holding NaN or ±Inf, on workers too.
  const pool = new AdamPool(3, false);
  try {
    assert.equal(await pool.firstNonFinite(tensors), -1);
    const bad = tensors.map((x) => x.slice());
    bad[3] = Float32Array.of(Infinity);
    bad[4]![2 * JOB - 1] = NaN;
    assert.equal(await pool.firstNonFinite(bad), 3);
    bad[1]![JOB + 5] = -Infinity;
    assert.equal(await pool.firstNonFinite(bad), 1);
  } finally {
    pool.close();
  }
  // clipGrads uses the same sum.
  const g: Tensors = new Map(tensors.map((x, i) => [`t${i}`, x.slice()]));
  assert.equal(clipGrads(g, 1e40).norm, want);
});

Deno.test("AdamPool: overlapping calls are queued, each gets its own result", async () => {
  const pool = new AdamPool(3, false);
  try {
    const a = tensor(3 * JOB + 1, 200), b = tensor(JOB, 201), q = quad(70_001, 202), r = copy(q);
    const s = adamScalars(HP, 2, 0.5);
    const [na, , nb] = await Promise.all([pool.norm([a]), pool.run([q], s), pool.norm([b])]);
    assert.equal(na, blockedNorm([a]));
    assert.equal(nb, blockedNorm([b]));
    originalStep(r.p, r.g, r.m, r.v, s);
    for (const k of ["p", "g", "m", "v"] as const) assertSameBits(q[k], r[k], k);
  } finally {
    pool.close();
  }
});
