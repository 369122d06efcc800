import { type Command, notBuilt } from "./command.ts";

export const command: Command = notBuilt(
  "train",
  "Train the model locally on the embedded corpus",
  4,
);
