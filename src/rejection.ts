/**
 * The error class of a refusal of untrusted input (a slice, an upload, a bucket
 * commitment): a stable `reason` from the format's own list, for logs, metrics and
 * tests, and a `detail` saying what exactly. Each format declares its class with
 * {@link rejectionClass}. Left out: the reasons themselves (each format lists its own).
 *
 * @module
 */

/** An error with a stable reason of type `R` and a one-line detail. */
export interface Rejection<R extends string> extends Error {
  readonly reason: R;
  readonly detail: string;
}

/**
 * An error class named `name` whose message is `PREFIX (reason): detail`, or
 * `reason: detail` without a prefix.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * class ThingRejected extends rejectionClass<"too-big" | "bad">("ThingRejected", "Thing rejected") {}
 * const e = new ThingRejected("too-big", "9 bytes, the cap is 8");
 * assert.ok(e instanceof ThingRejected && e instanceof Error);
 * assert.deepEqual([e.name, e.reason, e.message], [
 *   "ThingRejected",
 *   "too-big",
 *   "Thing rejected (too-big): 9 bytes, the cap is 8",
 * ]);
 * ```
 */
export function rejectionClass<R extends string>(
  name: string,
  prefix?: string,
): new (reason: R, detail: string) => Rejection<R> {
  return class extends Error implements Rejection<R> {
    override name = name;
    constructor(readonly reason: R, readonly detail: string) {
      super(prefix ? `${prefix} (${reason}): ${detail}` : `${reason}: ${detail}`);
    }
  };
}
