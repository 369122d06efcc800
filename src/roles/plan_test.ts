import assert from "node:assert/strict";
import { windowAt, windowPlan } from "./plan.ts";

Deno.test("windowPlan(): blocks of window w by hand, and its keys", () => {
  const p = windowPlan(3, 5);
  assert.deepEqual(
    [p.start, p.seedBlock, p.lastUploadBlock, p.deadline, p.scoreEnd],
    [15, 15, 19, 20, 25],
  );
  assert.equal(p.keys.update("5Grw"), "update-3-5Grw.safetensors");
  assert.equal(p.keys.manifest("5Grw"), "manifest-3-5Grw.json");
  assert.equal(p.keys.status("5Grw"), "status-3-5Grw.json");
  // The next window starts where this one's uploads are due.
  assert.equal(windowPlan(4, 5).start, p.deadline);
  assert.equal(windowAt(19, 5), 3);
  assert.equal(windowAt(20, 5), 4);
  assert.throws(() => windowPlan(-1, 5), /Invalid window/);
  assert.throws(() => windowPlan(1, 1), /at least 2 blocks/);
});
