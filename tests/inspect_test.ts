/** `boltzmann inspect --slice` end to end: a real slice file, tampered copies, exit codes. */
import assert from "node:assert/strict";
import { Keyring } from "@polkadot/keyring";
import { cryptoWaitReady } from "@polkadot/util-crypto";
import { modelFingerprint, PRESETS } from "../src/hparams.ts";
import { paramTable } from "../src/model/params.ts";
import { encodeSlice } from "../src/slices/wire.ts";
import { DERIVATION_VERSION, sliceSize } from "../src/window.ts";
import { cli as run } from "./_cli.ts";

/** `boltzmann inspect …` */
const cli = (...args: string[]) => run("inspect", ...args);

await cryptoWaitReady();
const alice = new Keyring({ type: "sr25519", ss58Format: 42 }).addFromUri("//Alice");
const hp = PRESETS.tiny!;
const table = paramTable(hp.model);
const slice = new Map(
  table.map((p) => {
    const k = sliceSize(p.numel, hp.compression);
    return [p.name, Float32Array.from({ length: k }, (_, i) => Math.sin(i) * 0.01)];
  }),
);
const bytes = encodeSlice(
  slice,
  {
    kind: "delta",
    window: 3,
    hotkey: alice.address,
    fingerprint: modelFingerprint(hp.model),
    version: DERIVATION_VERSION,
    loss: 6.25,
    tokens: 1024,
    batches: 1,
  },
  { address: alice.address, sign: (m) => alice.sign(m) },
);

Deno.test("inspect --slice: a valid slice is summarised (preset found by fingerprint)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/delta-3-${alice.address}.safetensors`;
    await Deno.writeFile(file, bytes);
    const j = await cli("--slice", file, "--json");
    assert.equal(j.code, 0, j.stderr);
    const r = JSON.parse(j.stdout);
    assert.equal(r.valid, true);
    assert.equal(r.preset, "tiny");
    assert.deepEqual(r.checked, { window: 3, kind: "delta", hotkey: alice.address });
    assert.equal(r.meta.loss, 6.25);
    assert.equal(r.tensors.length, table.length);
    const emb = r.tensors[0];
    const k = sliceSize(table[0]!.numel, hp.compression);
    let sq = 0;
    for (let i = 0; i < k; i++) sq += Math.fround(Math.sin(i) * 0.01) ** 2;
    assert.equal(emb.count, k);
    assert.ok(Math.abs(emb.norm - Math.sqrt(sq)) < 1e-9 * Math.sqrt(sq) + 1e-12);
    assert.equal(emb.nan, 0);
    assert.equal(emb.inf, 0);
    assert.ok(Math.abs(emb.max - 0.01) < 1e-4 && Math.abs(emb.min + 0.01) < 1e-4);
    const t = await cli("--slice", file);
    assert.equal(t.code, 0);
    assert.match(t.stdout, /: valid \(/);
    assert.match(t.stdout, /\ntotal +\d+ /);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("inspect --slice: invalid files exit 1 with the reason in one line", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const tampered = bytes.slice();
    tampered[tampered.length - 1]! ^= 1;
    const cases: [string, Uint8Array, string[], RegExp][] = [
      [`delta-3-${alice.address}.safetensors`, tampered, [], /slice rejected \(payload-hash\)/],
      [
        `delta-4-${alice.address}.safetensors`,
        bytes,
        [],
        /slice rejected \(wrong-window\): window 3, expected 4/,
      ],
      ["any-name.safetensors", bytes, ["--kind", "state"], /slice rejected \(wrong-kind\)/],
      [
        "junk.bin",
        new TextEncoder().encode("not a slice"),
        ["--preset", "tiny"],
        /slice rejected \(header-too-large\)/,
      ],
      ["short.bin", new Uint8Array(3), [], /slice rejected \(truncated\)/],
    ];
    for (const [name, b, extra, re] of cases) {
      await Deno.writeFile(`${dir}/${name}`, b);
      const r = await cli("--slice", `${dir}/${name}`, ...extra);
      assert.equal(r.code, 1, name);
      assert.match(r.stderr, re, name);
      assert.equal(r.stderr.trim().split("\n").length, 1, `one line for ${name}: ${r.stderr}`);
      assert.equal(r.stdout, "");
    }
    const j = await cli("--slice", `${dir}/delta-4-${alice.address}.safetensors`, "--json");
    assert.equal(j.code, 1);
    assert.deepEqual(
      (({ valid, reason }) => ({ valid, reason }))(JSON.parse(j.stdout)),
      { valid: false, reason: "wrong-window" },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("inspect: --window needs --netuid; a missing file is a usage error", async () => {
  const w = await cli("--window", "5");
  assert.equal(w.code, 2);
  assert.match(w.stderr, /^boltzmann inspect: Missing --netuid N/);
  const u = await cli("--window", "5", "--netuid", "1", "--subtensor.network", "mars");
  assert.equal(u.code, 2);
  assert.match(u.stderr, /Invalid --subtensor.network 'mars': expected one of finney, test, local/);
  const m = await cli("--slice", "/nonexistent/x.safetensors");
  assert.equal(m.code, 2);
  assert.match(m.stderr, /^boltzmann inspect: Cannot read --slice '\/nonexistent\/x.safetensors'/);
});
