import assert from "node:assert/strict";
import { logger } from "@polkadot/util";
import { dropRpcDecorationNotice } from "./api_notices.ts";

Deno.test("only the RPC-decoration notice of @polkadot/api is dropped; registry warnings stay", () => {
  const seen: unknown[][] = [];
  const original = console.warn;
  console.warn = (...args: unknown[]) => void seen.push(args);
  try {
    dropRpcDecorationNotice();
    // The library's own logger, so the test follows its real argument layout.
    logger("api/init").warn("RPC methods not decorated: archive_v1_body, dev_newBlock");
    logger("api/init").warn("Not decorating unknown runtime apis: 0x1234/1");
    logger("registry").warn(
      "Unknown signed extensions DrandPriority found, treating them as no-effect",
    );
    assert.deepEqual(seen.map((a) => a.slice(1)), [
      ["       API/INIT:", "Not decorating unknown runtime apis: 0x1234/1"],
      [
        "       REGISTRY:",
        "Unknown signed extensions DrandPriority found, treating them as no-effect",
      ],
    ]);
  } finally {
    console.warn = original;
  }
});
