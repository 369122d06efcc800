import assert from "node:assert/strict";
import { modelFingerprint, PRESETS, resolveHparams, toOverrides } from "../src/hparams.ts";
import { paramCount, paramTable } from "../src/model/params.ts";

Deno.test("resolveHparams() seed preset is the original's hparams", () => {
  const hp = resolveHparams("seed");
  assert.deepEqual(
    [hp.model.numLayers, hp.model.hiddenSize, hp.model.intermediateSize, hp.model.numHeads],
    [16, 2048, 8192, 8],
  );
  assert.deepEqual([hp.seqLen, hp.model.vocabSize, hp.windowLength, hp.compression], [
    2048,
    32000,
    2,
    100,
  ]);
  assert.deepEqual([hp.learningRate, hp.beta1, hp.beta2, hp.weightDecay, hp.gradClip], [
    7.5e-5,
    0.9,
    0.95,
    0.1,
    1.0,
  ]);
  assert.deepEqual([hp.maxHistory, hp.movingAlpha], [10, 0.999]);
  // 2·32000·2048 (embed + head) + 16·(4·2048² + 3·2048·8192) + 33·2048 norms, by hand:
  const n = 2 * 32000 * 2048 + 16 * (4 * 2048 * 2048 + 3 * 2048 * 8192) + 33 * 2048;
  assert.equal(paramCount(paramTable(hp.model)), n);
  assert.equal(n, 1_204_881_408);
});

Deno.test("resolveHparams() tiny preset has a few million parameters", () => {
  const n = paramCount(paramTable(PRESETS.tiny!.model));
  assert.ok(n > 1e6 && n < 2e7, `${n}`);
});

Deno.test("resolveHparams() applies overrides and rejects bad ones with a clear line", () => {
  const hp = resolveHparams("tiny", { learning_rate: 1e-3, num_hidden_layers: 3 });
  assert.equal(hp.learningRate, 1e-3);
  assert.equal(hp.model.numLayers, 3);
  assert.equal(PRESETS.tiny!.model.numLayers, 2, "preset untouched");
  assert.throws(() => resolveHparams("tiny", { lr: 1 }), /Unknown hyper-parameter 'lr'/);
  assert.throws(() => resolveHparams("tiny", { compression: 0 }), /'compression': 0/);
  assert.throws(() => resolveHparams("tiny", { learning_rate: "fast" }), /'learning_rate'/);
  assert.throws(() => resolveHparams("tiny", { optimizer_beta1: 1 }), /'optimizer_beta1'/);
  assert.throws(() => resolveHparams("tiny", { num_attention_heads: 3 }), /hidden_size 128/);
  assert.throws(
    () => resolveHparams("tiny", { num_key_value_heads: 3 }),
    /multiple of num_key_value_heads 3/,
  );
  assert.throws(() => resolveHparams("tiny", [1]), /must be a JSON object/);
  assert.throws(() => resolveHparams("big"), /Unknown preset 'big'/);
});

Deno.test("modelFingerprint() changes with the architecture, not with training knobs", () => {
  const a = resolveHparams("tiny"), b = resolveHparams("tiny", { learning_rate: 1e-4 });
  const c = resolveHparams("tiny", { tie_word_embeddings: true });
  assert.match(modelFingerprint(a.model), /^[0-9a-f]{32}$/);
  assert.equal(modelFingerprint(a.model), modelFingerprint(b.model));
  assert.notEqual(modelFingerprint(a.model), modelFingerprint(c.model));
});

Deno.test("paramTable() uses Hugging Face names and [out, in] layouts", () => {
  const t = paramTable({ ...PRESETS.tiny!.model, numKvHeads: 2 });
  const byName = new Map(t.map((p) => [p.name, p.shape]));
  assert.deepEqual(byName.get("model.embed_tokens.weight"), [32000, 128]);
  assert.deepEqual(byName.get("model.layers.1.self_attn.k_proj.weight"), [64, 128]);
  assert.deepEqual(byName.get("model.layers.0.mlp.down_proj.weight"), [128, 384]);
  assert.deepEqual(byName.get("lm_head.weight"), [32000, 128]);
  assert.equal(t.at(-2)!.name, "model.norm.weight");
});

Deno.test("toOverrides() round-trips through resolveHparams()", () => {
  const hp = resolveHparams("tiny", { learning_rate: 1e-3, num_key_value_heads: 2 });
  const o = toOverrides(hp);
  assert.equal(o.learning_rate, 1e-3);
  assert.deepEqual(resolveHparams("seed", o), { ...hp, preset: "seed" });
});
