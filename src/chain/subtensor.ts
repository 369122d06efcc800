/**
 * {@link Chain} on a subtensor node through `@polkadot/api` (the only importer of it).
 *
 * - Connects with a timeout; on a dropped connection reconnects with exponential
 *   backoff (0.25 s doubling to 10 s) on a fresh provider, reusing the metadata it has
 *   already seen, and re-subscribes block subscriptions (gaps are filled by number).
 * - Every RPC has a timeout, so a hung node never blocks a window; reads are retried once
 *   after a reconnect.
 * - Extrinsics are signed immortal with an explicit nonce (serialised per signer), and
 *   their outcome is read from the block's events: a module error becomes one line with
 *   the runtime's error name (`subtensorModule.NotRegistered`, ...).
 * - Call shapes come from the chain's metadata: arguments are passed by name and checked
 *   against the runtime's, so a runtime that renamed or reshaped a call fails clearly.
 *
 * The local chain's admin calls (sudo, burned registration, subnet creation) live in
 * localnet.ts; weight submission (rate limit, version key, commit-reveal) in
 * weights_submit.ts.
 *
 * Deliberately left out: staking.
 *
 * @module
 */
import { ApiPromise, type SubmittableResult, WsProvider } from "@polkadot/api";
import type { KeyringPair } from "@polkadot/keyring/types";
import { u8aToString } from "@polkadot/util";
import { Metadata, TypeRegistry } from "@polkadot/types";
import { getLogger } from "../log.ts";
import { deriveExtensions, type ExtensionDef, extensionEntries, refusal } from "./extensions.ts";
import type { Chain, Hotkey, Metagraph } from "./mod.ts";
import { normalizeWeights } from "./weights.ts";
import { dropRpcDecorationNotice } from "./api_notices.ts";
import { customErrorTable, nameCustomErrors } from "./tx_errors.ts";
import { readNeuron, readStakes, readSubnetParams, storage } from "./runtime_info.ts";
import {
  submitWeights,
  type WeightsReveal,
  WeightsSubmitter,
  type WeightsView,
} from "./weights_submit.ts";

const log = getLogger(["boltzmann", "chain"]);

/** The `--subtensor.network` names. */
export const NETWORKS = ["finney", "test", "local"] as const;

/** A `--subtensor.network` name. */
export type NetworkName = typeof NETWORKS[number];

/** The public subtensor endpoint of each `--subtensor.network`. */
export const ENDPOINTS: Readonly<Record<NetworkName, string>> = {
  finney: "wss://entrypoint-finney.opentensor.ai:443",
  test: "wss://test.finney.opentensor.ai:443",
  local: "ws://127.0.0.1:9944",
};

/** How to reach subtensor. */
export interface SubtensorOptions {
  /** `finney`, `test` or `local` (default `finney` when no endpoint is given). */
  network?: string;
  /** `--subtensor.chain_endpoint`: a ws:// or wss:// URL; wins over `network`. */
  endpoint?: string;
  /** Connect timeout, also the wait for a reconnect before a call fails (default 15 s). */
  timeoutMs?: number;
  /** Timeout of one RPC call (default 30 s). */
  rpcTimeoutMs?: number;
  /** Timeout for a transaction to land in a block (default 120 s). */
  txTimeoutMs?: number;
}

/**
 * The WebSocket endpoint of `opts`.
 * @throws {Error} on an unknown network name or a URL that is not ws:// or wss://
 */
export function endpointOf(opts: { network?: string; endpoint?: string }): string {
  if (opts.endpoint !== undefined) {
    if (!/^wss?:\/\/[^\s]+$/.test(opts.endpoint)) {
      throw new Error(
        `Invalid chain endpoint '${opts.endpoint}': expected a ws:// or wss:// URL`,
      );
    }
    return opts.endpoint;
  }
  const name = opts.network ?? "finney";
  if (!(NETWORKS as readonly string[]).includes(name)) {
    throw new Error(
      `Unknown network '${name}': use finney, test or local, or pass --subtensor.chain_endpoint`,
    );
  }
  return ENDPOINTS[name as NetworkName];
}

/** Rejects with `what timed out` after `ms`; clears its timer either way. */
async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function msg(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0]!;
}

/** Connects one ApiPromise or throws within `timeoutMs`. */
async function openApi(
  endpoint: string,
  timeoutMs: number,
  rpcTimeoutMs: number,
  metadata: Record<string, `0x${string}`>,
): Promise<ApiPromise> {
  const provider = new WsProvider(endpoint, false, {}, rpcTimeoutMs);
  let api: ApiPromise | undefined;
  try {
    await provider.connect();
    const failed = new Promise<never>((_, reject) => {
      provider.on("error", () => reject(new Error("connection failed")));
      provider.on("disconnected", () => reject(new Error("connection closed")));
    });
    failed.catch(() => {});
    const signedExtensions = await withTimeout(
      Promise.race([provider.isReady.then(() => extensionsOf(provider)), failed]),
      timeoutMs,
      "reading the metadata",
    );
    // Not `noInitWarn`, which would also hide registry and extension warnings: only the
    // "RPC methods not decorated" notice is dropped (api_notices.ts says why).
    dropRpcDecorationNotice();
    api = new ApiPromise({ provider, throwOnConnect: true, metadata, signedExtensions });
    api.isReadyOrError.catch(() => {});
    await withTimeout(Promise.race([api.isReadyOrError, failed]), timeoutMs, "connecting");
    return api;
  } catch (e) {
    await (api ? api.disconnect() : provider.disconnect()).catch(() => {});
    throw e;
  }
}

/**
 * Every transaction extension of the node's runtime, derived from its metadata (see
 * extensions.ts), read before the api is built so `@polkadot/types` never guesses one.
 * @throws {Error} naming every extension that cannot be derived
 */
async function extensionsOf(provider: WsProvider): Promise<Record<string, ExtensionDef>> {
  const [hex, version] = await Promise.all([
    provider.send<string>("state_getMetadata", []),
    provider.send<{ specName: string; specVersion: number }>("state_getRuntimeVersion", []),
  ]);
  if (typeof hex !== "string" || !/^0x[0-9a-f]+$/i.test(hex) || hex.length > 64 << 20) {
    throw new Error("the node sent no metadata");
  }
  const md = new Metadata(new TypeRegistry(), hex as `0x${string}`);
  const derived = deriveExtensions(md.asLatest.lookup, extensionEntries(md));
  const refused = refusal(derived.info, `${version.specName} spec ${version.specVersion}`);
  if (refused) throw new ExtensionError(refused);
  return derived.defs;
}

/** A runtime whose extensions boltzmann cannot encode: never worth retrying. */
export class ExtensionError extends Error {}

/** A block subscription that survives reconnects. */
interface BlockSub {
  cb: (block: number, hash: string) => void;
  last?: number;
  queue: Promise<void>;
  unsub?: () => void;
  closed: boolean;
}

/** Named arguments of a call, matched against the metadata's argument names. */
type Args = Record<string, unknown>;

/** What {@link SubtensorChain.submit} reports: the block and the events' names. */
export interface TxResult {
  blockHash: string;
  events: { section: string; method: string; data: unknown }[];
}

/** The {@link Chain} on a subtensor node; construct with {@link connectSubtensor}. */
export class SubtensorChain implements Chain {
  readonly endpoint: string;
  #api: ApiPromise | undefined;
  #connecting: Promise<ApiPromise> | undefined;
  #closed = false;
  #subs = new Set<BlockSub>();
  #nonceLocks = new Map<string, Promise<unknown>>();
  #metadata: Record<string, `0x${string}`> = {};
  #timeoutMs: number;
  #rpcTimeoutMs: number;
  #txTimeoutMs: number;

  /** Use {@link connectSubtensor}. */
  constructor(endpoint: string, opts: SubtensorOptions) {
    this.endpoint = endpoint;
    this.#timeoutMs = opts.timeoutMs ?? 15_000;
    this.#rpcTimeoutMs = opts.rpcTimeoutMs ?? 30_000;
    this.#txTimeoutMs = opts.txTimeoutMs ?? 120_000;
  }

  /** First connection: fails with a clear line instead of retrying. */
  async open(): Promise<void> {
    try {
      this.#adopt(await openApi(this.endpoint, this.#timeoutMs, this.#rpcTimeoutMs, {}));
    } catch (e) {
      if (e instanceof ExtensionError) throw new Error(`${e.message} (${this.endpoint})`);
      throw new Error(
        `Cannot connect to subtensor at ${this.endpoint}: ${
          msg(e)
        }; check --subtensor.network or --subtensor.chain_endpoint and that the node is up`,
      );
    }
    const api = this.#api!;
    log.info("Connected to {endpoint}: {spec} spec {version}", {
      endpoint: this.endpoint,
      spec: api.runtimeVersion.specName.toString(),
      version: api.runtimeVersion.specVersion.toNumber(),
    });
  }

  #adopt(api: ApiPromise): void {
    this.#api = api;
    this.#derivedFor.set(api, api.runtimeVersion.specVersion.toNumber());
    const key = `${api.genesisHash.toHex()}-${api.runtimeVersion.specVersion.toString()}`;
    this.#metadata[key] = api.runtimeMetadata.toHex();
    api.on("disconnected", () => {
      if (this.#api !== api || this.#closed) return;
      log.warn("Lost connection to {endpoint}; reconnecting", { endpoint: this.endpoint });
      this.#api = undefined;
      api.disconnect().catch(() => {});
      for (const s of this.#subs) s.unsub = undefined;
      this.#reconnect();
    });
  }

  /** Reconnects with exponential backoff until it succeeds or the chain is closed. */
  #reconnect(): Promise<ApiPromise> {
    if (this.#connecting) return this.#connecting;
    this.#connecting = (async () => {
      let delay = 250;
      for (let attempt = 1;; attempt++) {
        if (this.#closed) throw new Error(`Chain client for ${this.endpoint} is closed`);
        try {
          const api = await openApi(
            this.endpoint,
            this.#timeoutMs,
            this.#rpcTimeoutMs,
            this.#metadata,
          );
          if (this.#closed) {
            await api.disconnect().catch(() => {});
            throw new Error(`Chain client for ${this.endpoint} is closed`);
          }
          this.#adopt(api);
          log.info("Reconnected to {endpoint} after {attempt} attempt(s)", {
            endpoint: this.endpoint,
            attempt,
          });
          for (const s of this.#subs) await this.#subscribe(s).catch(() => {});
          return api;
        } catch (e) {
          if (this.#closed) throw e;
          // A runtime upgraded to extensions we cannot encode: say so, not only at debug.
          if (e instanceof ExtensionError) log.error("{err}", { err: msg(e) });
          else log.debug("Reconnect attempt {attempt} failed: {err}", { attempt, err: msg(e) });
          await sleep(delay);
          delay = Math.min(delay * 2, 10_000);
        }
      }
    })();
    this.#connecting.catch(() => {}).finally(() => (this.#connecting = undefined));
    return this.#connecting;
  }

  /** The connected api, waiting up to the connect timeout for a reconnect. */
  async #ready(): Promise<ApiPromise> {
    if (this.#closed) throw new Error(`Chain client for ${this.endpoint} is closed`);
    if (this.#api) return this.#api;
    return await withTimeout(
      this.#reconnect(),
      this.#timeoutMs,
      `Waiting to reconnect to ${this.endpoint}`,
    );
  }

  /** Runs a read with a timeout; retries once after a dropped connection. */
  async #read<T>(what: string, f: (api: ApiPromise) => Promise<T>): Promise<T> {
    for (let attempt = 0;; attempt++) {
      const api = await this.#ready();
      try {
        return await withTimeout(f(api), this.#rpcTimeoutMs, `Chain request '${what}'`);
      } catch (e) {
        if (attempt > 0 || this.#api === api || this.#closed) {
          throw new Error(`Cannot ${what} on ${this.endpoint}: ${msg(e)}`);
        }
      }
    }
  }

  /** The connected `ApiPromise`, for code inside src/chain/ only. */
  async api(): Promise<ApiPromise> {
    return await this.#ready();
  }

  /** @inheritdoc */
  async currentBlock(): Promise<number> {
    return await this.#read("read the best block", async (api) => {
      return (await api.rpc.chain.getHeader()).number.toNumber();
    });
  }

  /** @inheritdoc */
  async blockHash(block: number): Promise<string> {
    if (!Number.isSafeInteger(block) || block < 0) {
      throw new RangeError(`Invalid block ${block}: expected an integer ≥ 0`);
    }
    // Only final blocks: a best block's hash can change in a short fork, and every
    // participant must derive the same seeds from it.
    if (block > this.#finalized) {
      const fin = await this.#read("read the finalized head", async (api) => {
        const h = await api.rpc.chain.getFinalizedHead();
        return (await api.rpc.chain.getHeader(h)).number.toNumber();
      });
      this.#finalized = Math.max(this.#finalized, fin);
      if (block > this.#finalized) {
        throw new RangeError(
          `Block ${block} is not on ${this.endpoint} yet as a final block (finalized: ${this.#finalized})`,
        );
      }
    }
    const hash = await this.#read(`read the hash of block ${block}`, async (api) => {
      return (await api.rpc.chain.getBlockHash(block)).toHex();
    });
    if (/^0x0{64}$/.test(hash)) {
      throw new RangeError(`Block ${block} is not on ${this.endpoint} yet`);
    }
    return hash;
  }

  /** The newest finalized block number seen (from subscriptions or reads). */
  #finalized = -1;

  /** @inheritdoc */
  async subscribeBlocks(cb: (block: number, hash: string) => void): Promise<() => void> {
    const s: BlockSub = { cb, queue: Promise.resolve(), closed: false };
    this.#subs.add(s);
    // A node restarting just then drops the first try: try again while it reconnects
    // (for up to 30 s), then give up with the reason.
    for (const t0 = Date.now();;) {
      try {
        await this.#subscribe(s);
        break;
      } catch (e) {
        if (Date.now() - t0 < 30_000) {
          await new Promise((r) => setTimeout(r, 2000));
          continue;
        }
        this.#subs.delete(s);
        throw new Error(`Cannot subscribe to blocks on ${this.endpoint}: ${msg(e)}`);
      }
    }
    return () => {
      s.closed = true;
      this.#subs.delete(s);
      s.unsub?.();
      s.unsub = undefined;
    };
  }

  async #subscribe(s: BlockSub): Promise<void> {
    const api = await this.#ready();
    const unsub = await withTimeout(
      api.rpc.chain.subscribeFinalizedHeads((h) => {
        const n = h.number.toNumber(), hash = h.hash.toHex();
        this.#finalized = Math.max(this.#finalized, n);
        s.queue = s.queue.then(() => this.#deliver(s, n, hash));
      }),
      this.#rpcTimeoutMs,
      "Subscribing to finalized heads",
    );
    if (s.closed) unsub();
    else s.unsub = unsub;
  }

  /** Delivers `n` after filling any gap since the last delivered block. */
  async #deliver(s: BlockSub, n: number, hash: string): Promise<void> {
    if (s.closed) return;
    if (s.last !== undefined && n <= s.last) {
      if (n < s.last - 1) {
        log.warn("Best block went back from {last} to {n}; waiting for the chain to pass it", {
          last: s.last,
          n,
        });
      }
      return;
    }
    try {
      if (s.last !== undefined) {
        for (let k = s.last + 1; k < n && !s.closed; k++) {
          const h = await this.blockHash(k);
          s.last = k;
          this.#call(s, k, h);
        }
      }
    } catch (e) {
      // Leave `last` where it is: the next head fills the gap again.
      log.warn("Cannot fill block gap before {n}: {err}", { n, err: msg(e) });
      return;
    }
    if (s.closed) return;
    s.last = n;
    this.#call(s, n, hash);
  }

  #call(s: BlockSub, n: number, hash: string): void {
    try {
      s.cb(n, hash);
    } catch (e) {
      log.error("Block callback failed at block {n}: {err}", { n, err: msg(e) });
    }
  }

  /** Storage item `section.item` from metadata, or a clear error naming it. */
  #query(api: ApiPromise, section: string, item: string) {
    // deno-lint-ignore no-explicit-any
    const q = (api.query as any)[section]?.[item];
    if (!q) {
      throw new Error(
        `Chain ${this.endpoint} (spec ${api.runtimeVersion.specVersion}) has no storage ${section}.${item}; this runtime is not supported`,
      );
    }
    return q;
  }

  async #subnetExists(api: ApiPromise, netuid: number): Promise<void> {
    checkNetuid(netuid);
    const added = await this.#query(api, "subtensorModule", "networksAdded")(netuid);
    if (!added.isTrue) {
      throw new Error(`Subnet ${netuid} does not exist on ${this.endpoint}; check --netuid`);
    }
  }

  /** The uid of `hotkey` on `netuid`, or undefined when it is not registered. */
  async uidOf(netuid: number, hotkey: string): Promise<number | undefined> {
    return await this.#read(`read the uid of ${hotkey}`, async (api) => {
      const v = await this.#query(api, "subtensorModule", "uids")(netuid, hotkey);
      return v.isSome ? v.unwrap().toNumber() : undefined;
    });
  }

  /** @inheritdoc */
  async metagraph(netuid: number): Promise<Metagraph> {
    return await this.#read(`read the metagraph of subnet ${netuid}`, async (api) => {
      await this.#subnetExists(api, netuid);
      const header = await api.rpc.chain.getHeader();
      const at = await api.at(header.hash);
      const q = (item: string) => this.#query(at as unknown as ApiPromise, "subtensorModule", item);
      const n = (await q("subnetworkN")(netuid)).toNumber();
      const keys = await q("keys").entries(netuid);
      const hotkeys: string[] = new Array(n).fill("");
      for (const [k, v] of keys) {
        const uid = k.args[1].toNumber();
        if (uid < n) hotkeys[uid] = v.toString();
      }
      const owners = n === 0 ? [] : await q("owner").multi(hotkeys);
      const stakes = await readStakes(at as unknown as ApiPromise, netuid, hotkeys);
      const permits = (await q("validatorPermit")(netuid)).map((b: { isTrue: boolean }) =>
        b.isTrue
      );
      const last = (await q("lastUpdate")(netuid)).map((x: { toNumber(): number }) => x.toNumber());
      const uids = [...Array(n).keys()];
      return {
        netuid,
        block: header.number.toNumber(),
        uids,
        hotkeys,
        coldkeys: owners.map((o: { toString(): string }) => o.toString()),
        stake: uids.map((i) => Number(stakes[i] ?? 0n) / 1e9),
        validatorPermit: uids.map((i) => permits[i] ?? false),
        lastUpdate: uids.map((i) => last[i] ?? 0),
      };
    });
  }

  /** @inheritdoc */
  async commitments(netuid: number): Promise<Map<string, string>> {
    return await this.#read(`read the commitments of subnet ${netuid}`, async (api) => {
      checkNetuid(netuid);
      const entries = await this.#query(api, "commitments", "commitmentOf").entries(netuid);
      const out = new Map<string, string>();
      for (const [k, v] of entries) {
        if (v.isNone) continue;
        const fields = v.unwrap().info.fields as { type: string; value: { toU8a(): Uint8Array } }[];
        const parts = fields.filter((f) => f.type.startsWith("Raw")).map((f) => f.value.toU8a());
        out.set(k.args[1].toString(), parts.map((p) => u8aToString(p)).join(""));
      }
      return out;
    });
  }

  /** @inheritdoc */
  async setCommitment(signer: Hotkey, netuid: number, data: string): Promise<void> {
    const what = `set the commitment of ${signer.ss58} on subnet ${netuid}`;
    const api = await this.#ready();
    await this.#requireRegistered(api, netuid, signer.ss58, what);
    const bytes = new TextEncoder().encode(data);
    // Field limits from metadata: the largest `RawN` variant and `maxFields`.
    const def = JSON.parse(api.registry.createType("PalletCommitmentsData").toRawType());
    const maxRaw = Math.max(
      0,
      ...Object.keys(def._enum ?? {}).filter((k) => /^Raw\d+$/.test(k)).map((k) =>
        Number(k.slice(3))
      ),
    );
    // deno-lint-ignore no-explicit-any
    const maxFields = Number((api.consts as any).commitments?.maxFields?.toString() ?? 1);
    if (maxRaw === 0 || bytes.length > maxRaw * maxFields) {
      throw new Error(
        `Cannot ${what}: ${bytes.length} bytes exceeds the chain's limit of ${maxRaw * maxFields}`,
      );
    }
    const fields = [];
    for (let i = 0; i < bytes.length || i === 0; i += maxRaw) {
      const part = bytes.subarray(i, i + maxRaw);
      fields.push({ [`Raw${part.length}`]: part });
      if (bytes.length === 0) break;
    }
    await this.submit(signer, "commitments", "setCommitment", { netuid, info: { fields } }, what);
  }

  /**
   * Sets `signer`'s weights on `netuid` through its weights submitter (weights_submit.ts:
   * rate limit, version key, commit-reveal) when one is attached, else directly with
   * the same checks but without commit-reveal (which needs a state directory).
   */
  async setWeights(
    signer: Hotkey,
    netuid: number,
    uids: number[],
    weights: number[],
    versionKey: number,
  ): Promise<void> {
    if (!Number.isSafeInteger(versionKey) || versionKey < 0) {
      throw new RangeError(
        `Cannot set weights as ${signer.ss58} on subnet ${netuid}: version key ${versionKey} is not an integer ≥ 0`,
      );
    }
    const norm = normalizeWeights(uids, weights);
    const sub = this.#submitters.get(`${netuid} ${signer.ss58}`);
    if (sub) return await sub.submit(norm, BigInt(versionKey));
    await submitWeights(this, signer, netuid, norm, BigInt(versionKey));
  }

  #submitters = new Map<string, WeightsSubmitter>();

  /**
   * Routes `signer`'s weights on `netuid` through a submitter keeping its pending commits
   * in `stateDir`, and resumes any commit a previous run left unrevealed.
   */
  async attachWeights(signer: Hotkey, netuid: number, stateDir: string): Promise<WeightsSubmitter> {
    const key = `${netuid} ${signer.ss58}`;
    const had = this.#submitters.get(key);
    if (had) return had;
    const sub = await WeightsSubmitter.open(this, signer, netuid, stateDir);
    this.#submitters.set(key, sub);
    return sub;
  }

  /** What weight submission needs to know, read at one block (see weights_submit.ts). */
  async weightsView(netuid: number, hotkey: string): Promise<WeightsView> {
    return await this.#read(
      `read the weights state of ${hotkey} on subnet ${netuid}`,
      async (api) => {
        const header = await api.rpc.chain.getHeader();
        const at = await api.at(header.hash) as unknown as ApiPromise;
        const params = await readSubnetParams(at, netuid);
        const neuron = await readNeuron(at, netuid, hotkey, { stake: false });
        // deno-lint-ignore no-explicit-any
        const epochQ = (at.query as any).subtensorModule?.subnetEpochIndex;
        const epochIndex = epochQ ? Number((await epochQ(netuid)).toString()) : undefined;
        const raw = await storage(at, "weightCommits")(netuid, hotkey);
        const rows = (raw.isSome ? raw.unwrap() : raw) as unknown as {
          toJSON(): [string, number | string, number | string, number | string][] | null;
        };
        const commits = (rows.toJSON() ?? []).map(([hash, a, b, c]) => ({
          hash: String(hash).toLowerCase(),
          fields: [Number(a), Number(b), Number(c)] as [number, number, number],
        }));
        return { head: header.number.toNumber(), params, neuron, epochIndex, commits };
      },
    );
  }

  /** `set_weights` with u16 values as given (see weights_submit.ts for the checks). */
  async sendSetWeights(
    signer: Hotkey,
    netuid: number,
    uids: number[],
    values: number[],
    versionKey: bigint,
  ): Promise<void> {
    await this.submit(signer, "subtensorModule", "setWeights", {
      netuid,
      dests: uids,
      weights: values,
      versionKey,
    }, `set weights as ${signer.ss58} on subnet ${netuid}`);
  }

  /** `commit_weights(netuid, hash)`. */
  async sendCommitWeights(signer: Hotkey, netuid: number, hash: string): Promise<void> {
    await this.submit(signer, "subtensorModule", "commitWeights", {
      netuid,
      commitHash: hash,
    }, `commit weights as ${signer.ss58} on subnet ${netuid}`);
  }

  /** `reveal_weights(netuid, uids, values, salt, version_key)`. */
  async sendRevealWeights(signer: Hotkey, netuid: number, reveal: WeightsReveal): Promise<void> {
    const { uids, values, salt, versionKey } = reveal;
    await this.submit(signer, "subtensorModule", "revealWeights", {
      netuid,
      uids,
      values,
      salt,
      versionKey,
    }, `reveal weights as ${signer.ss58} on subnet ${netuid}`);
  }

  /** @inheritdoc */
  async weights(netuid: number): Promise<Map<number, [number, number][]>> {
    return await this.#read(`read the weights of subnet ${netuid}`, async (api) => {
      checkNetuid(netuid);
      const entries = await this.#query(api, "subtensorModule", "weights").entries(netuid);
      const out = new Map<number, [number, number][]>();
      for (const [k, v] of entries) {
        const row = (v as unknown as { toJSON(): [number, number][] }).toJSON();
        if (row.length > 0) out.set(Number(k.args[1].toString()), row);
      }
      return out;
    });
  }

  async #requireRegistered(api: ApiPromise, netuid: number, ss58: string, what: string) {
    await withTimeout(this.#subnetExists(api, netuid), this.#rpcTimeoutMs, "Reading subnets");
    const uid = await withTimeout(
      this.#query(api, "subtensorModule", "uids")(netuid, ss58),
      this.#rpcTimeoutMs,
      "Reading uids",
    ) as { isSome: boolean };
    if (!uid.isSome) {
      throw new Error(
        `Cannot ${what}: hotkey ${ss58} is not registered on subnet ${netuid}; register it first (btcli subnet register)`,
      );
    }
  }

  /** Builds `section.method` with arguments matched by name to the metadata's. */
  call(api: ApiPromise, section: string, method: string, args: Args) {
    // deno-lint-ignore no-explicit-any
    const fn = (api.tx as any)[section]?.[method];
    const spec = `spec ${api.runtimeVersion.specVersion}`;
    if (!fn) {
      throw new Error(
        `Chain ${this.endpoint} (${spec}) has no call ${section}.${method}; this runtime is not supported`,
      );
    }
    const names: string[] = fn.meta.args.map((a: { name: { toString(): string } }) =>
      a.name.toString()
    );
    const missing = names.filter((n) => !(n in args));
    const extra = Object.keys(args).filter((n) => !names.includes(n));
    if (missing.length > 0 || extra.length > 0) {
      throw new Error(
        `Chain ${this.endpoint} (${spec}) has ${section}.${method}(${names.join(", ")}), not (${
          Object.keys(args).join(", ")
        }); this runtime is not supported`,
      );
    }
    return fn(...names.map((n) => args[n]));
  }

  /**
   * Signs `section.method(args)` with `signer`, submits it, waits until it is in a block
   * and checks its events.
   * @throws {Error} "Cannot <what>: ..." with the runtime's error name
   */
  async submit(
    signer: Hotkey,
    section: string,
    method: string,
    args: Args,
    what: string,
  ): Promise<TxResult> {
    const api = await this.#ready();
    return await this.sendTx(api, signer, this.call(api, section, method, args), what);
  }

  /** The spec version each api's extensions were derived for (see extensionsOf). */
  #derivedFor = new WeakMap<ApiPromise, number>();

  /**
   * After a runtime upgrade the api keeps the extensions derived at connect time; derive
   * them again from the new metadata before signing, and refuse if one cannot be.
   */
  #checkExtensions(api: ApiPromise, what: string): void {
    const spec = api.runtimeVersion.specVersion.toNumber();
    if (this.#derivedFor.get(api) === spec) return;
    const d = deriveExtensions(api.registry.lookup, extensionEntries(api.runtimeMetadata));
    const refused = refusal(d.info, `${api.runtimeVersion.specName} spec ${spec}`);
    if (refused) throw new Error(`Cannot ${what}: ${refused}`);
    api.registry.setSignedExtensions(d.names, d.defs);
    this.#derivedFor.set(api, spec);
    log.info("Runtime upgraded to spec {spec}: transaction extensions derived again", { spec });
  }

  /**
   * Signs and submits a built call (see {@link call}), waits until it is in a block and
   * checks its events.
   * @throws {Error} "Cannot <what>: ..." with the runtime's error name
   */
  // deno-lint-ignore no-explicit-any
  async sendTx(api: ApiPromise, signer: Hotkey, tx: any, what: string): Promise<TxResult> {
    this.#checkExtensions(api, what);
    const pair = signer.pair as KeyringPair;
    let unsub: (() => void) | undefined;
    const included = Promise.withResolvers<TxResult>();
    // Nonce and submission are serialised per signer so parallel calls get distinct nonces.
    const prev = this.#nonceLocks.get(pair.address) ?? Promise.resolve();
    const mine = prev.catch(() => {}).then(async () => {
      const nonce = await withTimeout(
        api.rpc.system.accountNextIndex(pair.address),
        this.#rpcTimeoutMs,
        "Reading the nonce",
      );
      unsub = await withTimeout<() => void>(
        tx.signAndSend(pair, { era: 0, nonce }, (r: SubmittableResult) => {
          if (r.status.isInBlock || r.status.isFinalized) {
            const hash = (r.status.isInBlock ? r.status.asInBlock : r.status.asFinalized).toHex();
            const err = this.#failure(api, r);
            if (err) included.reject(new Error(`Cannot ${what}: ${err}`));
            else {
              included.resolve({
                blockHash: hash,
                events: r.events.map((e) => ({
                  section: e.event.section,
                  method: e.event.method,
                  data: e.event.data.toJSON(),
                })),
              });
            }
          } else if (r.status.isInvalid || r.status.isDropped || r.status.isUsurped) {
            included.reject(
              new Error(`Cannot ${what}: the transaction was ${r.status.type.toLowerCase()}`),
            );
          }
        }),
        this.#rpcTimeoutMs,
        "Submitting the transaction",
      );
    });
    this.#nonceLocks.set(pair.address, mine);
    try {
      await mine.catch((e) => {
        const table = customErrorTable(
          extensionEntries(api.runtimeMetadata).map((x) => x.identifier),
        );
        throw new Error(
          `Cannot ${what}: the chain refused the transaction: ${nameCustomErrors(msg(e), table)}`,
        );
      });
      return await withTimeout(
        included.promise,
        this.#txTimeoutMs,
        `Waiting for the transaction to ${what}`,
      );
    } finally {
      if (this.#nonceLocks.get(pair.address) === mine) this.#nonceLocks.delete(pair.address);
      try {
        unsub?.();
      } catch { /* the connection may be gone */ }
    }
  }

  /** The failure of an included extrinsic, as one line with the runtime's error name. */
  #failure(api: ApiPromise, r: SubmittableResult): string | undefined {
    // deno-lint-ignore no-explicit-any
    const describe = (e: any): string => {
      if (e.isModule) {
        const m = api.registry.findMetaError(e.asModule);
        const doc = m.docs.join(" ").trim().split(/(?<=\.)\s/)[0] ?? "";
        return `the chain refused it with ${m.section}.${m.name}${
          doc ? ` (${doc.replace(/\.$/, "")})` : ""
        }`;
      }
      return `the chain refused it with ${e.toString()}`;
    };
    if (r.dispatchError) return describe(r.dispatchError);
    for (const { event } of r.events) {
      if (event.section === "sudo" && event.method === "Sudid") {
        const res = event.data[0] as unknown as { isErr: boolean; asErr: unknown } | undefined;
        if (res?.isErr) return describe(res.asErr);
      }
    }
    return undefined;
  }

  /** @inheritdoc */
  async close(): Promise<void> {
    for (const w of this.#submitters.values()) await w.close();
    this.#submitters.clear();
    this.#closed = true;
    for (const s of this.#subs) {
      s.closed = true;
      try {
        s.unsub?.();
      } catch { /* already gone */ }
    }
    this.#subs.clear();
    const api = this.#api;
    this.#api = undefined;
    await this.#connecting?.catch(() => {});
    if (api) await api.disconnect().catch(() => {});
  }
}

function checkNetuid(netuid: number): void {
  if (!Number.isInteger(netuid) || netuid < 0 || netuid > 65535) {
    throw new RangeError(`Invalid netuid ${netuid}: expected an integer from 0 to 65535`);
  }
}

/**
 * Connects to subtensor: `endpoint`, or the public endpoint of `network`.
 * @throws {Error} on an unknown network, or when no connection is made within `timeoutMs`
 */
export async function connectSubtensor(opts: SubtensorOptions): Promise<SubtensorChain> {
  const chain = new SubtensorChain(endpointOf(opts), opts);
  await chain.open();
  return chain;
}
