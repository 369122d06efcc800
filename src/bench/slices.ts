import type { Bench } from "./mod.ts";

export const bench: Bench = {
  summary: "gather/scatter, codec, signatures and store throughput (not built yet)",
  run() {
    console.error("bench slices: not built yet (issue #6)");
    return Promise.resolve(1);
  },
};
