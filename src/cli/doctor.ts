import { type Command, notBuilt } from "./command.ts";

export const command: Command = notBuilt(
  "doctor",
  "Check this machine: runtime, ONNX Runtime providers, CUDA, paths, credentials",
  3,
);
