import { type Command, notBuilt } from "./command.ts";

export const command: Command = notBuilt(
  "localnet",
  "Start a local subtensor chain from the embedded genesis",
  7,
);
