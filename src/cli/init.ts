import { type Command, notBuilt } from "./command.ts";

export const command: Command = notBuilt("init", "Write a fresh checkpoint", 4);
