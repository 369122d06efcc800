import assert from "node:assert/strict";
import { loadCheckpoint } from "../src/model/checkpoint.ts";
import { initParams } from "../src/model/init.ts";
import { modelFingerprint, resolveHparams } from "../src/hparams.ts";
import { cli } from "./_cli.ts";

Deno.test("init writes the checkpoint initParams() gives, and prints its fingerprint", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "boltzmann-init-" });
  try {
    const overrides = { vocab_size: 64, hidden_size: 16, intermediate_size: 24 };
    await Deno.writeTextFile(`${tmp}/hp.json`, JSON.stringify(overrides));
    const args = ["--preset", "tiny", "--hparams", `${tmp}/hp.json`, "--seed", "3"];
    const r = await cli("init", ...args, "--out", `${tmp}/ckpt`, "--json");
    assert.equal(r.code, 0, r.stderr);
    const rep = JSON.parse(r.stdout);
    const hp = resolveHparams("tiny", overrides);
    assert.equal(rep.fingerprint, modelFingerprint(hp.model));
    assert.equal(rep.seed, 3);
    assert.equal(rep.path, `${tmp}/ckpt`);
    const { cfg, params } = await loadCheckpoint(`${tmp}/ckpt`);
    assert.deepEqual(cfg, hp.model);
    const want = initParams(hp.model, 3);
    assert.equal(rep.parameters, [...want.values()].reduce((a, t) => a + t.length, 0));
    for (const [k, v] of want) assert.deepEqual(params.get(k), v, k);

    const bf = await cli("init", ...args, "--out", `${tmp}/bf16`, "--dtype", "bf16");
    assert.equal(bf.code, 0, bf.stderr);
    assert.match(bf.stdout, /parameters, bf16, .* MB, fingerprint [0-9a-f]{32}/);

    const bad = await cli("init", "--seed", "3");
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /Missing --out DIR/);
    const neg = await cli("init", "--seed=-1", "--out", `${tmp}/x`);
    assert.equal(neg.code, 2);
    assert.match(neg.stderr, /Invalid --seed '-1'/);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
