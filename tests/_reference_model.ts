/**
 * A plain-TypeScript float64 reference of the LLaMA forward pass and loss, written from
 * the math of Hugging Face's `LlamaForCausalLM` (not from the ONNX graph code), so the
 * graph can be checked against something independent. Slow on purpose: plain loops,
 * no caching, no batching tricks. For micro configs in tests, not for training.
 *
 * Letters: B rows, T positions, H hidden, NH heads, NKV key/value heads, D = H / NH head
 * size, I intermediate, V vocabulary.
 *
 * Left out: gradients (finite differences of this give them), dropout, KV caches.
 *
 * @module
 */
import { type ModelConfig, paramTable } from "../src/model/params.ts";

/** Parameters by HF name: float32 as trained, or float64 (e.g. for finite differences). */
export type ReferenceParams = ReadonlyMap<string, Float32Array | Float64Array>;

/** Logits `[B, T, V]` row-major and the mean next-token cross-entropy. */
export interface ReferenceOutput {
  logits: Float64Array;
  loss: number;
}

/** y[o] = Σ_i W[o, i] x[i] for a PyTorch Linear weight `[out, in]`. */
function linear(w: Float32Array | Float64Array, x: Float64Array, out: number): Float64Array {
  const n = x.length, y = new Float64Array(out);
  for (let o = 0; o < out; o++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += w[o * n + i]! * x[i]!;
    y[o] = s;
  }
  return y;
}

/** x * rsqrt(mean(x²) + eps) * w */
function rmsNorm(x: Float64Array, w: Float32Array | Float64Array, eps: number): Float64Array {
  let ms = 0;
  for (const v of x) ms += v * v;
  const r = 1 / Math.sqrt(ms / x.length + eps);
  return x.map((v, i) => v * r * w[i]!);
}

/**
 * Rotary embedding in HF's rotate-half convention, in place on one head vector `v` of
 * size D at position `pos`: v*cos + rotate_half(v)*sin with rotate_half(v) = [-v2, v1]
 * and angle(pos, j) = pos * theta^(-2j/D) for both halves.
 */
function rope(v: Float64Array, off: number, d: number, pos: number, theta: number): void {
  const half = d / 2;
  for (let j = 0; j < half; j++) {
    const a = pos * Math.pow(theta, -(2 * j) / d);
    const c = Math.cos(a), s = Math.sin(a);
    const x1 = v[off + j]!, x2 = v[off + j + half]!;
    v[off + j] = x1 * c - x2 * s;
    v[off + j + half] = x2 * c + x1 * s;
  }
}

function get(params: ReferenceParams, name: string, numel: number): Float32Array | Float64Array {
  const t = params.get(name);
  if (!t) throw new RangeError(`Reference model: parameter '${name}' is missing`);
  if (t.length !== numel) {
    throw new RangeError(
      `Reference model: parameter '${name}' has ${t.length} values, expected ${numel}`,
    );
  }
  return t;
}

/**
 * Forward pass and loss of the LLaMA decoder in float64.
 * @param cfg the architecture
 * @param params every tensor of `paramTable(cfg)` by HF name (float32 or float64 values)
 * @param tokens `B * T` token ids, row-major
 * @returns logits `[B, T, V]` and the mean cross-entropy of predicting token t+1 from
 *   positions 0..T-2 of every row
 * @throws {RangeError} on a missing or mis-sized parameter, a token out of range, or T < 2
 */
export function referenceForward(
  cfg: ModelConfig,
  params: ReferenceParams,
  tokens: Int32Array,
  B: number,
  T: number,
): ReferenceOutput {
  const H = cfg.hiddenSize, NH = cfg.numHeads, NKV = cfg.numKvHeads;
  const D = H / NH, KV = NKV * D, I = cfg.intermediateSize, V = cfg.vocabSize;
  const eps = cfg.rmsNormEps;
  if (!Number.isInteger(B) || !Number.isInteger(T) || B < 1 || T < 2) {
    throw new RangeError(`Reference model: need B >= 1 rows of T >= 2 tokens, got ${B}×${T}`);
  }
  if (tokens.length !== B * T) {
    throw new RangeError(`Reference model: ${tokens.length} tokens for ${B}×${T}`);
  }
  for (const id of tokens) {
    if (id < 0 || id >= V) throw new RangeError(`Reference model: token ${id} outside 0..${V - 1}`);
  }
  const w = new Map(paramTable(cfg).map((p) => [p.name, get(params, p.name, p.numel)]));
  const p = (name: string) => w.get(name)!;
  const head = cfg.tieWordEmbeddings ? p("model.embed_tokens.weight") : p("lm_head.weight");
  const emb = p("model.embed_tokens.weight");
  const logits = new Float64Array(B * T * V);
  let lossSum = 0;

  for (let b = 0; b < B; b++) {
    // x: T residual vectors of size H.
    let x: Float64Array[] = [];
    for (let t = 0; t < T; t++) {
      const id = tokens[b * T + t]!;
      x.push(Float64Array.from(emb.subarray(id * H, (id + 1) * H)));
    }
    for (let l = 0; l < cfg.numLayers; l++) {
      const L = `model.layers.${l}.`;
      const h = x.map((v) => rmsNorm(v, p(`${L}input_layernorm.weight`), eps));
      const q = h.map((v) => linear(p(`${L}self_attn.q_proj.weight`), v, H)); // [T][NH*D]
      const k = h.map((v) => linear(p(`${L}self_attn.k_proj.weight`), v, KV)); // [T][NKV*D]
      const v = h.map((u) => linear(p(`${L}self_attn.v_proj.weight`), u, KV));
      for (let t = 0; t < T; t++) {
        for (let n = 0; n < NH; n++) rope(q[t]!, n * D, D, t, cfg.ropeTheta);
        for (let n = 0; n < NKV; n++) rope(k[t]!, n * D, D, t, cfg.ropeTheta);
      }
      const att = x.map(() => new Float64Array(H)); // [T][NH*D]
      for (let n = 0; n < NH; n++) {
        const g = Math.floor(n / (NH / NKV)); // repeat_kv: query head n reads kv head g
        for (let t = 0; t < T; t++) {
          const s = new Float64Array(t + 1); // causal: keys 0..t
          let max = -Infinity;
          for (let u = 0; u <= t; u++) {
            let dot = 0;
            for (let j = 0; j < D; j++) dot += q[t]![n * D + j]! * k[u]![g * D + j]!;
            s[u] = dot / Math.sqrt(D);
            max = Math.max(max, s[u]!);
          }
          let z = 0;
          for (let u = 0; u <= t; u++) z += s[u] = Math.exp(s[u]! - max);
          for (let u = 0; u <= t; u++) {
            for (let j = 0; j < D; j++) att[t]![n * D + j]! += (s[u]! / z) * v[u]![g * D + j]!;
          }
        }
      }
      const o = att.map((a) => linear(p(`${L}self_attn.o_proj.weight`), a, H));
      x = x.map((r, t) => r.map((val, i) => val + o[t]![i]!));
      const h2 = x.map((r) => rmsNorm(r, p(`${L}post_attention_layernorm.weight`), eps));
      const mlp = h2.map((u) => {
        const gate = linear(p(`${L}mlp.gate_proj.weight`), u, I);
        const up = linear(p(`${L}mlp.up_proj.weight`), u, I);
        const act = gate.map((gv, i) => (gv / (1 + Math.exp(-gv))) * up[i]!); // silu(gate)·up
        return linear(p(`${L}mlp.down_proj.weight`), act, H);
      });
      x = x.map((r, t) => r.map((val, i) => val + mlp[t]![i]!));
    }
    for (let t = 0; t < T; t++) {
      const f = rmsNorm(x[t]!, p("model.norm.weight"), eps);
      const z = linear(head, f, V);
      logits.set(z, (b * T + t) * V);
      if (t < T - 1) {
        const max = z.reduce((m, a) => Math.max(m, a), -Infinity);
        let se = 0;
        for (const a of z) se += Math.exp(a - max);
        lossSum += max + Math.log(se) - z[tokens[b * T + t + 1]!]!;
      }
    }
  }
  return { logits, loss: lossSum / (B * (T - 1)) };
}
