import assert from "node:assert/strict";
import { LocalStore } from "./local.ts";
import { ObjectTooLarge } from "./mod.ts";
import { resolveStore, s3Env } from "./resolve.ts";
import { S3Store } from "./s3.ts";
import { withTempDir } from "../../tests/_temp_dir.ts";

const OPTS = { maxBytes: 1 << 20, timeoutMs: 5000 };

Deno.test("LocalStore put/get/list/delete, missing objects, bad keys", async () => {
  await withTempDir("local", async (dir) => {
    const s = new LocalStore(`${dir}/sub`);
    assert.deepEqual(await s.list(""), []); // directory not created yet
    assert.equal(await s.get("a", OPTS), null);
    await s.put("a-1", new Uint8Array([1, 2, 3]));
    await s.put("b-2", new Uint8Array(10));
    await s.put("a-1", new Uint8Array([4, 5])); // overwrite
    assert.deepEqual(await s.get("a-1", OPTS), new Uint8Array([4, 5]));
    assert.deepEqual((await s.list("")).map((o) => [o.key, o.size]), [["a-1", 2], ["b-2", 10]]);
    assert.deepEqual((await s.list("b")).map((o) => o.key), ["b-2"]);
    await s.delete("a-1");
    await s.delete("a-1"); // missing: fine
    assert.deepEqual((await s.list("")).map((o) => o.key), ["b-2"]);
    await assert.rejects(s.put("../evil", new Uint8Array(1)), RangeError);
    await assert.rejects(s.get(".hidden", OPTS), RangeError);
    assert.equal(s.location, `file://${dir}/sub`);
  });
});

Deno.test("LocalStore get() refuses an object over the cap without reading it", async () => {
  await withTempDir("local", async (dir) => {
    const s = new LocalStore(dir);
    await s.put("big", new Uint8Array(1000));
    await assert.rejects(s.get("big", { maxBytes: 999, timeoutMs: 1000 }), (e: unknown) => {
      assert.ok(e instanceof ObjectTooLarge);
      assert.equal(e.maxBytes, 999);
      assert.match(e.message, /^Object 'big' exceeds the size cap of 999 bytes/);
      return true;
    });
    assert.equal((await s.get("big", { maxBytes: 1000, timeoutMs: 1000 }))!.length, 1000);
  });
});

Deno.test("LocalStore concurrent writers of one key: readers only ever see a whole object", async () => {
  await withTempDir("local", async (dir) => {
    const s = new LocalStore(dir);
    const size = 256 << 10;
    const writes = Array.from(
      { length: 8 },
      (_, i) => s.put("k", new Uint8Array(size).fill(i + 1)),
    );
    const reads: Promise<void>[] = [];
    for (let r = 0; r < 16; r++) {
      reads.push((async () => {
        const b = await s.get("k", { maxBytes: size, timeoutMs: 5000 });
        if (b === null) return; // not written yet
        assert.equal(b.length, size);
        assert.ok(b.every((x) => x === b[0]), "a mixed object was visible");
      })());
    }
    await Promise.all([...writes, ...reads]);
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assert.deepEqual(names, ["k"]); // no temporaries left
  });
});

Deno.test("resolveStore() maps --bucket forms to stores", () => {
  const local = resolveStore("file:///tmp/x%20y/");
  assert.ok(local instanceof LocalStore);
  assert.equal(local.location, "file:///tmp/x y");
  const a = resolveStore("s3://my-bucket");
  assert.ok(a instanceof S3Store);
  assert.equal(a.location, "s3://my-bucket");
  assert.equal(resolveStore("my.bucket-2").location, "s3://my.bucket-2");
  for (const bad of ["file://relative", "My_Bucket", "s3://a", "./dir", ""]) {
    assert.throws(() => resolveStore(bad), RangeError, bad);
  }
});

Deno.test("s3Env() reads AWS_* settings; a half key pair is refused", () => {
  const env = (m: Record<string, string>) => (k: string) => m[k];
  assert.deepEqual(s3Env(env({})), {
    credentials: undefined,
    endpoint: undefined,
    region: undefined,
    pathStyle: undefined,
  });
  const e = s3Env(env({
    AWS_ACCESS_KEY_ID: "id",
    AWS_SECRET_ACCESS_KEY: "secret",
    AWS_SESSION_TOKEN: "tok",
    AWS_ENDPOINT_URL: "http://127.0.0.1:9000",
    AWS_REGION: "auto",
    AWS_S3_FORCE_PATH_STYLE: "false",
  }));
  assert.deepEqual(e, {
    credentials: { accessKeyId: "id", secretAccessKey: "secret", sessionToken: "tok" },
    endpoint: "http://127.0.0.1:9000",
    region: "auto",
    pathStyle: false,
  });
  assert.throws(() => s3Env(env({ AWS_ACCESS_KEY_ID: "id" })), /Incomplete S3 credentials/);
});
