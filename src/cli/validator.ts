/** `boltzmann validator`: score miners' deltas against recomputed gradients; set weights. */
import { type Command, parseCommand } from "./command.ts";
import { buildParticipant, PARTICIPANT_SURFACES } from "./participant.ts";
import { VALIDATOR } from "./flags.ts";
import { runValidator } from "../roles/validator.ts";

const SURFACES = [...PARTICIPANT_SURFACES, VALIDATOR];

export const command: Command = {
  about: `boltzmann validator --wallet.name N --wallet.hotkey H --netuid U --bucket B [flags]

Each window: rebuild the shared model as miners do, recompute each miner's gradient
on its own pages, score its delta (docs/INCENTIVES.md), keep a moving average, set
weights on chain every weights_interval windows, publish scores-{window}-{hotkey}.json.`,
  surfaces: SURFACES,
  async run(argv) {
    const { o } = parseCommand(argv, SURFACES);
    const evalBatches = o.num("eval-batches");
    const p = await buildParticipant(o);
    try {
      await runValidator(p, { maxWindows: p.maxWindows, evalBatches });
    } finally {
      await p.close();
    }
    return 0;
  },
};
