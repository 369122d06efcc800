import assert from "node:assert/strict";
import { createTrainer, newAdamState, type Trainer } from "./trainer.ts";
import { residentModel } from "./resident.ts";
import { adamwGraph, adamwGraphFeeds, adamwStep, clipGrads } from "./adamw.ts";
import { cachedGraph, defaultCacheDir, graphFileName } from "./graph_cache.ts";
import { type Hparams, resolveHparams } from "../hparams.ts";
import { paramTable, type Tensors } from "../model/params.ts";
import { initParams } from "../model/init.ts";
import { loadCheckpoint } from "../model/checkpoint.ts";
import { referenceForward } from "../../tests/_reference_model.ts";
import { microModel } from "../../tests/_micro_model.ts";
import { decodeSafetensors, toFloat32 } from "../safetensors.ts";
import { Session } from "../onnx/run.ts";

const MICRO = microModel({ vocabSize: 50 });

function microHp(model = MICRO, batchSize = 2, seqLen = 8): Hparams {
  return { ...resolveHparams("tiny"), model, batchSize, seqLen, learningRate: 1e-2 };
}

const batch = (n: number, seed: number, vocab = MICRO.vocabSize) =>
  Int32Array.from({ length: n }, (_, i) => (i * 31 + seed * 17 + ((i * i) % 7)) % vocab);

/** Runs `fn` with a trainer for `hp` on `threads` threads, closed afterwards. */
async function withTrainer(
  hp: Hparams,
  fn: (tr: Trainer) => Promise<void>,
  threads = 1,
): Promise<void> {
  const tr = await createTrainer(hp, { threads });
  try {
    await fn(tr);
  } finally {
    await tr.close();
  }
}

function clone(t: Tensors): Tensors {
  return new Map([...t].map(([k, v]) => [k, v.slice()]));
}

Deno.test("adamwStep() first step moves each weight by lr·sign(g) after decay (hand-computed)", () => {
  const hp = { learningRate: 0.1, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };
  const p: Tensors = new Map([["w", Float32Array.of(1, -2, 0.5)]]);
  const g: Tensors = new Map([["w", Float32Array.of(0.5, -0.1, 0)]]);
  const opt = newAdamState([{ name: "w", shape: [3], numel: 3 }]);
  adamwStep(p, opt, g, hp);
  const w = p.get("w")!;
  assert.equal(opt.step, 1);
  assert.ok(Math.abs(w[0]! - (1 * 0.99 - 0.1)) < 1e-6);
  assert.ok(Math.abs(w[1]! - (-2 * 0.99 + 0.1)) < 1e-6);
  assert.ok(Math.abs(w[2]! - 0.5 * 0.99) < 1e-7); // zero gradient: decay only
  assert.ok(Math.abs(opt.m.get("w")![0]! - 0.05) < 1e-7);
  assert.ok(Math.abs(opt.v.get("w")![0]! - 0.05 * 0.25) < 1e-7);
});

Deno.test("clipGrads() scales to the norm limit as torch.nn.utils.clip_grad_norm_ does", () => {
  const g: Tensors = new Map([["a", Float32Array.of(3)], ["b", Float32Array.of(0, 4)]]);
  const { norm, scale } = clipGrads(g, 1);
  assert.equal(norm, 5);
  assert.ok(Math.abs(scale - 1 / (5 + 1e-6)) < 1e-12);
  assert.ok(Math.abs(g.get("a")![0]! - 0.6) < 1e-6 && Math.abs(g.get("b")![1]! - 0.8) < 1e-6);
  const small: Tensors = new Map([["a", Float32Array.of(0.3, 0.4)]]);
  assert.equal(clipGrads(small, 1).scale, 1);
  assert.deepEqual([...small.get("a")!], [Math.fround(0.3), Math.fround(0.4)]);
});

Deno.test("adamwGraph() and adamwStep() agree over three steps", async () => {
  const hp = microHp();
  const table = paramTable(MICRO).slice(0, 3);
  const params: Tensors = new Map(table.map((p) => [p.name, initParams(MICRO, 1).get(p.name)!]));
  const a = clone(params), optA = newAdamState(table);
  let b = clone(params), optB = newAdamState(table);
  const s = await Session.create(adamwGraph(table, hp).encode(), { threads: 1 });
  try {
    for (let t = 1; t <= 3; t++) {
      const grads: Tensors = new Map(
        table.map((p, k) => [p.name, initParams(MICRO, 10 * t + k).get(p.name)!]),
      );
      adamwStep(a, optA, grads, hp);
      const out = await s.run(
        adamwGraphFeeds(table, hp, t, { p: b, g: grads, m: optB.m, v: optB.v }),
      );
      const pick = (k: string) =>
        new Map(table.map((p) => [p.name, out[`${k}:${p.name}`]!.data as Float32Array]));
      b = pick("p'");
      optB = { step: t, m: pick("m'"), v: pick("v'") };
    }
    for (const p of table) {
      const x = a.get(p.name)!, y = b.get(p.name)!;
      for (let i = 0; i < x.length; i++) {
        assert.ok(Math.abs(x[i]! - y[i]!) < 1e-6, `${p.name}[${i}]`);
      }
    }
  } finally {
    await s.release();
  }
});

Deno.test("Trainer.lossAndGrad() matches PyTorch's golden gradients in float32", async () => {
  const base = new URL("../../tests/fixtures/golden/llama-micro/", import.meta.url);
  const { cfg, params } = await loadCheckpoint(base.pathname);
  const rows: number[][] = JSON.parse(await Deno.readTextFile(new URL("tokens.json", base)));
  const want = JSON.parse(await Deno.readTextFile(new URL("expected.json", base))).loss as number;
  const golden = decodeSafetensors(await Deno.readFile(new URL("grads.safetensors", base))).tensors;
  await withTrainer(microHp(cfg, rows.length, rows[0]!.length), async (tr) => {
    const { loss, grads, tokens } = await tr.lossAndGrad(params, [Int32Array.from(rows.flat())]);
    assert.equal(tokens, 24);
    assert.ok(Math.abs(loss - want) < 1e-5 * want, `loss ${loss} vs ${want}`);
    for (const p of paramTable(cfg)) {
      const w = golden.get(p.name)!, wg = toFloat32(w.dtype, w.bytes), got = grads.get(p.name)!;
      const scale = Math.max(...wg.map(Math.abs));
      for (let i = 0; i < wg.length; i++) {
        assert.ok(
          Math.abs(got[i]! - wg[i]!) <= 2e-5 * scale,
          `${p.name}[${i}]: ${got[i]} vs ${wg[i]}`,
        );
      }
    }
  });
});

Deno.test("Trainer averages micro-batches and its eval loss equals the float64 reference", async () => {
  const hp = microHp();
  const n = hp.batchSize * hp.seqLen;
  const params = initParams(MICRO, 3);
  const b1 = batch(n, 1), b2 = batch(n, 2);
  await withTrainer(hp, async (tr) => {
    const one = await tr.lossAndGrad(params, [b1]);
    const two = await tr.lossAndGrad(params, [b2]);
    const both = await tr.lossAndGrad(params, [b1, b2]);
    assert.ok(Math.abs(both.loss - (one.loss + two.loss) / 2) < 1e-6);
    assert.equal(both.tokens, 2 * n);
    for (const [name, g] of both.grads) {
      const x = one.grads.get(name)!, y = two.grads.get(name)!;
      for (let i = 0; i < g.length; i++) {
        assert.ok(Math.abs(g[i]! - (x[i]! + y[i]!) / 2) < 1e-6, `${name}[${i}]`);
      }
    }
    const ref = referenceForward(MICRO, params, b1, hp.batchSize, hp.seqLen).loss;
    assert.ok(Math.abs((await tr.loss(params, [b1])) - ref) < 1e-5 * ref);
  });
});

Deno.test("Trainer.lossAndGrad(into) writes the same bits into the caller's arrays, reused", async () => {
  const hp = microHp();
  const n = hp.batchSize * hp.seqLen;
  const params = initParams(MICRO, 3);
  const bs = [batch(n, 1), batch(n, 2), batch(n, 3)];
  await withTrainer(hp, async (tr) => {
    const fresh = await tr.lossAndGrad(params, bs);
    const into: Tensors = new Map(
      paramTable(MICRO).map((p) => [p.name, new Float32Array(p.numel).fill(7)]),
    );
    await tr.lossAndGrad(params, [bs[2]!], into); // stale values must be overwritten
    const again = await tr.lossAndGrad(params, bs, into);
    assert.equal(again.grads, into);
    assert.equal(again.loss, fresh.loss);
    for (const [name, g] of fresh.grads) {
      assert.deepEqual(
        new Uint32Array(into.get(name)!.buffer),
        new Uint32Array(g.buffer),
        name,
      );
    }
    into.set("model.norm.weight", new Float32Array(3));
    await assert.rejects(() => tr.lossAndGrad(params, bs, into), /model\.norm\.weight/);
  });
});

Deno.test("Trainer on a resident block: ORT reads and writes it, the steps give the plain arrays' bits", async () => {
  const hp = microHp(), table = paramTable(MICRO);
  const n = hp.batchSize * hp.seqLen;
  const res = residentModel(table);
  assert.ok(res, "tests run with -A: resident blocks need the ffi permission");
  const plain = initParams(MICRO, 6), opt = newAdamState(table);
  initParams(MICRO, 6, res.params);
  await withTrainer(hp, async (tr) => {
    for (let s = 0; s < 3; s++) {
      const b = [batch(n, 10 + s)];
      const a = await tr.lossAndGrad(plain, b);
      const r = await tr.lossAndGrad(res.params, b, res.grads);
      assert.equal(r.loss, a.loss);
      assert.equal(r.grads, res.grads);
      const grads: Tensors = a.grads;
      const na = await tr.step(plain, opt, grads);
      const nr = await tr.step(res.params, res.opt, res.grads);
      assert.equal(nr.gradNorm, na.gradNorm);
      const pairs: [Tensors, Tensors][] = [[res.params, plain], [res.grads, grads], [
        res.opt.m,
        opt.m,
      ], [res.opt.v, opt.v]];
      for (const p of table) {
        for (const [k, [x, y]] of pairs.entries()) {
          assert.deepEqual(
            new Uint32Array(x.get(p.name)!.slice().buffer),
            new Uint32Array(y.get(p.name)!.slice().buffer),
            `${"pgmv"[k]} ${p.name} step ${s}`,
          );
        }
      }
    }
  }, 2);
});

Deno.test("Trainer.step() lowers the loss on a fixed batch", async () => {
  const hp = microHp();
  const params = initParams(MICRO, 4), opt = newAdamState(paramTable(MICRO));
  const b = [batch(hp.batchSize * hp.seqLen, 5)];
  await withTrainer(hp, async (tr) => {
    const first = (await tr.lossAndGrad(params, b)).loss;
    let last = first;
    for (let s = 0; s < 30; s++) {
      const { loss, grads } = await tr.lossAndGrad(params, b);
      last = loss;
      const { gradNorm } = await tr.step(params, opt, grads);
      assert.ok(Number.isFinite(gradNorm) && gradNorm > 0);
    }
    assert.equal(opt.step, 30);
    assert.ok(last < first - 1, `loss ${first} → ${last}`);
  });
});

Deno.test("Trainer refuses out-of-range token ids, wrong sizes and missing parameters", async () => {
  const hp = microHp();
  const n = hp.batchSize * hp.seqLen;
  const params = initParams(MICRO, 3);
  await withTrainer(hp, async (tr) => {
    const bad = batch(n, 1);
    bad[5] = MICRO.vocabSize;
    await assert.rejects(
      tr.lossAndGrad(params, [bad]),
      /token id 50 at 5: ids must be in \[0, 50\)/,
    );
    bad[5] = -1;
    await assert.rejects(tr.loss(params, [bad]), RangeError);
    await assert.rejects(tr.lossAndGrad(params, [batch(n - 1, 1)]), /expected 2×8 = 16/);
    await assert.rejects(tr.lossAndGrad(params, []), /No batches given/);
    const partial = clone(params);
    partial.delete("model.norm.weight");
    await assert.rejects(
      tr.lossAndGrad(partial, [batch(n, 1)]),
      /Parameter 'model.norm.weight' is missing/,
    );
    const nan = clone(params);
    nan.get("model.norm.weight")![0] = NaN;
    await assert.rejects(tr.lossAndGrad(nan, [batch(n, 1)]), /NaN\/Inf/);
  });
});

Deno.test("cachedGraph() builds once per key, then reads the file; a damaged file is rebuilt", async () => {
  const dir = await Deno.makeTempDir();
  try {
    let builds = 0;
    const build = () => (builds++, Uint8Array.of(1, 2, 3));
    const a = await cachedGraph(dir, "k", { x: 1, y: [2] }, build);
    const b = await cachedGraph(dir, "k", { y: [2], x: 1 }, build);
    assert.equal(builds, 1);
    assert.equal(a.hit, false);
    assert.equal(b.hit, true);
    assert.deepEqual([...b.bytes], [1, 2, 3]);
    assert.notEqual(graphFileName("k", { x: 1 }), graphFileName("k", { x: 2 }));
    // Trainer over a cache: a corrupt cached graph is dropped and rebuilt.
    const hp = microHp();
    await (await createTrainer(hp, { threads: 1, cacheDir: dir })).close();
    const files = [...Deno.readDirSync(dir)].map((e) => e.name).filter((f) =>
      f.startsWith("llama-step-")
    );
    assert.equal(files.length, 1);
    await Deno.writeFile(`${dir}/${files[0]}`, Uint8Array.of(9, 9, 9));
    const tr = await createTrainer(hp, { threads: 1, cacheDir: dir });
    const { loss } = await tr.lossAndGrad(initParams(MICRO, 1), [batch(16, 1)]);
    assert.ok(Number.isFinite(loss));
    await tr.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assert.equal(defaultCacheDir({ XDG_CACHE_HOME: "/x", HOME: "/h" }), "/x/boltzmann/graphs");
  assert.equal(defaultCacheDir({ HOME: "/h" }), "/h/.cache/boltzmann/graphs");
  assert.equal(defaultCacheDir({}), undefined);
});
