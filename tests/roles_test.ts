/**
 * The miner and validator loops end to end on one machine, without a chain process:
 * real trainer (a micro model), real embedded data, real signed slices in directory
 * buckets, a timer-driven test chain (tests/_roles_net.ts). Honest miners must outscore
 * a random one by far and win the weights the validator sets.
 */
import assert from "node:assert/strict";
import type { ValidatorWindow } from "../src/roles/validator.ts";
import { makeNet } from "./_roles_net.ts";

Deno.test({
  name: "miner and validator loops: honest miners outscore a random one, weights are set",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const net = await makeNet(4, [0]);
    const windows: ValidatorWindow[] = [];
    try {
      const v = await net.start(0, {
        role: "validator",
        validator: { maxWindows: 6, evalBatches: 1, onWindow: (_w, r) => void windows.push(r) },
      });
      await net.start(1, { role: "honest" });
      await net.start(2, { role: "honest" });
      await net.start(3, { role: "random" });
      net.chain.start(800);
      await v.done; // the validator stops after its windows
    } finally {
      await net.close();
    }
    assert.equal(windows.length, 6);
    const total = (uid: number) =>
      windows.reduce((a, w) => a + (w.scores.find((s) => s.uid === uid)?.score ?? 0), 0);
    const weakest = Math.min(total(1), total(2));
    // A random delta passes the 3σ margin cut by chance ~0.1 % of windows, and then only
    // just: it must stay far below every honest miner.
    assert.ok(total(3) < 0.1 * weakest, `honest ${total(1)}, ${total(2)} vs random ${total(3)}`);
    assert.ok(net.chain.weightsSet.length > 0, "weights were set");
    const last = net.chain.weightsSet.at(-1)!;
    const share = last.uids.reduce((a, u, i) => a + (u === 1 || u === 2 ? last.weights[i]! : 0), 0);
    assert.ok(share > 0.9, `honest share ${share}`);
    assert.ok(windows.every((w) => Number.isFinite(w.heldOutLoss)));
    // The lead weights the shared step by its scores, from the first window on (it
    // scores that one before its manifest): the random upload never enters θ.
    assert.ok(
      windows.every((w) => !w.aggregated.includes(3)),
      JSON.stringify(windows.map((w) => w.aggregated)),
    );
    assert.ok(windows.some((w) => w.aggregated.includes(1) && w.aggregated.includes(2)));
  },
});
