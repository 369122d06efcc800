/**
 * A local subtensor chain: the real Bittensor runtime (spec 218, from the genesis in
 * `assets/`) run in this process by `@acala-network/chopsticks-core`, served on
 * 127.0.0.1 over WebSocket JSON-RPC, with a subnet ready for boltzmann:
 *
 * - `//Alice` is sudo; Alice, every registered hotkey and its dev coldkey (`//Cold<i>`)
 *   hold 10^8 TAO;
 * - one subnet (registered by `//Cold0` with the first hotkey as owner, so hotkey `i`
 *   gets uid `i`), with weights rate limit 0, commit-reveal off, weights min stake 0,
 *   registration open (256 per block), the given tempo;
 * - every registered hotkey holds a validator permit before this returns (one epoch
 *   is run at tempo 1), so any of them may set weights;
 * - blocks every `blockTimeMs`, or with `blockTimeMs: 0` one block per transaction plus
 *   those asked for with `newBlock()` / the `dev_newBlock` RPC.
 *
 * State lives in memory only. `restart()` drops every connection and stops serving for a
 * while (a node restart as clients see it) but keeps the chain's state.
 *
 * @module
 */
import process from "node:process";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { decodeAddress, encodeAddress } from "@polkadot/util-crypto";
import { getLogger } from "../log.ts";
import type { Hotkey } from "./mod.ts";
import { type RpcServer, serveRpc } from "./_rpc_server.ts";
import { connectSubtensor, type SubtensorChain, type TxResult } from "./subtensor.ts";
import { hotkeyFromUri } from "./wallet.ts";
import { readAsset } from "../assets.ts";

const log = getLogger(["boltzmann", "localnet"]);

/** The shipped genesis (raonet.json of opentensor/subtensor at 521fa9ab8) and its sha256. */
const GENESIS_URL = new URL("../../assets/subtensor-spec218-genesis.json", import.meta.url);
const GENESIS_SHA256 = "bb2c7e34390f8fb5032750cc7d80d23f91a47f56fdebf4c35a24c7938b96c57c";

/** Storage key of `Timestamp::Now` (twox128("Timestamp") ++ twox128("Now")). */
const TIMESTAMP_NOW = "0xf0c365c3cf59d671eb72da0e7a4113c49f1f0515f462cdcf84e0f1d6045dfcbb";

/** Aura's slot length in this runtime, ms. */
const SLOT_MS = 12_000;

/**
 * Pins the genesis timestamp to the start of the current slot. Without it chopsticks
 * reads the clock twice while building block 1 (slot digest, then timestamp inherent),
 * and when a slot boundary falls between the reads Aura panics ("Timestamp slot must
 * match `CurrentSlot`") and block 1 is not built.
 */
function pinGenesisTime(genesis: unknown, nowMs: number): void {
  const top = (genesis as { genesis?: { raw?: { top?: Record<string, string> } } }).genesis?.raw
    ?.top;
  if (!top) throw new Error("Cannot use the chain genesis: it has no genesis.raw.top");
  const t = BigInt(Math.floor(nowMs / SLOT_MS) * SLOT_MS);
  const le = new Uint8Array(8);
  new DataView(le.buffer).setBigUint64(0, t, true);
  top[TIMESTAMP_NOW] = "0x" + bytesToHex(le);
}

/** Free balance of every funded dev account: 10^8 TAO in rao. */
const FUNDS = "100000000000000000";

/** Options of {@link startLocalnet}. */
export interface LocalnetOptions {
  /** Port on 127.0.0.1; 0 picks a free one (default 9944). */
  port?: number;
  /** Milliseconds between blocks (default 12000); 0 = a block per transaction + on demand. */
  blockTimeMs?: number;
  /** SS58 hotkeys to register, in uid order (the first owns the subnet). */
  hotkeys?: string[];
  /** Subnet tempo in blocks (default 10). */
  tempo?: number;
  /** A hotkey (one of `hotkeys`) that must be able to set weights; every one can. */
  validator?: string;
  /** Commit-reveal weights on the subnet (default off). */
  commitReveal?: boolean;
  /** Epochs between a commit and its reveal when commit-reveal is on (default 1). */
  revealPeriodEpochs?: number;
}

/** Subnet parameters a local chain's sudo key may change (see {@link Localnet.setSubnet}). */
export interface LocalSubnetParams {
  tempo?: number;
  commitReveal?: boolean;
  revealPeriodEpochs?: number;
  weightsRateLimit?: number;
  weightsVersionKey?: number;
}

/** A running local chain. */
export interface Localnet {
  /** `ws://127.0.0.1:<port>`. */
  endpoint: string;
  port: number;
  /** The subnet made for boltzmann. */
  netuid: number;
  /** Registered hotkeys in uid order (uid i = hotkeys[i]) and their dev coldkeys. */
  hotkeys: string[];
  coldkeys: string[];
  /** Builds `n` blocks (default 1) now. */
  newBlock(n?: number): Promise<void>;
  /** Number of the best block. */
  head(): number;
  /** uid of each registered hotkey, read from the chain. */
  uids(): Promise<Map<string, number>>;
  /** Weights on the subnet as stored: validator uid → (uid, u16) pairs. */
  weights(): Promise<Map<number, [number, number][]>>;
  /**
   * Makes the finalized head trail the best head by `blocks` from the next block on
   * (chopsticks finalizes every block at once; 0 restores that). For tests of finality.
   */
  setFinalityLag(blocks: number): void;
  /** Changes subnet parameters with the sudo key, in one block. */
  setSubnet(p: LocalSubnetParams): Promise<void>;
  /** Runs `calls` as the sudo key, in one block. */
  sudo(calls: AdminCall[]): Promise<void>;
  /**
   * Simulates a node restart: drops every connection, serves nothing for `downMs`
   * (default 1000), then listens again on the same port with the same state.
   */
  restart(opts?: { downMs?: number }): Promise<void>;
  /** Stops blocks, the server and the chain. */
  stop(): Promise<void>;
}

/** A call by pallet, method and named arguments. */
export type AdminCall = [section: string, method: string, args: Record<string, unknown>];

/** Submits `sudo(utility.batchAll(calls))` signed by the sudo key: one block for all. */
export async function sudoBatch(
  client: SubtensorChain,
  sudoKey: Hotkey,
  calls: AdminCall[],
  what: string,
): Promise<TxResult> {
  const api = await client.api();
  const inner = calls.map(([s, m, a]) => client.call(api, s, m, a));
  const batch = client.call(api, "utility", "batchAll", { calls: inner });
  return await client.sendTx(api, sudoKey, client.call(api, "sudo", "sudo", { call: batch }), what);
}

/**
 * Registers `hotkey` on `netuid` by burning, signed by `coldkey`; returns its uid.
 * @throws {Error} with the runtime's error name when refused
 */
export async function burnedRegister(
  client: SubtensorChain,
  coldkey: Hotkey,
  netuid: number,
  hotkey: string,
): Promise<number> {
  const what = `register ${hotkey} on subnet ${netuid}`;
  await client.submit(coldkey, "subtensorModule", "burnedRegister", { netuid, hotkey }, what);
  const uid = await client.uidOf(netuid, hotkey);
  if (uid === undefined) throw new Error(`Cannot ${what}: no uid after registration`);
  return uid;
}

/** A block header as the substrate RPC sends it (chopsticks' own shape). */
// deno-lint-ignore no-explicit-any
function headerJson(h: any) {
  return {
    parentHash: h.parentHash.toHex(),
    number: h.number.toHex(),
    stateRoot: h.stateRoot.toHex(),
    extrinsicsRoot: h.extrinsicsRoot.toHex(),
    digest: { logs: h.digest.logs.map((l: { toHex(): string }) => l.toHex()) },
  };
}

/** Active chains in this process: the shared wasm worker is destroyed with the last. */
let active = 0;

// deno-lint-ignore no-explicit-any
type Core = any;

async function loadCore(): Promise<Core> {
  // chopsticks reads its log level once, at import; keep its per-block INFO lines quiet.
  process.env.LOG_LEVEL ??= "error";
  return await import("@acala-network/chopsticks-core");
}

async function readGenesis(): Promise<unknown> {
  const bytes = await readAsset(
    GENESIS_URL,
    "the chain genesis",
    "the assets/ folder must ship with boltzmann",
  );
  const sum = bytesToHex(sha256(bytes));
  if (sum !== GENESIS_SHA256) {
    throw new Error(
      `Cannot use the chain genesis '${GENESIS_URL.pathname}': sha256 ${sum} is not ${GENESIS_SHA256}; reinstall boltzmann`,
    );
  }
  return JSON.parse(new TextDecoder().decode(bytes));
}

function checkSs58(s: string): string {
  try {
    return encodeAddress(decodeAddress(s), 42);
  } catch {
    throw new Error(`Invalid hotkey '${s}': not an SS58 address`);
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Starts a local subtensor chain with a subnet ready for boltzmann.
 *
 * @example
 * ```ts
 * const net = await startLocalnet({ port: 0, blockTimeMs: 0, hotkeys: [alice.ss58] });
 * const chain = await connectSubtensor({ endpoint: net.endpoint });
 * // ...
 * await chain.close();
 * await net.stop();
 * ```
 * @throws {Error} when the port is taken or the genesis is missing
 */
export async function startLocalnet(opts: LocalnetOptions = {}): Promise<Localnet> {
  const port = opts.port ?? 9944;
  const blockTimeMs = opts.blockTimeMs ?? 12_000;
  const tempo = opts.tempo ?? 10;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`Invalid port ${port}: expected an integer from 0 to 65535`);
  }
  if (!Number.isInteger(blockTimeMs) || (blockTimeMs !== 0 && blockTimeMs < 200)) {
    throw new RangeError(`Invalid block time ${blockTimeMs} ms: expected 0 (manual) or ≥ 200`);
  }
  if (!Number.isInteger(tempo) || tempo < 1 || tempo > 65535) {
    throw new RangeError(`Invalid tempo ${tempo}: expected an integer from 1 to 65535`);
  }
  const hotkeys = (opts.hotkeys ?? []).map(checkSs58);
  if (new Set(hotkeys).size !== hotkeys.length) {
    throw new Error("Cannot start the local chain: a hotkey appears twice");
  }
  if (opts.validator !== undefined && !hotkeys.includes(checkSs58(opts.validator))) {
    throw new Error(
      `Cannot start the local chain: validator ${opts.validator} is not among the hotkeys to register`,
    );
  }
  const t0 = performance.now();
  const [core, genesis] = await Promise.all([loadCore(), readGenesis()]);
  pinGenesisTime(genesis, Date.now());
  const alice = await hotkeyFromUri("//Alice");
  const owner = hotkeys[0] ?? alice.ss58;
  const registered = hotkeys.length > 0 ? hotkeys : [owner];
  const colds: Hotkey[] = [];
  for (let i = 0; i < registered.length; i++) colds.push(await hotkeyFromUri(`//Cold${i}`));
  const funded = [...new Set([alice.ss58, ...registered, ...colds.map((c) => c.ss58)])];

  active++;
  let chain: Core | undefined;
  let server: RpcServer | undefined;
  let client: SubtensorChain | undefined;
  let reader: Promise<SubtensorChain> | undefined;
  let timer: ReturnType<typeof setInterval> | undefined;
  let stopped = false;
  const stopAll = async () => {
    stopped = true;
    clearInterval(timer);
    await client?.close().catch(() => {});
    await reader?.then((r) => r.close()).catch(() => {});
    await server?.close().catch(() => {});
    await chain?.close().catch(() => {});
    if (--active === 0) await core.destroyWorker();
  };
  try {
    chain = await core.setup({
      genesis: new core.GenesisProvider(genesis),
      buildBlockMode: core.BuildBlockMode.Batch,
    });
    await core.setStorage(chain, {
      Sudo: { Key: alice.ss58 },
      System: {
        Account: funded.map((a) => [[a], { providers: 1, data: { free: FUNDS } }]),
      },
    });
    // chopsticks finalizes every block at once; a test may make finality trail the head.
    let finalityLag = 0;
    const finalized = async () => {
      const n = Math.max(0, (chain.head.number as number) - finalityLag);
      return n === chain.head.number ? chain.head : await chain.getBlockAt(n);
    };
    const handlers = {
      ...core.allHandlers,
      chain_getFinalizedHead: async () => (await finalized()).hash,
      // deno-lint-ignore no-explicit-any
      chain_subscribeFinalizedHeads: (_ctx: unknown, _params: unknown, { subscribe }: any) => {
        let update = () => {};
        const id = chain.headState.subscribeHead(() => update());
        const send = subscribe(
          "chain_finalizedHead",
          id,
          () => chain.headState.unsubscribeHead(id),
        );
        update = async () => send(headerJson(await (await finalized()).header));
        setTimeout(update, 50);
        return Promise.resolve(id);
      },
    };
    server = serveRpc(handlers, { chain }, port);
    const endpoint = `ws://127.0.0.1:${server.port}`;
    client = await connectSubtensor({ endpoint, timeoutMs: 30_000 });
    const net = await setupSubnet(client, alice, owner, registered, colds, chain);
    // Tempo 1 ran the epoch that gave every uid a validator permit; now the real tempo.
    const sudoSubnet = async (c: SubtensorChain, p: LocalSubnetParams) => {
      const a = (method: string, args: Record<string, unknown>) =>
        ["adminUtils", method, { netuid: net, ...args }] as [
          string,
          string,
          Record<string, unknown>,
        ];
      const calls = [];
      if (p.tempo !== undefined) calls.push(a("sudoSetTempo", { tempo: p.tempo }));
      if (p.commitReveal !== undefined) {
        calls.push(a("sudoSetCommitRevealWeightsEnabled", { enabled: p.commitReveal }));
      }
      if (p.revealPeriodEpochs !== undefined) {
        calls.push(a("sudoSetCommitRevealWeightsInterval", { interval: p.revealPeriodEpochs }));
      }
      if (p.weightsRateLimit !== undefined) {
        calls.push(a("sudoSetWeightsSetRateLimit", { weightsSetRateLimit: p.weightsRateLimit }));
      }
      if (p.weightsVersionKey !== undefined) {
        calls.push(a("sudoSetWeightsVersionKey", { weightsVersionKey: p.weightsVersionKey }));
      }
      if (calls.length > 0) await sudoBatch(c, alice, calls, "change the local subnet");
    };
    await sudoSubnet(client, {
      tempo,
      commitReveal: opts.commitReveal ?? false,
      revealPeriodEpochs: opts.revealPeriodEpochs ?? 1,
    });
    await client.close();
    client = undefined;
    chain.txPool.mode = blockTimeMs > 0 ? core.BuildBlockMode.Manual : core.BuildBlockMode.Instant;
    let building = false;
    const tick = async () => {
      if (building || stopped) return;
      building = true;
      try {
        await chain.newBlock();
      } catch (e) {
        log.warn("Building a block failed: {err}", { err: String(e) });
      } finally {
        building = false;
      }
    };
    const startTimer = () => {
      if (blockTimeMs > 0) timer = setInterval(tick, blockTimeMs);
    };
    startTimer();
    log.info("Local chain on {endpoint}: subnet {netuid}, {n} hotkeys, ready in {ms} ms", {
      endpoint,
      netuid: net,
      n: hotkeys.length,
      ms: Math.round(performance.now() - t0),
    });
    const listenPort = server.port;
    const read = () => (reader ??= connectSubtensor({ endpoint, timeoutMs: 30_000 }));
    return {
      endpoint,
      port: listenPort,
      netuid: net,
      hotkeys: [...registered],
      coldkeys: colds.map((c) => c.ss58),
      async newBlock(n = 1) {
        for (let i = 0; i < n; i++) await chain.newBlock();
      },
      head: () => chain.head.number as number,
      async uids() {
        const mg = await (await read()).metagraph(net);
        return new Map(mg.hotkeys.map((h, i) => [h, mg.uids[i]!]));
      },
      async weights() {
        return await (await read()).weights(net);
      },
      setFinalityLag(blocks) {
        if (!Number.isInteger(blocks) || blocks < 0) {
          throw new RangeError(`Invalid finality lag ${blocks}: expected an integer ≥ 0`);
        }
        finalityLag = blocks;
      },
      async setSubnet(p) {
        await sudoSubnet(await read(), p);
      },
      async sudo(calls) {
        await sudoBatch(await read(), alice, calls, "run sudo calls on the local chain");
      },
      async restart({ downMs = 1000 } = {}) {
        clearInterval(timer);
        await server!.close();
        log.info("Local chain down for {ms} ms", { ms: downMs });
        await sleep(downMs);
        if (stopped) return;
        server = serveRpc(handlers, { chain }, listenPort);
        startTimer();
        log.info("Local chain back on {endpoint}", { endpoint });
      },
      async stop() {
        if (stopped) return;
        while (building) await sleep(20);
        await stopAll();
      },
    };
  } catch (e) {
    await stopAll();
    throw e;
  }
}

/**
 * Registers the subnet and its hotkeys and makes it test-friendly; returns its netuid.
 * Runs in Batch block mode: each round of transactions lands in one block.
 */
async function setupSubnet(
  client: SubtensorChain,
  alice: Hotkey,
  owner: string,
  hotkeys: string[],
  colds: Hotkey[],
  chain: Core,
): Promise<number> {
  await sudoBatch(client, alice, [
    ["adminUtils", "sudoSetNetworkRateLimit", { rateLimit: 0 }],
    ["adminUtils", "sudoSetWeightsMinStake", { minStake: 0 }],
  ], "configure the local chain");
  const reg = await client.submit(
    colds[0]!,
    "subtensorModule",
    "registerNetwork",
    { hotkey: owner, mechid: 1 },
    "register the local subnet",
  );
  const added = reg.events.find((e) =>
    e.section === "subtensorModule" && e.method === "NetworkAdded"
  );
  const netuid = Number((added?.data as unknown[] | undefined)?.[0]);
  if (!Number.isInteger(netuid)) {
    throw new Error("Cannot register the local subnet: no NetworkAdded event");
  }
  const a = (method: string, args: Record<string, unknown>) =>
    ["adminUtils", method, { netuid, ...args }] as [string, string, Record<string, unknown>];
  await sudoBatch(client, alice, [
    a("sudoSetWeightsSetRateLimit", { weightsSetRateLimit: 0 }),
    a("sudoSetCommitRevealWeightsEnabled", { enabled: false }),
    a("sudoSetNetworkRegistrationAllowed", { registrationAllowed: true }),
    a("sudoSetTargetRegistrationsPerInterval", { targetRegistrationsPerInterval: 256 }),
    a("sudoSetMaxRegistrationsPerBlock", { maxRegistrationsPerBlock: 256 }),
    a("sudoSetMinAllowedWeights", { minAllowedWeights: 0 }),
    a("sudoSetTempo", { tempo: 1 }),
  ], "configure the local subnet");
  // One block for all registrations, in the pool's (= submission) order, so hotkey i gets
  // uid i: each is submitted only once the previous one sits in the pool.
  chain.txPool.mode = "Manual";
  const regs: Promise<number>[] = [];
  for (let i = 1; i < hotkeys.length; i++) {
    const before = chain.txPool.pendingExtrinsics.length;
    const r = burnedRegister(client, colds[i]!, netuid, hotkeys[i]!);
    r.catch(() => {});
    regs.push(r);
    for (let k = 0; k < 1000 && chain.txPool.pendingExtrinsics.length === before; k++) {
      await Promise.race([r, sleep(10)]);
    }
  }
  if (regs.length > 0) await chain.newBlock();
  await Promise.all(regs);
  chain.txPool.mode = "Batch";
  // Epochs run every tempo + 1 blocks; each gives the top-64 uids validator permits.
  for (let i = 0; i < 8; i++) {
    const mg = await client.metagraph(netuid);
    if (mg.hotkeys.join() !== hotkeys.join()) {
      throw new Error("Cannot set up the local subnet: hotkeys did not get uids in order");
    }
    if (mg.validatorPermit.every((p) => p)) return netuid;
    await chain.newBlock();
  }
  throw new Error("Cannot set up the local subnet: validator permits were not granted");
}
