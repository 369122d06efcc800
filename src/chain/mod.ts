/**
 * The chain as the rest of boltzmann sees it: blocks, the metagraph, commitments and
 * weights of one subnet. Types only — this module imports nothing, so depending on the
 * {@link Chain} interface never loads `@polkadot/api`. Roles run against the real
 * subtensor (`connectSubtensor`, ./subtensor.ts), a local subtensor runtime
 * (`startLocalnet`, ./localnet.ts) or, in unit tests, the one in-memory `FakeChain`
 * (tests/_fake_chain.ts). Wallets are ./wallet.ts; weight normalisation ./weights.ts.
 *
 * Deliberately left out: staking, delegation, axon serving (subtensor refuses 127.0.0.1
 * axons, and boltzmann peers meet through their buckets, not axons).
 *
 * @module
 */

/** One subnet's neurons at `block`, arrays indexed by uid. */
export interface Metagraph {
  netuid: number;
  block: number;
  uids: number[];
  hotkeys: string[];
  coldkeys: string[];
  /**
   * Stake on this subnet in whole tokens as the chain counts it: `get_metagraph`'s
   * `total_stake` where the runtime has it, else `TotalHotkeyAlpha` (runtime_info.ts).
   */
  stake: number[];
  validatorPermit: boolean[];
  lastUpdate: number[];
}

/**
 * A hotkey able to sign: boltzmann's miners and validators sign slices and extrinsics
 * with it. The secret stays inside `pair`; nothing here is ever logged.
 */
export interface Hotkey {
  /** SS58 address (prefix 42). */
  ss58: string;
  /** 32-byte sr25519 public key. */
  publicKey: Uint8Array;
  /** sr25519 signature (64 bytes) over `msg`. */
  sign(msg: Uint8Array): Uint8Array;
  /** The `@polkadot/keyring` pair that signs extrinsics (opaque outside src/chain/). */
  pair: unknown;
}

/** What a role needs from a subtensor chain. */
export interface Chain {
  /** The WebSocket endpoint (or `fake://` for the in-memory fake). */
  readonly endpoint: string;
  /** Number of the current best block. */
  currentBlock(): Promise<number>;
  /**
   * Calls `cb` for every new *finalized* block, in order, without gaps (missed numbers
   * are filled by asking for their hashes); re-subscribes after reconnects. Finalized, so
   * the hashes that seed slice indices and pages are the same for every participant
   * (a best block can be replaced in a short fork).
   * @returns a function that unsubscribes
   */
  subscribeBlocks(cb: (block: number, hash: string) => void): Promise<() => void>;
  /**
   * Hash of the finalized block `block`: "0x" + 64 lowercase hex digits.
   * @throws {RangeError} while `block` is not final yet
   */
  blockHash(block: number): Promise<string>;
  /** The subnet's neurons at the current block. */
  metagraph(netuid: number): Promise<Metagraph>;
  /** Every hotkey's commitment on `netuid` (UTF-8 text), keyed by hotkey SS58. */
  commitments(netuid: number): Promise<Map<string, string>>;
  /**
   * Publishes `data` (UTF-8, at most {@link MAX_COMMITMENT_BYTES} bytes on subtensor) as
   * `signer`'s commitment on `netuid`; resolves once it is in a block.
   */
  setCommitment(signer: Hotkey, netuid: number, data: string): Promise<void>;
  /**
   * Sets `signer`'s weights on `netuid`: `weights` are any non-negative finite numbers,
   * normalised to u16 as bittensor does ({@link normalizeWeights}); zero weights are
   * dropped. Resolves once it is in a block.
   */
  setWeights(
    signer: Hotkey,
    netuid: number,
    uids: number[],
    weights: number[],
    versionKey: number,
  ): Promise<void>;
  /** Weights on `netuid` as stored on chain: validator uid → [(uid, u16 weight)]. */
  weights(netuid: number): Promise<Map<number, [number, number][]>>;
  /** Closes connections and subscriptions. */
  close(): Promise<void>;
}

/** Largest commitment subtensor's runtime 218 accepts (one `Raw128` field). */
export const MAX_COMMITMENT_BYTES = 128;
