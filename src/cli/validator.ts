import { type Command, notBuilt } from "./command.ts";

export const command: Command = notBuilt(
  "validator",
  "Score miners' deltas against recomputed gradients and set weights",
  8,
);
