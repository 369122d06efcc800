import assert from "node:assert/strict";
import {
  CheckpointError,
  configToHf,
  hfToConfig,
  loadCheckpoint,
  saveCheckpoint,
} from "./checkpoint.ts";
import { paramTable, type Tensors } from "./params.ts";
import { initParams } from "./init.ts";
import { microModel } from "../../tests/_micro_model.ts";
import { withTempDir } from "../../tests/_temp_dir.ts";
import {
  decodeSafetensors,
  encodeSafetensors,
  parseSafetensorsHeader,
  type TensorInput,
  toFloat32,
} from "../safetensors.ts";

const GOLDEN = new URL("../../tests/fixtures/golden/", import.meta.url).pathname;

const MICRO = microModel({ vocabSize: 24, hiddenSize: 8, intermediateSize: 12, maxSeqLen: 32 });

/** The golden untied checkpoint's tensors, as codec inputs, and its config object. */
async function goldenParts(name = "llama-micro") {
  const bytes = await Deno.readFile(`${GOLDEN}/${name}/model.safetensors`);
  const tensors: TensorInput[] = [...decodeSafetensors(bytes).tensors].map(([n, t]) => ({
    name: n,
    dtype: t.dtype,
    shape: t.shape,
    data: t.bytes,
  }));
  const config = JSON.parse(await Deno.readTextFile(`${GOLDEN}/${name}/config.json`));
  return { tensors, config };
}

async function writeDir(dir: string, config: unknown, tensors: TensorInput[]): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(config));
  await Deno.writeFile(`${dir}/model.safetensors`, encodeSafetensors(tensors, { format: "pt" }));
}

async function refused(dir: string, pattern: RegExp, maxBytes?: number): Promise<void> {
  await assert.rejects(() => loadCheckpoint(dir, { maxBytes }), (e: unknown) => {
    assert.ok(e instanceof CheckpointError, String(e));
    assert.match(e.message, pattern);
    assert.ok(!e.message.includes("\n"));
    return true;
  });
}

Deno.test("saveCheckpoint() then loadCheckpoint() round-trips float32 bit for bit", async () => {
  await withTempDir("ckpt", async (tmp) => {
    const dir = `${tmp}/ckpt`;
    const params = initParams(MICRO, 7);
    await saveCheckpoint(dir, MICRO, params);
    const back = await loadCheckpoint(dir);
    assert.deepEqual(back.cfg, MICRO);
    assert.deepEqual([...back.params.keys()], paramTable(MICRO).map((p) => p.name));
    for (const [k, v] of params) assert.deepEqual(back.params.get(k), v, k);
    const config = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
    assert.deepEqual(config.architectures, ["LlamaForCausalLM"]);
    assert.equal(config.torch_dtype, "float32");
    assert.equal(config.num_key_value_heads, 2);
    const meta = decodeSafetensors(await Deno.readFile(`${dir}/model.safetensors`)).metadata;
    assert.deepEqual(meta, { format: "pt" }); // transformers refuses files without it

    // Saving again replaces the checkpoint and leaves no temporary directories behind.
    const other = initParams(MICRO, 8);
    await saveCheckpoint(dir, MICRO, other);
    const again = await loadCheckpoint(dir);
    assert.deepEqual(again.params.get("lm_head.weight"), other.get("lm_head.weight"));
    const names = [];
    for await (const e of Deno.readDir(tmp)) names.push(e.name);
    assert.deepEqual(names, ["ckpt"]);
  });
});

Deno.test("saveCheckpoint() in bfloat16 loads back within bfloat16 precision", async () => {
  await withTempDir("ckpt", async (tmp) => {
    const params = initParams(MICRO, 9);
    await saveCheckpoint(`${tmp}/f32`, MICRO, params);
    await saveCheckpoint(`${tmp}/bf16`, MICRO, params, { dtype: "BF16" });
    const dataBytes = async (d: string) => {
      const b = await Deno.readFile(`${tmp}/${d}/model.safetensors`);
      return b.length - parseSafetensorsHeader(b).dataStart;
    };
    assert.equal(await dataBytes("f32"), 2 * await dataBytes("bf16"));
    const back = await loadCheckpoint(`${tmp}/bf16`);
    const cfg = JSON.parse(await Deno.readTextFile(`${tmp}/bf16/config.json`));
    assert.equal(cfg.torch_dtype, "bfloat16");
    for (const [k, v] of params) {
      const b = back.params.get(k)!;
      v.forEach((x, i) => assert.ok(Math.abs(b[i]! - x) <= Math.abs(x) * 2 ** -8, `${k}[${i}]`));
    }
  });
});

for (const name of ["llama-micro", "llama-micro-tied"]) {
  Deno.test(`loadCheckpoint() reads the PyTorch-written ${name}`, async () => {
    const { cfg, params } = await loadCheckpoint(`${GOLDEN}/${name}`);
    assert.equal(cfg.tieWordEmbeddings, name.endsWith("tied"));
    assert.deepEqual({ ...cfg, tieWordEmbeddings: false }, {
      vocabSize: 96,
      hiddenSize: 16,
      intermediateSize: 40,
      numLayers: 2,
      numHeads: 4,
      numKvHeads: 2,
      maxSeqLen: 64,
      rmsNormEps: 1e-5,
      ropeTheta: 10000,
      tieWordEmbeddings: false,
    });
    const raw = decodeSafetensors(await Deno.readFile(`${GOLDEN}/${name}/model.safetensors`));
    assert.equal(params.size, paramTable(cfg).length);
    for (const [k, v] of params) {
      const t = raw.tensors.get(k)!;
      assert.deepEqual(v, toFloat32(t.dtype, t.bytes), k);
    }
  });
}

Deno.test("loadCheckpoint() accepts a tied checkpoint that also stores lm_head.weight", async () => {
  await withTempDir("ckpt", async (tmp) => {
    const { tensors, config } = await goldenParts("llama-micro-tied");
    const emb = tensors.find((t) => t.name === "model.embed_tokens.weight")!;
    await writeDir(`${tmp}/c`, config, [...tensors, { ...emb, name: "lm_head.weight" }]);
    const { params } = await loadCheckpoint(`${tmp}/c`);
    assert.equal(params.has("lm_head.weight"), false);
    // ...but a head of the wrong shape is still refused.
    await writeDir(`${tmp}/d`, config, [...tensors, {
      name: "lm_head.weight",
      dtype: "F32",
      shape: [2],
      data: new Float32Array(2),
    }]);
    await refused(`${tmp}/d`, /'lm_head.weight' has shape \[2\], expected \[96,16\]/);
  });
});

Deno.test("loadCheckpoint() reads bfloat16, float16 and sharded checkpoints", async () => {
  await withTempDir("ckpt", async (tmp) => {
    const { cfg, params } = await loadCheckpoint(`${GOLDEN}/llama-micro`);
    const table = paramTable(cfg);
    const as = (dtype: "BF16" | "F16") =>
      table.map((p) => ({ name: p.name, dtype, shape: p.shape, data: params.get(p.name)! }));
    await writeDir(`${tmp}/f16`, { ...configToHf(cfg), torch_dtype: "float16" }, as("F16"));
    const f16 = await loadCheckpoint(`${tmp}/f16`);
    for (const [k, v] of params) {
      const b = f16.params.get(k)!;
      v.forEach((x, i) => assert.ok(Math.abs(b[i]! - x) <= Math.abs(x) * 2 ** -11 + 2 ** -25));
    }
    // Two shards and an index, as save_pretrained writes for large models.
    const dir = `${tmp}/sharded`;
    await Deno.mkdir(dir);
    await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(configToHf(cfg)));
    const half = Math.ceil(table.length / 2);
    const parts = [table.slice(0, half), table.slice(half)];
    const weightMap: Record<string, string> = {};
    for (const [i, part] of parts.entries()) {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      const ts = part.map((p) => ({
        name: p.name,
        dtype: "F32" as const,
        shape: p.shape,
        data: params.get(p.name)!,
      }));
      await Deno.writeFile(`${dir}/${file}`, encodeSafetensors(ts, { format: "pt" }));
      for (const p of part) weightMap[p.name] = file;
    }
    await Deno.writeTextFile(
      `${dir}/model.safetensors.index.json`,
      JSON.stringify({ metadata: {}, weight_map: weightMap }),
    );
    const sharded = await loadCheckpoint(dir);
    for (const [k, v] of params) assert.deepEqual(sharded.params.get(k), v);
  });
});

Deno.test("loadCheckpoint() refuses each bad checkpoint with its reason", async () => {
  await withTempDir("ckpt", async (tmp) => {
    const { tensors, config } = await goldenParts();
    const f32 = (name: string) => {
      const t = tensors.find((x) => x.name === name)!;
      return toFloat32(t.dtype, t.data as Uint8Array);
    };
    const replace = (name: string, t: Partial<TensorInput>) =>
      tensors.map((x) => (x.name === name ? { ...x, ...t } : x));
    const cases: [string, unknown, TensorInput[], RegExp][] = [
      [
        "missing",
        config,
        tensors.filter((t) => t.name !== "model.norm.weight"),
        /tensor 'model\.norm\.weight' is missing/,
      ],
      [
        "extra",
        config,
        [...tensors, { name: "bias", dtype: "F32", shape: [1], data: new Float32Array(1) }],
        /unexpected tensor 'bias'/,
      ],
      [
        "shape",
        config,
        replace("model.norm.weight", { shape: [4, 4] }),
        /'model\.norm\.weight' has shape \[4,4\], expected \[16\]/,
      ],
      [
        "dtype",
        config,
        replace("model.norm.weight", { dtype: "I32" }),
        /'model\.norm\.weight' has dtype I32, expected F32, BF16 or F16/,
      ],
      [
        "nan",
        config,
        replace("model.norm.weight", { data: f32("model.norm.weight").fill(NaN, 3, 5) }),
        /'model\.norm\.weight' has 2 NaN\/Inf values/,
      ],
      [
        "inf",
        config,
        replace("lm_head.weight", { data: f32("lm_head.weight").fill(-Infinity, 0, 1) }),
        /'lm_head\.weight' has 1 NaN\/Inf values/,
      ],
      [
        "arch",
        { ...config, architectures: ["GPT2LMHeadModel"] },
        tensors,
        /architectures \["GPT2LMHeadModel"\] does not include "LlamaForCausalLM"/,
      ],
      [
        "nohidden",
        { ...config, hidden_size: undefined },
        tensors,
        /'hidden_size' is undefined, expected an integer >= 1/,
      ],
      [
        "rope",
        { ...config, rope_scaling: { type: "linear", factor: 2 } },
        tensors,
        /rope_scaling .* is not supported/,
      ],
      [
        "heads",
        { ...config, num_key_value_heads: 3 },
        tensors,
        /num_attention_heads 4 must be a multiple of num_key_value_heads 3/,
      ],
    ];
    for (const [name, cfg, ts, pattern] of cases) {
      await writeDir(`${tmp}/${name}`, cfg, ts);
      await refused(`${tmp}/${name}`, pattern);
    }
    // Truncated weights file.
    await writeDir(`${tmp}/trunc`, config, tensors);
    const bytes = await Deno.readFile(`${tmp}/trunc/model.safetensors`);
    await Deno.writeFile(`${tmp}/trunc/model.safetensors`, bytes.subarray(0, bytes.length - 100));
    await refused(`${tmp}/trunc`, /past the data buffer/);
    await Deno.writeFile(`${tmp}/trunc/model.safetensors`, bytes.subarray(0, 5));
    await refused(`${tmp}/trunc`, /shorter than the 8-byte header length/);
    // Oversized file.
    await writeDir(`${tmp}/big`, config, tensors);
    await refused(`${tmp}/big`, /is \d+ bytes, over the cap of 1000/, 1000);
    // Broken or absent config.json, absent weights.
    await Deno.mkdir(`${tmp}/noconfig`);
    await refused(`${tmp}/noconfig`, /config '.*config\.json' not found/);
    await writeDir(`${tmp}/badjson`, config, tensors);
    await Deno.writeTextFile(`${tmp}/badjson/config.json`, "{oops");
    await refused(`${tmp}/badjson`, /config\.json: not JSON/);
    await Deno.remove(`${tmp}/badjson/model.safetensors`);
    await Deno.writeTextFile(`${tmp}/badjson/config.json`, JSON.stringify(config));
    await refused(`${tmp}/badjson`, /weights file '.*model\.safetensors' not found/);
  });
});

Deno.test("saveCheckpoint() refuses bad parameters and non-checkpoint directories", async () => {
  await withTempDir("ckpt", async (tmp) => {
    const params = initParams(MICRO, 1);
    const nan: Tensors = new Map(params);
    nan.set("model.norm.weight", new Float32Array(8).fill(NaN));
    await assert.rejects(() => saveCheckpoint(`${tmp}/a`, MICRO, nan), /8 NaN\/Inf values/);
    const missing: Tensors = new Map(params);
    missing.delete("lm_head.weight");
    await assert.rejects(
      () => saveCheckpoint(`${tmp}/a`, MICRO, missing),
      /'lm_head.weight' is missing/,
    );
    await assert.rejects(
      () => saveCheckpoint(`${tmp}/a`, { ...MICRO, tieWordEmbeddings: true }, params),
      /unexpected tensor 'lm_head.weight'/,
    );
    await Deno.mkdir(`${tmp}/home`);
    await Deno.writeTextFile(`${tmp}/home/notes.txt`, "mine");
    await assert.rejects(
      () => saveCheckpoint(`${tmp}/home`, MICRO, params),
      /Refusing to overwrite/,
    );
    assert.equal(await Deno.readTextFile(`${tmp}/home/notes.txt`), "mine");
    const names = [];
    for await (const e of Deno.readDir(tmp)) names.push(e.name);
    assert.deepEqual(names, ["home"]);
  });
});

Deno.test("hfToConfig() inverts configToHf() and applies LlamaConfig defaults", () => {
  for (const tie of [false, true]) {
    const cfg = { ...MICRO, tieWordEmbeddings: tie };
    assert.deepEqual(hfToConfig(configToHf(cfg, "BF16")), cfg);
  }
  const minimal = {
    vocab_size: 10,
    hidden_size: 8,
    intermediate_size: 4,
    num_hidden_layers: 1,
    num_attention_heads: 2,
  };
  assert.deepEqual(hfToConfig(minimal), {
    vocabSize: 10,
    hiddenSize: 8,
    intermediateSize: 4,
    numLayers: 1,
    numHeads: 2,
    numKvHeads: 2,
    maxSeqLen: 2048,
    rmsNormEps: 1e-6,
    ropeTheta: 10000,
    tieWordEmbeddings: false,
  });
  // transformers 5 keeps the rotary base in rope_parameters.
  const v5 = { ...minimal, rope_parameters: { rope_type: "default", rope_theta: 500000 } };
  assert.equal(hfToConfig(v5).ropeTheta, 500000);
  assert.throws(() => hfToConfig({ ...minimal, hidden_act: "gelu" }), /hidden_act "gelu"/);
  assert.throws(() => hfToConfig({ ...minimal, attention_bias: true }), /'attention_bias' is true/);
  assert.throws(() => hfToConfig({ ...minimal, head_dim: 8 }), /head_dim 8 differs/);
  assert.throws(() => hfToConfig([]), /expected a JSON object/);
});
