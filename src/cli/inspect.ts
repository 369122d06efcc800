import { type Command, notBuilt } from "./command.ts";

export const command: Command = notBuilt(
  "inspect",
  "Everything about one window, or one slice file",
  8,
);
