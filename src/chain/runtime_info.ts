/**
 * What the connected runtime is and what it says about one subnet and one neuron, read
 * from its metadata and storage (and, where the runtime has it, the SDK's runtime API):
 * runtime name and spec version, every transaction extension and whether boltzmann can
 * encode it, the subnet's weight-setting parameters, a neuron's uid, permit, stake as the
 * chain counts it and last weights update. Used by `doctor`, weight submission and the
 * lead-validator choice.
 *
 * @module
 */
import type { ApiPromise } from "@polkadot/api";
import { deriveExtensions, extensionEntries, type ExtensionInfo } from "./extensions.ts";

export type { ExtensionInfo } from "./extensions.ts";

/** The connected runtime. */
export interface RuntimeInfo {
  specName: string;
  specVersion: number;
  extensions: ExtensionInfo[];
}

/** From the connected metadata: runtime name, spec version and each extension's status. */
export function readRuntimeInfo(api: ApiPromise): RuntimeInfo {
  const entries = extensionEntries(api.runtimeMetadata);
  return {
    specName: api.runtimeVersion.specName.toString(),
    specVersion: api.runtimeVersion.specVersion.toNumber(),
    extensions: deriveExtensions(api.registry.lookup, entries).info,
  };
}

/** A subnet's weight-setting parameters as the chain holds them. */
export interface SubnetParams {
  /** Blocks per epoch minus one (an epoch runs every tempo + 1 blocks). */
  tempo: number;
  commitRevealEnabled: boolean;
  /** Epochs between a commit's epoch and its reveal epoch. */
  revealPeriodEpochs: number;
  /** Blocks a validator must wait after its last update before setting weights again. */
  weightsRateLimit: number;
  /** The lowest version key `set_weights` / `reveal_weights` accept. */
  weightsVersionKey: bigint;
}

// deno-lint-ignore no-explicit-any
type Query = any;

/** Storage item `subtensorModule.<item>`, or a clear error naming it. */
export function storage(api: ApiPromise, item: string): Query {
  // deno-lint-ignore no-explicit-any
  const q = (api.query as any).subtensorModule?.[item];
  if (!q) {
    throw new Error(
      `The chain (spec ${api.runtimeVersion.specVersion}) has no storage subtensorModule.${item}; this runtime is not supported`,
    );
  }
  return q;
}

function checkNetuid(netuid: number): void {
  if (!Number.isInteger(netuid) || netuid < 0 || netuid > 65535) {
    throw new RangeError(`Invalid netuid ${netuid}: expected an integer from 0 to 65535`);
  }
}

function toNum(v: Query, what: string): number {
  const n = Number(v.toString());
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`The chain returned ${what} ${v}`);
  return n;
}

/**
 * The subnet's tempo, commit-reveal switch and reveal period, weights rate limit and
 * version key.
 * @throws {Error} when the subnet does not exist or the runtime lacks one of the items
 */
export async function readSubnetParams(api: ApiPromise, netuid: number): Promise<SubnetParams> {
  checkNetuid(netuid);
  const added = await storage(api, "networksAdded")(netuid);
  if (!added.isTrue) throw new Error(`Subnet ${netuid} does not exist; check --netuid`);
  const [tempo, cr, reveal, rate, version] = await Promise.all([
    storage(api, "tempo")(netuid),
    storage(api, "commitRevealWeightsEnabled")(netuid),
    storage(api, "revealPeriodEpochs")(netuid),
    storage(api, "weightsSetRateLimit")(netuid),
    storage(api, "weightsVersionKey")(netuid),
  ]);
  return {
    tempo: toNum(tempo, "tempo"),
    commitRevealEnabled: cr.isTrue,
    revealPeriodEpochs: toNum(reveal, "reveal period"),
    weightsRateLimit: toNum(rate, "weights rate limit"),
    weightsVersionKey: BigInt(version.toString()),
  };
}

/** One neuron as the chain counts it. */
export interface NeuronInfo {
  uid: number;
  validatorPermit: boolean;
  /** Stake as the chain counts it, in rao (alpha on dynamic-TAO runtimes). */
  stake: bigint;
  /** Block of this neuron's last weights update (0 if never). */
  lastUpdate: number;
}

/**
 * `hotkey`'s uid, permit, stake and last update on `netuid`, or null when unregistered.
 * Stake comes from {@link readStakes} (0 with `stake: false`).
 */
export async function readNeuron(
  api: ApiPromise,
  netuid: number,
  hotkey: string,
  opts: { stake?: boolean } = {},
): Promise<NeuronInfo | null> {
  checkNetuid(netuid);
  const uidOpt = await storage(api, "uids")(netuid, hotkey);
  if (!uidOpt.isSome) return null;
  const uid = toNum(uidOpt.unwrap(), "uid");
  const [permits, last, stakes] = await Promise.all([
    storage(api, "validatorPermit")(netuid),
    storage(api, "lastUpdate")(netuid),
    // The runtime metagraph is a large answer: skipped where only the update matters.
    opts.stake === false ? Promise.resolve([0n]) : readStakes(api, netuid, [hotkey]),
  ]);
  return {
    uid,
    validatorPermit: permits[uid]?.isTrue ?? false,
    stake: stakes[0] ?? 0n,
    lastUpdate: last[uid] ? toNum(last[uid], "last update") : 0,
  };
}

/**
 * Stake of each of `hotkeys` on `netuid` in rao, as the chain counts it. Where the runtime
 * has `SubnetInfoRuntimeApi.get_metagraph` (the SDK's metagraph call), its `total_stake`:
 * the stake weight the epoch uses (the hotkey's alpha with inherited child/parent stake,
 * plus root stake times the TAO weight). Older runtimes (spec 218) have no such call, and
 * the total alpha the hotkey holds on the subnet (`TotalHotkeyAlpha`) is used; 0 where the
 * runtime has neither.
 */
export async function readStakes(
  api: ApiPromise,
  netuid: number,
  hotkeys: string[],
): Promise<bigint[]> {
  if (hotkeys.length === 0) return [];
  // deno-lint-ignore no-explicit-any
  const getMetagraph = (api.call as any).subnetInfoRuntimeApi?.getMetagraph;
  if (getMetagraph) {
    const mg = await getMetagraph(netuid);
    if (mg.isSome) {
      const m = mg.unwrap();
      return stakesFromMetagraph(
        m.hotkeys.map((h: { toString(): string }) => h.toString()),
        m.totalStake.map((x: { toString(): string }) => BigInt(x.toString())),
        hotkeys,
      );
    }
  }
  // deno-lint-ignore no-explicit-any
  const alphaQ = (api.query as any).subtensorModule?.totalHotkeyAlpha;
  if (!alphaQ) return hotkeys.map(() => 0n);
  const vals = await alphaQ.multi(hotkeys.map((h) => [h, netuid]));
  return vals.map((v: { toBigInt(): bigint }) => v.toBigInt());
}

/** `wanted` hotkeys' stakes from the runtime metagraph's uid-ordered hotkeys and stakes. */
export function stakesFromMetagraph(
  hotkeys: string[],
  stakes: bigint[],
  wanted: string[],
): bigint[] {
  if (hotkeys.length !== stakes.length) {
    throw new Error(
      `The chain's metagraph has ${hotkeys.length} hotkeys but ${stakes.length} stakes`,
    );
  }
  const by = new Map(hotkeys.map((h, i) => [h, stakes[i]!]));
  return wanted.map((h) => by.get(h) ?? 0n);
}
