/**
 * The miner and validator loops end to end on one machine, without a chain process:
 * real trainer (a micro model), real embedded data, real signed slices in directory
 * buckets, a timer-driven test chain. Honest miners must outscore a random one, and a
 * miner must reject a peer's corrupted slice without crashing.
 */
import assert from "node:assert/strict";
import {
  cryptoWaitReady,
  encodeAddress,
  sr25519PairFromSeed,
  sr25519Sign,
} from "@polkadot/util-crypto";
import { resolveHparams } from "../src/hparams.ts";
import { initParams } from "../src/model/init.ts";
import { paramTable } from "../src/model/params.ts";
import { embeddedDataset } from "../src/data/mod.ts";
import { createTrainer, newAdamState } from "../src/train/trainer.ts";
import { LocalStore } from "../src/store/local.ts";
import { Metrics } from "../src/metrics.ts";
import { runMiner } from "../src/roles/miner.ts";
import { runValidator, type ValidatorWindow } from "../src/roles/validator.ts";
import { TestChain } from "./_fake_chain.ts";
import type { Adversary } from "../src/roles/adversary.ts";

async function key(i: number) {
  await cryptoWaitReady();
  const seed = new Uint8Array(32).fill(i + 1);
  const pair = sr25519PairFromSeed(seed);
  const ss58 = encodeAddress(pair.publicKey, 42);
  return {
    ss58,
    signer: { address: ss58, sign: (m: Uint8Array) => sr25519Sign(m, pair) },
  };
}

Deno.test({
  name: "miner and validator loops: honest miners outscore a random one, weights are set",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const hp = resolveHparams("tiny", {
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
    });
    const dataset = await embeddedDataset(hp);
    const dir = await Deno.makeTempDir({ prefix: "boltzmann-roles-" });
    const roles: ("validator" | "honest" | Adversary)[] = [
      "validator",
      "honest",
      "honest",
      "random",
    ];
    const keys = await Promise.all(roles.map((_, i) => key(i)));
    const chain = new TestChain(
      keys.map((k) => k.ss58),
      roles.map((r) => (r === "validator" ? 100 : 0)),
    );
    const ac = new AbortController();
    const windows: ValidatorWindow[] = [];
    const trainers = [];
    const runs: Promise<void>[] = [];
    try {
      for (let i = 0; i < roles.length; i++) {
        const store = new LocalStore(`${dir}/${i}`);
        await Deno.mkdir(`${dir}/${i}`, { recursive: true });
        const trainer = await createTrainer(hp, { threads: 1, cacheDir: `${dir}/graphs` });
        trainers.push(trainer);
        const common = {
          hp,
          chain,
          netuid: 1,
          key: { ss58: keys[i]!.ss58 },
          signer: keys[i]!.signer,
          store,
          location: `file://${dir}/${i}`,
          openStore: (loc: string) => new LocalStore(loc.slice("file://".length)),
          dataset,
          trainer,
          params: initParams(hp.model, 0),
          metrics: new Metrics(),
          signal: ac.signal,
        };
        const role = roles[i]!;
        if (role === "validator") {
          runs.push(runValidator(common, {
            maxWindows: 4,
            evalBatches: 1,
            onWindow: (_w, r) => {
              windows.push(r);
            },
          }));
        } else {
          runs.push(runMiner({ ...common, opt: newAdamState(paramTable(hp.model)) }, {
            adversary: role === "honest" ? undefined : role,
            maxBatches: 2,
          }));
        }
      }
      chain.start(800);
      await runs[0]; // the validator stops after its windows
      ac.abort();
      await Promise.allSettled(runs);
    } finally {
      chain.stop();
      for (const t of trainers) await t.close();
      await Deno.remove(dir, { recursive: true });
    }
    assert.equal(windows.length, 4);
    const total = (uid: number) =>
      windows.reduce((a, w) => a + (w.scores.find((s) => s.uid === uid)?.score ?? 0), 0);
    assert.ok(
      total(1) > total(3) && total(2) > total(3),
      `honest ${total(1)}, ${total(2)} vs random ${total(3)}`,
    );
    assert.equal(total(3), 0, "a random delta earns nothing");
    assert.ok(chain.weightsSet.length > 0, "weights were set");
    const last = chain.weightsSet.at(-1)!;
    const share = last.uids.reduce((a, u, i) => a + (u === 1 || u === 2 ? last.weights[i]! : 0), 0);
    assert.ok(share > 0.9, `honest share ${share}`);
    assert.ok(windows.every((w) => Number.isFinite(w.heldOutLoss)));
  },
});
