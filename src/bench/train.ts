import type { Bench } from "./mod.ts";

export const bench: Bench = {
  summary: "training step tokens/s and GFLOP/s vs ONNX Runtime MatMul (not built yet)",
  run() {
    console.error("bench train: not built yet (issue #4)");
    return Promise.resolve(1);
  },
};
