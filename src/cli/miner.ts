/** `boltzmann miner`: each window, compute an update at the shared θ_w and publish it signed. */
import { type Command, parseCommand } from "./command.ts";
import { buildParticipant, PARTICIPANT_SURFACES } from "./participant.ts";
import { MINER } from "./flags.ts";
import { runMiner } from "../roles/miner.ts";
import { type Adversary, strategyFor } from "../roles/adversary.ts";

const SURFACES = [...PARTICIPANT_SURFACES, MINER];

const ABOUT = `boltzmann miner --wallet.name N --wallet.hotkey H --netuid U --bucket B [flags]

Each window: apply the lead validator's manifest of the last window to the shared
model θ (re-syncing from its checkpoint when the digests disagree), compute the
gradient at θ_w on the pages the chain assigns this uid, encode it with error
feedback, publish the signed update to the bucket before the window's deadline.
Commits the bucket on chain once.`;

export const command: Command = {
  about: ABOUT,
  surfaces: SURFACES,
  async run(argv) {
    const { o } = parseCommand(argv, SURFACES);
    const adversary = o.strOpt("adversary") as Adversary | undefined;
    const maxBatches = o.numOpt("max-batches");
    const p = await buildParticipant(o);
    try {
      await runMiner(p, {
        strategy: adversary ? strategyFor(adversary) : undefined,
        maxBatches,
        maxWindows: p.maxWindows,
      });
    } finally {
      await p.close();
    }
    return 0;
  },
};
