import assert from "node:assert/strict";
import { referenceForward } from "./_reference_model.ts";
import { microModel } from "./_micro_model.ts";
import { type ModelConfig, paramTable, type Tensors } from "../src/model/params.ts";
import { initParams } from "../src/model/init.ts";
import { decodeSafetensors, toFloat32 } from "../src/safetensors.ts";

const GOLDEN = new URL("./fixtures/golden/", import.meta.url);

/** A golden case read with the codec only (the checkpoint module has its own tests). */
async function golden(dir: string) {
  const file = (f: string) => Deno.readFile(new URL(`${dir}/${f}`, GOLDEN));
  const text = async (f: string) => JSON.parse(new TextDecoder().decode(await file(f)));
  const hf = await text("config.json");
  const cfg: ModelConfig = {
    vocabSize: hf.vocab_size,
    hiddenSize: hf.hidden_size,
    intermediateSize: hf.intermediate_size,
    numLayers: hf.num_hidden_layers,
    numHeads: hf.num_attention_heads,
    numKvHeads: hf.num_key_value_heads,
    maxSeqLen: hf.max_position_embeddings,
    rmsNormEps: hf.rms_norm_eps,
    ropeTheta: hf.rope_theta,
    tieWordEmbeddings: hf.tie_word_embeddings,
  };
  const params: Tensors = new Map();
  for (const [name, t] of decodeSafetensors(await file("model.safetensors")).tensors) {
    params.set(name, toFloat32(t.dtype, t.bytes));
  }
  const rows: number[][] = await text("tokens.json");
  const logits = decodeSafetensors(await file("logits.safetensors")).tensors.get("logits")!;
  const grads: Tensors = new Map();
  for (const [name, t] of decodeSafetensors(await file("grads.safetensors")).tensors) {
    grads.set(name, toFloat32(t.dtype, t.bytes));
  }
  return {
    cfg,
    params,
    tokens: Int32Array.from(rows.flat()),
    B: rows.length,
    T: rows[0]!.length,
    loss: (await text("expected.json")).loss as number,
    logits: toFloat32(logits.dtype, logits.bytes),
    grads,
  };
}

for (const dir of ["llama-micro", "llama-micro-tied"]) {
  Deno.test(`referenceForward() matches PyTorch's LlamaForCausalLM on ${dir}`, async () => {
    const g = await golden(dir);
    assert.equal(g.params.has("lm_head.weight"), !g.cfg.tieWordEmbeddings);
    const out = referenceForward(g.cfg, g.params, g.tokens, g.B, g.T);
    assert.equal(out.logits.length, g.logits.length);
    let worst = 0;
    for (let i = 0; i < out.logits.length; i++) {
      const e = Math.abs(out.logits[i]! - g.logits[i]!) / Math.max(1e-2, Math.abs(g.logits[i]!));
      worst = Math.max(worst, e);
    }
    // Golden logits are stored as float32 (relative rounding 6e-8); the loss is float64.
    assert.ok(worst < 2e-7, `worst relative logit error ${worst}`);
    assert.ok(Math.abs(out.loss - g.loss) / g.loss < 1e-12, `loss ${out.loss} vs ${g.loss}`);
  });
}

for (const dir of ["llama-micro", "llama-micro-tied"]) {
  Deno.test(`referenceForward() finite differences match PyTorch's gradients on ${dir}`, async () => {
    // Central differences in float64 on 3 entries of every tensor: checks the golden
    // gradients and the reference against each other.
    const g = await golden(dir);
    assert.deepEqual([...g.grads.keys()].sort(), [...g.params.keys()].sort());
    const p64 = new Map([...g.params].map(([k, v]) => [k, Float64Array.from(v)]));
    const loss = () => referenceForward(g.cfg, p64, g.tokens, g.B, g.T).loss;
    const h = 1e-5;
    for (const [name, t] of p64) {
      const grad = g.grads.get(name)!;
      let scale = 0;
      for (const v of grad) scale = Math.max(scale, Math.abs(v));
      for (const i of [0, Math.floor(t.length / 2), t.length - 1]) {
        const x = t[i]!;
        t[i] = x + h;
        const up = loss();
        t[i] = x - h;
        const down = loss();
        t[i] = x;
        const fd = (up - down) / (2 * h);
        assert.ok(
          Math.abs(fd - grad[i]!) <= 1e-6 * scale + 1e-5 * Math.abs(grad[i]!),
          `${name}[${i}]: finite difference ${fd}, PyTorch ${grad[i]}`,
        );
      }
    }
  });
}

const MICRO = microModel({
  vocabSize: 11,
  hiddenSize: 8,
  intermediateSize: 12,
  tieWordEmbeddings: true,
});

Deno.test("referenceForward() is causal: later tokens never change earlier logits", () => {
  const params = initParams(MICRO, 3);
  for (const t of params.values()) t.forEach((v, i) => (t[i] = v * 20)); // larger signals
  const a = Int32Array.from([1, 2, 3, 4, 5, 6]);
  const b = Int32Array.from([1, 2, 3, 9, 0, 7]);
  const la = referenceForward(MICRO, params, a, 1, 6).logits;
  const lb = referenceForward(MICRO, params, b, 1, 6).logits;
  const V = MICRO.vocabSize;
  assert.deepEqual(la.subarray(0, 3 * V), lb.subarray(0, 3 * V));
  assert.notDeepEqual(la.subarray(3 * V, 4 * V), lb.subarray(3 * V, 4 * V));
});

Deno.test("referenceForward() with grouped KV heads equals full heads with repeated K/V rows", () => {
  // repeat_kv: query heads 0,1 read kv head 0; heads 2,3 read kv head 1.
  const grouped = initParams(MICRO, 5);
  for (const t of grouped.values()) t.forEach((v, i) => (t[i] = v * 20));
  const full: ModelConfig = { ...MICRO, numKvHeads: 4 };
  const fp: Tensors = new Map(grouped);
  const D = MICRO.hiddenSize / MICRO.numHeads, H = MICRO.hiddenSize;
  for (let l = 0; l < MICRO.numLayers; l++) {
    for (const m of ["k_proj", "v_proj"]) {
      const name = `model.layers.${l}.self_attn.${m}.weight`;
      const src = grouped.get(name)!, dst = new Float32Array(4 * D * H);
      for (let n = 0; n < 4; n++) {
        dst.set(
          src.subarray(Math.floor(n / 2) * D * H, (Math.floor(n / 2) + 1) * D * H),
          n * D * H,
        );
      }
      fp.set(name, dst);
    }
  }
  assert.equal(paramTable(full).every((p) => fp.get(p.name)!.length === p.numel), true);
  const tokens = Int32Array.from([4, 1, 7, 7, 2, 10, 0, 3]);
  const a = referenceForward(MICRO, grouped, tokens, 2, 4);
  const b = referenceForward(full, fp, tokens, 2, 4);
  a.logits.forEach((v, i) => assert.ok(Math.abs(v - b.logits[i]!) < 1e-12));
  assert.ok(Math.abs(a.loss - b.loss) < 1e-12);
});

Deno.test("referenceForward() loss is the mean cross-entropy of its own logits", () => {
  // With all-zero weights every logit is 0, so the loss is exactly ln(V).
  const zero: Tensors = new Map(
    paramTable(MICRO).map((
      p,
    ) => [p.name, new Float32Array(p.numel).fill(p.shape.length === 1 ? 1 : 0)]),
  );
  zero.set("model.embed_tokens.weight", new Float32Array(MICRO.vocabSize * MICRO.hiddenSize));
  const out = referenceForward(MICRO, zero, Int32Array.from([1, 2, 3]), 1, 3);
  assert.ok(out.logits.every((v) => v === 0));
  assert.ok(Math.abs(out.loss - Math.log(MICRO.vocabSize)) < 1e-15);
});

Deno.test("referenceForward() refuses bad inputs", () => {
  const params = initParams(MICRO, 1);
  assert.throws(() => referenceForward(MICRO, params, Int32Array.from([1, 11]), 1, 2), /token 11/);
  assert.throws(() => referenceForward(MICRO, params, Int32Array.from([1]), 1, 1), /T >= 2/);
  assert.throws(
    () => referenceForward(MICRO, params, Int32Array.from([1, 2, 3]), 1, 2),
    /3 tokens/,
  );
  const missing = new Map(params);
  missing.delete("model.norm.weight");
  assert.throws(
    () => referenceForward(MICRO, missing, Int32Array.from([1, 2]), 1, 2),
    /'model.norm.weight' is missing/,
  );
});
