/**
 * A minimal in-process chain for role-loop tests: blocks on a timer, a fixed set of
 * registered hotkeys, commitments and weights kept in maps. Hashes are SHA-256 of the
 * block number, so seeds are deterministic.
 */
import { createHash } from "node:crypto";

export class TestChain {
  block = 0;
  readonly commits = new Map<string, string>();
  readonly weightsSet: { by: string; uids: number[]; weights: number[] }[] = [];
  #subs = new Set<(b: number, h: string) => void>();
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(readonly hotkeys: string[], readonly stakes: number[]) {}

  static hash(b: number): string {
    return "0x" + createHash("sha256").update(`block ${b}`).digest("hex");
  }

  start(ms: number): void {
    this.#timer = setInterval(() => this.advance(), ms);
  }

  advance(): void {
    this.block++;
    for (const cb of this.#subs) cb(this.block, TestChain.hash(this.block));
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  subscribeBlocks(cb: (b: number, h: string) => void): Promise<() => void> {
    this.#subs.add(cb);
    cb(this.block, TestChain.hash(this.block));
    return Promise.resolve(() => this.#subs.delete(cb));
  }

  blockHash(b: number): Promise<string> {
    return Promise.resolve(TestChain.hash(b));
  }

  metagraph(_netuid: number) {
    return Promise.resolve({
      uids: this.hotkeys.map((_, i) => i),
      hotkeys: [...this.hotkeys],
      stake: [...this.stakes],
      validatorPermit: this.stakes.map((s) => s > 0),
    });
  }

  commitments(_netuid: number): Promise<Map<string, string>> {
    return Promise.resolve(new Map(this.commits));
  }

  setCommitment(key: { ss58: string }, _netuid: number, data: string): Promise<void> {
    this.commits.set(key.ss58, data);
    return Promise.resolve();
  }

  setWeights(key: { ss58: string }, _n: number, uids: number[], weights: number[]): Promise<void> {
    this.weightsSet.push({ by: key.ss58, uids, weights });
    return Promise.resolve();
  }
}
