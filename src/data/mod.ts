/**
 * Training data: the LLaMA-2 tokenizer, the embedded corpus split into pages, and the
 * remote fineweb-edu page loader. See docs/DATA.md.
 *
 * @module
 */
export * from "./tokenizer.ts";
export * from "./pages.ts";
export * from "./open.ts";
export {
  FINEWEB_DATASET,
  fineWebDataset,
  type FineWebOptions,
  HF_DATASETS_SERVER,
} from "./remote.ts";
export { type Corpus, type CorpusDoc, loadEmbeddedCorpus } from "./corpus.ts";
