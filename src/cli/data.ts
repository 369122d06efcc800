import { type Command, notBuilt } from "./command.ts";

export const command: Command = notBuilt("data", "Show the pages a (window, uid) trains on", 5);
