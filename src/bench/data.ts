/**
 * `bench data`: the LLaMA-2 tokenizers on real English (rows of the embedded corpus,
 * decoded back to text), in MB of UTF-8 per second and tokens per second: our encoder
 * cold (empty segment cache) and warm (the same text again), and the reference
 * llama-tokenizer-js on a smaller slice, measured in the same run; plus the time to load
 * and check the embedded corpus asset and to pack one window's batches.
 */
import type { Bench } from "./mod.ts";
import { resolveHparams } from "../hparams.ts";
import { CORPUS_ASSET, decodeCorpus, gunzip } from "../data/corpus.ts";
import { corpusDataset } from "../data/pages.ts";
import { newTokenizer, referenceTokenizer, type Tokenizer } from "../data/tokenizer.ts";

function time(t: Tokenizer, texts: readonly string[]): { ms: number; tokens: number } {
  const t0 = performance.now();
  let tokens = 0;
  for (const s of texts) tokens += t.encode(s).length;
  return { ms: performance.now() - t0, tokens };
}

/** What `bench data` takes (the CLI parses it from flags). */
export interface DataOptions {
  /** Megabytes of text for our tokenizer, in (0, 100]. */
  mb: number;
  /** Megabytes of text for the reference tokenizer, in (0, 100]. */
  refMb: number;
  json: boolean;
}

export const bench: Bench<DataOptions> = {
  summary: "tokenizer MB/s and tokens/s (ours vs llama-tokenizer-js), corpus load time",
  async run({ mb, refMb, json }) {
    const l0 = performance.now();
    const gz = await Deno.readFile(CORPUS_ASSET);
    const corpus = decodeCorpus(await gunzip(gz));
    const loadMs = performance.now() - l0;

    const tok = newTokenizer();
    const enc = new TextEncoder();
    const texts: string[] = [];
    let bytes = 0;
    for (let r = 0; r < corpus.numRows && bytes < mb * 1e6; r++) {
      const s = tok.decode(corpus.row(r));
      texts.push(s);
      bytes += enc.encode(s).length;
    }
    const refTexts: string[] = [];
    let refBytes = 0;
    for (const s of texts) {
      if (refBytes >= refMb * 1e6) break;
      refTexts.push(s);
      refBytes += enc.encode(s).length;
    }

    const cold = time(tok, texts);
    const warm = time(tok, texts);
    const ref = time(referenceTokenizer(), refTexts);
    const oursOnRef = time(newTokenizer(), refTexts);

    const hp = resolveHparams("tiny");
    const p0 = performance.now();
    const ds = corpusDataset(corpus, hp);
    const batches = await ds.batchesFor(0, 0);
    const packMs = performance.now() - p0;

    const rate = (b: number, ms: number) => +(b / 1e6 / (ms / 1e3)).toFixed(2);
    const out = {
      text_mb: +(bytes / 1e6).toFixed(2),
      ours_cold_mb_s: rate(bytes, cold.ms),
      ours_cold_tokens_s: Math.round(cold.tokens / (cold.ms / 1e3)),
      ours_warm_mb_s: rate(bytes, warm.ms),
      ours_warm_tokens_s: Math.round(warm.tokens / (warm.ms / 1e3)),
      ref_text_mb: +(refBytes / 1e6).toFixed(2),
      ref_mb_s: rate(refBytes, ref.ms),
      ref_tokens_s: Math.round(ref.tokens / (ref.ms / 1e3)),
      ours_cold_on_ref_text_mb_s: rate(refBytes, oursOnRef.ms),
      ratio_cold_vs_ref: +(ref.ms / oursOnRef.ms).toFixed(1),
      same_tokens: ref.tokens === oursOnRef.tokens,
      corpus_asset_bytes: gz.length,
      corpus_tokens: corpus.numTokens,
      corpus_load_ms: +loadMs.toFixed(1),
      pack_window_ms: +packMs.toFixed(2),
      pack_window_batches: batches.length,
    };
    if (json) {
      console.log(JSON.stringify(out));
      return 0;
    }
    console.log(
      `tokenizer ours   cold ${out.ours_cold_mb_s} MB/s ${out.ours_cold_tokens_s} tokens/s, ` +
        `warm ${out.ours_warm_mb_s} MB/s ${out.ours_warm_tokens_s} tokens/s (${out.text_mb} MB)`,
    );
    console.log(
      `tokenizer ref    llama-tokenizer-js ${out.ref_mb_s} MB/s ${out.ref_tokens_s} tokens/s ` +
        `(${out.ref_text_mb} MB); ours cold on the same text ${out.ours_cold_on_ref_text_mb_s} ` +
        `MB/s: ${out.ratio_cold_vs_ref}x, same token count ${out.same_tokens}`,
    );
    console.log(
      `corpus           asset ${(out.corpus_asset_bytes / 1e6).toFixed(2)} MB gzip, ` +
        `${out.corpus_tokens} tokens, load+check ${out.corpus_load_ms} ms; ` +
        `one tiny window packed in ${out.pack_window_ms} ms (${out.pack_window_batches} batches)`,
    );
    return 0;
  },
};
