/**
 * Late joining on protocol v2, end to end on the in-process network: the lead validator
 * publishes a checkpoint (θ_w and the outer state) at its first window and every
 * `checkpoint_interval` windows; a miner that joins at window 10 loads the newest one,
 * replays the manifests since, and must hold θ bit for bit as the lead (the same
 * paramsDigest, a SHA-256 of the bits) within two windows. Then: the checkpoint loads as
 * the lead's θ of its window, only the newest two are kept, and a NaN written into one
 * is refused in one line.
 */
import assert from "node:assert/strict";
import { loadLatestCheckpoint } from "../src/roles/checkpoints.ts";
import { listPeers } from "../src/roles/exchange.ts";
import type { WindowReport } from "../src/roles/miner.ts";
import type { ValidatorWindow } from "../src/roles/validator.ts";
import { paramsDigest } from "../src/protocol/mod.ts";
import { makeNet, microHparams } from "./_roles_net.ts";

const JOIN = 10;

Deno.test({
  name: "a miner that joins at window 10 holds the lead's θ bit for bit within two windows",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const hp = microHparams({ checkpoint_interval: 4 });
    const L = hp.windowLength;
    const net = await makeNet(4, [0], hp);
    try {
      const lead = new Map<number, ValidatorWindow>();
      const reports = new Map<number, Map<number, WindowReport>>([[1, new Map()], [3, new Map()]]);
      let onScored: (w: number) => void = () => {};
      await net.start(0, {
        role: "validator",
        validator: {
          evalBatches: 1,
          onWindow: (w, r) => {
            lead.set(w, r);
            onScored(w);
          },
        },
      });
      const watch = (i: number) => ({
        onWindow: (w: number, r: WindowReport) => void reports.get(i)!.set(w, r),
      });
      await net.start(1, { role: "honest", miner: watch(1) });
      await net.start(2, { role: "honest" });
      net.chain.start(500);
      // Join during window 9, so that the first window the miner works is 10.
      while (net.chain.block < JOIN * L - 3) await new Promise((r) => setTimeout(r, 50));
      await net.start(3, { role: "honest", miner: watch(3) });
      await new Promise<void>((res) => onScored = (w) => w >= JOIN + 2 && res());
      await net.stop();

      const late = reports.get(3)!;
      const first = Math.min(...late.keys());
      assert.equal(first, JOIN, `the late miner's first window is ${first}`);
      const same = (w: number) => {
        const d = late.get(w)?.digest;
        return d !== undefined && d === lead.get(w)?.digest && d === reports.get(1)!.get(w)?.digest;
      };
      const inSync = [JOIN, JOIN + 1].filter(same);
      assert.ok(
        inSync.length > 0,
        `late miner's θ digests ${
          JSON.stringify([JOIN, JOIN + 1].map((w) => [late.get(w)?.digest, lead.get(w)?.digest]))
        }`,
      );
      // Once in sync it stays in sync.
      for (let w = inSync[0]!; w <= JOIN + 2; w++) {
        if (late.get(w)?.digest && lead.get(w)) assert.ok(same(w), `window ${w} diverged`);
      }
      // And it was not in sync by accident: θ has moved since the init.
      assert.notEqual(lead.get(JOIN)!.digest, lead.get(Math.min(...lead.keys()))!.digest);

      // The newest checkpoint is the lead's θ of its window, bit for bit.
      const peers = await listPeers(net.chain, 1);
      const ck = await loadLatestCheckpoint(hp, peers, net.openStore);
      assert.ok(ck && ck.window % 4 === 0 && lead.has(ck.window), `checkpoint ${ck?.window}`);
      assert.equal(ck.from, net.keys[0]!.ss58);
      assert.equal(paramsDigest(ck.params), lead.get(ck.window)!.digest);
      const ckpts = [...Deno.readDirSync(net.bucket(0))].map((e) => e.name)
        .filter((n) => n.startsWith("checkpoint-"));
      assert.equal(ckpts.length, 2, `the newest two are kept: ${ckpts}`);

      // The same file with a NaN in it is refused in one line.
      const key = `checkpoint-${ck.window}-${net.keys[0]!.ss58}.safetensors`;
      const file = `${net.bucket(0)}/${key}`;
      const bytes = await Deno.readFile(file);
      const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
      const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
      const name = "model.layers.0.mlp.down_proj.weight";
      const at = 8 + n + header[name].data_offsets[0] + 4 * 7;
      new DataView(bytes.buffer).setFloat32(at, NaN, true);
      await Deno.writeFile(file, bytes);
      await assert.rejects(
        () => loadLatestCheckpoint(hp, peers, net.openStore),
        (e: Error) => {
          assert.equal(
            e.message,
            `Cannot use checkpoint '${key}': tensor '${name}' holds NaN or Inf`,
          );
          return true;
        },
      );
    } finally {
      await net.close();
    }
  },
});
