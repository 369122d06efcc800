/**
 * The error class of a refusal of untrusted input (a slice, an upload, a bucket
 * commitment): a stable `reason` from the format's own list, for logs, metrics and
 * tests, and a `detail` saying what exactly. Each format declares its class, its list of
 * reasons and the function that throws it in one {@link rejectionClass} call
 * (`export const ThingRejected = rejectionClass(...)`: the name works in `instanceof`, which
 * narrows to the instance type). Left out: the reasons themselves (each format lists its own).
 *
 * @module
 */

/** An error with a stable reason of type `R` and a one-line detail. */
export interface Rejection<R extends string> extends Error {
  readonly reason: R;
  readonly detail: string;
}

/**
 * Throws a rejection. TypeScript only treats a call as never returning when the callee
 * is declared with an explicit type, so a module binds its thrower as
 * `const reject: Reject<R> = ThingRejected.reject;`.
 */
export type Reject<R extends string> = (reason: R, detail: string) => never;

/** What {@link rejectionClass} returns: the class, its reasons and its thrower. */
export interface RejectionClass<R extends string> {
  new (reason: R, detail: string): Rejection<R>;
  /** Every reason of the format, in the order the format checks them. */
  readonly reasons: readonly R[];
  /** Throws an instance of this class (works unbound). */
  readonly reject: Reject<R>;
  /** A count of zero for every reason (metrics and `inspect` list every reason). */
  zeroCounts(): Record<R, number>;
}

/**
 * An error class named `name` whose message is `PREFIX (reason): detail`, or
 * `reason: detail` without a prefix, for a format whose reasons are `reasons`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type Reject, rejectionClass } from "./rejection.ts";
 * const ThingRejected = rejectionClass("ThingRejected", "Thing rejected", ["too-big", "bad"]);
 * const e = new ThingRejected("too-big", "9 bytes, the cap is 8");
 * assert.ok(e instanceof ThingRejected && e instanceof Error);
 * assert.deepEqual([e.name, e.reason, e.message], [
 *   "ThingRejected",
 *   "too-big",
 *   "Thing rejected (too-big): 9 bytes, the cap is 8",
 * ]);
 * assert.deepEqual(ThingRejected.reasons, ["too-big", "bad"]);
 * assert.deepEqual(ThingRejected.zeroCounts(), { "too-big": 0, bad: 0 });
 * const reject: Reject<"too-big" | "bad"> = ThingRejected.reject;
 * assert.throws(() => reject("bad", "no"), (t) => t instanceof ThingRejected && t.reason === "bad");
 * ```
 */
export function rejectionClass<const L extends readonly string[]>(
  name: string,
  prefix: string | undefined,
  reasons: L,
): RejectionClass<L[number]> {
  type R = L[number];
  const Rejected = class extends Error implements Rejection<R> {
    override name = name;
    static readonly reasons: readonly R[] = reasons;
    static readonly reject: Reject<R> = (reason, detail) => {
      throw new Rejected(reason, detail);
    };
    static zeroCounts(): Record<R, number> {
      return Object.fromEntries(reasons.map((r) => [r, 0])) as Record<R, number>;
    }
    constructor(readonly reason: R, readonly detail: string) {
      super(prefix ? `${prefix} (${reason}): ${detail}` : `${reason}: ${detail}`);
    }
  };
  return Rejected;
}
