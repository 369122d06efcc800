/** `bench converge` codec settings: SPEC[+pc][+lr=X], one-line usage errors. */
import assert from "node:assert/strict";
import { UsageError } from "../cli/args.ts";
import { parseSetting } from "./converge.ts";

Deno.test("parseSetting: codec, preconditioning and outer learning rate", () => {
  const s = parseSetting("dense:s3+pc+lr=0.002");
  assert.equal(s.spec.name, "dense:s3:128");
  assert.equal(s.precondition, true);
  assert.equal(s.learningRate, 0.002);
  assert.equal(parseSetting("f32").precondition, false);
  for (const bad of ["dense:q1", "f32+x", "f32+lr=0", "f32+lr=abc"]) {
    assert.throws(
      () => parseSetting(bad),
      (e: Error) => e instanceof UsageError && !e.message.includes("\n"),
    );
  }
});
