/**
 * One notice of `@polkadot/api` that is dropped, and only that one: on every connection
 * its `API/INIT` logger lists the node's RPC methods it has no definitions for
 * ("RPC methods not decorated: archive_v1_body, …, chainHead_v1_follow, …, dev_newBlock,
 * …"). Those are the newer JSON-RPC spec groups (archive, chainHead, chainSpec,
 * transaction) and the local chain's `dev_*` calls; boltzmann calls none of them, so the
 * notice says nothing a user can act on, yet it is a 1,000-character line in every devnet
 * log and test run. `noInitWarn: true` would drop it too, but also every registry and
 * extension warning (an unknown signed extension, a missing type), which must stay
 * visible (docs/CHAIN.md), so the filter matches this single message by its logger and
 * its text. Left out: every other message, which passes through unchanged.
 *
 * @module
 */

/**
 * Whether `console.warn`'s arguments are the "RPC methods not decorated" notice: the
 * `@polkadot/util` logger calls `console.warn(date, "API/INIT:" padded, text)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isRpcDecorationNotice } from "./api_notices.ts";
 * const at = "2026-12-01 22:20:24";
 * assert.ok(isRpcDecorationNotice([at, "       API/INIT:", "RPC methods not decorated: dev_newBlock"]));
 * assert.ok(!isRpcDecorationNotice([at, "       REGISTRY:", "Unknown signed extensions X found"]));
 * assert.ok(!isRpcDecorationNotice([at, "       API/INIT:", "Not decorating unknown runtime apis"]));
 * ```
 */
export function isRpcDecorationNotice(args: readonly unknown[]): boolean {
  return args.length === 3 && typeof args[1] === "string" && args[1].trim() === "API/INIT:" &&
    typeof args[2] === "string" && args[2].startsWith("RPC methods not decorated: ");
}

let installed = false;

/**
 * Makes `console.warn` drop the notice {@link isRpcDecorationNotice} matches (once per
 * process; the logger looks `console.warn` up on every call, and the notice comes after
 * the connection's first replies, so it cannot be scoped to the constructor call).
 */
export function dropRpcDecorationNotice(): void {
  if (installed) return;
  installed = true;
  const warn = console.warn.bind(console);
  console.warn = (...args: unknown[]) => {
    if (!isRpcDecorationNotice(args)) warn(...args);
  };
}
