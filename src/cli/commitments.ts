/**
 * Peers' bucket commitments at the CLI's edge: the chain that miners, validators and
 * `inspect` use is wrapped so that only commitments passing the network's policy are
 * seen (src/chain/commitment.ts); refused ones are logged once, kept for `inspect`, and
 * counted in the `boltzmann_commitments_refused{reason}` gauge. Peers' stores are opened
 * from their commitment alone.
 *
 * @module
 */
import {
  type BucketLocation,
  type CommitmentPolicy,
  CommitmentRejected,
  countByReason,
  encodeCommitment,
  parseCommitment,
  type RefusedCommitment,
  screenCommitments,
} from "../chain/commitment.ts";
import { committedLocation, type S3Env, storeForLocation } from "../store/resolve.ts";
import type { Store } from "../store/mod.ts";
import type { Metrics } from "../metrics.ts";
import { getLogger } from "../log.ts";

const log = getLogger(["boltzmann", "commitments"]);

/** Anything with `commitments(netuid)`: the `Chain` interface, or a subset of it. */
interface HasCommitments {
  commitments(netuid: number): Promise<Map<string, string>>;
}

/** A chain whose `commitments()` hides refused commitments, and what it refused last. */
export interface Screened<C> {
  chain: C;
  /** The commitments refused at the latest `commitments()` call. */
  refused(): RefusedCommitment[];
}

/** Wraps `chain` (every other member passes through unchanged). */
export function screenChain<C extends HasCommitments>(
  chain: C,
  policy: CommitmentPolicy,
  metrics?: Metrics,
): Screened<C> {
  let last: RefusedCommitment[] = [];
  const seen = new Set<string>();
  const commitments = async (netuid: number) => {
    const all = await chain.commitments(netuid);
    const { accepted, refused } = screenCommitments(all, policy);
    last = refused;
    for (const r of refused) {
      const k = `${r.hotkey} ${all.get(r.hotkey)}`;
      if (seen.has(k)) continue;
      seen.add(k);
      // Braces would read as logtape placeholders: double them in untrusted text.
      const detail = r.detail.replace(/[{}]/g, (c) => c + c);
      log.warn(`Ignoring the bucket commitment of ${r.hotkey} (${r.reason}): ${detail}`, {
        hotkey: r.hotkey,
        reason: r.reason,
      });
    }
    for (const [reason, n] of Object.entries(countByReason(refused))) {
      metrics?.set(
        "boltzmann_commitments_refused",
        n,
        { reason },
        "Peers whose bucket commitment is refused, by reason",
      );
    }
    return accepted;
  };
  const wrapped = new Proxy(chain, {
    get(target, prop) {
      if (prop === "commitments") return commitments;
      const v = Reflect.get(target, prop, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
  return { chain: wrapped, refused: () => last };
}

/** Opens peers' stores from their commitment text (cached per text). */
export function peerStores(policy: CommitmentPolicy): (commitment: string) => Store {
  const cache = new Map<string, Store>();
  return (text) => {
    let s = cache.get(text);
    if (!s) cache.set(text, s = storeForLocation(parseCommitment(text, policy)));
    return s;
  };
}

/** A `--bucket` value with a local directory made an absolute `file://` URL. */
export function bucketLocation(bucket: string): string {
  if (bucket.startsWith("file://")) return bucket;
  if (bucket.startsWith("/") || bucket.startsWith(".")) {
    Deno.mkdirSync(bucket, { recursive: true });
    return `file://${Deno.realPathSync(bucket)}`;
  }
  return bucket.startsWith("s3://") ? bucket : `s3://${bucket}`;
}

/**
 * The commitment text of our bucket (`own` as {@link bucketLocation} returns it), checked
 * as peers on this network will check it.
 * @throws {RangeError} naming why peers would refuse it
 */
export function ourCommitment(
  own: string,
  s3: S3Env,
  read: BucketLocation["read"],
  policy: CommitmentPolicy,
): string {
  const text = encodeCommitment(committedLocation(own, s3, read));
  try {
    parseCommitment(text, policy);
  } catch (e) {
    if (!(e instanceof CommitmentRejected)) throw e;
    throw new RangeError(
      `Peers on this network would refuse our bucket commitment (${e.reason}): ${e.detail}; public networks need an https endpoint on a public host`,
    );
  }
  return text;
}

/** The refused commitments section: a count per reason, then one line per hotkey. */
export function formatRefused(refused: readonly RefusedCommitment[]): string {
  if (refused.length === 0) return "Bucket commitments refused: none";
  const counts = Object.entries(countByReason(refused)).filter(([, n]) => n > 0);
  return [
    `Bucket commitments refused: ${refused.length} (${
      counts.map(([r, n]) => `${r} ${n}`).join(", ")
    })`,
    ...refused.map((r) => `  ${r.hotkey}  ${r.reason}: ${r.detail}`),
  ].join("\n");
}
