import assert from "node:assert/strict";
import { FakeChain } from "./_fake_chain.ts";
import { hotkeyFromUri } from "../src/chain/wallet.ts";

Deno.test("FakeChain behaves like subtensor for blocks, commitments and weights", async () => {
  const [v, m, x] = await Promise.all(["//V", "//M", "//X"].map(hotkeyFromUri));
  const chain = new FakeChain({
    netuid: 3,
    neurons: [{ hotkey: v!.ss58, stake: 10 }, { hotkey: m!.ss58, validatorPermit: false }],
  });
  const got: [number, string][] = [];
  const unsub = await chain.subscribeBlocks((n, h) => got.push([n, h]));
  chain.advance(3);
  unsub();
  chain.advance();
  assert.deepEqual(got.map(([n]) => n), [0, 1, 2, 3]);
  for (const [n, h] of got) {
    assert.match(h, /^0x[0-9a-f]{64}$/);
    assert.equal(await chain.blockHash(n), h);
  }
  assert.notEqual(got[0]![1], got[1]![1]);
  assert.equal(await chain.currentBlock(), 4);
  await assert.rejects(chain.blockHash(5), /not on fake:\/\/chain yet/);

  await chain.setCommitment(m!, 3, "bucket-m");
  assert.deepEqual(await chain.commitments(3), new Map([[m!.ss58, "bucket-m"]]));
  await assert.rejects(chain.setCommitment(x!, 3, "b"), /is not registered on subnet 3/);
  await assert.rejects(chain.setCommitment(m!, 3, "é".repeat(65)), /130 bytes exceeds/);

  await chain.setWeights(v!, 3, [0, 1], [1, 3], 0);
  assert.deepEqual(await chain.weights(3), new Map([[0, [[0, 21845], [1, 65535]]]]));
  await assert.rejects(chain.setWeights(m!, 3, [0], [1], 0), /NeuronNoValidatorPermit/);
  await assert.rejects(chain.setWeights(v!, 3, [5], [1], 0), /UidVecContainInvalidOne/);
  await assert.rejects(chain.setWeights(x!, 3, [0], [1], 0), /is not registered/);

  const mg = await chain.metagraph(3);
  assert.deepEqual(mg.uids, [0, 1]);
  assert.deepEqual(mg.stake, [10, 0]);
  assert.deepEqual(mg.validatorPermit, [true, false]);
  assert.deepEqual(mg.lastUpdate, [4, 0]);
  await assert.rejects(chain.metagraph(4), /Subnet 4 does not exist/);
  assert.equal(chain.register({ hotkey: x!.ss58 }), 2);
  await chain.close();
  await assert.rejects(async () => await chain.currentBlock(), /closed/);
});
