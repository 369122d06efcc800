/**
 * Micro LLaMA configs for tests: two layers, four heads sharing two key/value heads,
 * sizes small enough for float64 references and finite differences. Each test names only
 * what it changes (its golden files or its point need those sizes).
 *
 * @module
 */
import type { ModelConfig } from "../src/model/params.ts";

/** The shared micro config (vocabulary 40, hidden 16, untied), with `changes` applied. */
export function microModel(changes: Partial<ModelConfig> = {}): ModelConfig {
  return {
    vocabSize: 40,
    hiddenSize: 16,
    intermediateSize: 24,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    maxSeqLen: 16,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    tieWordEmbeddings: false,
    ...changes,
  };
}
