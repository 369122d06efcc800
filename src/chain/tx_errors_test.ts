import assert from "node:assert/strict";
import {
  CUSTOM_ERRORS,
  customErrorTable,
  LEGACY_CUSTOM_ERRORS,
  nameCustomErrors,
} from "./tx_errors.ts";

Deno.test("custom validity errors are named from the runtime source's tables", () => {
  // A node's RPC error text, and chopsticks' JSON form.
  assert.equal(
    nameCustomErrors("1010: Invalid Transaction: Custom error: 6", CUSTOM_ERRORS),
    "1010: Invalid Transaction: Custom error: 6 (subtensor RateLimitExceeded)",
  );
  assert.equal(
    nameCustomErrors('1010: {"invalid":{"custom":3}}', LEGACY_CUSTOM_ERRORS),
    '1010: {"invalid":{"custom":3}} (subtensor NotEnoughStakeToSetWeights)',
  );
  assert.equal(nameCustomErrors("Custom error: 200", CUSTOM_ERRORS), "Custom error: 200");
  assert.equal(
    nameCustomErrors("1014: Priority is too low", CUSTOM_ERRORS),
    "1014: Priority is too low",
  );
  // common/src/transaction_error.rs: BadRequest => 255, DelegateTakeTooHigh => 27.
  assert.equal(CUSTOM_ERRORS[255], "BadRequest");
  assert.equal(CUSTOM_ERRORS[27], "DelegateTakeTooHigh");
  assert.equal(customErrorTable(["CheckNonce", "SubtensorSignedExtension"]), LEGACY_CUSTOM_ERRORS);
  assert.equal(customErrorTable(["CheckNonce", "SubtensorTransactionExtension"]), CUSTOM_ERRORS);
});
