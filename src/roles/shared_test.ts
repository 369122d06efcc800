import assert from "node:assert/strict";
import {
  encodeUpdate,
  newOuterState,
  type OuterHparams,
  paramsDigest,
  parseCodec,
  writeUpload,
} from "../protocol/mod.ts";
import type { Tensors } from "../model/params.ts";
import { clone } from "../tensor_math.ts";
import { type Manifest, MANIFEST_FORMAT, sha256Hex } from "./manifest.ts";
import { applyUpdates, catchUp, type History, type ModelAt } from "./shared.ts";
import { seedSigner } from "../../tests/_test_keys.ts";

const MINERS = [seedSigner(2), seedSigner(3)];
const TABLE = [{ name: "w", shape: [4] }, { name: "b", shape: [2] }];
const SPEC = parseCodec("f32");
const OUTER: OuterHparams = {
  learningRate: 1e-2,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  weightDecay: 0.1,
  gradClip: 1,
};
const OPTS = { spec: SPEC, table: TABLE, fingerprint: "fp", outer: OUTER };
const T = (w: number[], b: number[]): Tensors =>
  new Map([["w", new Float32Array(w)], ["b", new Float32Array(b)]]);
const start = (): ModelAt => {
  const params = T([0.5, -0.25, 1, 2], [0, 1]);
  return { window: 0, params, outer: newOuterState(params) };
};

/** A network of `n` windows: the files, the manifests and θ after each window. */
function history(n: number) {
  const files = new Map<string, Uint8Array>();
  const manifests: Manifest[] = [];
  const thetas: ModelAt[] = [];
  const ref = start();
  for (let w = 0; w < n; w++) {
    thetas.push({
      window: ref.window,
      params: clone(ref.params),
      outer: structuredClone(ref.outer),
    });
    const base = paramsDigest(ref.params);
    const ups = MINERS.map((m, i) => {
      const u = T([w + i, -1, 0.5, i], [1, -w]);
      const enc = encodeUpdate(SPEC, u, new Map());
      const bytes = writeUpload(enc, { window: w, hotkey: m.address, fingerprint: "fp" }, m);
      files.set(`${w}/${m.address}`, bytes);
      return { m, u, bytes, weight: 1 + i };
    });
    const digest = applyUpdates(
      ref,
      ups.map((x) => ({ update: x.u, weight: x.weight, key: x.m.address })),
      OUTER,
    );
    manifests.push({
      format: MANIFEST_FORMAT,
      window: w,
      lead: "lead",
      fingerprint: "fp",
      codec: SPEC.name,
      baseDigest: base,
      digest,
      uploads: ups.map((x, i) => ({
        uid: i + 1,
        hotkey: x.m.address,
        sha256: sha256Hex(x.bytes),
        bytes: x.bytes.length,
        weight: x.weight,
      })),
    });
  }
  thetas.push(ref);
  const h: History = {
    checkpointWindow: (atMost) => Promise.resolve(Math.min(atMost, 2)),
    manifest: (w) => Promise.resolve(manifests[w] ?? null),
    upload: (w, e) => Promise.resolve(files.get(`${w}/${e.hotkey}`) ?? null),
    checkpoint: (atMost) => {
      const c = Math.min(atMost, 2);
      const t = thetas[c]!;
      return Promise.resolve({
        window: c,
        params: clone(t.params),
        outer: structuredClone(t.outer),
      });
    },
  };
  return { h, files, manifests, thetas };
}

Deno.test("applyUpdates() gives the same bits whatever the order of the updates", () => {
  const u = [
    { update: T([1, 2, 3, 4], [0.5, 0.25]), weight: 1, key: "a" },
    { update: T([-1, 0, 3, 9], [1, 0]), weight: 3, key: "b" },
    { update: T([0.1, 0.2, 0.3, 0.4], [2, 2]), weight: 0.5, key: "c" },
  ];
  const x = start(), y = start();
  assert.equal(applyUpdates(x, u, OUTER), applyUpdates(y, [u[2]!, u[0]!, u[1]!], OUTER));
  assert.equal(x.window, 1);
  assert.notEqual(paramsDigest(x.params), paramsDigest(start().params));
});

Deno.test("catchUp() applies manifests to the lead's bits; re-syncs from a checkpoint when off", async () => {
  const { h, thetas } = history(5);
  const wait = { ...OPTS, waitManifest: h.manifest };
  // In sync from the start: four manifests applied, digests agree.
  const a = start();
  const r = await catchUp(a, 4, h, wait);
  assert.equal(r.resynced, false);
  assert.equal(r.applied.length, 4);
  assert.ok(r.applied.every((x) => x.agrees));
  assert.equal(paramsDigest(a.params), paramsDigest(thetas[4]!.params));
  // Diverged (one bit off): re-sync from the checkpoint of window 2, replay 2 and 3.
  const b = start();
  b.params.get("w")![0] = 0.5000001;
  const params = b.params;
  const s = await catchUp(b, 4, h, wait);
  assert.equal(s.resynced, true);
  assert.equal(paramsDigest(b.params), paramsDigest(thetas[4]!.params));
  assert.equal(b.params, params, "the caller's arrays are updated in place");
  // A late joiner (window unknown) starts from the checkpoint.
  const c = { ...start(), window: -1 };
  await catchUp(c, 4, h, wait);
  assert.equal(paramsDigest(c.params), paramsDigest(thetas[4]!.params));
});

Deno.test("catchUp() refuses an upload that differs from the manifest's hash, then re-syncs", async () => {
  const { h, files, thetas } = history(4);
  const k = `1/${MINERS[0]!.address}`;
  const bytes = files.get(k)!.slice();
  bytes[bytes.length - 1]! ^= 1;
  files.set(k, bytes); // a miner rewrote its upload of window 1 after the deadline
  const a = start();
  // Window 1's manifest cannot be applied from here; the checkpoint of window 2 can.
  await catchUp(a, 3, h, { ...OPTS, waitManifest: h.manifest });
  assert.equal(paramsDigest(a.params), paramsDigest(thetas[3]!.params));
  // With no manifest for the newest window and no newer checkpoint: a clear error.
  const b = start();
  b.window = 3;
  await assert.rejects(
    () => catchUp(b, 5, h, { ...OPTS, waitManifest: () => Promise.resolve(null) }),
    /manifest of window/i,
  );
});
