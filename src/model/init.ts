/**
 * Fresh parameters as Hugging Face initialises a LLaMA: every Linear and the embedding
 * ~ Normal(0, 0.02), RMSNorm weights 1. Deterministic from a seed (SHA-256-keyed
 * counter generator + Box–Muller), so two machines with the same seed agree bit for bit.
 *
 * @module
 */
import { type ModelConfig, paramTable, type Tensors } from "./params.ts";
import { keyWords } from "../window.ts";

/** HF's `initializer_range`. */
export const INIT_STD = 0.02;

/** Fills `out` with Normal(0, std) draws from a generator keyed by `parts`. */
export function fillNormal(out: Float32Array, std: number, parts: (string | number)[]): void {
  const k = keyWords(parts);
  // xorshift128 state from the key; counter-free but fully determined by the key.
  let a = k[0]! | 1, b = k[1]!, c = k[2]!, d = k[3]!;
  const next = (): number => {
    const t = a ^ (a << 11);
    a = b;
    b = c;
    c = d;
    d = (d ^ (d >>> 19) ^ (t ^ (t >>> 8))) >>> 0;
    return d;
  };
  const u01 = (): number => (next() + 0.5) / 4294967296; // (0, 1), never 0
  for (let i = 0; i < out.length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(u01())) * std, th = 2 * Math.PI * u01();
    out[i] = r * Math.cos(th);
    if (i + 1 < out.length) out[i + 1] = r * Math.sin(th);
  }
}

/**
 * A fresh parameter set for `cfg` from `seed`, in table order; written into `into`'s
 * arrays when given (e.g. a resident block's, src/train/resident.ts), else fresh ones.
 */
export function initParams(cfg: ModelConfig, seed: number, into?: Tensors): Tensors {
  const out: Tensors = new Map();
  for (const p of paramTable(cfg)) {
    const t = into?.get(p.name) ?? new Float32Array(p.numel);
    if (t.length !== p.numel) {
      throw new RangeError(`initParams: '${p.name}' has ${t.length} values, expected ${p.numel}`);
    }
    if (p.shape.length === 1) t.fill(1);
    else fillNormal(t, INIT_STD, ["boltzmann/init/v1", seed, p.name]);
    out.set(p.name, t);
  }
  return out;
}
