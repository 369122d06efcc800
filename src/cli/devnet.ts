import { type Command, notBuilt } from "./command.ts";

export const command: Command = notBuilt(
  "devnet",
  "Run a whole local network (chain, storage, miners, adversaries, validator)",
  8,
);
