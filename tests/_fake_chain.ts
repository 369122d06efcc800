/**
 * The one in-memory {@link Chain} of the unit tests: blocks advance on demand
 * (`advance()`) or on a timer (`start(ms)`), hashes are SHA-256 of
 * `"boltzmann/fake-block" NUL n`, and commitments and weights behave like subtensor's with
 * commit-reveal off and no rate limits (same normalisation, same refusal of unregistered
 * hotkeys and of weights on others without a permit, same size limit). Every `setWeights`
 * call is also logged as given in {@link FakeChain.weightsSet}. Tests of the chain itself
 * run against the real runtime instead (tests/chain_test.ts).
 *
 * @module
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import { type Chain, MAX_COMMITMENT_BYTES, type Metagraph } from "../src/chain/mod.ts";
import { normalizeWeights } from "../src/chain/weights.ts";

/** What the fake needs of a signer: its address (roles pass `{ ss58 }` alone). */
type Signer = { ss58: string };

/** One registered neuron of the fake subnet. */
export interface FakeNeuron {
  hotkey: string;
  coldkey?: string;
  stake?: number;
  validatorPermit?: boolean;
}

/** An in-memory subnet `netuid` with the given neurons (uid = index). */
export class FakeChain implements Chain {
  readonly endpoint = "fake://chain";
  block: number;
  readonly netuid: number;
  readonly neurons: FakeNeuron[];
  readonly #commits = new Map<string, string>();
  readonly #weights = new Map<number, [number, number][]>();
  readonly #lastUpdate = new Map<number, number>();
  readonly #subs = new Set<(b: number, h: string) => void>();
  /** Every accepted `setWeights` call, weights as given (before normalisation). */
  readonly weightsSet: { by: string; uids: number[]; weights: number[] }[] = [];
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  constructor(opts: { netuid?: number; neurons?: FakeNeuron[]; startBlock?: number } = {}) {
    this.netuid = opts.netuid ?? 1;
    this.neurons = (opts.neurons ?? []).map((n) => ({ ...n }));
    this.block = opts.startBlock ?? 0;
  }

  /** The hash of block `n`: SHA-256 of `"boltzmann/fake-block" NUL n`, lowercase hex. */
  static hashOf(n: number): string {
    return "0x" + bytesToHex(sha256(utf8ToBytes(`boltzmann/fake-block\0${n}`)));
  }

  /** Adds `n` blocks (default 1), notifying subscribers of each. */
  advance(n = 1): void {
    for (let i = 0; i < n; i++) {
      this.block++;
      for (const cb of this.#subs) cb(this.block, FakeChain.hashOf(this.block));
    }
  }

  /** Advances one block every `ms` until {@link stop} or {@link close}. */
  start(ms: number): void {
    this.stop();
    this.#timer = setInterval(() => this.advance(), ms);
  }

  /** Stops the block timer. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Registers `neuron` and returns its uid. */
  register(neuron: FakeNeuron): number {
    if (this.neurons.some((n) => n.hotkey === neuron.hotkey)) {
      throw new Error(`Cannot register ${neuron.hotkey}: already registered`);
    }
    this.neurons.push({ ...neuron });
    return this.neurons.length - 1;
  }

  #open(): void {
    if (this.#closed) throw new Error("Chain client for fake://chain is closed");
  }

  #subnet(netuid: number): void {
    this.#open();
    if (netuid !== this.netuid) {
      throw new Error(`Subnet ${netuid} does not exist on fake://chain; check --netuid`);
    }
  }

  #uid(netuid: number, ss58: string, what: string): number {
    this.#subnet(netuid);
    const uid = this.neurons.findIndex((n) => n.hotkey === ss58);
    if (uid < 0) {
      throw new Error(
        `Cannot ${what}: hotkey ${ss58} is not registered on subnet ${netuid}; register it first (btcli subnet register)`,
      );
    }
    return uid;
  }

  /** Runs `f`, turning a throw into a rejected promise as an RPC failure would be. */
  #answer<T>(f: () => T): Promise<T> {
    try {
      return Promise.resolve(f());
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** @inheritdoc */
  currentBlock(): Promise<number> {
    return this.#answer(() => (this.#open(), this.block));
  }

  /** @inheritdoc */
  subscribeBlocks(cb: (block: number, hash: string) => void): Promise<() => void> {
    return this.#answer(() => {
      this.#open();
      this.#subs.add(cb);
      cb(this.block, FakeChain.hashOf(this.block));
      return () => void this.#subs.delete(cb);
    });
  }

  /** @inheritdoc */
  blockHash(block: number): Promise<string> {
    return this.#answer(() => {
      this.#open();
      if (!Number.isSafeInteger(block) || block < 0) {
        throw new RangeError(`Invalid block ${block}: expected an integer ≥ 0`);
      }
      if (block > this.block) throw new RangeError(`Block ${block} is not on fake://chain yet`);
      return FakeChain.hashOf(block);
    });
  }

  /** @inheritdoc */
  metagraph(netuid: number): Promise<Metagraph> {
    return this.#answer(() => this.#metagraph(netuid));
  }

  #metagraph(netuid: number): Metagraph {
    this.#subnet(netuid);
    const ns = this.neurons;
    return {
      netuid,
      block: this.block,
      uids: ns.map((_, i) => i),
      hotkeys: ns.map((n) => n.hotkey),
      coldkeys: ns.map((n) => n.coldkey ?? n.hotkey),
      stake: ns.map((n) => n.stake ?? 0),
      validatorPermit: ns.map((n) => n.validatorPermit ?? true),
      lastUpdate: ns.map((_, i) => this.#lastUpdate.get(i) ?? 0),
    };
  }

  /** @inheritdoc */
  commitments(netuid: number): Promise<Map<string, string>> {
    return this.#answer(() => (this.#subnet(netuid), new Map(this.#commits)));
  }

  /** @inheritdoc */
  setCommitment(signer: Signer, netuid: number, data: string): Promise<void> {
    return this.#answer(() => {
      const what = `set the commitment of ${signer.ss58} on subnet ${netuid}`;
      this.#uid(netuid, signer.ss58, what);
      const n = utf8ToBytes(data).length;
      if (n > MAX_COMMITMENT_BYTES) {
        throw new Error(
          `Cannot ${what}: ${n} bytes exceeds the chain's limit of ${MAX_COMMITMENT_BYTES}`,
        );
      }
      this.#commits.set(signer.ss58, data);
    });
  }

  /** @inheritdoc */
  setWeights(
    signer: Signer,
    netuid: number,
    uids: number[],
    weights: number[],
    _versionKey: number,
  ): Promise<void> {
    return this.#answer(() => {
      const what = `set weights as ${signer.ss58} on subnet ${netuid}`;
      const uid = this.#uid(netuid, signer.ss58, what);
      const norm = normalizeWeights(uids, weights);
      if (norm.uids.some((u) => u >= this.neurons.length)) {
        throw new Error(
          `Cannot ${what}: the chain refused it with subtensorModule.UidVecContainInvalidOne`,
        );
      }
      if (!(this.neurons[uid]!.validatorPermit ?? true) && norm.uids.some((u) => u !== uid)) {
        throw new Error(
          `Cannot ${what}: the chain refused it with subtensorModule.NeuronNoValidatorPermit`,
        );
      }
      this.#weights.set(uid, norm.uids.map((u, i) => [u, norm.weights[i]!]));
      this.weightsSet.push({ by: signer.ss58, uids: [...uids], weights: [...weights] });
      this.#lastUpdate.set(uid, this.block);
    });
  }

  /** @inheritdoc */
  weights(netuid: number): Promise<Map<number, [number, number][]>> {
    return this.#answer(() => {
      this.#subnet(netuid);
      return new Map(
        [...this.#weights].map(([k, v]) => [k, v.map((p) => [...p] as [number, number])]),
      );
    });
  }

  /** @inheritdoc */
  close(): Promise<void> {
    this.stop();
    this.#subs.clear();
    this.#closed = true;
    return Promise.resolve();
  }
}
