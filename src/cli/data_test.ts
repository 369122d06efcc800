import assert from "node:assert/strict";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { resolveHparams } from "../hparams.ts";
import { embeddedDataset } from "../data/pages.ts";

const main = new URL("../../main.ts", import.meta.url).pathname;

async function cli(...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "-A", main, "data", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("boltzmann data --json names the same pages and batch hash as the library", async () => {
  const r = await cli("--window", "12", "--uid", "3", "--json", "--rows", "1", "--chars", "40");
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  const ds = await embeddedDataset(resolveHparams("tiny"));
  const batches = await ds.batchesFor(12, 3);
  const h = sha256.create();
  for (const b of batches) h.update(new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
  assert.equal(j.dataset, ds.name);
  assert.deepEqual(j.pages.map((p: { page: number }) => p.page), ds.pagesFor(12, 3));
  assert.equal(j.batches, batches.length);
  assert.equal(j.sha256, bytesToHex(h.digest()));
  assert.equal(j.pages[0].rows, 100);
  assert.equal(j.pages[0].preview.length, 1);
  const rows = await ds.pageRows(j.pages[0].page);
  assert.equal(j.pages[0].preview[0].text, rows[0]!.text.slice(0, 40) + "…");
});

Deno.test("boltzmann data: missing or bad flags exit 2 with one line", async () => {
  const a = await cli("--window", "1");
  assert.equal(a.code, 2);
  assert.match(a.stderr, /Missing --window or --uid/);
  const b = await cli("--window", "1", "--uid", "70000");
  assert.equal(b.code, 2);
  assert.match(b.stderr, /Invalid --uid '70000'/);
  const c = await cli("--window", "1", "--uid", "1", "--dataset", "web");
  assert.equal(c.code, 2);
  assert.match(c.stderr, /Invalid --dataset 'web': expected one of embedded, fineweb/);
});
