/**
 * Where a miner's or validator's model starts on protocol v2. On a running network θ is
 * not ours to choose: the role loops take the lead validator's newest checkpoint and
 * replay the manifests since (shared.ts `catchUp`), after a restart as on a first start,
 * so nothing is saved locally. What a participant brings is only θ_0 for a network that
 * has no checkpoint yet: a checkpoint the operator names, else the deterministic init.
 *
 * @module
 */
import type { Hparams } from "../hparams.ts";
import type { Tensors } from "../model/params.ts";
import { initParams } from "../model/init.ts";
import { loadCheckpoint } from "../model/checkpoint.ts";
import { getLogger } from "../log.ts";

const log = getLogger(["boltzmann", "resume"]);

/**
 * θ_0 for a new network: the named checkpoint, else `initParams(model, 0)`.
 * @throws {Error} when the named checkpoint is unreadable
 */
export async function startParams(hp: Hparams, checkpoint?: string): Promise<Tensors> {
  if (!checkpoint) return initParams(hp.model, 0);
  const params = (await loadCheckpoint(checkpoint)).params;
  log.info(`θ_0 from checkpoint ${checkpoint} (a running network's checkpoint wins)`);
  return params;
}
