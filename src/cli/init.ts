/**
 * `boltzmann init`: write a fresh checkpoint (Hugging Face layout) initialised as HF
 * initialises a LLaMA, deterministically from `--seed`, and print its path, parameter
 * count and model fingerprint.
 *
 * @module
 */
import { type Command, parseCommand } from "./command.ts";
import { hparamsFromFlags } from "./config.ts";
import { HPARAMS, INIT } from "./flags.ts";
import { modelFingerprint } from "../hparams.ts";
import { initParams } from "../model/init.ts";
import { paramCount, paramTable } from "../model/params.ts";
import { saveCheckpoint, WEIGHTS_FILE } from "../model/checkpoint.ts";

const SURFACES = [INIT, HPARAMS];

export const command: Command = {
  about: `boltzmann init --out DIR [--preset tiny|seed] [--hparams FILE] [--seed S]
               [--dtype f32|bf16] [--json]

Writes DIR/config.json and DIR/model.safetensors (Hugging Face LlamaForCausalLM
layout; see docs/CHECKPOINTS.md) with weights ~ Normal(0, 0.02) and norms = 1,
drawn deterministically from --seed (default 0): the same seed gives the same bytes
on every machine. An existing checkpoint at DIR is replaced atomically.
--json prints {path, preset, seed, dtype, parameters, bytes, fingerprint}.`,
  surfaces: SURFACES,
  async run(argv) {
    const { o } = parseCommand(argv, SURFACES);
    o.need("out", "where to write the checkpoint");
    const out = o.str("out");
    const seed = o.num("seed");
    const dtype = o.choice<"f32" | "bf16">("dtype");
    const json = o.bool("json");
    const hp = await hparamsFromFlags(o);
    const cfg = hp.model;
    const count = paramCount(paramTable(cfg));
    if (!json) {
      console.error(`Initialising ${count.toLocaleString("en-US")} parameters (seed ${seed})`);
    }
    const params = initParams(cfg, seed);
    await saveCheckpoint(out, cfg, params, { dtype: dtype === "bf16" ? "BF16" : "F32" });
    const bytes = (await Deno.stat(`${out}/${WEIGHTS_FILE}`)).size;
    const report = {
      path: out,
      preset: hp.preset,
      seed,
      dtype,
      parameters: count,
      bytes,
      fingerprint: modelFingerprint(cfg),
    };
    if (json) {
      console.log(JSON.stringify(report));
    } else {
      console.log(
        `Wrote ${out}: preset ${hp.preset}, ${count.toLocaleString("en-US")} parameters, ` +
          `${dtype}, ${(bytes / 1e6).toFixed(1)} MB, fingerprint ${report.fingerprint}`,
      );
    }
    return 0;
  },
};
