/**
 * Training: the trainer (loss, gradients, clip + AdamW over ONNX graphs), the optimizer
 * and the graph cache. See docs/ENGINE.md.
 *
 * @module
 */
export * from "./trainer.ts";
export { adamwGraph, adamwStep, clipGrads, globalNorm } from "./adamw.ts";
export { cachedGraph, defaultCacheDir, graphFileName } from "./graph_cache.ts";
