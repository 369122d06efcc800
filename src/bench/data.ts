import type { Bench } from "./mod.ts";

export const bench: Bench = {
  summary: "tokenizer MB/s and tokens/s (not built yet)",
  run() {
    console.error("bench data: not built yet (issue #5)");
    return Promise.resolve(1);
  },
};
