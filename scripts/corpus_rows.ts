/**
 * What a "row" of the embedded corpus is. The original's rows were fineweb-edu documents
 * (about a thousand tokens each); our documents are whole speeches and chapters (up to
 * tens of thousands of tokens), so a row is a run of whole sentences of one document:
 * cut greedily at the first sentence end at or after {@link ROW_MIN_CHARS} characters,
 * or at the document's end. A sentence ends at `.`, `!` or `?` (plus closing quotes or
 * brackets) followed by whitespace; the whitespace between two rows belongs to neither.
 * The text inside a row is the document's text unchanged.
 *
 * Used once by scripts/gen_corpus.ts (the committed asset is the truth) and by the test
 * that re-derives the asset; pure.
 *
 * @module
 */

/** A row ends at the first sentence end at or after this many characters. */
export const ROW_MIN_CHARS = 1000;

const SENTENCE_END = /[.!?]["'\u201d\u2019)\]]*(\s+)/g;

/**
 * The rows of one document (see the module doc).
 * @param text the document
 * @param minChars the least characters of a row that is not the document's last
 * @returns the non-empty rows in order
 * @example
 * ```ts
 * splitRows("One. Two! Three? Four", 5); // ["One. Two!", "Three?", "Four"]
 * ```
 */
export function splitRows(text: string, minChars = ROW_MIN_CHARS): string[] {
  const rows: string[] = [];
  let start = 0;
  // Skip leading whitespace so no row starts with it.
  while (start < text.length && /\s/.test(text[start]!)) start++;
  SENTENCE_END.lastIndex = 0;
  for (let m = SENTENCE_END.exec(text); m; m = SENTENCE_END.exec(text)) {
    const end = m.index + m[0].length - m[1]!.length;
    if (end - start < minChars) continue;
    rows.push(text.slice(start, end));
    start = m.index + m[0].length;
  }
  const rest = text.slice(start).trimEnd();
  if (rest.length > 0) rows.push(rest);
  return rows;
}
