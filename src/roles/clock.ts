/**
 * The block clock that drives the miner and validator loops: follows the chain's new
 * blocks, remembers recent block hashes, and lets a loop wait for "block ≥ n" with an
 * abort signal. It never blocks forever on a hung RPC: waits end on abort, and hash
 * lookups that miss the cache go through the chain client's own timeouts.
 *
 * @module
 */

/** The slice of the `Chain` interface the clock needs. */
export interface BlockSource {
  subscribeBlocks(cb: (block: number, hash: string) => void): Promise<() => void>;
  blockHash(block: number): Promise<string>;
}

/** Thrown by waits when the loop is being stopped. */
export class Stopped extends Error {
  override name = "Stopped";
  constructor() {
    super("Stopped");
  }
}

/** Follows blocks; see the module doc. */
export class BlockClock {
  #block = -1;
  #hashes = new Map<number, string>();
  #waiters: { block: number; resolve: () => void }[] = [];
  #unsub: (() => void) | null = null;

  private constructor(private readonly src: BlockSource) {}

  /** Starts following `src`. */
  static async start(src: BlockSource): Promise<BlockClock> {
    const c = new BlockClock(src);
    c.#unsub = await src.subscribeBlocks((b, h) => c.#onBlock(b, h));
    return c;
  }

  #onBlock(block: number, hash: string): void {
    this.#hashes.set(block, hash);
    if (this.#hashes.size > 512) {
      for (const k of [...this.#hashes.keys()].sort((a, b) => a - b).slice(0, 256)) {
        this.#hashes.delete(k);
      }
    }
    if (block <= this.#block) return;
    this.#block = block;
    const ready = this.#waiters.filter((w) => w.block <= block);
    this.#waiters = this.#waiters.filter((w) => w.block > block);
    for (const w of ready) w.resolve();
  }

  /** The newest block seen (-1 before the first). */
  get block(): number {
    return this.#block;
  }

  /** Resolves once the chain has reached `block`; rejects with {@link Stopped} on abort. */
  waitFor(block: number, signal?: AbortSignal): Promise<void> {
    if (this.#block >= block) return Promise.resolve();
    if (signal?.aborted) return Promise.reject(new Stopped());
    return new Promise((resolve, reject) => {
      const w = {
        block,
        resolve: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        this.#waiters = this.#waiters.filter((x) => x !== w);
        reject(new Stopped());
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push(w);
    });
  }

  /** The hash of `block` (cached from the subscription, else asked of the chain). */
  async hashOf(block: number): Promise<string> {
    const h = this.#hashes.get(block);
    if (h) return h;
    const got = await this.src.blockHash(block);
    this.#hashes.set(block, got);
    return got;
  }

  /** Stops following the chain. */
  stop(): void {
    this.#unsub?.();
    this.#unsub = null;
  }
}

/**
 * Lets pending I/O (chain answers, block notifications) run before more compute.
 * onnxruntime-node runs a graph synchronously on the JS thread and queues the next run
 * before I/O is polled, so back-to-back gradients would starve every socket of the
 * process (a chain read made meanwhile times out, the clock stops moving). A timer, not
 * a microtask: only a turn of the event loop polls I/O.
 */
export function yieldToIO(): Promise<void> {
  return new Promise((r) => setTimeout(r, 1));
}
