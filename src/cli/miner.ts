import { type Command, notBuilt } from "./command.ts";

export const command: Command = notBuilt(
  "miner",
  "Train on your assigned pages and publish signed slices",
  8,
);
