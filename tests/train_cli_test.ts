/** `boltzmann grad` and `boltzmann train` end to end, as subprocesses. */
import assert from "node:assert/strict";
import { decodeSafetensors, toFloat32 } from "../src/safetensors.ts";
import { loadCheckpoint } from "../src/model/checkpoint.ts";

const root = new URL("..", import.meta.url).pathname;
const golden = `${root}tests/fixtures/golden/llama-micro`;

/** Runs the CLI with its caches under `cache` (removed by the caller). */
async function cli(cache: string, ...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", "main.ts", ...args],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
    env: { XDG_CACHE_HOME: cache },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** `boltzmann grad` of the golden checkpoint on `tokens`, written to `out`. */
function grad(cache: string, tokens: string, out: string, ...more: string[]) {
  return cli(cache, "grad", "--checkpoint", golden, "--tokens", tokens, "--out", out, ...more);
}

Deno.test("grad writes PyTorch's loss and gradients for the golden checkpoint", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const out = `${dir}/g.safetensors`;
    const r = await grad(dir, `${golden}/tokens.json`, out, "--json");
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    const want = JSON.parse(await Deno.readTextFile(`${golden}/expected.json`)).loss;
    assert.ok(Math.abs(report.loss - want) < 1e-5 * want);
    assert.equal(report.batch, 2);
    assert.equal(report.seq, 12);
    const got = decodeSafetensors(await Deno.readFile(out));
    const ref = decodeSafetensors(await Deno.readFile(`${golden}/grads.safetensors`)).tensors;
    assert.equal(got.metadata.kind, "grad");
    assert.equal(got.tensors.size, ref.size);
    for (const [name, t] of ref) {
      const a = toFloat32(t.dtype, t.bytes), g = got.tensors.get(name)!;
      assert.equal(g.dtype, "F32");
      const b = toFloat32(g.dtype, g.bytes), scale = Math.max(...a.map(Math.abs));
      for (let i = 0; i < a.length; i++) {
        assert.ok(Math.abs(a[i]! - b[i]!) <= 2e-5 * scale, `${name}[${i}]`);
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("grad refuses bad token files with one line and exit code 2", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cases: [string, RegExp][] = [
      ["[[1, 2], [3]]", /row 1 has 1 ids, row 0 has 2/],
      ["[[1, 96]]", /row 0 position 1 is 96, expected an integer id in \[0, 96\)/],
      ["[[1]]", /at least 2 ids/],
      ["{}", /expected \[\[id, \.\.\.\], \.\.\.\]/],
    ];
    for (const [text, re] of cases) {
      await Deno.writeTextFile(`${dir}/t.json`, text);
      const r = await grad(dir, `${dir}/t.json`, `${dir}/g.safetensors`);
      assert.equal(r.code, 2, text);
      assert.match(r.stderr, re);
      assert.equal(r.stderr.trim().split("\n").length, 1);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train runs steps on the embedded corpus, reports JSON lines and writes a checkpoint", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const hp = {
      hidden_size: 16,
      intermediate_size: 24,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      num_key_value_heads: 1,
      sequence_length: 16,
      batch_size: 2,
    };
    await Deno.writeTextFile(`${dir}/hp.json`, JSON.stringify(hp));
    const r = await cli(
      dir,
      "train",
      "--hparams",
      `${dir}/hp.json`,
      "--steps",
      "3",
      "--accum",
      "2",
      "--eval-batches",
      "1",
      "--threads",
      "1",
      "--out",
      `${dir}/ckpt`,
      "--json",
    );
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines.slice(0, 3).map((l) => l.step), [1, 2, 3]);
    const summary = lines[3];
    assert.equal(summary.tokens, 3 * 2 * 2 * 16);
    assert.ok(summary.first_loss > 10 && summary.first_loss < 11); // ≈ ln 32000 at init
    assert.ok(Number.isFinite(summary.eval_after));
    const { cfg } = await loadCheckpoint(`${dir}/ckpt`);
    assert.equal(cfg.hiddenSize, 16);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
