import { type Command, notBuilt } from "./command.ts";

export const command: Command = notBuilt(
  "grad",
  "Loss and gradients of a checkpoint on given tokens",
  4,
);
