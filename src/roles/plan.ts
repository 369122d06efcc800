/**
 * One window of protocol v2, as blocks and object keys: the single place the miner, the
 * validator, `inspect` and devnet read "when" and "where" from (docs/PROTOCOL.md, "The
 * window timeline"). Pure; no I/O.
 *
 * Window w covers blocks w·L … (w+1)·L − 1. Every honest participant holds θ_w once it
 * has applied the lead validator's manifest of w − 1:
 *   start    = w·L       miners fetch manifest(w−1), apply it → θ_w, compute their update
 *                        at θ_w on pages(w, uid), encode it, upload it;
 *   deadline = (w+1)·L   the lead validator takes the valid uploads present when it sees
 *                        this block, publishes manifest(w) (and θ_{w+1}'s digest);
 *   scoreEnd = (w+2)·L   validators score w's uploads at θ_w until the next deadline.
 *
 * @module
 */
import { objectKey } from "./keys.ts";

/** Blocks and keys of window `w`. */
export interface WindowPlan {
  window: number;
  /** w·L: the window opens; its hash seeds index-sampled codecs (`slices`). */
  start: number;
  /** The block whose hash seeds the window's codec indices (= start). */
  seedBlock: number;
  /** (w+1)·L: uploads present when the lead validator sees this block are aggregated. */
  deadline: number;
  /** A miner that has not uploaded by this block skips the window (= deadline − 1). */
  lastUploadBlock: number;
  /** (w+2)·L: validators stop scoring w (the rest of the uploads stay unscored). */
  scoreEnd: number;
  /** Object keys of window w for one hotkey. */
  keys: {
    update(hotkey: string): string;
    manifest(hotkey: string): string;
    scores(hotkey: string): string;
    status(hotkey: string): string;
    checkpoint(hotkey: string): string;
  };
}

/**
 * The plan of window `w` for windows of `windowLength` blocks.
 *
 * @example
 * ```ts
 * const p = windowPlan(3, 5);
 * [p.start, p.deadline, p.scoreEnd]; // [15, 20, 25]
 * p.keys.update("5Grw"); // "update-3-5Grw.safetensors"
 * ```
 * @throws {RangeError} on a negative window or a window length below 2
 */
export function windowPlan(w: number, windowLength: number): WindowPlan {
  if (!Number.isSafeInteger(w) || w < 0) {
    throw new RangeError(`Invalid window ${w}: expected an integer >= 0`);
  }
  if (!Number.isSafeInteger(windowLength) || windowLength < 2) {
    throw new RangeError(
      `Invalid window length ${windowLength}: protocol v2 needs at least 2 blocks per window`,
    );
  }
  const L = windowLength;
  return {
    window: w,
    start: w * L,
    seedBlock: w * L,
    deadline: (w + 1) * L,
    lastUploadBlock: (w + 1) * L - 1,
    scoreEnd: (w + 2) * L,
    keys: {
      update: (h) => objectKey("update", w, h),
      manifest: (h) => objectKey("manifest", w, h),
      scores: (h) => objectKey("scores", w, h),
      status: (h) => objectKey("status", w, h),
      checkpoint: (h) => objectKey("checkpoint", w, h),
    },
  };
}

/** The window whose upload is being prepared at `block`: `floor(block / L)`. */
export function windowAt(block: number, windowLength: number): number {
  return Math.floor(Math.max(0, block) / windowLength);
}
