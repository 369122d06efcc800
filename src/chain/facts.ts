/**
 * What `doctor` asks a connected subtensor, each question on its own so one failing
 * answer does not hide the others: the runtime and its extensions, a subnet's weight
 * parameters, a neuron. Thin: the reading itself is runtime_info.ts's.
 *
 * @module
 */
import type { SubtensorChain } from "./subtensor.ts";
import {
  type NeuronInfo,
  readNeuron,
  readRuntimeInfo,
  readSubnetParams,
  type RuntimeInfo,
  type SubnetParams,
} from "./runtime_info.ts";

export type { NeuronInfo, RuntimeInfo, SubnetParams };

/** Runtime name, spec version and each transaction extension's status. */
export async function runtimeOf(chain: SubtensorChain): Promise<RuntimeInfo> {
  return readRuntimeInfo(await chain.api());
}

/** The subnet's tempo, commit-reveal, reveal period, rate limit and version key. */
export async function subnetParamsOf(chain: SubtensorChain, netuid: number): Promise<SubnetParams> {
  return await readSubnetParams(await chain.api(), netuid);
}

/** `hotkey`'s uid, permit, stake and last update on `netuid`; null when unregistered. */
export async function neuronOf(
  chain: SubtensorChain,
  netuid: number,
  hotkey: string,
): Promise<NeuronInfo | null> {
  return await readNeuron(await chain.api(), netuid, hotkey);
}
