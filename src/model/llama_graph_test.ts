/**
 * The LLaMA graph against three independent references: PyTorch golden files (logits,
 * loss, every gradient), the plain-TypeScript float64 reference forward, and central
 * finite differences of the graph's own loss for a sample of entries of every parameter.
 */
import assert from "node:assert/strict";
import { buildLlamaGraph, gradName } from "./llama_graph.ts";
import { type ModelConfig, paramTable, type Tensors } from "./params.ts";
import { initParams } from "./init.ts";
import { referenceForward } from "../../tests/_reference_model.ts";
import { microModel } from "../../tests/_micro_model.ts";
import { loadCheckpoint } from "./checkpoint.ts";
import { decodeSafetensors, toFloat32 } from "../safetensors.ts";
import { Session, type Value } from "../onnx/run.ts";

const GOLDEN = new URL("../../tests/fixtures/golden/", import.meta.url);

const MICRO = microModel();

/** A float64 session of `cfg` and a function feeding it float64 copies of `params`. */
async function f64Session(cfg: ModelConfig, B: number, T: number, logits: boolean, grads: boolean) {
  const { graph } = buildLlamaGraph(cfg, { batch: B, seqLen: T, dtype: "float64", logits, grads });
  // "basic": ORT's extended fusions (QuickGelu for x·sigmoid(x)) have float32 kernels only.
  const s = await Session.create(graph.encode(), { threads: 1, optimization: "basic" });
  const feeds = (params: Map<string, Float64Array>, tokens: Int32Array) => {
    const f: Record<string, Value> = {
      tokens: { data: BigInt64Array.from(tokens, BigInt), dims: [B, T] },
    };
    for (const p of paramTable(cfg)) f[p.name] = { data: params.get(p.name)!, dims: p.shape };
    return f;
  };
  return { s, feeds };
}

const to64 = (p: Tensors) => new Map([...p].map(([k, v]) => [k, Float64Array.from(v)]));

function tokensFor(cfg: ModelConfig, n: number, seed: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => (i * 7919 + seed * 104729) % cfg.vocabSize);
}

for (const dir of ["llama-micro", "llama-micro-tied"]) {
  Deno.test(`buildLlamaGraph() matches PyTorch's LlamaForCausalLM on ${dir} (logits, loss, grads)`, async () => {
    const base = new URL(`${dir}/`, GOLDEN);
    const { cfg, params } = await loadCheckpoint(base.pathname);
    const read = async (f: string) =>
      decodeSafetensors(await Deno.readFile(new URL(f, base))).tensors;
    const rows: number[][] = JSON.parse(await Deno.readTextFile(new URL("tokens.json", base)));
    const expected = JSON.parse(await Deno.readTextFile(new URL("expected.json", base)));
    const B = rows.length, T = rows[0]!.length;
    const { s, feeds } = await f64Session(cfg, B, T, true, true);
    try {
      const out = await s.run(feeds(to64(params), Int32Array.from(rows.flat())));
      const loss = out.loss!.data[0] as number;
      assert.ok(
        Math.abs(loss - expected.loss) < 1e-10 * expected.loss,
        `loss ${loss} vs ${expected.loss}`,
      );
      const gl = read("logits.safetensors");
      const want = (await gl).get("logits")!;
      const logits = out.logits!.data as Float64Array, wl = toFloat32(want.dtype, want.bytes);
      for (let i = 0; i < wl.length; i++) {
        assert.ok(
          Math.abs(logits[i]! - wl[i]!) <= 1e-6 * Math.max(1e-2, Math.abs(wl[i]!)),
          `logit ${i}`,
        );
      }
      const grads = await read("grads.safetensors");
      for (const p of paramTable(cfg)) {
        const w = grads.get(p.name)!, wg = toFloat32(w.dtype, w.bytes);
        const got = out[gradName(p.name)]!.data as Float64Array;
        const scale = Math.max(...wg.map(Math.abs));
        for (let i = 0; i < wg.length; i++) {
          assert.ok(
            Math.abs(got[i]! - wg[i]!) <= 1e-6 * scale,
            `${p.name}[${i}]: graph ${got[i]} vs PyTorch ${wg[i]}`,
          );
        }
      }
    } finally {
      await s.release();
    }
  });
}

for (const tied of [false, true]) {
  const cfg = { ...MICRO, tieWordEmbeddings: tied };
  Deno.test(`buildLlamaGraph() forward equals the float64 TypeScript reference (tied=${tied})`, async () => {
    const params = initParams(cfg, 5);
    for (const t of params.values()) t.forEach((v, i) => (t[i] = v * 10)); // larger signals
    const B = 2, T = 7, tokens = tokensFor(cfg, B * T, 1);
    const { s, feeds } = await f64Session(cfg, B, T, true, false);
    try {
      const out = await s.run(feeds(to64(params), tokens));
      const ref = referenceForward(cfg, params, tokens, B, T);
      const logits = out.logits!.data as Float64Array;
      for (let i = 0; i < ref.logits.length; i++) {
        assert.ok(
          Math.abs(logits[i]! - ref.logits[i]!) < 1e-9 * Math.max(1, Math.abs(ref.logits[i]!)),
          `logit ${i}`,
        );
      }
      assert.ok(Math.abs((out.loss!.data[0] as number) - ref.loss) < 1e-10 * ref.loss);
    } finally {
      await s.release();
    }
  });

  Deno.test(`buildLlamaGraph() gradients match finite differences for every parameter (tied=${tied})`, async () => {
    const params = to64(initParams(cfg, 9));
    for (const t of params.values()) t.forEach((v, i) => (t[i] = v * 10));
    const B = 2, T = 6, tokens = tokensFor(cfg, B * T, 2);
    const { s, feeds } = await f64Session(cfg, B, T, false, true);
    try {
      const out = await s.run(feeds(params, tokens));
      const h = 1e-6;
      let seed = 12345;
      for (const p of paramTable(cfg)) {
        const t = params.get(p.name)!, an = out[gradName(p.name)]!.data as Float64Array;
        // The embedding rows of tokens that appear matter: include one, plus random picks.
        const picks = [(tokens[0]! * cfg.hiddenSize + 3) % p.numel];
        for (let r = 0; r < 4; r++) {
          picks.push((seed = (seed * 1103515245 + 12345) % 2147483648) % p.numel);
        }
        for (const j of picks) {
          const x0 = t[j]!;
          t[j] = x0 + h;
          const lp = (await s.run(feeds(params, tokens), ["loss"])).loss!.data[0] as number;
          t[j] = x0 - h;
          const lm = (await s.run(feeds(params, tokens), ["loss"])).loss!.data[0] as number;
          t[j] = x0;
          const num = (lp - lm) / (2 * h);
          assert.ok(
            Math.abs(num - an[j]!) < 1e-6 * Math.max(0.1, Math.abs(num)),
            `${p.name}[${j}]: ${an[j]} vs ${num}`,
          );
        }
      }
    } finally {
      await s.release();
    }
  });
}

Deno.test("buildLlamaGraph() rejects a sequence too short for a next-token loss", () => {
  assert.throws(
    () => buildLlamaGraph(MICRO, { batch: 1, seqLen: 1 }),
    /Sequence length 1 is too short/,
  );
});
