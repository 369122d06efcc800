/**
 * A JSON-RPC WebSocket server for an in-process chopsticks chain, on `Deno.serve`:
 * the substrate RPCs `@polkadot/api` needs plus chopsticks' `dev_*` (e.g. `dev_newBlock`).
 * Unlike chopsticks' own server it binds exactly the port asked for, and `close()` drops
 * every open connection, which is how the local chain simulates a node restart.
 *
 * @module
 */
import { getLogger } from "../log.ts";

const log = getLogger(["boltzmann", "localnet"]);

/** Largest JSON-RPC message accepted (chopsticks allows 100 MB; extrinsics are small). */
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/** A chopsticks-core RPC handler: `(context, params, subscriptions)`. */
// deno-lint-ignore no-explicit-any
type Handler = (context: any, params: any, subs: SubscriptionManager) => Promise<unknown>;

interface SubscriptionManager {
  subscribe(method: string, subid: string, onCancel?: () => void): (data: unknown) => void;
  unsubscribe(subid: string): void;
}

interface Request {
  id?: number | string | null;
  jsonrpc: "2.0";
  method: string;
  params?: unknown[];
}

function isRequest(v: unknown): v is Request {
  if (typeof v !== "object" || v === null) return false;
  const r = v as Record<string, unknown>;
  return r.jsonrpc === "2.0" && typeof r.method === "string" &&
    (r.params === undefined || Array.isArray(r.params));
}

/** A listening server; `close()` stops it and drops all connections. */
export interface RpcServer {
  port: number;
  close(): Promise<void>;
}

/**
 * Serves `handlers` (chopsticks-core's `allHandlers`) for `context` on 127.0.0.1:`port`.
 * @throws {Error} when the port is taken
 */
export function serveRpc(
  handlers: Record<string, Handler>,
  context: unknown,
  port: number,
): RpcServer {
  const sockets = new Set<WebSocket>();
  const ac = new AbortController();
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname: "127.0.0.1",
      port,
      signal: ac.signal,
      onListen: () => {},
    }, (req) => {
      if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
        return new Response("boltzmann localnet: connect with a WebSocket JSON-RPC client\n", {
          status: 426,
        });
      }
      const { socket, response } = Deno.upgradeWebSocket(req);
      handleSocket(socket, handlers, context, sockets);
      return response;
    });
  } catch (e) {
    if (e instanceof Deno.errors.AddrInUse) {
      throw new Error(
        `Cannot start the local chain on port ${port}: it is in use; pick another --port`,
      );
    }
    throw e;
  }
  return {
    port: server.addr.port,
    async close() {
      for (const s of sockets) {
        try {
          s.close(1012, "chain restarting");
        } catch { /* already closing */ }
      }
      sockets.clear();
      ac.abort();
      await server.finished;
    },
  };
}

function handleSocket(
  socket: WebSocket,
  handlers: Record<string, Handler>,
  context: unknown,
  sockets: Set<WebSocket>,
): void {
  const subscriptions = new Map<string, (subid: string) => void>();
  const send = (data: unknown) => {
    if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(data));
  };
  const subs: SubscriptionManager = {
    subscribe(method, subid, onCancel = () => {}) {
      subscriptions.set(subid, onCancel);
      return (result) => {
        if (subscriptions.has(subid)) {
          send({ jsonrpc: "2.0", method, params: { result, subscription: subid } });
        }
      };
    },
    unsubscribe(subid) {
      subscriptions.get(subid)?.(subid);
      subscriptions.delete(subid);
    },
  };
  const process = async (req: unknown) => {
    if (!isRequest(req)) {
      return { jsonrpc: "2.0", id: null, error: { code: -32600, message: "Invalid Request" } };
    }
    const h = handlers[req.method];
    if (!h) {
      return {
        jsonrpc: "2.0",
        id: req.id ?? null,
        error: { code: -32601, message: `Method not found: ${req.method}` },
      };
    }
    try {
      const result = await h(context, req.params ?? [], subs);
      return { jsonrpc: "2.0", id: req.id ?? null, result: result ?? null };
    } catch (e) {
      const err = e as { code?: unknown; message?: unknown };
      const code = typeof err.code === "number" ? err.code : -32603;
      const message = typeof err.code === "number" ? String(err.message) : `Internal ${e}`;
      return { jsonrpc: "2.0", id: req.id ?? null, error: { code, message } };
    }
  };
  const cancelAll = () => {
    sockets.delete(socket);
    for (const [id, cancel] of subscriptions) {
      try {
        cancel(id);
      } catch { /* the chain may be closed */ }
    }
    subscriptions.clear();
  };
  socket.onopen = () => sockets.add(socket);
  socket.onclose = cancelAll;
  socket.onerror = cancelAll;
  socket.onmessage = async (ev) => {
    const text = typeof ev.data === "string" ? ev.data : "";
    if (text.length > MAX_MESSAGE_BYTES) {
      send({ jsonrpc: "2.0", id: null, error: { code: -32600, message: "Message too large" } });
      return;
    }
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      send({ jsonrpc: "2.0", id: null, error: { code: -32700, message: "Parse error" } });
      return;
    }
    try {
      send(Array.isArray(msg) ? await Promise.all(msg.map(process)) : await process(msg));
    } catch (e) {
      log.debug("RPC failed: {err}", { err: String(e) });
    }
  };
}
