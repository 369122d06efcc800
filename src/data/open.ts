/**
 * Picks the training data source by name: the embedded corpus (default, no network) or
 * fineweb-edu pages from the Hugging Face datasets-server.
 *
 * @module
 */
import type { Hparams } from "../hparams.ts";
import { type Dataset, embeddedDataset } from "./pages.ts";
import { fineWebDataset, type FineWebOptions } from "./remote.ts";

/** Names accepted by `--dataset`. */
export const DATASETS = ["embedded", "fineweb"] as const;
/** One of {@link DATASETS}. */
export type DatasetKind = typeof DATASETS[number];

/**
 * The dataset `kind` for `hp`; `fineweb` options are ignored for `embedded`.
 * @throws {Error} when the corpus asset is unreadable or the server unreachable
 */
export function openDataset(
  hp: Hparams,
  kind: DatasetKind,
  fineweb: FineWebOptions = {},
): Promise<Dataset> {
  return kind === "fineweb" ? fineWebDataset(hp, fineweb) : embeddedDataset(hp);
}
