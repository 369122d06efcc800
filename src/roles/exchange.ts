/**
 * What miners, validators and `inspect` share about moving slices: who the peers are
 * (metagraph + bucket commitments), the window's indices, publishing our own signed
 * slices, and fetching peers' slices with every one validated before it is used.
 * Not a role: roles import it, it imports no role.
 *
 * @module
 */
import type { Hparams } from "../hparams.ts";
import { modelFingerprint } from "../hparams.ts";
import type { ParamSpec, Tensors } from "../model/params.ts";
import { DERIVATION_VERSION, sliceIndices, sliceSeed } from "../window.ts";
import type { SliceIndices } from "../slices/gather.ts";
import { encodeSlice, type Signer, type SliceDtype, type SliceMeta } from "../slices/wire.ts";
import { decodeSlice, sliceByteCap, SliceRejected } from "../slices/validate.ts";
import { type ObjectInfo, type Store, StoreError } from "../store/mod.ts";
import { sliceKey } from "./keys.ts";
import { withRetry } from "../store/download.ts";
import type { Metrics } from "../metrics.ts";
import { getLogger } from "../log.ts";

const log = getLogger(["boltzmann", "exchange"]);

/** A participant that committed a bucket location on chain. */
export interface Peer {
  uid: number;
  hotkey: string;
  stake: number;
  validatorPermit: boolean;
  /** The committed bucket location (`s3://…`, `file:///…`). */
  location: string;
}

/** The chain facts peers come from (a subset of the `Chain` interface). */
export interface PeerSource {
  metagraph(netuid: number): Promise<{
    uids: number[];
    hotkeys: string[];
    stake: number[];
    validatorPermit: boolean[];
  }>;
  commitments(netuid: number): Promise<Map<string, string>>;
  /** Weights set on chain (validator uid → [(uid, u16)]); optional for test chains. */
  weights?(netuid: number): Promise<Map<number, [number, number][]>>;
}

/**
 * A validator: a permit and stake. (A local chain gives every uid a permit, and a new
 * subnet's miners may hold one too: stake is what tells them apart.)
 */
export function isValidator(p: Peer): boolean {
  return p.validatorPermit && p.stake > 0;
}

/** Peers of `netuid` with a commitment, by uid. */
export async function listPeers(chain: PeerSource, netuid: number): Promise<Peer[]> {
  const [mg, commits] = await Promise.all([chain.metagraph(netuid), chain.commitments(netuid)]);
  const out: Peer[] = [];
  mg.uids.forEach((uid, i) => {
    const hotkey = mg.hotkeys[i]!;
    const location = commits.get(hotkey);
    if (!location) return;
    out.push({
      uid,
      hotkey,
      stake: mg.stake[i] ?? 0,
      validatorPermit: mg.validatorPermit[i] ?? false,
      location,
    });
  });
  return out.sort((a, b) => a.uid - b.uid);
}

/**
 * How much to trust each peer's slices: the weights the lead validator (most stake) set on
 * chain, by hotkey, so that peers' deltas shape the shared model in proportion to the
 * incentive they earned. Null while no weights are set (then every valid slice counts
 * equally) or when the chain client cannot tell.
 */
export async function trustWeights(
  chain: PeerSource,
  netuid: number,
  peers: readonly Peer[],
): Promise<Map<string, number> | null> {
  const lead = peers.filter(isValidator).sort((a, b) => b.stake - a.stake)[0];
  if (!lead || !chain.weights) return null;
  const row = (await chain.weights(netuid)).get(lead.uid);
  if (!row || !row.some(([, v]) => v > 0)) return null;
  const byUid = new Map(row);
  return new Map(peers.map((p) => [p.hotkey, (byUid.get(p.uid) ?? 0) / 65535]));
}

/** Indices of `kind` slices for window `w`, from the hash of its seed block. */
export function windowIndices(
  kind: "state" | "delta",
  blockHash: string,
  table: readonly ParamSpec[],
  compression: number,
): Map<string, Uint32Array> {
  const seed = sliceSeed(kind, blockHash);
  return new Map(table.map((p) => [p.name, sliceIndices(seed, p.name, p.numel, compression)]));
}

/** Everything needed to publish or check slices for one model. */
export interface SliceContext {
  hp: Hparams;
  table: readonly ParamSpec[];
  fingerprint: string;
  dtype: SliceDtype;
  metrics?: Metrics;
}

/** A context for `hp`'s model. */
export function sliceContext(
  hp: Hparams,
  table: readonly ParamSpec[],
  dtype: SliceDtype = "F32",
  metrics?: Metrics,
): SliceContext {
  return { hp, table, fingerprint: modelFingerprint(hp.model), dtype, metrics };
}

/** Signs and uploads one slice to our own store (retried on transient errors). */
export async function publishSlice(
  ctx: SliceContext,
  store: Store,
  signer: Signer,
  kind: "state" | "delta",
  window: number,
  slice: Tensors,
  stats: { loss?: number; tokens?: number; batches?: number } = {},
): Promise<number> {
  const meta: SliceMeta = {
    kind,
    window,
    hotkey: signer.address,
    fingerprint: ctx.fingerprint,
    version: DERIVATION_VERSION,
    ...stats,
  };
  const bytes = encodeSlice(slice, meta, signer, ctx.dtype);
  const key = sliceKey(kind, window, signer.address);
  await withRetry(`Upload ${key}`, () => store.put(key, bytes), { retries: 2 });
  ctx.metrics?.inc("boltzmann_bytes_up_total", { kind }, bytes.length, "Bytes uploaded");
  return bytes.length;
}

/** One peer's slice that passed validation. */
export interface Fetched {
  peer: Peer;
  meta: SliceMeta;
  slice: Tensors;
  bytes: number;
  /** When the store says the object was written (ms since epoch; 0 if unknown). */
  uploadedAt: number;
}

/** A slice that was refused, and why (one line). */
export interface Rejection {
  uid: number;
  hotkey: string;
  kind: "state" | "delta";
  window: number;
  reason: string;
}

/**
 * Fetches `kind` slices of window `w` from `peers` (in parallel, bounded), validating
 * each against the local table, indices, fingerprint, window, kind and uploader. A
 * missing object is skipped silently; every refusal is logged once and counted.
 */
export async function fetchSlices(
  ctx: SliceContext,
  peers: readonly Peer[],
  openStore: (location: string) => Store,
  kind: "state" | "delta",
  window: number,
  indices: SliceIndices,
  opts: { timeoutMs?: number; concurrency?: number } = {},
): Promise<{ accepted: Fetched[]; rejected: Rejection[] }> {
  const maxBytes = sliceByteCap(ctx.table, indices, "F32");
  const accepted: Fetched[] = [], rejected: Rejection[] = [];
  const queue = [...peers];
  const worker = async () => {
    for (let p = queue.shift(); p; p = queue.shift()) {
      const key = sliceKey(kind, window, p.hotkey);
      const reject = (reason: string) => {
        rejected.push({ uid: p!.uid, hotkey: p!.hotkey, kind, window, reason });
        // Braces would read as logtape placeholders: double them in untrusted text.
        const text = reason.replace(/[{}]/g, (c) => c + c);
        log.warn(`Rejected ${key} from uid ${p!.uid}: ${text}`, {
          key,
          uid: p!.uid,
          kind,
          window,
          reason,
        });
        ctx.metrics?.inc("boltzmann_rejections_total", { kind, reason: reason.split(":")[0]! });
      };
      let bytes: Uint8Array | null;
      let info: ObjectInfo | undefined;
      try {
        const store = openStore(p.location);
        bytes = await withRetry(
          `Download ${key}`,
          () => store.get(key, { maxBytes, timeoutMs: opts.timeoutMs ?? 10_000 }),
          { retries: 1 },
        );
        if (bytes && kind === "delta") info = (await store.list(key)).find((o) => o.key === key);
      } catch (e) {
        if (e instanceof StoreError && !e.retryable) reject(e.message);
        else log.info(`Cannot fetch ${key} from uid ${p.uid}: ${(e as Error).message}`);
        continue;
      }
      if (!bytes) continue;
      ctx.metrics?.inc("boltzmann_bytes_down_total", { kind }, bytes.length, "Bytes downloaded");
      try {
        const { meta, slice } = decodeSlice(bytes, {
          table: ctx.table,
          indices,
          fingerprint: ctx.fingerprint,
          window,
          kind,
          hotkey: p.hotkey,
        });
        accepted.push({
          peer: p,
          meta,
          slice,
          bytes: bytes.length,
          uploadedAt: info?.lastModified.getTime() ?? 0,
        });
      } catch (e) {
        if (e instanceof SliceRejected) reject(e.reason);
        else reject(`invalid: ${(e as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency ?? 4 }, worker));
  accepted.sort((a, b) => a.peer.uid - b.peer.uid);
  return { accepted, rejected };
}
