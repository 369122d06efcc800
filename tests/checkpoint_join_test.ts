/**
 * Late joining from the lead validator's checkpoint, end to end: the validator (the only
 * staked hotkey) publishes a full checkpoint every 2 windows; `loadLatestCheckpoint`
 * must return the newest one bit for bit as the validator's params were when it
 * published; a miner started late from it is paid within two windows; a checkpoint with
 * a NaN written into it is refused in one line.
 */
import assert from "node:assert/strict";
import { loadLatestCheckpoint } from "../src/roles/checkpoints.ts";
import { listPeers } from "../src/roles/exchange.ts";
import { initParams } from "../src/model/init.ts";
import type { Tensors } from "../src/model/params.ts";
import type { Store } from "../src/store/mod.ts";
import { windowOf } from "../src/window.ts";
import { cloneTensors, makeNet, microHparams } from "./_roles_net.ts";

/** Bit-for-bit equality of two parameter maps. */
function assertSameBits(a: Tensors, b: Tensors, what: string): void {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort(), `${what}: names`);
  for (const [k, x] of a) {
    const y = b.get(k)!;
    assert.equal(x.length, y.length, `${what}: '${k}' length`);
    const bx = new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
    const by = new Uint8Array(y.buffer, y.byteOffset, y.byteLength);
    assert.ok(bx.every((v, i) => v === by[i]), `${what}: '${k}' differs`);
  }
}

function distance(a: Tensors, b: Tensors): number {
  let s = 0;
  for (const [k, x] of a) {
    const y = b.get(k)!;
    for (let i = 0; i < x.length; i++) s += (x[i]! - y[i]!) ** 2;
  }
  return Math.sqrt(s);
}

Deno.test({
  name: "loadLatestCheckpoint() returns the lead's params as published; a late miner is paid",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const hp = microHparams({ window_length: 6, checkpoint_interval: 2 });
    const L = hp.windowLength;
    const net = await makeNet(4, [0], hp);
    const LATE = 3;
    try {
      // The validator's params at the moment each checkpoint is put, by window.
      const vParams = initParams(hp.model, 0);
      const published = new Map<number, Tensors>();
      let onCheckpoint: (w: number) => void = () => {};
      const watch = (s: Store): Store => ({
        location: s.location,
        get: (k, o) => s.get(k, o),
        list: (p) => s.list(p),
        delete: (k) => s.delete(k),
        async put(k, bytes) {
          const m = /^checkpoint-(\d+)-/.exec(k);
          const snap = m ? cloneTensors(vParams) : null;
          await s.put(k, bytes);
          if (m) {
            published.set(Number(m[1]), snap!);
            onCheckpoint(Number(m[1]));
          }
        },
      });
      const scores = new Map<number, Map<number, number>>(); // window → uid → score
      const valParams = new Map<number, Tensors>(); // θ_w, as scored
      let onScored: (w: number) => void = () => {};
      await net.start(0, {
        role: "validator",
        params: vParams,
        wrapStore: watch,
        validator: {
          evalBatches: 2,
          onWindow: (w, r) => {
            scores.set(w, new Map(r.scores.map((s) => [s.uid, s.score])));
            valParams.set(w, cloneTensors(vParams));
            onScored(w);
          },
        },
      });
      await net.start(1, { role: "honest" });
      await net.start(2, { role: "honest" });
      const second = new Promise<number>((res) => onCheckpoint = (w) => w >= 4 && res(w));
      net.chain.start(250);
      const w0 = await second; // two checkpoints are out: windows 2 and 4

      const peers = await listPeers(net.chain, 1);
      const ck = await loadLatestCheckpoint(hp, peers, net.openStore);
      assert.ok(ck, "a checkpoint is found");
      assert.equal(ck.window, w0);
      assert.equal(ck.from, net.keys[0]!.ss58);
      assertSameBits(ck.params, published.get(w0)!, `checkpoint of window ${w0}`);
      const init = initParams(hp.model, 0);
      const moved = distance(init, ck.params);
      assert.ok(moved > 0, "the shared model has moved since init");

      // A miner joins late from the checkpoint and must be paid within two windows.
      const mine = new Map<number, Tensors>(); // its params after each window
      const late = await net.start(LATE, {
        role: "honest",
        params: cloneTensors(ck.params),
        miner: { onWindow: (w) => void mine.set(w, cloneTensors(late.params)) },
      });
      const first = windowOf(net.chain.block, L) + 1;
      const paid = await new Promise<number | null>((res) => {
        onScored = (w) => {
          if (w < first) return;
          if ((scores.get(w)!.get(LATE) ?? 0) > 0) res(w);
          else if (w >= first + 1) res(null);
        };
      });
      assert.ok(
        paid !== null,
        `late miner (first window ${first}) unpaid: ${
          JSON.stringify([...scores].map(([w, m]) => [w, m.get(LATE)]))
        }`,
      );
      // In sync: in the window it was paid for, the late miner is nearer the validator's
      // θ_w than the init is (a miner started from init would not be). Miners that were
      // there from the start are no reference: their own full steps drift them further.
      const theta = valParams.get(paid)!, own = mine.get(paid);
      assert.ok(own, `late miner reported window ${paid}`);
      const dLate = distance(own, theta), dInit = distance(init, theta);
      assert.ok(dLate < dInit, `late miner ${dLate} from θ_${paid}, init ${dInit}`);
      await net.stop();

      // The newest checkpoint now, then the same file with a NaN in it.
      const newest = await loadLatestCheckpoint(hp, peers, net.openStore);
      assert.ok(newest && newest.window >= w0);
      assertSameBits(newest.params, published.get(newest.window)!, "newest checkpoint");
      const ckpts = [...Deno.readDirSync(net.bucket(0))].map((e) => e.name)
        .filter((n) => n.startsWith("checkpoint-"));
      assert.equal(ckpts.length, 2, `the newest two are kept: ${ckpts}`);
      const key = `checkpoint-${newest.window}-${net.keys[0]!.ss58}.safetensors`;
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
