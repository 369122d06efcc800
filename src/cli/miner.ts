/** `boltzmann miner`: train on the assigned pages and publish signed slices each window. */
import { type Command, parseCommand } from "./command.ts";
import { buildParticipant, PARTICIPANT_ENV, PARTICIPANT_SURFACES } from "./participant.ts";
import { MINER } from "./flags.ts";
import { runMiner } from "../roles/miner.ts";
import type { Adversary } from "../roles/adversary.ts";
import { newAdamState } from "../train/trainer.ts";
import { paramTable } from "../model/params.ts";

const SURFACES = [...PARTICIPANT_SURFACES, MINER];

const ABOUT = [
  "boltzmann miner --wallet.name N --wallet.hotkey H --netuid U --bucket B [flags]",
  "",
  "Each window: average peers' state slices in, apply peers' deltas, train on the pages",
  "the chain assigns this uid until the window ends, publish signed delta and state",
  "slices to the bucket, keep max_history windows. Commits the bucket on chain once.",
  PARTICIPANT_ENV,
].join("\n");

export const command: Command = {
  about: ABOUT,
  surfaces: SURFACES,
  async run(argv) {
    const { o } = parseCommand(argv, SURFACES);
    const adversary = o.strOpt("adversary") as Adversary | undefined;
    const maxBatches = o.numOpt("max-batches");
    const p = await buildParticipant(o);
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
