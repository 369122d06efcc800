import assert from "node:assert/strict";
import { BOS_ID, EOS_ID, referenceTokenizer, tokenizer, VOCAB_SIZE } from "./tokenizer.ts";

const vectors: { cases: { text: string; ids: number[] }[] } = JSON.parse(
  await Deno.readTextFile(new URL("../../tests/vectors/tokenizer.json", import.meta.url)),
);

Deno.test("tokenizer() matches published LLaMA-2 vectors and round-trips them", () => {
  const t = tokenizer();
  assert.equal(vectors.cases.length, 13);
  for (const { text, ids } of vectors.cases) {
    assert.deepEqual(Array.from(t.encode(text)), ids, JSON.stringify(text));
    assert.equal(t.decode(ids), text);
  }
});

Deno.test("referenceTokenizer() matches the same vectors", () => {
  const t = referenceTokenizer();
  for (const { text, ids } of vectors.cases) {
    assert.deepEqual(Array.from(t.encode(text)), ids, JSON.stringify(text));
    assert.equal(t.decode(ids), text);
  }
});

Deno.test("tokenizer() constants and the bos option", () => {
  const t = tokenizer();
  assert.equal(t.bos, 1);
  assert.equal(t.eos, 2);
  assert.equal(t.vocabSize, 32000);
  assert.deepEqual(Array.from(t.encode("grabbed", { bos: false })), [2646, 1327, 287]);
  assert.deepEqual(Array.from(t.encode("")), [BOS_ID]);
  assert.deepEqual(Array.from(t.encode("", { bos: false })), []);
});

/** Deterministic strings over an alphabet with the cases BPE gets wrong most easily. */
function* randomTexts(count: number): Generator<string> {
  const alphabet = [
    ..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789.,;:!?'\"()-",
    ...["  ", " ", " ", " ", "\n", "\n\n", "\t", "é", "ü", "—", "“", "”", "镇", "ʎ", "🦙", "Ꙋ"],
    ...["the", " the", "ing", " grabbed", "####", "    ", "http://", "."],
  ];
  let s = 12345;
  const next = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 8;
  for (let k = 0; k < count; k++) {
    const len = 1 + (next() % 60);
    let str = "";
    for (let i = 0; i < len; i++) str += alphabet[next() % alphabet.length];
    yield str;
  }
}

Deno.test("tokenizer() equals llama-tokenizer-js on 3000 generated strings and round-trips", () => {
  const fast = tokenizer(), ref = referenceTokenizer();
  for (const text of randomTexts(3000)) {
    const a = fast.encode(text);
    assert.deepEqual(Array.from(a), Array.from(ref.encode(text)), JSON.stringify(text));
    assert.equal(fast.decode(a), text);
  }
});

Deno.test("tokenizer() encodes a long run without spaces (heap BPE) like the reference", () => {
  const text = "ab".repeat(3000) + "=".repeat(2000) + "🦙".repeat(50);
  assert.deepEqual(
    Array.from(tokenizer().encode(text)),
    Array.from(referenceTokenizer().encode(text)),
  );
});

Deno.test("decode() skips control tokens, strips the dummy prefix after each BOS", () => {
  const t = tokenizer();
  const a = t.encode("Hello world"), b = t.encode("grabbed");
  assert.equal(t.decode([...a, EOS_ID, ...b, EOS_ID]), "Hello worldgrabbed");
  assert.equal(t.decode([0, 2646, 1327, 287]), "grabbed");
  // Invalid UTF-8 from byte tokens becomes U+FFFD; a lone surrogate encodes as U+FFFD.
  assert.equal(t.decode([243, 162]), "\ufffd");
  assert.equal(t.decode(t.encode("\ud800")), "\ufffd");
});

Deno.test("decode() rejects ids outside the vocabulary", () => {
  const t = tokenizer();
  assert.throws(() => t.decode([5, VOCAB_SIZE]), RangeError);
  assert.throws(() => t.decode([-1]), RangeError);
  assert.throws(() => t.decode([1.5]), RangeError);
});
