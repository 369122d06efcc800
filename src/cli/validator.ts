/** `boltzmann validator`: score miners' deltas against recomputed gradients; set weights. */
import type { Command } from "./command.ts";
import { int, parseFlags } from "./args.ts";
import { buildParticipant, PARTICIPANT_FLAGS, PARTICIPANT_USAGE } from "./participant.ts";
import { runValidator } from "../roles/validator.ts";

export const command: Command = {
  name: "validator",
  summary: "Score miners' deltas against recomputed gradients and set weights",
  usage: [
    "boltzmann validator --wallet.name N --wallet.hotkey H --netuid U --bucket B [flags]",
    "",
    "Each window: rebuild the shared model as miners do, recompute each miner's gradient",
    "on its own pages, score its delta (docs/INCENTIVES.md), keep a moving average, set",
    "weights on chain every weights_interval windows, publish scores-{window}-{hotkey}.json.",
    "",
    ...PARTICIPANT_USAGE,
    "  --eval-batches N                    batches of a miner's pages recomputed (default 2)",
  ].join("\n"),
  async run(argv) {
    const { flags } = parseFlags(argv, {
      ...PARTICIPANT_FLAGS,
      "eval-batches": { type: "string" },
    });
    const evalBatches = int(flags, "eval-batches", 2, 1, 1000);
    const p = await buildParticipant(flags);
    try {
      await runValidator(p, { maxWindows: p.maxWindows, evalBatches });
    } finally {
      await p.close();
    }
    return 0;
  },
};
