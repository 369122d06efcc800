/**
 * `bench indices`: slice indices for the `seed` preset's whole parameter table, in
 * M indices/s on one core; the reference, measured in the same run, is the naive way
 * (the same permutation values sorted with `Uint32Array.prototype.sort`).
 */
import type { Bench } from "./mod.ts";
import type { Hparams } from "../hparams.ts";
import { paramTable } from "../model/params.ts";
import { feistel, keyWords, sliceIndices, sliceSize } from "../window.ts";

/** What `bench indices` takes (the CLI parses it from flags). */
export interface IndicesOptions {
  /** The parameter table to derive indices for (`seed` by default). */
  hp: Hparams;
  json: boolean;
}

export const bench: Bench<IndicesOptions> = {
  summary: "slice-index derivation for a preset's full table, M indices/s (target >= 20)",
  run({ hp, json }) {
    const table = paramTable(hp.model);
    const seed = "delta:0x" + "5a".repeat(32);
    const pass = (tag: string) => {
      const t0 = performance.now();
      let n = 0;
      for (const p of table) n += sliceIndices(seed + tag, p.name, p.numel, hp.compression).length;
      return { n, ms: performance.now() - t0 };
    };
    pass("warmup");
    const runs = [pass("a"), pass("b"), pass("c")];
    const best = runs.reduce((a, b) => (a.ms < b.ms ? a : b));
    // Reference: same permutation values, sorted by the built-in comparison-free sort.
    const t0 = performance.now();
    let refN = 0;
    for (const p of table) {
      const k = sliceSize(p.numel, hp.compression);
      const pi = feistel(keyWords(["ref", p.name]), p.numel);
      const v = new Uint32Array(k);
      for (let i = 0; i < k; i++) v[i] = pi(i);
      v.sort();
      refN += k;
    }
    const refMs = performance.now() - t0;
    const rate = best.n / best.ms / 1e3, refRate = refN / refMs / 1e3;
    const out = {
      preset: hp.preset,
      tensors: table.length,
      indices: best.n,
      ms: +best.ms.toFixed(1),
      m_indices_per_s: +rate.toFixed(1),
      reference_sort_m_per_s: +refRate.toFixed(1),
      ratio: +(rate / refRate).toFixed(2),
      target_m_per_s: 20,
    };
    if (json) console.log(JSON.stringify(out));
    else {
      console.log(
        `indices  preset=${out.preset} tensors=${out.tensors} indices=${out.indices} ` +
          `time=${out.ms} ms  ${out.m_indices_per_s} M indices/s (target >= 20)  ` +
          `reference permute+sort ${out.reference_sort_m_per_s} M/s  ratio ${out.ratio}x`,
      );
    }
    return Promise.resolve(0);
  },
};
