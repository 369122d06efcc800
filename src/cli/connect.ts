/**
 * The one "connect from flags" path of `miner`, `validator` and `inspect --window`: the
 * subnet (`--netuid`), the network's commitment policy, the chain connection
 * (`--subtensor.network` or `--subtensor.chain_endpoint`) screened so that only
 * commitments passing the policy are seen, and peers' stores opened from their
 * commitments alone (src/cli/commitments.ts).
 *
 * @module
 */
import { type Options, UsageError } from "./args.ts";
import { type S3Env, s3Env } from "../store/resolve.ts";
import type { Store } from "../store/mod.ts";
import type { Metrics } from "../metrics.ts";
import { type CommitmentPolicy, policyFor, type RefusedCommitment } from "../chain/commitment.ts";
import type { Chain } from "../chain/mod.ts";
import { connectSubtensor, type NetworkName, type SubtensorChain } from "../chain/subtensor.ts";
import { peerStores, screenChain } from "./commitments.ts";

/** A chain connection and what comes with it. The caller must close `chain`. */
export interface Connection {
  netuid: number;
  /** The chain, its `commitments()` screened by {@link policy}. */
  chain: Chain;
  /** The same connection unscreened, for what only subtensor has (weight submission). */
  subtensor: SubtensorChain;
  policy: CommitmentPolicy;
  /** A peer's store from its commitment text, opened once per commitment. */
  openStore(commitment: string): Store;
  /** The commitments refused at the latest `commitments()` call. */
  refused(): RefusedCommitment[];
}

/** S3 settings from the environment; bad ones are usage errors. */
export function s3FromEnv(env: (key: string) => string | undefined): S3Env {
  try {
    return s3Env(env);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** The commitment policy of the network the flags name. */
export function policyFromFlags(o: Options): CommitmentPolicy {
  return policyFor(o.strOpt("subtensor.network"), o.strOpt("subtensor.chain_endpoint"));
}

/**
 * Connects to the chain the flags name.
 * @param why what the subnet is for, for the missing-`--netuid` message
 * @param metrics where refused commitments are counted
 * @throws {UsageError} on a missing `--netuid`
 */
export async function connectFromFlags(
  o: Options,
  why: string,
  metrics?: Metrics,
): Promise<Connection> {
  o.need("netuid", why);
  const netuid = o.num("netuid");
  const policy = policyFromFlags(o);
  const subtensor = await connectSubtensor({
    network: o.strOpt("subtensor.network") as NetworkName | undefined,
    endpoint: o.strOpt("subtensor.chain_endpoint"),
  });
  const screened = screenChain(subtensor, policy, metrics);
  return {
    netuid,
    chain: screened.chain,
    subtensor,
    policy,
    openStore: peerStores(policy),
    refused: () => screened.refused(),
  };
}
