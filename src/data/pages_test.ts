import assert from "node:assert/strict";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { resolveHparams } from "../hparams.ts";
import { decodeCorpus, encodeCorpus, loadEmbeddedCorpus } from "./corpus.ts";
import { corpusDataset, corpusSplit, embeddedDataset, HELD_OUT_EVERY, packRows } from "./pages.ts";

const tiny = resolveHparams("tiny");

Deno.test("packRows() adds BOS/EOS, cuts row-major batches, drops the tail", () => {
  assert.deepEqual(packRows([[5, 6], [7]], 1, 3), [Int32Array.of(1, 5, 6), Int32Array.of(2, 1, 7)]);
  // 1 5 6 2 | 1 7 2 1 | 8 9 (tail dropped)
  assert.deepEqual(packRows([[5, 6], [7], [8, 9]], 2, 2), [
    Int32Array.of(1, 5, 6, 2),
    Int32Array.of(1, 7, 2, 1),
  ]);
  assert.deepEqual(packRows([], 2, 2), []);
  assert.throws(() => packRows([[1]], 0, 4), RangeError);
});

/** 21 one-row documents: doc d holds the row [100 + d]; docs 0 and 20 are held out. */
function smallDataset(rowsPerPage: number) {
  const docs = Array.from({ length: 21 }, (_, d) => ({
    name: `doc${d}`,
    source: "test",
    rows: [[100 + d]],
  }));
  const hp = { ...tiny, rowsPerPage, batchSize: 1, seqLen: 3, pagesPerWindow: 2 };
  return corpusDataset(decodeCorpus(encodeCorpus(docs, {})), hp, "small");
}

Deno.test("corpusDataset(): pages are consecutive training rows; held-out docs excluded", async () => {
  const ds = smallDataset(4);
  assert.equal(HELD_OUT_EVERY, 20);
  assert.equal(ds.totalPages, 4); // 19 training rows (docs 1..19) → 4 whole pages of 4
  // Page 1 = rows of docs 5..8 → 1 105 2 | 1 106 2 | 1 107 2 | 1 108 2
  assert.deepEqual(
    await ds.pageBatches(1),
    [105, 106, 107, 108].map((t) => Int32Array.of(1, t, 2)),
  );
  // Held out: docs 0 and 20.
  assert.deepEqual(await ds.evalBatches(5), [Int32Array.of(1, 100, 2), Int32Array.of(1, 120, 2)]);
  assert.deepEqual(await ds.evalBatches(1), [Int32Array.of(1, 100, 2)]);
  assert.deepEqual((await ds.pageRows(0)).map((r) => r.source), [
    "doc1, row 1",
    "doc2, row 2",
    "doc3, row 3",
    "doc4, row 4",
  ]);
  await assert.rejects(async () => await ds.pageBatches(4), RangeError);
  await assert.rejects(async () => await ds.pageBatches(-1), RangeError);
  // batchesFor = the batches of pagesFor, in page order.
  const ps = ds.pagesFor(7, 1);
  assert.equal(ps.length, 2);
  const want = [...await ds.pageBatches(ps[0]!), ...await ds.pageBatches(ps[1]!)];
  assert.deepEqual(await ds.batchesFor(7, 1), want);
});

Deno.test("corpusDataset() refuses a corpus smaller than one page", () => {
  assert.throws(() => smallDataset(20), /fewer than one page/);
});

Deno.test("embeddedDataset(tiny): every page gives whole batches; eval split is non-empty", async () => {
  const ds = await embeddedDataset(tiny);
  assert.match(ds.name, /^embedded-v1:[0-9a-f]{8}$/);
  assert.ok(ds.totalPages >= 100, `${ds.totalPages} pages`);
  for (let p = 0; p < ds.totalPages; p++) {
    const b = await ds.pageBatches(p);
    assert.ok(b.length >= 1, `page ${p} gives no batch`);
    for (const x of b) assert.equal(x.length, tiny.batchSize * tiny.seqLen);
  }
  const ev = await ds.evalBatches(4);
  assert.equal(ev.length, 4);
  assert.equal(ev[0]![0], 1); // starts with BOS
});

Deno.test("embeddedDataset(): held-out rows never appear in any page over 500 windows", async () => {
  const corpus = await loadEmbeddedCorpus();
  const ds = await embeddedDataset(tiny);
  const { heldOut } = corpusSplit(corpus);
  assert.ok(heldOut.length > 100);
  // Each held-out row's exact token sequence (a row is ~250 tokens: collisions are not real).
  const heldKeys = new Set(heldOut.map((r) => corpus.row(r).join(",")));
  const pageClean = new Map<number, boolean>();
  for (let p = 0; p < ds.totalPages; p++) {
    const rows = await ds.pageRows(p);
    assert.equal(rows.length, 100);
    pageClean.set(
      p,
      rows.every((r) => {
        const docName = r.source.replace(/, row \d+$/, "");
        const d = corpus.docs.findIndex((x) => x.name === docName);
        const rowIdx = Number(/row (\d+)$/.exec(r.source)![1]);
        return d % HELD_OUT_EVERY !== 0 && !heldKeys.has(corpus.row(rowIdx).join(","));
      }),
    );
  }
  for (let w = 0; w < 500; w++) {
    for (let uid = 0; uid < 16; uid++) {
      for (const p of ds.pagesFor(w, uid)) {
        assert.ok(pageClean.get(p), `window ${w} uid ${uid} page ${p} has held-out rows`);
      }
    }
  }
});

Deno.test("embeddedDataset(): different uids get different pages in a window", async () => {
  const ds = await embeddedDataset(tiny);
  for (let w = 0; w < 50; w++) {
    const seen = new Set<number>();
    for (let uid = 0; uid < 32; uid++) {
      const [p] = ds.pagesFor(w, uid);
      assert.ok(!seen.has(p!), `window ${w}: uid ${uid} repeats page ${p}`);
      seen.add(p!);
    }
  }
  // And the batches differ, not only the page numbers.
  const a = await ds.batchesFor(3, 0), b = await ds.batchesFor(3, 1);
  assert.notDeepEqual(a[0], b[0]);
});

function digest(batches: Int32Array[]): string {
  const h = sha256.create();
  for (const b of batches) h.update(new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
  return bytesToHex(h.digest());
}

Deno.test("batchesFor() is byte-identical across two separate processes", async () => {
  const script = new URL("../../tests/_batch_digest.ts", import.meta.url).pathname;
  const run = async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", "--allow-read", "--allow-env", script, "12", "3", "tiny"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    return JSON.parse(new TextDecoder().decode(out.stdout));
  };
  const [a, b] = await Promise.all([run(), run()]);
  const ds = await embeddedDataset(tiny);
  const here = await ds.batchesFor(12, 3);
  assert.deepEqual(a, b);
  assert.deepEqual(a.pages, ds.pagesFor(12, 3));
  assert.equal(a.batches, here.length);
  assert.equal(a.sha256, digest(here));
});
