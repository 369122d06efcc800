/**
 * The parameter table of a LLaMA decoder: names, shapes and order exactly as Hugging Face
 * `LlamaForCausalLM` names them. Pure data; knows nothing of ONNX or training.
 *
 * @module
 */

/** Model architecture, with the LlamaConfig names translated to camelCase. */
export interface ModelConfig {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  maxSeqLen: number;
  rmsNormEps: number;
  ropeTheta: number;
  tieWordEmbeddings: boolean;
}

/** One parameter tensor: its HF name and shape (row-major, as PyTorch stores it). */
export interface ParamSpec {
  name: string;
  shape: number[];
  numel: number;
}

/** Named float32 tensors in table order (parameters, gradients, moments, slices). */
export type Tensors = Map<string, Float32Array>;

function spec(name: string, shape: number[]): ParamSpec {
  return { name, shape, numel: shape.reduce((a, b) => a * b, 1) };
}

/**
 * The parameters of `cfg` in the order HF's `state_dict()` lists them.
 * Linear weights are `[out, in]` as in PyTorch.
 */
export function paramTable(cfg: ModelConfig): ParamSpec[] {
  const h = cfg.hiddenSize, i = cfg.intermediateSize;
  const headDim = h / cfg.numHeads;
  const kv = cfg.numKvHeads * headDim;
  const out: ParamSpec[] = [spec("model.embed_tokens.weight", [cfg.vocabSize, h])];
  for (let l = 0; l < cfg.numLayers; l++) {
    const p = `model.layers.${l}.`;
    out.push(
      spec(`${p}self_attn.q_proj.weight`, [h, h]),
      spec(`${p}self_attn.k_proj.weight`, [kv, h]),
      spec(`${p}self_attn.v_proj.weight`, [kv, h]),
      spec(`${p}self_attn.o_proj.weight`, [h, h]),
      spec(`${p}mlp.gate_proj.weight`, [i, h]),
      spec(`${p}mlp.up_proj.weight`, [i, h]),
      spec(`${p}mlp.down_proj.weight`, [h, i]),
      spec(`${p}input_layernorm.weight`, [h]),
      spec(`${p}post_attention_layernorm.weight`, [h]),
    );
  }
  out.push(spec("model.norm.weight", [h]));
  if (!cfg.tieWordEmbeddings) out.push(spec("lm_head.weight", [cfg.vocabSize, h]));
  return out;
}

/** Total number of scalars in a table. */
export function paramCount(table: readonly ParamSpec[]): number {
  return table.reduce((a, p) => a + p.numel, 0);
}
