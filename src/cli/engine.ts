/**
 * Flags shared by the commands that run the training engine (`train`, `grad`, the
 * miner and validator may reuse them): `--device`, `--threads`, and the graph cache
 * directory from the environment.
 *
 * @module
 */
import type { ParseArgsOptionsConfig } from "node:util";
import { type Flags, int, oneOf } from "./args.ts";
import { defaultCacheDir } from "../train/graph_cache.ts";
import type { TrainerOptions } from "../train/trainer.ts";

/** `--device cpu|cuda`, `--threads N`. */
export const ENGINE_FLAGS: ParseArgsOptionsConfig = {
  device: { type: "string" },
  threads: { type: "string" },
};

/** Help lines for {@link ENGINE_FLAGS}. */
export const ENGINE_USAGE = [
  "  --device D     cpu (default) or cuda (ONNX Runtime's CUDA provider)",
  "  --threads N    ONNX Runtime intra-op threads (default: one per core)",
];

/**
 * Trainer options from flags and the environment (graph cache under
 * $XDG_CACHE_HOME/boltzmann/graphs or ~/.cache/boltzmann/graphs).
 * @throws {UsageError} on a bad --device or --threads
 */
export function engineOptions(flags: Flags): TrainerOptions {
  const threads = int(flags, "threads", 0, 1, 1024);
  return {
    device: oneOf(flags, "device", ["cpu", "cuda"] as const, "cpu"),
    ...(threads ? { threads } : {}),
    cacheDir: defaultCacheDir({
      XDG_CACHE_HOME: Deno.env.get("XDG_CACHE_HOME"),
      HOME: Deno.env.get("HOME"),
    }),
  };
}
