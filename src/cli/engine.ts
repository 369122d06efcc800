/**
 * Trainer options from the compute flags (ENGINE in flags.ts: `train`, `grad`, `inspect`,
 * `devnet`, the miner and the validator) and the graph cache directory from the
 * environment.
 *
 * @module
 */
import type { Options } from "./args.ts";
import { defaultCacheDir } from "../train/graph_cache.ts";
import type { TrainerOptions } from "../train/trainer.ts";

/**
 * Trainer options from the compute flags and the environment (graph cache under
 * $XDG_CACHE_HOME/boltzmann/graphs or ~/.cache/boltzmann/graphs).
 */
export function engineOptions(
  o: Options,
  env: (key: string) => string | undefined = (k) => Deno.env.get(k),
): TrainerOptions {
  const threads = o.numOpt("threads");
  return {
    device: o.choice<"cpu" | "cuda">("device"),
    ...(threads ? { threads } : {}),
    cacheDir: defaultCacheDir({ XDG_CACHE_HOME: env("XDG_CACHE_HOME"), HOME: env("HOME") }),
  };
}
