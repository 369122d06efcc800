/**
 * What miners, validators and `inspect` share about moving objects: who the peers are
 * (metagraph + bucket commitments) and who leads, publishing our own signed upload, and
 * the one fetch path for peers' uploads (size-capped, retried, validated strictly before
 * a byte of it is used, every refusal logged once and counted) and for the lead's small
 * JSON objects (manifests, scores, status). Not a role: roles import it, it imports no role.
 *
 * @module
 */
import type { Hparams } from "../hparams.ts";
import { modelFingerprint } from "../hparams.ts";
import { type ParamSpec, paramTable } from "../model/params.ts";
import {
  type CodecContext,
  type CodecSpec,
  DEFAULT_CODEC,
  type EncodedUpdate,
  parseCodec,
  type ReadUpload,
  readUpload,
  uploadByteCap,
  UploadRejected,
  writeUpload,
} from "../protocol/mod.ts";
import type { Signer } from "../slices/wire.ts";
import { type ObjectInfo, type Store, StoreError } from "../store/mod.ts";
import { withRetry } from "../store/download.ts";
import type { Metrics } from "../metrics.ts";
import { getLogger } from "../log.ts";
import { objectKey } from "./keys.ts";

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

/** The lead validator: the most stake among validators, ties to the smaller hotkey. */
export function leadOf(peers: readonly Peer[]): Peer | undefined {
  return peers.filter(isValidator)
    .sort((a, b) => b.stake - a.stake || (a.hotkey < b.hotkey ? -1 : 1))[0];
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
 * {@link listPeers}, or `last` when the chain does not answer and `last` is not empty: a
 * slow or restarting node must not stop a window (the peer set changes rarely, and the
 * next window reads it again).
 * @throws {Error} the chain's error when there is nothing to fall back on
 */
export async function refreshPeers(
  chain: PeerSource,
  netuid: number,
  last: Peer[],
): Promise<Peer[]> {
  try {
    return await listPeers(chain, netuid);
  } catch (e) {
    if (last.length === 0) throw e;
    log.warn(`${(e as Error).message}; using the peers read last window`);
    return last;
  }
}

/**
 * The weight of each peer's upload in the aggregate: the weights the lead validator set
 * on chain, by hotkey (u16 / 65535), so that uploads shape the shared model in
 * proportion to the incentive they earned. Null while the lead has set none (then every
 * valid upload counts 1) or when the chain client cannot tell.
 */
export async function trustWeights(
  chain: PeerSource,
  netuid: number,
  peers: readonly Peer[],
): Promise<Map<string, number> | null> {
  const lead = leadOf(peers);
  if (!lead || !chain.weights) return null;
  const row = (await chain.weights(netuid)).get(lead.uid);
  if (!row || !row.some(([, v]) => v > 0)) return null;
  const byUid = new Map(row);
  return new Map(peers.map((p) => [p.hotkey, (byUid.get(p.uid) ?? 0) / 65535]));
}

/** The network's codec: `hp.codec` when the hyper-parameters name one, else the default. */
export function networkCodec(hp: Hparams): CodecSpec {
  const spec = parseCodec((hp as { codec?: string }).codec ?? DEFAULT_CODEC);
  if (spec.kind === "slices") {
    // Its indices need each window's seed block hash on every read; the roles do not
    // carry it (`bench converge` measures the seed's slices side by side instead).
    throw new RangeError(`Codec '${spec.name}' is for benchmarks only: use a dense or topk codec`);
  }
  return spec;
}

/** Everything needed to publish or check uploads for one model. */
export interface UploadContext {
  hp: Hparams;
  table: readonly ParamSpec[];
  fingerprint: string;
  spec: CodecSpec;
  metrics?: Metrics;
  /** Bytes moved since the last {@link takeTraffic}: what devnet reports per window. */
  traffic: { up: number; down: number };
}

/** A context for `hp`'s model and network codec. */
export function uploadContext(hp: Hparams, metrics?: Metrics): UploadContext {
  return {
    hp,
    table: paramTable(hp.model),
    fingerprint: modelFingerprint(hp.model),
    spec: networkCodec(hp),
    metrics,
    traffic: { up: 0, down: 0 },
  };
}

/** Bytes up and down since the last call (and resets the counters). */
export function takeTraffic(ctx: UploadContext): { up: number; down: number } {
  const t = { ...ctx.traffic };
  ctx.traffic.up = 0;
  ctx.traffic.down = 0;
  return t;
}

function countUp(ctx: UploadContext, kind: string, n: number): void {
  ctx.traffic.up += n;
  ctx.metrics?.inc("boltzmann_bytes_up_total", { kind }, n, "Bytes uploaded");
}

function countDown(ctx: UploadContext, kind: string, n: number): void {
  ctx.traffic.down += n;
  ctx.metrics?.inc("boltzmann_bytes_down_total", { kind }, n, "Bytes downloaded");
}

/** Puts bytes under `key` in our own store (retried on transient errors), counted. */
export async function putObject(
  ctx: UploadContext,
  store: Store,
  key: string,
  bytes: Uint8Array,
): Promise<void> {
  await withRetry(`Upload ${key}`, () => store.put(key, bytes), { retries: 2 });
  countUp(ctx, key.slice(0, key.indexOf("-")), bytes.length);
}

/** Signs and uploads our update of window `w`; returns the bytes written. */
export async function publishUpload(
  ctx: UploadContext,
  store: Store,
  signer: Signer,
  w: number,
  enc: EncodedUpdate,
  stats: { theta?: string; loss?: number; tokens?: number; batches?: number } = {},
): Promise<Uint8Array> {
  const bytes = writeUpload(enc, {
    window: w,
    hotkey: signer.address,
    fingerprint: ctx.fingerprint,
    ...stats,
  }, signer);
  await putObject(ctx, store, objectKey("update", w, signer.address), bytes);
  return bytes;
}

/** One peer's upload that passed validation. */
export interface Fetched extends ReadUpload {
  peer: Peer;
  /** The file as downloaded (what a manifest pins by SHA-256). */
  raw: Uint8Array;
  /** When the store says the object was written (ms since epoch; 0 if unknown). */
  uploadedAt: number;
}

/** An upload that was refused, and why (one line). */
export interface Rejection {
  uid: number;
  hotkey: string;
  window: number;
  reason: string;
}

/**
 * Downloads a peer's update of window `w`: size-capped from the parameter table and
 * codec, retried once on transient errors. Null when there is none (or the store is
 * unreachable: logged).
 * @throws {StoreError} non-retryable store refusals (too large, forbidden)
 */
export async function downloadUpload(
  ctx: UploadContext,
  peer: Peer,
  openStore: (location: string) => Store,
  w: number,
  opts: { timeoutMs?: number; withTime?: boolean } = {},
): Promise<{ bytes: Uint8Array; info?: ObjectInfo } | null> {
  const key = objectKey("update", w, peer.hotkey);
  const store = openStore(peer.location);
  const maxBytes = uploadByteCap({ spec: ctx.spec, params: ctx.table });
  let bytes: Uint8Array | null;
  try {
    bytes = await withRetry(
      `Download ${key}`,
      () => store.get(key, { maxBytes, timeoutMs: opts.timeoutMs ?? 10_000 }),
      { retries: 1 },
    );
  } catch (e) {
    if (e instanceof StoreError && !e.retryable) throw e;
    log.info(`Cannot fetch ${key} from uid ${peer.uid}: ${(e as Error).message}`);
    return null;
  }
  if (!bytes) return null;
  countDown(ctx, "update", bytes.length);
  const info = opts.withTime
    ? (await store.list(key).catch(() => [])).find((o) => o.key === key)
    : undefined;
  return { bytes, info };
}

/**
 * Fetches peers' updates of window `w` (in parallel, bounded) and validates each
 * against the table, codec, fingerprint, window and uploader. A missing object is
 * skipped silently; every refusal is logged once and counted.
 */
export async function fetchUploads(
  ctx: UploadContext,
  peers: readonly Peer[],
  openStore: (location: string) => Store,
  w: number,
  opts: { timeoutMs?: number; concurrency?: number; codecCtx?: CodecContext } = {},
): Promise<{ accepted: Fetched[]; rejected: Rejection[] }> {
  const accepted: Fetched[] = [], rejected: Rejection[] = [];
  const queue = [...peers];
  const worker = async () => {
    for (let p = queue.shift(); p; p = queue.shift()) {
      const peer = p;
      const key = objectKey("update", w, peer.hotkey);
      const reject = (reason: string) => {
        rejected.push({ uid: peer.uid, hotkey: peer.hotkey, window: w, reason });
        // Braces would read as logtape placeholders: double them in untrusted text.
        const text = reason.replace(/[{}]/g, (c) => c + c);
        log.warn(`Rejected ${key} from uid ${peer.uid}: ${text}`, {
          key,
          uid: peer.uid,
          window: w,
          reason,
        });
        ctx.metrics?.inc("boltzmann_rejections_total", { reason: reason.split(/[: ]/)[0]! });
      };
      let got;
      try {
        got = await downloadUpload(ctx, peer, openStore, w, { ...opts, withTime: true });
      } catch (e) {
        reject(`unreachable: ${(e as Error).message}`);
        continue;
      }
      if (!got) continue;
      try {
        const r = checkUpload(ctx, got.bytes, w, peer.hotkey, opts.codecCtx);
        accepted.push({
          ...r,
          peer,
          raw: got.bytes,
          uploadedAt: got.info?.lastModified.getTime() ?? 0,
        });
      } catch (e) {
        if (e instanceof UploadRejected) reject(`${e.reason}: ${e.detail}`);
        else reject(`invalid: ${(e as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency ?? 4 }, worker));
  accepted.sort((a, b) => a.peer.uid - b.peer.uid);
  return { accepted, rejected };
}

/**
 * Validates one upload's bytes for window `w` by `hotkey` (strict: readUpload).
 * @throws {UploadRejected} naming the first problem
 */
export function checkUpload(
  ctx: UploadContext,
  bytes: Uint8Array,
  w: number,
  hotkey: string,
  codecCtx?: CodecContext,
): ReadUpload {
  return readUpload(bytes, {
    spec: ctx.spec,
    params: ctx.table,
    fingerprint: ctx.fingerprint,
    window: w,
    hotkey,
    ctx: codecCtx,
  });
}

/** A small JSON object of a peer (manifest, scores, status), or null when absent. */
export async function getSmall(
  ctx: UploadContext | null,
  store: Store,
  key: string,
  maxBytes = 1 << 20,
): Promise<Uint8Array | null> {
  const bytes = await withRetry(
    `Download ${key}`,
    () => store.get(key, { maxBytes, timeoutMs: 10_000 }),
    { retries: 1 },
  );
  if (bytes && ctx) countDown(ctx, key.slice(0, key.indexOf("-")), bytes.length);
  return bytes;
}
