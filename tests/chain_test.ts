/**
 * The chain client against the real subtensor runtime (spec 218) run in-process by
 * chopsticks: registration, commitments, weights, metagraph, block subscription with
 * window/seed derivations, a node restart mid-test, and bad inputs. One chain serves
 * every step (start-up costs ~7 s of CPU); blocks are made on demand.
 */
import assert from "node:assert/strict";
import type { Hotkey } from "../src/chain/mod.ts";
import { connectSubtensor, endpointOf } from "../src/chain/subtensor.ts";
import { startLocalnet } from "../src/chain/localnet.ts";
import { hotkeyFromUri } from "../src/chain/wallet.ts";
import { readNeuron, readRuntimeInfo, readSubnetParams } from "../src/chain/runtime_info.ts";
import { commitHash, revealTiming } from "../src/chain/weights_submit.ts";
import { seedBlock, sliceSeed, windowOf, windowStart } from "../src/window.ts";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `f` until it returns true (the chain answers asynchronously). */
async function until(f: () => boolean | Promise<boolean>, what: string, ms = 20_000) {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** A port nothing listens on. */
function closedPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

Deno.test({
  name: "SubtensorChain on a local subtensor runtime",
  // chopsticks' wasm worker and pino transport outlive single steps; stop() releases them.
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  const keys: Hotkey[] = [];
  for (const uri of ["//BoltzmannV", "//BoltzmannM1", "//BoltzmannM2"]) {
    keys.push(await hotkeyFromUri(uri));
  }
  const stranger = await hotkeyFromUri("//Stranger");
  const net = await startLocalnet({
    port: 0,
    blockTimeMs: 0,
    tempo: 10,
    hotkeys: keys.map((k) => k.ss58),
  });
  const chain = await connectSubtensor({ endpoint: net.endpoint, timeoutMs: 10_000 });
  const netuid = net.netuid;
  try {
    await t.step("three hotkeys are registered with uids in order", async () => {
      const mg = await chain.metagraph(netuid);
      assert.equal(mg.netuid, netuid);
      assert.deepEqual(mg.uids, [0, 1, 2]);
      assert.deepEqual(mg.hotkeys, keys.map((k) => k.ss58));
      assert.deepEqual(mg.coldkeys, net.coldkeys);
      assert.equal(new Set(mg.coldkeys).size, 3);
      assert.deepEqual(mg.validatorPermit, [true, true, true]);
      assert.equal(mg.block, await chain.currentBlock());
      for (const s of mg.stake) assert.ok(Number.isFinite(s) && s >= 0);
      assert.equal(await chain.uidOf(netuid, keys[2]!.ss58), 2);
      assert.equal(await chain.uidOf(netuid, stranger.ss58), undefined);
      assert.deepEqual(await net.uids(), new Map(keys.map((k, i) => [k.ss58, i])));
    });

    await t.step("runtime info, subnet parameters and a neuron as the chain has them", async () => {
      const api = await chain.api();
      const info = readRuntimeInfo(api);
      assert.equal(info.specName, "node-subtensor");
      assert.equal(info.specVersion, 218);
      // Spec 218's list, as its metadata names it; every one encodable.
      assert.deepEqual(info.extensions.map((e) => e.name), [
        "CheckNonZeroSender",
        "CheckSpecVersion",
        "CheckTxVersion",
        "CheckGenesis",
        "CheckMortality",
        "CheckNonce",
        "CheckWeight",
        "ChargeTransactionPayment",
        "SubtensorSignedExtension",
        "CommitmentsSignedExtension",
        "CheckMetadataHash",
      ]);
      assert.ok(info.extensions.every((e) => e.understood), JSON.stringify(info.extensions));
      const p = await readSubnetParams(api, netuid);
      // startLocalnet: tempo 10, commit-reveal off, rate limit 0; the runtime's defaults else.
      assert.deepEqual(
        { ...p, revealPeriodEpochs: undefined },
        {
          tempo: 10,
          commitRevealEnabled: false,
          revealPeriodEpochs: undefined,
          weightsRateLimit: 0,
          weightsVersionKey: 0n,
        },
      );
      assert.ok(p.revealPeriodEpochs >= 1);
      const n = await readNeuron(api, netuid, keys[2]!.ss58);
      assert.equal(n?.uid, 2);
      assert.equal(n?.validatorPermit, true);
      assert.equal(typeof n?.stake, "bigint");
      assert.equal(await readNeuron(api, netuid, stranger.ss58), null);
      await assert.rejects(readSubnetParams(api, 999), /Subnet 999 does not exist/);
    });

    await t.step("commitments are set and read back", async () => {
      const loc1 = "s3://bucket-one/prefix?region=auto";
      const loc2 = "r2:" + "x".repeat(125); // 128 bytes: the runtime's limit
      await chain.setCommitment(keys[1]!, netuid, loc1);
      await chain.setCommitment(keys[2]!, netuid, loc2);
      const got = await chain.commitments(netuid);
      assert.deepEqual(got, new Map([[keys[1]!.ss58, loc1], [keys[2]!.ss58, loc2]]));
      await assert.rejects(
        chain.setCommitment(keys[0]!, netuid, "y".repeat(129)),
        /129 bytes exceeds the chain's limit of 128/,
      );
      // Within the runtime's 100-block commitment rate limit: its own error, by name.
      await assert.rejects(
        chain.setCommitment(keys[1]!, netuid, "again"),
        /Cannot set the commitment .*: the chain refused it with commitments\.\w+/,
      );
      await assert.rejects(
        chain.setCommitment(stranger, netuid, "nope"),
        /hotkey 5\w+ is not registered on subnet \d+/,
      );
    });

    await t.step("weights are stored exactly as normalised u16", async () => {
      const before = await chain.currentBlock();
      await chain.setWeights(keys[0]!, netuid, [0, 1, 2], [0.5, 0.25, 1], 7);
      // Miner 1 weights only miner 2; the zero weight is dropped like bittensor does.
      await chain.setWeights(keys[1]!, netuid, [0, 2], [0, 3], 7);
      const w = await chain.weights(netuid);
      assert.deepEqual(
        w,
        new Map([[0, [[0, 32768], [1, 16384], [2, 65535]]], [1, [[2, 65535]]]]),
      );
      assert.deepEqual(await net.weights(), w);
      const mg = await chain.metagraph(netuid);
      assert.ok(mg.lastUpdate[0]! > before, `lastUpdate ${mg.lastUpdate[0]} > ${before}`);
      assert.ok(mg.lastUpdate[1]! > before);
      // Setting again replaces the row.
      await chain.setWeights(keys[0]!, netuid, [1, 2], [1, 1], 7);
      assert.deepEqual((await chain.weights(netuid)).get(0), [[1, 65535], [2, 65535]]);
      await assert.rejects(
        chain.setWeights(stranger, netuid, [0], [1], 7),
        /Cannot set weights as 5\w+ on subnet \d+: hotkey 5\w+ is not registered on subnet \d+/,
      );
      await assert.rejects(
        chain.setWeights(keys[0]!, netuid, [0, 9], [1, 1], 7),
        /the chain refused it with subtensorModule\.\w+/,
      );
      await assert.rejects(chain.setWeights(keys[0]!, netuid, [0], [-1], 7), /weight -1/);
    });

    await t.step(
      "block subscription is consecutive; windows and seeds match window.ts",
      async () => {
        const got: [number, string][] = [];
        const unsub = await chain.subscribeBlocks((n, h) => got.push([n, h]));
        await until(() => got.length >= 1, "the first head");
        const first = got[0]![0];
        await net.newBlock(6);
        await until(() => got.at(-1)![0] >= first + 6, "six new blocks");
        unsub();
        const nums = got.map(([n]) => n);
        assert.deepEqual(nums, [...Array(nums.length).keys()].map((i) => first + i));
        const L = 3;
        for (const [n, h] of got) {
          assert.match(h, /^0x[0-9a-f]{64}$/);
          assert.equal(await chain.blockHash(n), h);
          // The block that seeds window w's state slices is its first block.
          const w = windowOf(n, L);
          if (n === windowStart(w, L)) {
            assert.equal(seedBlock("state", w, L), n);
            assert.equal(
              sliceSeed("state", await chain.blockHash(seedBlock("state", w, L))),
              `state:${h}`,
            );
          }
          if (w > 0 && n === windowStart(w, L)) {
            assert.equal(seedBlock("delta", w - 1, L), n);
            assert.equal(sliceSeed("delta", h), `delta:${await chain.blockHash(n)}`);
          }
        }
        await assert.rejects(chain.blockHash(net.head() + 100), /is not on .* yet/);
      },
    );

    await t.step(
      "seeds come from final blocks: subscription and hashes stop at finality",
      async () => {
        net.setFinalityLag(2);
        try {
          await net.newBlock(1);
          const got: number[] = [];
          const unsub = await chain.subscribeBlocks((n) => got.push(n));
          await net.newBlock(3);
          const head = net.head();
          await until(() => got.at(-1) === head - 2, `finalized block ${head - 2}`);
          await sleep(300);
          unsub();
          // Never past the finalized head, whatever the best block.
          assert.ok(got.every((n) => n <= head - 2), `got ${got} with head ${head}`);
          await assert.rejects(
            chain.blockHash(head),
            new RegExp(
              `Block ${head} is not on .* yet as a final block \\(finalized: ${head - 2}\\)`,
            ),
          );
          assert.match(await chain.blockHash(head - 2), /^0x[0-9a-f]{64}$/);
        } finally {
          net.setFinalityLag(0);
        }
        await net.newBlock(1);
        assert.match(await chain.blockHash(net.head()), /^0x[0-9a-f]{64}$/);
      },
    );

    await t.step("the chain restarts mid-test: the client reconnects and carries on", async () => {
      const got: number[] = [];
      const unsub = await chain.subscribeBlocks((n) => got.push(n));
      await until(() => got.length >= 1, "the first head");
      const start = got[0]!;
      const down = net.restart({ downMs: 1500 });
      await sleep(200);
      // Blocks made while no one can connect: the client fills them in by number.
      await net.newBlock(2);
      await down;
      await net.newBlock(1);
      await until(() => got.at(-1)! >= start + 3, "blocks after the restart");
      unsub();
      assert.deepEqual(got, [start, start + 1, start + 2, start + 3]);
      assert.equal(await chain.currentBlock(), start + 3);
      await chain.setWeights(keys[2]!, netuid, [0, 1], [1, 2], 7);
      assert.deepEqual((await chain.weights(netuid)).get(2), [[0, 32768], [1, 65535]]);
    });

    await t.step("rate limit and version key read from chain are honoured", async () => {
      await net.setSubnet({ weightsRateLimit: 3, weightsVersionKey: 5 });
      const p = await readSubnetParams(await chain.api(), netuid);
      assert.equal(p.weightsRateLimit, 3);
      assert.equal(p.weightsVersionKey, 5n);
      // Version key 0 below the subnet's 5: the runtime's own refusal, decoded by name.
      await assert.rejects(
        chain.sendSetWeights(keys[1]!, netuid, [0], [65535], 0n),
        /the chain refused it with subtensorModule\.IncorrectWeightVersionKey/,
      );
      // Through setWeights the subnet's key is sent, so the same call lands.
      await chain.setWeights(keys[1]!, netuid, [0], [1], 0);
      assert.deepEqual((await chain.weights(netuid)).get(1), [[0, 65535]]);
      const last = (await readNeuron(await chain.api(), netuid, keys[1]!.ss58))!.lastUpdate;
      // Within 3 blocks of the last update: refused before anything is sent.
      await assert.rejects(
        chain.setWeights(keys[1]!, netuid, [2], [1], 0),
        new RegExp(
          `rate limit is 3 blocks and our last update was block ${last}; allowed from block ${
            last + 3
          }`,
        ),
      );
      assert.equal((await readNeuron(await chain.api(), netuid, keys[1]!.ss58))!.lastUpdate, last);
      assert.deepEqual((await chain.weights(netuid)).get(1), [[0, 65535]]);
      await net.newBlock(2);
      await chain.setWeights(keys[1]!, netuid, [2], [1], 0);
      assert.deepEqual((await chain.weights(netuid)).get(1), [[2, 65535]]);
      await net.setSubnet({ weightsRateLimit: 0, weightsVersionKey: 0 });
      // A custom validity error (the pool refuses it): spec 218's set_weights code 3.
      await net.sudo([["adminUtils", "sudoSetWeightsMinStake", { minStake: 10n ** 18n }]]);
      try {
        await assert.rejects(
          chain.setWeights(keys[1]!, netuid, [0], [1], 0),
          /the chain refused the transaction: .*3.* \(subtensor NotEnoughStakeToSetWeights\)/,
        );
      } finally {
        await net.sudo([["adminUtils", "sudoSetWeightsMinStake", { minStake: 0 }]]);
      }
    });

    await t.step(
      "commit-reveal: absent after commit, revealed in the chain's reveal epoch after a restart",
      async () => {
        await net.setSubnet({ commitReveal: true, revealPeriodEpochs: 1, tempo: 3 });
        const dir = await Deno.makeTempDir();
        const v = keys[2]!;
        const before = (await chain.weights(netuid)).get(2);
        // First run: commits, then is stopped before the reveal epoch.
        const run1 = await connectSubtensor({ endpoint: net.endpoint, timeoutMs: 10_000 });
        await run1.attachWeights(v, netuid, dir);
        // The commit lands in the first block of an epoch (spec 218: epoch of block b is
        // (b + netuid + 1) / (tempo + 1)), so its reveal epoch is a whole epoch away.
        while ((net.head() + 1 + netuid + 1) % 4 !== 0) await net.newBlock();
        await run1.setWeights(v, netuid, [0, 1, 2], [1, 2, 3], 0);
        const view = await run1.weightsView(netuid, v.ss58);
        assert.equal(view.commits.length, 1);
        assert.equal(revealTiming(view, view.commits[0]!), "early");
        assert.deepEqual((await chain.weights(netuid)).get(2), before);
        await run1.close();
        const saved = JSON.parse(await Deno.readTextFile(`${dir}/weights-pending-${netuid}.json`));
        assert.equal(saved.pending.length, 1);
        assert.equal(saved.pending[0].hash, view.commits[0]!.hash);
        // The chain stored the hash we computed the way get_commit_hash does.
        const p0 = saved.pending[0];
        assert.equal(
          commitHash(v.ss58, netuid, p0.uids, p0.values, p0.salt, BigInt(p0.versionKey)),
          view.commits[0]!.hash,
        );
        // Second run, same state directory: reveals when the chain says it is due.
        const run2 = await connectSubtensor({ endpoint: net.endpoint, timeoutMs: 10_000 });
        try {
          const sub = await run2.attachWeights(v, netuid, dir);
          assert.equal(sub.pending.length, 1);
          let revealedAt: number | undefined;
          const timings: string[] = [];
          for (let i = 0; i < 20 && revealedAt === undefined; i++) {
            const w = await run2.weightsView(netuid, v.ss58);
            const c = w.commits[0];
            timings.push(c ? revealTiming(w, c) : "gone");
            if (c && revealTiming(w, c) === "early") {
              assert.deepEqual((await chain.weights(netuid)).get(2), before, "not revealed early");
            }
            await net.newBlock();
            await sub.revealDue();
            if (sub.pending.length as number === 0) revealedAt = net.head();
          }
          assert.ok(revealedAt !== undefined, `revealed (timings ${timings.join(" ")})`);
          assert.ok(timings.includes("early") && !timings.includes("expired"), timings.join(" "));
          // Exactly what was committed: 1:2:3 normalised to u16.
          assert.deepEqual((await chain.weights(netuid)).get(2), [[0, 21845], [1, 43690], [
            2,
            65535,
          ]]);
          const after = JSON.parse(
            await Deno.readTextFile(`${dir}/weights-pending-${netuid}.json`),
          );
          assert.deepEqual(after.pending, []);
        } finally {
          await run2.close();
          await net.setSubnet({ commitReveal: false, tempo: 10 });
          await Deno.remove(dir, { recursive: true });
        }
      },
    );

    await t.step("bad inputs give one clear line", async () => {
      assert.throws(() => endpointOf({ network: "mainnet" }), /Unknown network 'mainnet'/);
      await assert.rejects(connectSubtensor({ network: "devnet" }), /Unknown network 'devnet'/);
      assert.throws(() => endpointOf({ endpoint: "http://x" }), /expected a ws:\/\/ or wss:\/\//);
      assert.equal(endpointOf({ network: "local" }), "ws://127.0.0.1:9944");
      assert.equal(endpointOf({}), "wss://entrypoint-finney.opentensor.ai:443");
      const t0 = Date.now();
      await assert.rejects(
        connectSubtensor({ endpoint: `ws://127.0.0.1:${closedPort()}`, timeoutMs: 3000 }),
        /^Error: Cannot connect to subtensor at ws:\/\/127\.0\.0\.1:\d+: .*check --subtensor/,
      );
      assert.ok(Date.now() - t0 < 10_000, "the connect error comes within its timeout");
      await assert.rejects(chain.metagraph(netuid + 40), /Subnet \d+ does not exist/);
      await assert.rejects(chain.blockHash(-1), /Invalid block -1/);
    });
  } finally {
    await chain.close();
    await net.stop();
  }
});
