import assert from "node:assert/strict";
import { LocalStore } from "../store/local.ts";
import { cleanOld, keepWindows, objectKey, parseKey, sliceKey } from "./keys.ts";

const HK = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";

Deno.test("objectKey() and parseKey() round trip; other names are not ours", () => {
  assert.equal(sliceKey("delta", 17, HK), `delta-17-${HK}.safetensors`);
  assert.equal(objectKey("manifest", 3, HK), `manifest-3-${HK}.json`);
  for (const kind of ["update", "manifest", "scores", "status", "checkpoint", "state"] as const) {
    assert.deepEqual(parseKey(objectKey(kind, 17, HK)), { kind, window: 17, hotkey: HK });
  }
  for (
    const bad of [
      "delta-17.safetensors",
      "grad-1-x.safetensors",
      "state-01-x.safetensors",
      "state-1-a/b.safetensors",
      "manifest-1-x.safetensors", // wrong extension for the kind
      "update-1-x.json",
    ]
  ) {
    assert.equal(parseKey(bad), null, bad);
  }
  assert.throws(() => objectKey("state", -1, HK), RangeError);
  assert.throws(() => objectKey("state", 1, "../x"), RangeError);
});

Deno.test("cleanOld() deletes only our objects older than the kept windows, and old checkpoints", async () => {
  const dir = await Deno.makeTempDir({ prefix: "boltzmann-keys-" });
  try {
    const s = new LocalStore(dir);
    const other = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty";
    for (const w of [1, 5, 9, 10]) {
      await s.put(objectKey("update", w, HK), new Uint8Array(1));
      await s.put(objectKey("manifest", w, HK), new Uint8Array(1));
      await s.put(objectKey("checkpoint", w, HK), new Uint8Array(1));
    }
    await s.put(objectKey("update", 1, other), new Uint8Array(1));
    await s.put("notes.txt", new Uint8Array(1));
    const deleted = await cleanOld(s, HK, 15, 5); // keep windows >= 10, newest 2 checkpoints
    assert.deepEqual(deleted.sort(), [
      `checkpoint-1-${HK}.safetensors`,
      `checkpoint-5-${HK}.safetensors`,
      `manifest-1-${HK}.json`,
      `manifest-5-${HK}.json`,
      `manifest-9-${HK}.json`,
      `update-1-${HK}.safetensors`,
      `update-5-${HK}.safetensors`,
      `update-9-${HK}.safetensors`,
    ]);
    assert.deepEqual((await s.list("")).map((o) => o.key), [
      `checkpoint-10-${HK}.safetensors`,
      `checkpoint-9-${HK}.safetensors`,
      `manifest-10-${HK}.json`,
      "notes.txt",
      `update-1-${other}.safetensors`,
      `update-10-${HK}.safetensors`,
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("keepWindows() covers a replay from the newest checkpoint", () => {
  assert.equal(keepWindows({ maxHistory: 10, checkpointInterval: 10 }), 12);
  assert.equal(keepWindows({ maxHistory: 30, checkpointInterval: 10 }), 30);
});
