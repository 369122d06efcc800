/**
 * The `--dataset` flags shared by every subcommand that trains or checks training
 * (miner, validator, inspect, data, train): which data source, and for fineweb where
 * to fetch and cache pages.
 *
 * @module
 */
import type { ParseArgsOptionsConfig } from "node:util";
import type { Hparams } from "../hparams.ts";
import { DATASETS, openDataset } from "../data/open.ts";
import type { Dataset } from "../data/pages.ts";
import { type Flags, int, oneOf, str } from "./args.ts";

/** Flag specs to spread into a subcommand's parseFlags spec. */
export const DATASET_FLAGS: ParseArgsOptionsConfig = {
  dataset: { type: "string" },
  "fineweb-config": { type: "string" },
  "fineweb-rows": { type: "string" },
  "fineweb-url": { type: "string" },
  "data-cache-mb": { type: "string" },
};

/** Usage lines for {@link DATASET_FLAGS}. */
export const DATASET_USAGE: readonly string[] = [
  "  --dataset D          embedded (default: built-in corpus, no network) or fineweb",
  "                       (HuggingFaceFW/fineweb-edu-score-2 via the HF datasets-server)",
  "  --fineweb-config C   fineweb config (default: default)",
  "  --fineweb-rows N     pin the row count instead of asking the server (all peers must agree)",
  "  --fineweb-url URL    datasets-server base URL (default https://datasets-server.huggingface.co)",
  "  --data-cache-mb N    fineweb page cache cap in MB, under $XDG_CACHE_HOME/boltzmann/fineweb",
  "                       (default 1024; 0 disables the cache)",
];

/**
 * The dataset the flags name, for `hp`.
 * @param env environment lookup (XDG_CACHE_HOME, HOME) for the cache directory
 * @throws {UsageError} on a bad flag value; {@link Error} when the source is unavailable
 */
export function datasetFromFlags(
  flags: Flags,
  hp: Hparams,
  env: (key: string) => string | undefined = (k) => Deno.env.get(k),
): Promise<Dataset> {
  const kind = oneOf(flags, "dataset", DATASETS, "embedded");
  const rows = int(flags, "fineweb-rows", 0, 0);
  const cacheMb = int(flags, "data-cache-mb", 1024, 0, 1 << 20);
  const cacheRoot = env("XDG_CACHE_HOME") ?? `${env("HOME") ?? "."}/.cache`;
  return openDataset(hp, kind, {
    config: str(flags, "fineweb-config"),
    baseUrl: str(flags, "fineweb-url"),
    ...(rows > 0 ? { totalRows: rows } : {}),
    ...(cacheMb > 0
      ? { cacheDir: `${cacheRoot}/boltzmann/fineweb`, cacheMaxBytes: cacheMb * 2 ** 20 }
      : {}),
  });
}
