/**
 * `S3Store` against real local S3 servers started here on 127.0.0.1 (random ports):
 * `s3rver` (accepts any signature) and `@20minutes/s3rver` (verifies SigV4), plus
 * `@aws-sdk/client-s3` as an independent client, and tiny raw servers that misbehave
 * (die mid-body, never answer, stream forever).
 */
import assert from "node:assert/strict";
import {
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { startS3, STRICT_CREDS, type TestS3 } from "../../tests/_s3servers.ts";
import { downloadAll } from "./download.ts";
import { ObjectTooLarge, StoreError } from "./mod.ts";
import { cleanOld, sliceKey } from "../roles/keys.ts";
import { S3Store } from "./s3.ts";

const OPTS = { maxBytes: 8 << 20, timeoutMs: 10_000 };
const HK = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";

function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7 + (i >> 8)) & 255;
  return b;
}

async function withServer(strict: boolean, fn: (s: TestS3) => Promise<void>): Promise<void> {
  const s = await startS3(["bkt"], strict);
  try {
    await fn(s);
  } finally {
    await s.close();
  }
}

for (const strict of [false, true]) {
  const name = strict ? "@20minutes/s3rver (verifies SigV4)" : "s3rver";
  Deno.test(`S3Store put/get/list/delete/retention against ${name}`, async () => {
    await withServer(strict, async (srv) => {
      const s = new S3Store({ bucket: "bkt", endpoint: srv.endpoint, credentials: STRICT_CREDS });
      assert.deepEqual(await s.list(""), []);
      assert.equal(await s.get("missing", OPTS), null);
      const big = pattern(3 << 20, 1);
      await s.put("big.bin", big);
      await s.put("small", new Uint8Array([1, 2, 3]));
      await s.put("small", new Uint8Array([9])); // overwrite
      assert.deepEqual(await s.get("big.bin", OPTS), big);
      assert.deepEqual(await s.get("small", OPTS), new Uint8Array([9]));
      const listed = await s.list("");
      assert.deepEqual(listed.map((o) => [o.key, o.size]), [["big.bin", 3 << 20], ["small", 1]]);
      assert.ok(Math.abs(listed[0]!.lastModified.getTime() - Date.now()) < 3600_000);
      assert.deepEqual((await s.list("sm")).map((o) => o.key), ["small"]);
      await s.delete("small");
      await s.delete("small"); // missing: fine
      assert.deepEqual((await s.list("")).map((o) => o.key), ["big.bin"]);
      // Over the cap: refused from the declared length, body not read.
      await assert.rejects(
        s.get("big.bin", { maxBytes: 1 << 20, timeoutMs: 5000 }),
        ObjectTooLarge,
      );
      // Retention.
      for (const w of [3, 8]) await s.put(sliceKey("delta", w, HK), new Uint8Array(4));
      assert.deepEqual(await cleanOld(s, HK, 10, 5), [`delta-3-${HK}.safetensors`]);
      assert.deepEqual((await s.list("delta-")).map((o) => o.key), [`delta-8-${HK}.safetensors`]);
      // Anonymous reads (a public bucket).
      const anon = new S3Store({ bucket: "bkt", endpoint: srv.endpoint });
      assert.equal((await anon.get(`delta-8-${HK}.safetensors`, OPTS))!.length, 4);
    });
  });
}

Deno.test("S3Store with a wrong secret is refused by a SigV4-verifying server (403, not retried)", async () => {
  await withServer(true, async (srv) => {
    const good = new S3Store({ bucket: "bkt", endpoint: srv.endpoint, credentials: STRICT_CREDS });
    await good.put("obj", new Uint8Array([1]));
    const bad = new S3Store({
      bucket: "bkt",
      endpoint: srv.endpoint,
      credentials: { accessKeyId: "S3RVER", secretAccessKey: "not-the-secret" },
    });
    const refused = (e: unknown) => {
      assert.ok(e instanceof StoreError && !e.retryable, String(e));
      assert.match(e.message, /HTTP 403 SignatureDoesNotMatch/);
      assert.ok(!e.message.includes("not-the-secret"), "the secret leaked into a message");
      return true;
    };
    await assert.rejects(bad.put("obj2", new Uint8Array([2])), refused);
    await assert.rejects(bad.get("obj", OPTS), refused);
    await assert.rejects(bad.list(""), refused);
    assert.deepEqual((await good.list("")).map((o) => o.key), ["obj"]);
  });
});

Deno.test("S3Store interoperates with @aws-sdk/client-s3 (both directions, SigV4 verified)", async () => {
  await withServer(true, async (srv) => {
    const sdk = new S3Client({
      endpoint: srv.endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: STRICT_CREDS,
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
    });
    // @20minutes/s3rver refuses signatures of bucket-level paths ending in '/', which the
    // SDK sends for ListObjectsV2 ('/bkt/'): drop the slash before the SDK signs.
    sdk.middlewareStack.add(
      (next) => (args) => {
        const req = args.request as { path?: string };
        if (req.path && /^\/[^/]+\/$/.test(req.path)) req.path = req.path.slice(0, -1);
        return next(args);
      },
      { step: "build" },
    );
    try {
      const ours = new S3Store({
        bucket: "bkt",
        endpoint: srv.endpoint,
        credentials: STRICT_CREDS,
      });
      const a = pattern(300_000, 2), b = pattern(123_457, 3);
      await ours.put("from-us", a);
      const got = await sdk.send(new GetObjectCommand({ Bucket: "bkt", Key: "from-us" }));
      assert.deepEqual(await got.Body!.transformToByteArray(), a);
      await sdk.send(new PutObjectCommand({ Bucket: "bkt", Key: "from-sdk", Body: b }));
      assert.deepEqual(await ours.get("from-sdk", OPTS), b);
      const listed = await sdk.send(new ListObjectsV2Command({ Bucket: "bkt", Prefix: "from-" }));
      assert.deepEqual(listed.Contents?.map((o) => [o.Key, o.Size]), [
        ["from-sdk", b.length],
        ["from-us", a.length],
      ]);
      assert.deepEqual((await ours.list("from-")).map((o) => [o.key, o.size]), [
        ["from-sdk", b.length],
        ["from-us", a.length],
      ]);
    } finally {
      sdk.destroy();
    }
  });
});

Deno.test("downloadAll() fetches many objects in parallel, keeps order, reports absent ones", async () => {
  await withServer(false, async (srv) => {
    const s = new S3Store({ bucket: "bkt", endpoint: srv.endpoint, credentials: STRICT_CREDS });
    const objs = Array.from({ length: 24 }, (_, i) => pattern(10_000 + i * 997, i));
    await Promise.all(objs.map((o, i) => s.put(`o${i}`, o)));
    const items = objs.map((_, i) => ({ store: s, key: `o${i}`, maxBytes: 1 << 20 }));
    items.push({ store: s, key: "absent", maxBytes: 10 });
    items.push({ store: s, key: "o0", maxBytes: 100 }); // over its cap
    const res = await downloadAll(items, { concurrency: 6 });
    objs.forEach((o, i) => assert.deepEqual(res[i]!.bytes, o));
    assert.equal(res[24]!.bytes, null);
    assert.equal(res[24]!.error, undefined);
    assert.ok(res[25]!.error instanceof ObjectTooLarge);
  });
});

/** A raw HTTP server on 127.0.0.1 whose every connection runs `handle`. */
function rawServer(handle: (c: Deno.Conn) => Promise<void>) {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let connections = 0;
  const open = new Set<Promise<void>>();
  const loop = (async () => {
    for await (const c of l) {
      connections++;
      const p = handle(c).catch(() => {}).finally(() => {
        try {
          c.close();
        } catch { /* already closed */ }
        open.delete(p);
      });
      open.add(p);
    }
  })();
  return {
    endpoint: `http://127.0.0.1:${(l.addr as Deno.NetAddr).port}`,
    get connections() {
      return connections;
    },
    async close() {
      l.close();
      await loop.catch(() => {});
      await Promise.all(open);
    },
  };
}

async function readRequest(c: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(16384);
  let text = "";
  while (!text.includes("\r\n\r\n")) {
    const n = await c.read(buf);
    if (n === null) return;
    text += new TextDecoder().decode(buf.subarray(0, n));
  }
}

const enc = new TextEncoder();

Deno.test("a server dying mid-body: retried with backoff, then one clear error, no partial bytes", async () => {
  const srv = rawServer(async (c) => {
    await readRequest(c);
    await c.write(
      enc.encode("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n"),
    );
    await c.write(new Uint8Array(5000)); // then the connection drops
  });
  try {
    const s = new S3Store({ bucket: "bkt", endpoint: srv.endpoint, credentials: STRICT_CREDS });
    const [r] = await downloadAll([{ store: s, key: "obj", maxBytes: 1 << 20 }], {
      retries: 2,
      backoffMs: 5,
      timeoutMs: 5000,
    });
    assert.equal(r!.bytes, null);
    assert.ok(r!.error instanceof StoreError);
    assert.match(r!.error.message, /^GET 'obj' from s3:\/\/bkt failed after 3 attempts: /);
    assert.ok(!r!.error.message.includes("\n"));
    assert.equal(srv.connections, 3);
  } finally {
    await srv.close();
  }
});

Deno.test("a server that never answers: per-object timeout, retried, then a clear error", async () => {
  const srv = rawServer(async (c) => {
    await readRequest(c);
    await new Promise((r) => setTimeout(r, 400));
  });
  try {
    const s = new S3Store({ bucket: "bkt", endpoint: srv.endpoint });
    const [r] = await downloadAll([{ store: s, key: "obj", maxBytes: 100 }], {
      retries: 1,
      backoffMs: 5,
      timeoutMs: 150,
    });
    assert.match(r!.error!.message, /failed after 2 attempts: .*timed out after 150 ms/);
    assert.equal(srv.connections, 2);
  } finally {
    await srv.close();
  }
});

Deno.test("get() stops reading an endless body at the cap (does not read the rest)", async () => {
  let sent = 0;
  let stopped = false;
  const srv = rawServer(async (c) => {
    await readRequest(c);
    await c.write(enc.encode("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"));
    const chunk = new Uint8Array(64 << 10);
    const frame = new Uint8Array([...enc.encode("10000\r\n"), ...chunk, ...enc.encode("\r\n")]);
    try {
      for (;;) {
        await c.write(frame);
        sent += chunk.length;
        if (sent > (256 << 20)) return; // the client would have read everything
      }
    } catch {
      stopped = true; // the client hung up
    }
  });
  try {
    const s = new S3Store({ bucket: "bkt", endpoint: srv.endpoint });
    await assert.rejects(s.get("obj", { maxBytes: 1 << 20, timeoutMs: 5000 }), ObjectTooLarge);
    // Let the server notice the hang-up.
    for (let i = 0; i < 100 && !stopped; i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(stopped, "the server kept sending");
    assert.ok(sent < (32 << 20), `the server sent ${sent} bytes for a 1 MB cap`);
  } finally {
    await srv.close();
  }
});

Deno.test("downloadAll() prints a progress line (objects, MB, MB/s) when it takes long", async () => {
  const srv = rawServer(async (c) => {
    await readRequest(c);
    await new Promise((r) => setTimeout(r, 120));
    await c.write(
      enc.encode("HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nabcd"),
    );
  });
  try {
    const s = new S3Store({ bucket: "bkt", endpoint: srv.endpoint });
    const lines: string[] = [];
    const res = await downloadAll(
      [0, 1, 2].map((i) => ({ store: s, key: `o${i}`, maxBytes: 10 })),
      { concurrency: 1, progressAfterMs: 50, progressMs: 100, onProgress: (l) => lines.push(l) },
    );
    assert.ok(res.every((r) => r.bytes?.length === 4));
    assert.ok(lines.length >= 2, lines.join("\n"));
    assert.match(lines.at(-1)!, /^downloads 3\/3 objects, 0\.0 MB, [\d.]+ MB\/s, [\d.]+ s$/);
  } finally {
    await srv.close();
  }
});
