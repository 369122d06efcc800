/**
 * A small in-process network for role-loop tests: sr25519 test keys, a micro model,
 * the embedded dataset, LocalStore buckets in a temp dir and a timer-driven
 * {@link FakeChain}. Participants can join at any time ({@link Net.start}); the caller
 * stops everything with {@link Net.close}.
 */
import { type Hparams, resolveHparams } from "../src/hparams.ts";
import { initParams } from "../src/model/init.ts";
import type { Tensors } from "../src/model/params.ts";
import { type Dataset, embeddedDataset } from "../src/data/mod.ts";
import { createTrainer, type Trainer } from "../src/train/trainer.ts";
import { LocalStore } from "../src/store/local.ts";
import type { Store } from "../src/store/mod.ts";
import { Metrics } from "../src/metrics.ts";
import { type MinerOptions, runMiner } from "../src/roles/miner.ts";
import { runValidator, type ValidatorOptions } from "../src/roles/validator.ts";
import { type Adversary, strategyFor } from "../src/roles/adversary.ts";
import type { Signer } from "../src/slices/wire.ts";
import { FakeChain } from "./_fake_chain.ts";
import { seedSigner } from "./_test_keys.ts";

/** The micro model of tests/roles_test.ts, plus `over`. */
export function microHparams(over: Record<string, number> = {}): Hparams {
  return resolveHparams("tiny", {
    hidden_size: 32,
    intermediate_size: 64,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    num_key_value_heads: 2,
    sequence_length: 32,
    batch_size: 2,
    window_length: 3,
    compression: 4,
    learning_rate: 3e-3,
    weights_interval: 1,
    validator_moving_alpha: 0.5,
    ...over,
  });
}

/** Test key `i` (seed bytes all i+1). */
function testKey(i: number): { ss58: string; signer: Signer } {
  const signer = seedSigner(i + 1);
  return { ss58: signer.address, signer };
}

/** One participant's role. */
export type Role = "validator" | "honest" | Adversary;

/** How participant `i` runs. */
export interface StartOptions {
  role: Role;
  params?: Tensors;
  validator?: ValidatorOptions;
  miner?: MinerOptions;
  /** Wraps the participant's own store (to watch what it writes). */
  wrapStore?: (s: Store) => Store;
  metrics?: Metrics;
}

/** A running test network. */
export interface Net {
  hp: Hparams;
  dir: string;
  dataset: Dataset;
  chain: FakeChain;
  keys: { ss58: string; signer: Signer }[];
  openStore: (location: string) => Store;
  /** Bucket directory of participant `i`. */
  bucket(i: number): string;
  /** Starts participant `i`; resolves to its loop's promise and the params it mutates. */
  start(i: number, o: StartOptions): Promise<{ done: Promise<void>; params: Tensors }>;
  /** A trainer that lives until {@link Net.close} (for inspection). */
  trainer(): Promise<Trainer>;
  /** Aborts every loop and stops the chain; buckets stay for inspection. */
  stop(): Promise<void>;
  /** {@link Net.stop}, then closes trainers and removes the temp dir. */
  close(): Promise<void>;
}

/**
 * A network of `n` registered hotkeys (stake 100 for those in `staked`, else 0);
 * blocks start when the first participant has started and `chain.start` is called.
 */
export async function makeNet(
  n: number,
  staked: number[],
  hp: Hparams = microHparams(),
): Promise<Net> {
  const dataset = await embeddedDataset(hp);
  const dir = await Deno.makeTempDir({ prefix: "boltzmann-net-" });
  const keys = Array.from({ length: n }, (_, i) => testKey(i));
  const chain = new FakeChain({
    netuid: 1,
    neurons: keys.map((k, i) => ({
      hotkey: k.ss58,
      stake: staked.includes(i) ? 100 : 0,
      validatorPermit: staked.includes(i),
    })),
  });
  const ac = new AbortController();
  const trainers: Trainer[] = [];
  const runs: Promise<void>[] = [];
  const openStore = (loc: string) => new LocalStore(loc.slice("file://".length));
  const newTrainer = async () => {
    const t = await createTrainer(hp, { threads: 1, cacheDir: `${dir}/graphs` });
    trainers.push(t);
    return t;
  };
  const stop = async () => {
    ac.abort();
    chain.stop();
    await Promise.allSettled(runs);
  };
  return {
    hp,
    dir,
    dataset,
    chain,
    keys,
    openStore,
    bucket: (i) => `${dir}/${i}`,
    async start(i, o) {
      await Deno.mkdir(`${dir}/${i}`, { recursive: true });
      const own = new LocalStore(`${dir}/${i}`);
      const params = o.params ?? initParams(hp.model, 0);
      const common = {
        hp,
        chain,
        netuid: 1,
        key: { ss58: keys[i]!.ss58 },
        signer: keys[i]!.signer,
        store: o.wrapStore ? o.wrapStore(own) : own,
        location: `file://${dir}/${i}`,
        openStore,
        dataset,
        trainer: await newTrainer(),
        params,
        metrics: o.metrics ?? new Metrics(),
        signal: ac.signal,
      };
      const done = o.role === "validator"
        ? runValidator(common, o.validator)
        : runMiner(common, { strategy: strategyFor(o.role), maxBatches: 2, ...o.miner });
      runs.push(done);
      return { done, params };
    },
    trainer: newTrainer,
    stop,
    async close() {
      await stop();
      for (const t of trainers) await t.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** A deep copy of `t`. */
export { clone as cloneTensors } from "../src/tensor_math.ts";
