/**
 * The resume policy of a miner or validator: where its model starts, and the state it
 * saves after each window to come back to after a restart. A checkpoint the operator
 * names wins; otherwise the newer of our own saved state and the lead validator's
 * published checkpoint; otherwise the deterministic initial model. It leaves the
 * optimizer state out: Adam moments restart from zero after a restart.
 *
 * @module
 */
import type { Hparams } from "../hparams.ts";
import type { Tensors } from "../model/params.ts";
import { initParams } from "../model/init.ts";
import { loadCheckpoint, saveCheckpoint } from "../model/checkpoint.ts";
import { getLogger } from "../log.ts";
import type { Store } from "../store/mod.ts";
import type { Peer } from "./exchange.ts";
import { loadLatestCheckpoint } from "./checkpoints.ts";

const log = getLogger(["boltzmann", "resume"]);

/** Saves the model after window `w` into `dir` (model/ + window.json, atomically). */
export async function saveState(
  dir: string,
  hp: Hparams,
  w: number,
  params: Tensors,
): Promise<void> {
  await saveCheckpoint(`${dir}/model`, hp.model, params);
  await Deno.writeTextFile(`${dir}/window.json.tmp`, JSON.stringify({ window: w }));
  await Deno.rename(`${dir}/window.json.tmp`, `${dir}/window.json`);
}

/**
 * Our saved model in `dir` and the window it is from, or null when there is none.
 * @throws {Error} when window.json or the model is unreadable
 */
export async function loadState(
  dir: string,
): Promise<{ window: number; params: Tensors } | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(`${dir}/window.json`);
  } catch {
    return null;
  }
  const w = JSON.parse(text)?.window;
  if (!Number.isSafeInteger(w) || w < 0) throw new Error("window.json holds no window number");
  return { window: w, params: (await loadCheckpoint(`${dir}/model`)).params };
}

/** What {@link startParams} looks at. */
export interface StartSources {
  /** A checkpoint directory the operator named: used as is. */
  checkpoint?: string;
  /** Our own state directory ({@link saveState}). */
  stateDir: string;
  /** The subnet's peers, for the lead validator's published checkpoint. */
  peers: () => Promise<readonly Peer[]>;
  openStore: (location: string) => Store;
}

/**
 * The parameters a participant starts from (see the module doc for the order). An
 * unreadable saved state or published checkpoint is logged and skipped.
 * @throws {Error} when the named checkpoint is unreadable
 */
export async function startParams(hp: Hparams, s: StartSources): Promise<Tensors> {
  if (s.checkpoint) {
    const params = (await loadCheckpoint(s.checkpoint)).params;
    log.info(`Starting from checkpoint ${s.checkpoint}`);
    return params;
  }
  const local = await loadState(s.stateDir).catch((e) => {
    log.warn(`Ignoring saved state in ${s.stateDir}: ${(e as Error).message}`);
    return null;
  });
  const lead = await s.peers().then((peers) => loadLatestCheckpoint(hp, peers, s.openStore))
    .catch((e) => {
      log.warn(`No usable published checkpoint: ${(e as Error).message}`);
      return null;
    });
  const pick = local && (!lead || local.window >= lead.window) ? local : lead;
  if (!pick) return initParams(hp.model, 0);
  log.info(
    `Resuming from ${
      pick === local ? `our state in ${s.stateDir}` : `${lead!.from}'s checkpoint`
    } of window ${pick.window}`,
  );
  return pick.params;
}
