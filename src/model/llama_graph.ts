/**
 * The LLaMA decoder of Hugging Face's `LlamaForCausalLM` as an ONNX graph: token
 * embedding, N × (RMSNorm, causal attention with rotate-half rotary embeddings and
 * grouped KV heads, RMSNorm, SwiGLU MLP), final RMSNorm, LM head (tied or untied), mean
 * next-token cross-entropy over positions 0..T-2. Graph inputs are the parameters under
 * their HF names (layouts of `params.ts`) and `tokens` [B, T] int64; outputs `loss`,
 * optionally `logits` [B, T, V] and `grad:<name>` per parameter.
 *
 * Letters: B rows, T positions, H hidden, NH heads, NKV key/value heads, D = H / NH,
 * R = NH / NKV, I intermediate, V vocabulary, N = B·T.
 *
 * Left out: dropout, KV caches, attention biases, rope scaling variants.
 *
 * @module
 */
import { type DType, Graph, type T } from "../onnx/graph.ts";
import {
  add,
  concat,
  expand,
  gather,
  linear,
  matmul,
  mul,
  neg,
  reshape,
  rmsNorm,
  silu,
  slice,
  softmax,
  softmaxCrossEntropy,
  transpose,
  transposeLast,
} from "../onnx/ops.ts";
import { grad } from "../onnx/autodiff.ts";
import { type ModelConfig, paramTable } from "./params.ts";

/** What to build. */
export interface LlamaGraphOptions {
  batch: number;
  seqLen: number;
  dtype?: "float32" | "float64";
  /** Also output `logits` [B, T, V] (tests, inspection). */
  logits?: boolean;
  /** Append the backward pass: one `grad:<name>` output per parameter. */
  grads?: boolean;
}

/** Output name of a parameter's gradient. */
export const gradName = (param: string): string => `grad:${param}`;

/** Graph version: bump when the graph changes in a way a cache key cannot see. */
export const LLAMA_GRAPH_VERSION = 1;

/** cos and sin tables [T, D] of HF's rotary embedding (emb = cat(freqs, freqs)). */
export function ropeTables(
  cfg: ModelConfig,
  seqLen: number,
): { cos: Float64Array; sin: Float64Array } {
  const d = cfg.hiddenSize / cfg.numHeads, half = d / 2;
  const cos = new Float64Array(seqLen * d), sin = new Float64Array(seqLen * d);
  for (let t = 0; t < seqLen; t++) {
    for (let j = 0; j < half; j++) {
      // Angles in float64 (HF: float32); the difference is below float32 rounding of cos/sin.
      const a = t * cfg.ropeTheta ** (-(2 * j) / d);
      cos[t * d + j] = cos[t * d + j + half] = Math.cos(a);
      sin[t * d + j] = sin[t * d + j + half] = Math.sin(a);
    }
  }
  return { cos, sin };
}

/** x·cos + rotate_half(x)·sin, x [B, n, T, D], rotate_half(x) = cat(−x₂, x₁). */
function rope(x: T, cos: T, sin: T): T {
  const d = x.shape[3]!, half = d / 2;
  const rot = concat([neg(slice(x, [half], [d], [3])), slice(x, [0], [half], [3])], 3);
  return add(mul(x, cos), mul(rot, sin));
}

/** [N, n·D] → [B, n, T, D] */
function heads(x: T, b: number, t: number, n: number, d: number): T {
  return transpose(reshape(x, [b, t, n, d]), [0, 2, 1, 3]);
}

/** Builds the forward (and optionally backward) graph of `cfg`. */
export function buildLlamaGraph(cfg: ModelConfig, opts: LlamaGraphOptions): {
  graph: Graph;
  params: T[];
  tokens: T;
  loss: T;
} {
  const dtype: DType = opts.dtype ?? "float32";
  const B = opts.batch, T_ = opts.seqLen;
  const H = cfg.hiddenSize, NH = cfg.numHeads, NKV = cfg.numKvHeads, D = H / NH, R = NH / NKV;
  const N = B * T_;
  if (T_ < 2) {
    throw new RangeError(`Sequence length ${T_} is too short: next-token loss needs at least 2`);
  }
  const g = new Graph();
  const params = paramTable(cfg).map((p) => g.input(p.name, dtype, p.shape));
  const P = new Map(params.map((p) => [p.name, p]));
  const w = (name: string): T => P.get(name)!;
  const tokens = g.input("tokens", "int64", [B, T_]);

  const tab = ropeTables(cfg, T_);
  const cos = g.constant(tab.cos, dtype, [T_, D]), sin = g.constant(tab.sin, dtype, [T_, D]);
  // Additive causal mask [T, T]: 0 on and below the diagonal, a large negative above.
  const maskVals = new Float64Array(T_ * T_);
  for (let i = 0; i < T_; i++) for (let j = i + 1; j < T_; j++) maskVals[i * T_ + j] = -1e9;
  const mask = g.constant(maskVals, dtype, [T_, T_]);
  const scale = 1 / Math.sqrt(D);

  let x = reshape(gather(w("model.embed_tokens.weight"), tokens), [N, H]); // [N, H]
  for (let l = 0; l < cfg.numLayers; l++) {
    const p = `model.layers.${l}.`;
    // Attention block.
    const h = rmsNorm(x, w(`${p}input_layernorm.weight`), cfg.rmsNormEps);
    const q = rope(heads(linear(h, w(`${p}self_attn.q_proj.weight`)), B, T_, NH, D), cos, sin);
    let k = rope(heads(linear(h, w(`${p}self_attn.k_proj.weight`)), B, T_, NKV, D), cos, sin);
    let v = heads(linear(h, w(`${p}self_attn.v_proj.weight`)), B, T_, NKV, D); // [B, NKV, T, D]
    if (R > 1) { // repeat_kv: [B, NKV, T, D] → [B, NH, T, D], head j uses kv head ⌊j / R⌋
      const rep = (y: T) =>
        reshape(expand(reshape(y, [B, NKV, 1, T_, D]), [B, NKV, R, T_, D]), [B, NH, T_, D]);
      k = rep(k);
      v = rep(v);
    }
    const s = add(matmul(mul(q, scale), transposeLast(k)), mask); // [B, NH, T, T]
    const a = matmul(softmax(s, -1), v); // [B, NH, T, D]
    const merged = reshape(transpose(a, [0, 2, 1, 3]), [N, H]);
    x = add(x, linear(merged, w(`${p}self_attn.o_proj.weight`)));
    // SwiGLU MLP block.
    const m = rmsNorm(x, w(`${p}post_attention_layernorm.weight`), cfg.rmsNormEps);
    const gu = mul(
      silu(linear(m, w(`${p}mlp.gate_proj.weight`))),
      linear(m, w(`${p}mlp.up_proj.weight`)),
    );
    x = add(x, linear(gu, w(`${p}mlp.down_proj.weight`)));
  }
  x = rmsNorm(x, w("model.norm.weight"), cfg.rmsNormEps);
  const head = w(cfg.tieWordEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight");

  if (opts.logits) g.output(reshape(linear(x, head), [B, T_, cfg.vocabSize]), "logits");
  // Only positions 0..T-2 have a next token: drop the last before the big head MatMul.
  const xs = reshape(slice(reshape(x, [B, T_, H]), [0], [T_ - 1], [1]), [B * (T_ - 1), H]);
  const labels = reshape(slice(tokens, [1], [T_], [1]), [B * (T_ - 1)]);
  const { loss } = softmaxCrossEntropy(linear(xs, head), labels);
  g.output(loss, "loss");
  if (opts.grads) grad(loss, params).forEach((gp, i) => g.output(gp, gradName(params[i]!.name)));
  return { graph: g, params, tokens, loss };
}
