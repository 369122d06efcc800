/**
 * The dataset that the data-source flags (DATASET in flags.ts) name (miner, validator,
 * inspect, data): which data source, and for fineweb where to fetch and cache pages.
 *
 * @module
 */
import type { Hparams } from "../hparams.ts";
import { type DatasetKind, openDataset } from "../data/open.ts";
import type { Dataset } from "../data/pages.ts";
import type { Options } from "./args.ts";

/**
 * The dataset the flags name, for `hp`.
 * @param env environment lookup (XDG_CACHE_HOME, HOME) for the cache directory
 * @throws {Error} when the source is unavailable
 */
export function datasetFromFlags(
  o: Options,
  hp: Hparams,
  env: (key: string) => string | undefined = (k) => Deno.env.get(k),
): Promise<Dataset> {
  const rows = o.num("fineweb-rows");
  const cacheMb = o.num("data-cache-mb");
  const cacheRoot = env("XDG_CACHE_HOME") ?? `${env("HOME") ?? "."}/.cache`;
  return openDataset(hp, o.choice<DatasetKind>("dataset"), {
    config: o.strOpt("fineweb-config"),
    baseUrl: o.strOpt("fineweb-url"),
    ...(rows > 0 ? { totalRows: rows } : {}),
    ...(cacheMb > 0
      ? { cacheDir: `${cacheRoot}/boltzmann/fineweb`, cacheMaxBytes: cacheMb * 2 ** 20 }
      : {}),
  });
}
