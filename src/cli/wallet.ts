import { type Command, notBuilt } from "./command.ts";

export const command: Command = notBuilt(
  "wallet",
  "Create or show bittensor-compatible wallets",
  7,
);
