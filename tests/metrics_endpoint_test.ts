/**
 * `--metrics HOST:PORT` as participants serve it: after a real miner window the endpoint
 * answers `GET /metrics` with the Prometheus text of the registry the miner writes to.
 */
import assert from "node:assert/strict";
import { Metrics } from "../src/metrics.ts";
import { serveMetrics } from "../src/cli/metrics_server.ts";
import { UsageError } from "../src/cli/args.ts";
import { makeNet } from "./_roles_net.ts";

Deno.test({
  name: "serveMetrics() answers GET /metrics with the miner's gauges after a window",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const metrics = new Metrics();
    const server = serveMetrics(metrics, "127.0.0.1:0");
    const net = await makeNet(1, []);
    try {
      assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      const windows: number[] = [];
      const m = await net.start(0, {
        role: "honest",
        metrics,
        miner: { maxWindows: 1, onWindow: (w) => void windows.push(w) },
      });
      net.chain.start(100);
      await m.done;
      assert.equal(windows.length, 1);

      const res = await fetch(server.url);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-type"), "text/plain; version=0.0.4");
      const text = await res.text();
      assert.equal(text, metrics.render());
      assert.match(text, /^# TYPE boltzmann_window gauge$/m);
      assert.match(text, new RegExp(`^boltzmann_window ${windows[0]}$`, "m"));
      // Every sample line is `name{labels} value` with a number Prometheus parses.
      for (const line of text.trimEnd().split("\n")) {
        if (line.startsWith("#")) continue;
        assert.match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? (-?[0-9.e+-]+|NaN|[+-]Inf)$/);
      }

      const other = await fetch(server.url.replace(/\/metrics$/, "/"));
      assert.equal(other.status, 404);
      await other.body?.cancel();
    } finally {
      await server.close();
      await net.close();
    }
  },
});

Deno.test("serveMetrics() refuses a bad HOST:PORT or a taken port in one line", async () => {
  const m = new Metrics();
  for (const bad of ["9100", "localhost:", "127.0.0.1:99999", ":9100", "a b:1"]) {
    assert.throws(() => serveMetrics(m, bad), (e: Error) => {
      assert.ok(e instanceof UsageError);
      assert.equal(
        e.message,
        `Invalid --metrics '${bad}': expected HOST:PORT, e.g. 127.0.0.1:9100`,
      );
      return true;
    });
  }
  const first = serveMetrics(m, "127.0.0.1:0");
  try {
    const taken = new URL(first.url).host;
    assert.throws(() => serveMetrics(m, taken), (e: Error) => {
      assert.ok(e instanceof UsageError);
      assert.match(
        e.message,
        new RegExp(`^Cannot serve metrics on ${taken}: .+; pick another --metrics$`),
      );
      assert.ok(!e.message.includes("\n"));
      return true;
    });
  } finally {
    await first.close();
  }
});
