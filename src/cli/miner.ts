/** `boltzmann miner`: train on the assigned pages and publish signed slices each window. */
import type { Command } from "./command.ts";
import { int, oneOf, parseFlags } from "./args.ts";
import { buildParticipant, PARTICIPANT_FLAGS, PARTICIPANT_USAGE } from "./participant.ts";
import { runMiner } from "../roles/miner.ts";
import { ADVERSARIES, type Adversary } from "../roles/adversary.ts";
import { newAdamState } from "../train/trainer.ts";
import { paramTable } from "../model/params.ts";

export const command: Command = {
  name: "miner",
  summary: "Train on your assigned pages and publish signed slices",
  usage: [
    "boltzmann miner --wallet.name N --wallet.hotkey H --netuid U --bucket B [flags]",
    "",
    "Each window: average peers' state slices in, apply peers' deltas, train on the pages",
    "the chain assigns this uid until the window ends, publish signed delta and state",
    "slices to the bucket, keep max_history windows. Commits the bucket on chain once.",
    "",
    ...PARTICIPANT_USAGE,
    "  --max-batches N                     at most N micro-batches per window",
    `  --adversary K                       misbehave on purpose (devnet/tests): ${
      ADVERSARIES.join(", ")
    }`,
  ].join("\n"),
  async run(argv) {
    const { flags } = parseFlags(argv, {
      ...PARTICIPANT_FLAGS,
      "max-batches": { type: "string" },
      adversary: { type: "string" },
    });
    const adversary = flags.adversary === undefined
      ? undefined
      : oneOf(flags, "adversary", ADVERSARIES, "zero") as Adversary;
    const maxBatches = flags["max-batches"] === undefined
      ? undefined
      : int(flags, "max-batches", 1, 1);
    const p = await buildParticipant(flags);
    try {
      await runMiner(
        { ...p, opt: newAdamState(paramTable(p.hp.model)) },
        { adversary, maxBatches, maxWindows: p.maxWindows, dtype: p.dtype, saveState: p.saveState },
      );
    } finally {
      await p.close();
    }
    return 0;
  },
};
