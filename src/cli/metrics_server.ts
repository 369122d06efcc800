/**
 * The `--metrics HOST:PORT` endpoint: `GET /metrics` answers the registry in the
 * Prometheus text format; every other path is 404.
 *
 * @module
 */
import type { Metrics } from "../metrics.ts";
import { UsageError } from "./args.ts";

/** A running metrics endpoint. */
export interface MetricsServer {
  /** `http://host:port/metrics`, with the port actually bound (useful with port 0). */
  url: string;
  close(): Promise<void>;
}

/**
 * Serves `metrics` on `hostPort` (`HOST:PORT`, port 0 picks a free one).
 * @throws {UsageError} when `hostPort` is malformed or cannot be bound
 */
export function serveMetrics(metrics: Metrics, hostPort: string): MetricsServer {
  const m = /^([^:\s]+):(\d{1,5})$/.exec(hostPort);
  if (!m || Number(m[2]) > 65535) {
    throw new UsageError(
      `Invalid --metrics '${hostPort}': expected HOST:PORT, e.g. 127.0.0.1:9100`,
    );
  }
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({ hostname: m[1], port: Number(m[2]), onListen: () => {} }, (req) => {
      if (new URL(req.url).pathname !== "/metrics") {
        return new Response("Not found: metrics are at /metrics\n", { status: 404 });
      }
      return new Response(metrics.render(), {
        headers: { "content-type": "text/plain; version=0.0.4" },
      });
    });
  } catch (e) {
    throw new UsageError(
      `Cannot serve metrics on ${hostPort}: ${(e as Error).message}; pick another --metrics`,
    );
  }
  const { hostname, port } = server.addr;
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  return { url: `http://${host}:${port}/metrics`, close: () => server.shutdown() };
}
