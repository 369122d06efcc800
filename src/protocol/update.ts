/**
 * What a miner computes in window w at the shared θ_w from its pages (docs/PROTOCOL.md,
 * "Miner update"): the mean gradient over the window's micro-batches — the seed's single
 * gradient update per window — divided by the shared preconditioner when the network's
 * outer step is preconditioned. The validator calls the same function to recompute it.
 *
 * @module
 */
import type { Trainer } from "../train/trainer.ts";
import { type OuterHparams, type OuterState, preconditioner } from "./outer.ts";

/** A miner's update and what it trained on. */
export interface ComputedUpdate {
  update: Map<string, Float32Array>;
  loss: number;
  tokens: number;
  batches: number;
}

/**
 * The update of one window: mean gradient of `batches` at `params` (θ_w, not changed),
 * preconditioned by `state` when `hp.precondition`.
 * @throws {RangeError} on no batches or malformed batches (the trainer's checks)
 */
export async function computeUpdateWithStats(
  trainer: Trainer,
  params: Map<string, Float32Array>,
  batches: Int32Array[],
  state?: OuterState,
  hp?: OuterHparams,
): Promise<ComputedUpdate> {
  const { loss, grads, tokens } = await trainer.lossAndGrad(params, batches);
  if (hp?.precondition && state) {
    for (const [name, g] of grads) {
      const d = preconditioner(state, name, hp.eps);
      for (let i = 0; i < g.length; i++) g[i] = g[i]! / d[i]!;
    }
  }
  return { update: grads, loss, tokens, batches: batches.length };
}

/** {@link computeUpdateWithStats}, the update only (the contract's signature). */
export async function computeUpdate(
  trainer: Trainer,
  params: Map<string, Float32Array>,
  batches: Int32Array[],
  state?: OuterState,
  hp?: OuterHparams,
): Promise<Map<string, Float32Array>> {
  return (await computeUpdateWithStats(trainer, params, batches, state, hp)).update;
}
