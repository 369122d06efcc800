/**
 * `boltzmann data`: what a (window, uid) trains on — its pages, their rows and token
 * counts, the batches and their hash (compare it with a miner's or validator's log), and a
 * preview of the decoded text. The tool a person uses to check what a miner was told to
 * train on.
 *
 * @module
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { type Command, parseCommand } from "./command.ts";
import { UsageError } from "./args.ts";
import { hparamsFromFlags } from "./config.ts";
import { datasetFromFlags } from "./dataset.ts";
import { DATA, DATASET, HPARAMS } from "./flags.ts";

/** Hex SHA-256 over the batches' int32 little-endian bytes, in order. */
function batchesDigest(batches: readonly Int32Array[]): string {
  const h = sha256.create();
  for (const b of batches) h.update(new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
  return bytesToHex(h.digest());
}

/** Runs of consecutive rows from the same document, as "name (rows a–b)". */
function sourceRuns(sources: readonly string[]): string[] {
  const out: { doc: string; first: string; last: string }[] = [];
  for (const s of sources) {
    const m = /^(.*?),? row (\d+)$/.exec(s);
    const doc = m ? m[1]! : s, row = m ? m[2]! : "";
    const cur = out.at(-1);
    if (cur && cur.doc === doc) cur.last = row;
    else out.push({ doc, first: row, last: row });
  }
  return out.map((r) => `${r.doc} (rows ${r.first}${r.last !== r.first ? "–" + r.last : ""})`);
}

const SURFACES = [DATA, HPARAMS, DATASET];

export const command: Command = {
  about: `boltzmann data --window W --uid U [--preset P] [--rows K] [--chars N] [--json]
               [--dataset embedded|fineweb ...]

Prints the data pages assigned to (window, uid), each page's rows, tokens and batches,
the SHA-256 of all its batches (identical on every machine), and the first rows'
decoded text. See docs/DATA.md. --json: one JSON object (previews included).`,
  surfaces: SURFACES,
  async run(argv) {
    const { o } = parseCommand(argv, SURFACES);
    const window = o.numOpt("window"), uid = o.numOpt("uid");
    if (window === undefined || uid === undefined) {
      throw new UsageError(
        "Missing --window or --uid: both are required, e.g. --window 12 --uid 3",
      );
    }
    const previewRows = o.num("rows");
    const chars = o.num("chars");
    const hp = await hparamsFromFlags(o);
    const ds = await datasetFromFlags(o, hp);
    const pageNums = ds.pagesFor(window, uid);
    const all: Int32Array[] = [];
    const pages = [];
    for (const page of pageNums) {
      const rows = await ds.pageRows(page);
      const batches = await ds.pageBatches(page);
      all.push(...batches);
      const tokens = rows.reduce((a, r) => a + r.tokens + 2, 0);
      pages.push({
        page,
        rows: rows.length,
        tokens,
        batches: batches.length,
        droppedTokens: tokens - batches.length * hp.batchSize * hp.seqLen,
        sha256: batchesDigest(batches),
        sources: sourceRuns(rows.map((r) => r.source)),
        preview: rows.slice(0, previewRows).map((r) => ({
          source: r.source,
          text: chars > 0 && r.text.length > chars ? r.text.slice(0, chars) + "…" : r.text,
        })),
      });
    }
    const out = {
      dataset: ds.name,
      totalPages: ds.totalPages,
      preset: hp.preset,
      window,
      uid,
      batchShape: [hp.batchSize, hp.seqLen],
      batches: all.length,
      tokens: all.length * hp.batchSize * hp.seqLen,
      sha256: batchesDigest(all),
      pages,
    };
    if (o.bool("json")) {
      console.log(JSON.stringify(out));
      return 0;
    }
    const shape = `${hp.batchSize}×${hp.seqLen}`;
    console.log(
      `dataset ${out.dataset}: ${out.totalPages} training pages of ${hp.rowsPerPage} rows`,
    );
    console.log(
      `window ${window} uid ${uid} (preset ${hp.preset}): pages ${
        pageNums.join(", ")
      } → ${out.batches} batches of ${shape} (${out.tokens} tokens), sha256 ${out.sha256}`,
    );
    for (const p of pages) {
      console.log("");
      console.log(
        `page ${p.page}: ${p.rows} rows, ${p.tokens} tokens with BOS/EOS → ${p.batches} batches ` +
          `(${p.droppedTokens} tokens dropped), sha256 ${p.sha256.slice(0, 16)}…`,
      );
      console.log(`  from ${p.sources.slice(0, 4).join("; ")}${p.sources.length > 4 ? "; …" : ""}`);
      for (const r of p.preview) {
        console.log(`  [${r.source}] ${r.text.replaceAll("\n", " ⏎ ")}`);
      }
    }
    return 0;
  },
};
