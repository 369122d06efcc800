/**
 * `inspectWindow` on a window the loops really produced: a validator, two honest miners
 * and a `random` adversary run a few windows on a micro model; then window w is
 * inspected with the validator's θ_w and checked against the buckets on disk, the lead's
 * manifest and the validator's own scores, and again after one miner's upload is
 * tampered with.
 */
import assert from "node:assert/strict";
import { formatInspection, inspectWindow, type UploadInfo } from "../src/roles/inspect.ts";
import type { ValidatorWindow } from "../src/roles/validator.ts";
import type { Tensors } from "../src/model/params.ts";
import { objectKey } from "../src/roles/keys.ts";
import { paramsDigest } from "../src/protocol/mod.ts";
import { cloneTensors, makeNet, microHparams } from "./_roles_net.ts";

const MINERS = [1, 2, 3];
const HONEST = [1, 2]; // and 3 is `random`

Deno.test({
  name: "inspectWindow() reports a real window's uploads, manifest, cosines, gradients and scores",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const net = await makeNet(4, [0], microHparams({ window_length: 4 }));
    try {
      const scored = new Map<number, ValidatorWindow>();
      // θ_{w+1} is the validator's params from its report of w until the manifest of w+1.
      const thetaNext = new Map<number, Tensors>();
      const v = await net.start(0, {
        role: "validator",
        validator: {
          maxWindows: 5,
          evalBatches: 2, // = the miners' batches, so cosOwn uses the pages inspect uses
          onWindow: (w, r) => {
            scored.set(w, r);
            thetaNext.set(w + 1, cloneTensors(v.params));
          },
        },
      });
      await net.start(1, { role: "honest" });
      await net.start(2, { role: "honest" });
      await net.start(3, { role: "random" });
      net.chain.start(300);
      await v.done;
      await net.stop();

      const fileOf = (w: number, uid: number) =>
        `${net.bucket(uid)}/${objectKey("update", w, net.keys[uid]!.ss58)}`;
      const exists = (f: string) => Deno.stat(f).then(() => true, () => false);
      // On a busy machine a miner can miss a window, so take the scored window (with θ_w
      // known) that has the most honest miners paid, then the most uploads on disk.
      let best: { w: number; paid: number[]; present: number[] } | null = null;
      for (const [x, r] of [...scored].sort((a, b) => a[0] - b[0])) {
        if (!thetaNext.has(x)) continue;
        const present: number[] = [];
        for (const u of MINERS) if (await exists(fileOf(x, u))) present.push(u);
        const paid = HONEST.filter((u) =>
          present.includes(u) && (r.scores.find((s) => s.uid === u)?.score ?? 0) > 0
        );
        if (
          !best || paid.length > best.paid.length ||
          (paid.length === best.paid.length && present.length > best.present.length)
        ) best = { w: x, paid, present };
      }
      assert.ok(
        best && best.paid.length > 0 && best.present.includes(3),
        `no window with an honest miner paid: ${
          JSON.stringify([...scored].map(([x, r]) => [x, r.scores]))
        }`,
      );
      const { w, present } = best;
      const target = best.paid[0]!; // the miner whose upload gets tampered with
      const r = scored.get(w)!;
      const theta = thetaNext.get(w)!;
      assert.equal(paramsDigest(theta), r.digest, "θ_w is what the validator scored at");
      const deps = {
        hp: net.hp,
        chain: net.chain,
        netuid: 1,
        openStore: net.openStore,
        dataset: net.dataset,
        trainer: await net.trainer(),
        params: theta,
      };

      const a = await inspectWindow(deps, w);
      assert.equal(a.window, w);
      assert.deepEqual(a.blocks, { start: w * 4, deadline: (w + 1) * 4, scoreEnd: (w + 2) * 4 });
      assert.ok(a.manifest, "the lead's manifest is shown");
      assert.equal(a.manifest.baseDigest, r.digest);
      assert.deepEqual(a.manifest.uids, r.aggregated);
      assert.deepEqual(a.uploads.map((u) => u.uid), present, "every miner's upload on disk");
      for (const u of a.uploads) {
        assert.equal(u.valid, true, `${u.uid}: ${u.reason}`);
        assert.equal(u.hotkey, net.keys[u.uid]!.ss58);
        assert.equal(u.bytes, (await Deno.stat(fileOf(w, u.uid))).size);
        assert.ok(u.norm! > 0);
        assert.ok(u.uploadedAt && !Number.isNaN(Date.parse(u.uploadedAt)));
        assert.equal(u.weight !== undefined, r.aggregated.includes(u.uid));
        if (HONEST.includes(u.uid)) {
          assert.equal(u.theta, r.digest, "an honest update says it was computed at θ_w");
          assert.ok(u.batches === 1 || u.batches === 2, `batches ${u.batches}`); // maxBatches 2
          assert.equal(u.tokens, u.batches! * net.hp.batchSize * net.hp.seqLen);
          assert.ok(Number.isFinite(u.loss) && u.loss! > 0);
        }
      }

      // Pairwise cosines: symmetric, 1 on the diagonal, in [-1, 1].
      assert.deepEqual(a.pairwise.uids, present);
      const cos = a.pairwise.cos;
      const m = present.length;
      assert.equal(cos.length, m);
      for (let i = 0; i < m; i++) {
        assert.equal(cos[i]!.length, m);
        assert.ok(Math.abs(cos[i]![i]! - 1) < 1e-6, `diagonal ${cos[i]![i]}`);
        for (let j = 0; j < m; j++) {
          assert.equal(cos[i]![j], cos[j]![i]);
          assert.ok(cos[i]![j]! >= -1 - 1e-9 && cos[i]![j]! <= 1 + 1e-9);
        }
      }

      // Update vs a fresh gradient at θ_w: defined for every upload, and for a miner the
      // validator paid, the very cos(u, ĝ_own) it computed for window w.
      for (const d of a.uploads) {
        assert.ok(Number.isFinite(d.gradCos) && Math.abs(d.gradCos!) <= 1, `${d.gradCos}`);
        const s = r.scores.find((x) => x.uid === d.uid);
        if (s && s.score > 0) {
          assert.ok(
            Math.abs(d.gradCos! - s.cosOwn) < 1e-6,
            `uid ${d.uid}: ${d.gradCos} vs ${s.cosOwn}`,
          );
        }
      }

      // The validator's published scores for w are shown.
      assert.equal(a.scores.length, 1);
      assert.equal(a.scores[0]!.validator, net.keys[0]!.ss58);
      assert.deepEqual(a.scores[0]!.scores, JSON.parse(JSON.stringify(r.scores)));

      // The table: one line per upload, with its status.
      const rows = uploadLines(formatInspection(a));
      assert.equal(rows.length, a.uploads.length);
      assert.ok(rows.every((l) => l.endsWith(" ok")));
      assert.match(formatInspection(a), new RegExp(`scores by validator ${net.keys[0]!.ss58}:`));

      // Tamper with one paid miner's payload: that upload is refused, nothing else
      // changes (the pairwise matrix just loses its row and column).
      const file = fileOf(w, target);
      const bytes = await Deno.readFile(file);
      const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
      bytes[8 + n + 5]! ^= 0x10;
      await Deno.writeFile(file, bytes);
      const b = await inspectWindow(deps, w);
      const isBad = (u: UploadInfo) => u.uid === target;
      const bad = b.uploads.find(isBad)!;
      assert.equal(bad.valid, false);
      assert.match(bad.reason!, /^payload-hash: /);
      assert.equal(bad.gradCos, undefined);
      assert.deepEqual(b.uploads.filter((u) => !isBad(u)), a.uploads.filter((u) => !isBad(u)));
      const keep = present.map((u, i) => [u, i] as const).filter(([u]) => u !== target);
      assert.deepEqual(b.pairwise.uids, keep.map(([u]) => u));
      assert.deepEqual(b.pairwise.cos, keep.map(([, i]) => keep.map(([, j]) => cos[i]![j])));
      assert.deepEqual(b.scores, a.scores);
      const rowsB = uploadLines(formatInspection(b));
      assert.equal(rowsB.length, b.uploads.length);
      const rejected = rowsB.filter((l) => l.includes("REJECTED"));
      assert.equal(rejected.length, 1);
      assert.match(rejected[0]!, new RegExp(`^${target} +.* REJECTED payload-hash: `));
    } finally {
      await net.close();
    }
  },
});

function uploadLines(text: string): string[] {
  return text.split("\n").filter((l) => /^\d+ +\d+ /.test(l));
}
