/**
 * `boltzmann init`: write a fresh checkpoint (Hugging Face layout) initialised as HF
 * initialises a LLaMA, deterministically from `--seed`, and print its path, parameter
 * count and model fingerprint.
 *
 * @module
 */
import type { Command } from "./command.ts";
import { int, oneOf, parseFlags, str, UsageError } from "./args.ts";
import { hparamsFromFlags } from "./config.ts";
import { modelFingerprint } from "../hparams.ts";
import { initParams } from "../model/init.ts";
import { paramCount, paramTable } from "../model/params.ts";
import { saveCheckpoint, WEIGHTS_FILE } from "../model/checkpoint.ts";

export const command: Command = {
  name: "init",
  summary: "Write a fresh checkpoint",
  usage: [
    "boltzmann init --out DIR [--preset tiny|seed] [--hparams FILE] [--seed S]",
    "               [--dtype f32|bf16] [--json]",
    "",
    "Writes DIR/config.json and DIR/model.safetensors (Hugging Face LlamaForCausalLM",
    "layout; see docs/CHECKPOINTS.md) with weights ~ Normal(0, 0.02) and norms = 1,",
    "drawn deterministically from --seed (default 0): the same seed gives the same bytes",
    "on every machine. An existing checkpoint at DIR is replaced atomically.",
    "",
    "  --preset P     model preset (default tiny)",
    "  --hparams FILE JSON overrides with the original's hparams.json keys",
    "  --seed S       initialisation seed, an integer >= 0 (default 0)",
    "  --out DIR      checkpoint directory to write",
    "  --dtype D      f32 (default) or bf16 on disk",
    "  --json         print {path, preset, seed, dtype, parameters, bytes, fingerprint}",
  ].join("\n"),
  async run(argv) {
    const { flags } = parseFlags(argv, {
      preset: { type: "string" },
      hparams: { type: "string" },
      seed: { type: "string" },
      out: { type: "string" },
      dtype: { type: "string" },
    });
    const out = str(flags, "out");
    if (!out) throw new UsageError("Missing --out DIR: where to write the checkpoint");
    const seed = int(flags, "seed", 0, 0);
    const dtype = oneOf(flags, "dtype", ["f32", "bf16"] as const, "f32");
    const hp = await hparamsFromFlags(flags);
    const cfg = hp.model;
    const count = paramCount(paramTable(cfg));
    if (!flags.json) {
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
    if (flags.json) {
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
