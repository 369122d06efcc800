import assert from "node:assert/strict";
import { readAsset } from "./assets.ts";

Deno.test("readAsset: the bytes, or one line naming the file, the reason and the fix", async () => {
  const bytes = await readAsset(new URL("./assets.ts", import.meta.url), "x", "y");
  assert.match(new TextDecoder().decode(bytes), /export async function readAsset/);
  await assert.rejects(
    readAsset(new URL("file:///nonexistent/genesis.json"), "the chain genesis", "reinstall"),
    /^Error: Cannot read the chain genesis '\/nonexistent\/genesis.json': .+; reinstall$/,
  );
});
