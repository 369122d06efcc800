import assert from "node:assert/strict";
import { S3Store } from "../store/s3.ts";
import { BENCH_CREDS, startBenchS3 } from "./s3_server.ts";

Deno.test("bench S3 server: a signed round trip works; a wrong secret or bucket is refused", async () => {
  const srv = startBenchS3("bench");
  try {
    const ok = new S3Store({ bucket: "bench", endpoint: srv.endpoint, credentials: BENCH_CREDS });
    const bytes = Uint8Array.from({ length: 1000 }, (_, i) => i % 251);
    await ok.put("a-slice", bytes);
    assert.deepEqual(await ok.get("a-slice", { maxBytes: 1000, timeoutMs: 10_000 }), bytes);
    assert.equal(await ok.get("missing", { maxBytes: 10, timeoutMs: 10_000 }), null);
    const bad = new S3Store({
      bucket: "bench",
      endpoint: srv.endpoint,
      credentials: { ...BENCH_CREDS, secretAccessKey: "wrong" },
    });
    await assert.rejects(bad.put("b", bytes), /403/);
    await assert.rejects(bad.get("a-slice", { maxBytes: 1000, timeoutMs: 10_000 }), /403/);
    const other = new S3Store({
      bucket: "other",
      endpoint: srv.endpoint,
      credentials: BENCH_CREDS,
    });
    await assert.rejects(other.put("b", bytes), /404/);
  } finally {
    await srv.close();
  }
});
