/**
 * Names for subtensor's custom transaction-validity errors. A node refuses an invalid
 * extrinsic before it enters a block with `InvalidTransaction::Custom(n)`, which the RPC
 * reports as a bare number ("1010: Invalid Transaction: Custom error: 6"); the metadata
 * does not name them, so the names come from the runtime source:
 *
 * - runtimes with `SubtensorTransactionExtension` (today's): `CustomTransactionError` in
 *   common/src/transaction_error.rs of opentensor/subtensor (`From<..> for u8`);
 * - older runtimes with `SubtensorSignedExtension` (spec 218): the numbers its
 *   `validate` returns, per call (pallets/subtensor/src/lib.rs at 521fa9ab8).
 *
 * Module errors (dispatch failures inside a block) are named from the metadata instead,
 * in subtensor.ts.
 *
 * @module
 */

/** Today's `CustomTransactionError` codes. */
export const CUSTOM_ERRORS: Readonly<Record<number, string>> = {
  0: "ColdkeyInSwapSchedule",
  1: "StakeAmountTooLow",
  2: "BalanceTooLow",
  3: "SubnetNotExists",
  4: "HotkeyAccountDoesntExist",
  5: "NotEnoughStakeToWithdraw",
  6: "RateLimitExceeded",
  7: "InsufficientLiquidity",
  8: "SlippageTooHigh",
  9: "TransferDisallowed",
  10: "HotKeyNotRegisteredInNetwork",
  11: "InvalidIpAddress",
  12: "ServingRateLimitExceeded",
  13: "InvalidPort",
  14: "ZeroMaxAmount",
  15: "InvalidRevealRound",
  16: "CommitNotFound",
  17: "CommitBlockNotInRevealRange",
  18: "InputLengthsUnequal",
  19: "UidNotFound",
  20: "EvmKeyAssociateRateLimitExceeded",
  21: "ColdkeySwapDisputed",
  22: "InvalidRealAccount",
  23: "FailedShieldedTxParsing",
  24: "InvalidShieldedTxPubKeyHash",
  25: "NonAssociatedColdKey",
  26: "DelegateTakeTooLow",
  27: "DelegateTakeTooHigh",
  255: "BadRequest",
};

/** Spec 218's `SubtensorSignedExtension::validate` codes (stake below `WeightsMinStake`). */
export const LEGACY_CUSTOM_ERRORS: Readonly<Record<number, string>> = {
  0: "ColdkeyInSwapSchedule",
  1: "NotEnoughStakeToCommitWeights",
  2: "NotEnoughStakeToRevealWeights",
  3: "NotEnoughStakeToSetWeights",
  4: "NotEnoughStakeToSetTaoWeights",
  6: "NotEnoughStakeToBatchRevealWeights",
  7: "NotEnoughStakeToCommitCrv3Weights",
};

/** Which table applies, from the runtime's extension names. */
export function customErrorTable(extensions: readonly string[]): Readonly<Record<number, string>> {
  return extensions.includes("SubtensorSignedExtension") &&
      !extensions.includes("SubtensorTransactionExtension")
    ? LEGACY_CUSTOM_ERRORS
    : CUSTOM_ERRORS;
}

/**
 * `message` with every custom validity error named: "Custom error: 6" (a node) or
 * `"custom":6` (chopsticks' JSON) gains " (subtensor RateLimitExceeded)".
 */
export function nameCustomErrors(message: string, table: Readonly<Record<number, string>>): string {
  return message.replace(
    /(Custom error: (\d+)|"custom"\s*:\s*(\d+)\}*)/gi,
    (m, _all, a: string | undefined, b: string | undefined) => {
      const name = table[Number(a ?? b)];
      return name ? `${m} (subtensor ${name})` : m;
    },
  );
}
