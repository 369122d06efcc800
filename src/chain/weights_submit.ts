/**
 * Weight submission as the chain allows it:
 *
 * - **Rate limit.** `WeightsSetRateLimit` and the validator's `LastUpdate` are read first;
 *   nothing is sent before `last + limit` (subtensor's `check_rate_limit`, which a commit
 *   is also subject to). A refusal names the block it becomes allowed.
 * - **Version key.** The larger of ours and the subnet's `WeightsVersionKey` is sent (the
 *   runtime accepts `key >= WeightsVersionKey`).
 * - **Commit-reveal** when `CommitRevealWeightsEnabled`: `commit_weights(netuid, hash)` with
 *   hash = blake2_256(SCALE(account, netuid: u16, uids: Vec<u16>, values: Vec<u16>,
 *   salt: Vec<u16>, version_key: u64)) (the pallet's `get_commit_hash`; the storage index is
 *   the netuid for the main mechanism), then `reveal_weights` in the reveal epoch the chain
 *   itself records for that commit in `WeightCommits`: on runtimes with `SubnetEpochIndex`
 *   (today's) when that counter equals commit epoch + `RevealPeriodEpochs`; on older ones
 *   (spec 218) when the next block lies in the stored first..last reveal blocks. Never
 *   early, never late; a commit whose epoch has passed is dropped with a warning.
 * - **Pending commits** (hash, salt, uids, values, version key, commit block) are written
 *   atomically (temp file + rename) to `<stateDir>/weights-pending-<netuid>.json` *before*
 *   the commit is sent, so a validator restarted between commit and reveal still reveals.
 *
 * Not done: the drand-timelocked form (`commit_timelocked_weights`), see docs/CHAIN.md.
 *
 * @module
 */
import { blake2AsU8a, decodeAddress } from "@polkadot/util-crypto";
import { u8aToHex } from "@polkadot/util";
import { join } from "node:path";
import { getLogger } from "../log.ts";
import type { Hotkey } from "./mod.ts";
import type { NeuronInfo, SubnetParams } from "./runtime_info.ts";
import type { U16Weights } from "./weights.ts";

const log = getLogger(["boltzmann", "weights"]);

/** One row of `WeightCommits(netuid, hotkey)`: the hash and the three numbers after it. */
export interface ChainCommit {
  hash: string;
  /** spec 218: (commit block, first reveal block, last reveal block); today: (commit epoch, commit block, 0). */
  fields: [number, number, number];
}

/** The chain state weight submission decides on, read at block `head`. */
export interface WeightsView {
  head: number;
  params: SubnetParams;
  /** Our neuron (its `stake` is not read here: 0). */
  neuron: NeuronInfo | null;
  /** `SubnetEpochIndex(netuid)` where the runtime has it (today's), else undefined. */
  epochIndex?: number;
  commits: ChainCommit[];
}

/** What weight submission needs from the chain (SubtensorChain has it). */
export interface WeightsChain {
  readonly endpoint: string;
  weightsView(netuid: number, hotkey: string): Promise<WeightsView>;
  subscribeBlocks(cb: (block: number, hash: string) => void): Promise<() => void>;
  sendSetWeights(
    signer: Hotkey,
    netuid: number,
    uids: number[],
    values: number[],
    versionKey: bigint,
  ): Promise<void>;
  sendCommitWeights(signer: Hotkey, netuid: number, hash: string): Promise<void>;
  sendRevealWeights(signer: Hotkey, netuid: number, reveal: WeightsReveal): Promise<void>;
}

/** What `reveal_weights` sends: the committed vector, its salt and version key. */
export type WeightsReveal = Pick<PendingCommit, "uids" | "values" | "salt" | "versionKey">;

/** A commit boltzmann made and has not revealed yet. */
export interface PendingCommit {
  hash: string;
  uids: number[];
  values: number[];
  salt: number[];
  versionKey: bigint;
  /** Best block when the commit was sent. */
  commitBlock: number;
}

/** The chain forbids weights now; `allowedAt` is the first block it allows them. */
export class WeightsRateLimited extends Error {
  constructor(message: string, readonly allowedAt: number) {
    super(message);
  }
}

/** SCALE compact length prefix (lengths here are < 2^30). */
function compactLen(n: number): number[] {
  if (n < 64) return [n << 2];
  if (n < 16384) return [((n << 2) | 1) & 0xff, (n << 2 | 1) >> 8];
  return [
    (n << 2 | 2) & 0xff,
    ((n << 2 | 2) >> 8) & 0xff,
    ((n << 2 | 2) >> 16) & 0xff,
    (n << 2 | 2) >>> 24,
  ];
}

function vecU16(xs: readonly number[]): number[] {
  const out = compactLen(xs.length);
  for (const x of xs) out.push(x & 0xff, x >> 8);
  return out;
}

/**
 * The SCALE bytes `get_commit_hash` hashes: account (32 bytes), netuid index (u16 LE),
 * uids, values and salt (each `Vec<u16>`), version key (u64 LE).
 */
export function commitPreimage(
  account: Uint8Array,
  netuidIndex: number,
  uids: readonly number[],
  values: readonly number[],
  salt: readonly number[],
  versionKey: bigint,
): Uint8Array {
  if (account.length !== 32) throw new RangeError("account must be 32 bytes");
  for (const x of [...uids, ...values, ...salt, netuidIndex]) {
    if (!Number.isInteger(x) || x < 0 || x > 65535) throw new RangeError(`${x} is not a u16`);
  }
  if (versionKey < 0n || versionKey >= 1n << 64n) throw new RangeError("version key is not a u64");
  const key: number[] = [];
  for (let i = 0n; i < 8n; i++) key.push(Number((versionKey >> (8n * i)) & 0xffn));
  return new Uint8Array([
    ...account,
    netuidIndex & 0xff,
    netuidIndex >> 8,
    ...vecU16(uids),
    ...vecU16(values),
    ...vecU16(salt),
    ...key,
  ]);
}

/** `get_commit_hash` of the pallet: blake2_256 of {@link commitPreimage}, 0x-hex. */
export function commitHash(
  ss58: string,
  netuid: number,
  uids: readonly number[],
  values: readonly number[],
  salt: readonly number[],
  versionKey: bigint,
): string {
  return u8aToHex(
    blake2AsU8a(commitPreimage(decodeAddress(ss58), netuid, uids, values, salt, versionKey), 256),
  );
}

/** Whether a commit may be revealed in the next block. */
export type RevealTiming = "early" | "due" | "expired";

/**
 * When `commit` may be revealed, as the chain decides it (see the module doc): pure.
 */
export function revealTiming(view: WeightsView, commit: ChainCommit): RevealTiming {
  if (view.epochIndex !== undefined) {
    const target = commit.fields[0] + view.params.revealPeriodEpochs;
    return view.epochIndex < target ? "early" : view.epochIndex === target ? "due" : "expired";
  }
  const next = view.head + 1, [, first, last] = commit.fields;
  return next < first ? "early" : next <= last ? "due" : "expired";
}

/**
 * Refuses when the chain's rate limit forbids weights in the next block.
 * @throws {WeightsRateLimited} naming the block weights become allowed
 */
export function checkRateLimit(view: WeightsView, what: string): void {
  const n = view.neuron;
  if (!n || n.lastUpdate === 0) return;
  const allowedAt = n.lastUpdate + view.params.weightsRateLimit;
  if (view.head + 1 < allowedAt) {
    throw new WeightsRateLimited(
      `Cannot ${what}: the subnet's weights rate limit is ${view.params.weightsRateLimit} blocks and our last update was block ${n.lastUpdate}; allowed from block ${allowedAt} (now ${view.head})`,
      allowedAt,
    );
  }
}

function requireRegistered(view: WeightsView, ss58: string, netuid: number, what: string): void {
  if (!view.neuron) {
    throw new Error(
      `Cannot ${what}: hotkey ${ss58} is not registered on subnet ${netuid}; register it first (btcli subnet register)`,
    );
  }
}

/**
 * What every submission reads and checks first: the chain's view, that the hotkey is
 * registered, and the version key to send (the larger of ours and the subnet's).
 */
async function prepare(chain: WeightsChain, signer: Hotkey, netuid: number, versionKey: bigint) {
  const what = `set weights as ${signer.ss58} on subnet ${netuid}`;
  const view = await chain.weightsView(netuid, signer.ss58);
  requireRegistered(view, signer.ss58, netuid, what);
  const key = versionKey > view.params.weightsVersionKey
    ? versionKey
    : view.params.weightsVersionKey;
  return { what, view, key };
}

/**
 * Sets weights without commit-reveal (no state directory): rate limit and version key
 * honoured; refuses when the subnet has commit-reveal on.
 */
export async function submitWeights(
  chain: WeightsChain,
  signer: Hotkey,
  netuid: number,
  w: U16Weights,
  versionKey: bigint,
): Promise<void> {
  const { what, view, key } = await prepare(chain, signer, netuid, versionKey);
  if (view.params.commitRevealEnabled) {
    throw new Error(
      `Cannot ${what}: the subnet has commit-reveal weights on, and committing needs a state directory for the pending reveal (run the validator, which keeps one)`,
    );
  }
  checkRateLimit(view, what);
  await chain.sendSetWeights(signer, netuid, w.uids, w.weights, key);
}

/** Largest pending-commit file read back. */
const MAX_PENDING_BYTES = 1 << 20;

/** Parses a pending-commit file strictly; throws a one-line reason. */
export function parsePending(text: string, ss58: string, netuid: number): PendingCommit[] {
  const o = JSON.parse(text);
  if (typeof o !== "object" || o === null || o.version !== 1) {
    throw new Error("not a version-1 file");
  }
  if (o.hotkey !== ss58 || o.netuid !== netuid) {
    throw new Error(`it belongs to ${o.hotkey} on subnet ${o.netuid}`);
  }
  if (!Array.isArray(o.pending) || o.pending.length > 64) throw new Error("bad 'pending' list");
  const u16s = (v: unknown, max: number) => {
    if (!Array.isArray(v) || v.length > max) throw new Error("bad u16 list");
    for (const x of v) if (!Number.isInteger(x) || x < 0 || x > 65535) throw new Error("bad u16");
    return v as number[];
  };
  return o.pending.map((p: Record<string, unknown>) => {
    if (typeof p.hash !== "string" || !/^0x[0-9a-f]{64}$/.test(p.hash)) throw new Error("bad hash");
    if (typeof p.versionKey !== "string" || !/^\d{1,20}$/.test(p.versionKey)) {
      throw new Error("bad version key");
    }
    if (!Number.isSafeInteger(p.commitBlock) || (p.commitBlock as number) < 0) {
      throw new Error("bad commit block");
    }
    const uids = u16s(p.uids, 65536), values = u16s(p.values, 65536);
    if (uids.length !== values.length) throw new Error("uids and values differ in length");
    return {
      hash: p.hash,
      uids,
      values,
      salt: u16s(p.salt, 64),
      versionKey: BigInt(p.versionKey),
      commitBlock: p.commitBlock as number,
    };
  });
}

/**
 * Weight submission for one validator hotkey on one subnet, with its pending commits kept
 * in a state directory. Open with {@link WeightsSubmitter.open}; reveals run on new blocks.
 */
export class WeightsSubmitter {
  readonly path: string;
  #pending: PendingCommit[];
  #unsub: (() => void) | undefined;
  #busy: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(
    readonly chain: WeightsChain,
    readonly signer: Hotkey,
    readonly netuid: number,
    path: string,
    pending: PendingCommit[],
  ) {
    this.path = path;
    this.#pending = pending;
  }

  /** Loads pending commits from `stateDir` and starts revealing them when due. */
  static async open(
    chain: WeightsChain,
    signer: Hotkey,
    netuid: number,
    stateDir: string,
  ): Promise<WeightsSubmitter> {
    const path = join(stateDir, `weights-pending-${netuid}.json`);
    let pending: PendingCommit[] = [];
    try {
      const st = await Deno.stat(path);
      if (st.size > MAX_PENDING_BYTES) throw new Error(`${st.size} bytes is too large`);
      pending = parsePending(await Deno.readTextFile(path), signer.ss58, netuid);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) {
        log.warn(`Ignoring pending weight commits in ${path}: ${(e as Error).message}`);
      }
    }
    const s = new WeightsSubmitter(chain, signer, netuid, path, pending);
    if (pending.length > 0) {
      log.info(`Resuming ${pending.length} unrevealed weight commit(s) from ${path}`);
      await s.#watch();
    }
    return s;
  }

  /** Commits not revealed yet (copies). */
  get pending(): PendingCommit[] {
    return this.#pending.map((p) => ({ ...p }));
  }

  /**
   * Submits the u16 weight vector `w`: `set_weights`, or a commit to be revealed later when
   * the subnet has commit-reveal on. Resolves once the extrinsic is in a block.
   * @throws {WeightsRateLimited} before the chain's rate limit allows weights
   */
  submit(w: U16Weights, versionKey: bigint): Promise<void> {
    // One at a time with reveals, so the pending list is never written from a stale copy.
    return this.#serial(() => this.#submit(w.uids, w.weights, versionKey));
  }

  async #submit(uids: number[], values: number[], versionKey: bigint): Promise<void> {
    const { what, view, key } = await prepare(this.chain, this.signer, this.netuid, versionKey);
    checkRateLimit(view, what);
    if (!view.params.commitRevealEnabled) {
      await this.chain.sendSetWeights(this.signer, this.netuid, uids, values, key);
      return;
    }
    const salt = [...crypto.getRandomValues(new Uint16Array(8))];
    const hash = commitHash(this.signer.ss58, this.netuid, uids, values, salt, key);
    const p: PendingCommit = { hash, uids, values, salt, versionKey: key, commitBlock: view.head };
    // Saved before sending: a crash after the commit lands must not lose the salt.
    await this.#save([...this.#pending, p]);
    try {
      await this.chain.sendCommitWeights(this.signer, this.netuid, hash);
    } catch (e) {
      await this.#save(this.#pending.filter((x) => x.hash !== hash));
      throw e;
    }
    log.info(
      `Committed weights ${hash} at block ${view.head}; revealing in the chain's reveal epoch`,
    );
    await this.#watch();
  }

  /** Checks pending commits now and reveals those due (also run on every new block). */
  revealDue(): Promise<void> {
    return this.#serial(() => this.#revealDue());
  }

  #serial<T>(f: () => Promise<T>): Promise<T> {
    const run = this.#busy.then(f);
    this.#busy = run.then(() => {}, () => {});
    return run;
  }

  async #revealDue(): Promise<void> {
    if (this.#closed || this.#pending.length === 0) return;
    const view = await this.chain.weightsView(this.netuid, this.signer.ss58);
    let keep = this.#pending;
    for (const p of this.#pending) {
      const onChain = view.commits.find((c) => c.hash === p.hash);
      if (!onChain) {
        // Never landed, or revealed by a run that stopped before recording it.
        if (p.commitBlock + 2 < view.head) {
          log.warn(`Weight commit ${p.hash} is not on chain; dropping it`);
          keep = keep.filter((x) => x !== p);
        }
        continue;
      }
      const t = revealTiming(view, onChain);
      if (t === "early") continue;
      if (t === "expired") {
        log.warn(`Weight commit ${p.hash} passed its reveal epoch unrevealed; dropping it`);
        keep = keep.filter((x) => x !== p);
        continue;
      }
      try {
        await this.chain.sendRevealWeights(this.signer, this.netuid, p);
        log.info(`Revealed weights ${p.hash} at block ${view.head + 1}: ${p.uids.length} uids`);
        keep = keep.filter((x) => x !== p);
      } catch (e) {
        log.warn(`Revealing weights ${p.hash} failed: ${(e as Error).message}`);
      }
    }
    if (keep !== this.#pending) await this.#save(keep);
    if (this.#pending.length === 0) this.#stopWatching();
  }

  async #watch(): Promise<void> {
    if (this.#unsub || this.#closed) return;
    this.#unsub = await this.chain.subscribeBlocks(() => {
      this.revealDue().catch((e) =>
        log.warn(`Checking weight reveals failed: ${(e as Error).message}`)
      );
    });
  }

  #stopWatching(): void {
    this.#unsub?.();
    this.#unsub = undefined;
  }

  async #save(pending: PendingCommit[]): Promise<void> {
    const dir = this.path.slice(0, this.path.lastIndexOf("/"));
    await Deno.mkdir(dir, { recursive: true });
    const tmp = `${this.path}.${crypto.randomUUID()}.tmp`;
    const body = {
      version: 1,
      hotkey: this.signer.ss58,
      netuid: this.netuid,
      pending: pending.map((p) => ({ ...p, versionKey: p.versionKey.toString() })),
    };
    await Deno.writeTextFile(tmp, JSON.stringify(body), { createNew: true, mode: 0o600 });
    await Deno.rename(tmp, this.path);
    this.#pending = pending;
  }

  /** Stops watching blocks; pending commits stay on disk for the next run. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#stopWatching();
    await this.#busy;
  }
}
