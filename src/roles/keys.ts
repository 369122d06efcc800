/**
 * Every object key a participant writes to its bucket, how to parse one back, and the
 * retention rule that deletes old ones. One module, so that the miner, the validator,
 * `inspect` and devnet name objects the same way.
 *
 * | key                                   | written by          | what                                 |
 * | ------------------------------------- | ------------------- | ------------------------------------ |
 * | `update-{w}-{hotkey}.safetensors`     | miner               | its signed, encoded update of w      |
 * | `manifest-{w}-{hotkey}.json`          | lead validator      | which uploads of w everyone applies  |
 * | `scores-{w}-{hotkey}.json`            | validator           | its scores of w's uploads            |
 * | `status-{w}-{hotkey}.json`            | every participant   | θ_w digest, bytes up and down        |
 * | `checkpoint-{w}-{hotkey}.safetensors` | lead validator      | θ_w and the outer optimizer's state  |
 * | `state-/delta-{w}-{hotkey}.safetensors` | `bench slices`, `inspect FILE` | seed-protocol slices     |
 *
 * Deliberately left out: the bytes inside each object (src/protocol/upload.ts,
 * manifest.ts, checkpoints.ts).
 *
 * @module
 */
import { checkKey, type Store } from "../store/mod.ts";

/** The kinds of per-window object. */
export const KINDS = [
  "update",
  "manifest",
  "scores",
  "status",
  "checkpoint",
  "state",
  "delta",
] as const;
/** One kind. */
export type Kind = typeof KINDS[number];

const EXT: Record<Kind, string> = {
  update: "safetensors",
  manifest: "json",
  scores: "json",
  status: "json",
  checkpoint: "safetensors",
  state: "safetensors",
  delta: "safetensors",
};

/**
 * The object key of `kind` for window `w` by `hotkey`.
 *
 * @example
 * ```ts
 * objectKey("update", 7, "5Grw"); // "update-7-5Grw.safetensors"
 * ```
 * @throws {RangeError} on a negative or non-integer window, or a hotkey unsafe in a key
 */
export function objectKey(kind: Kind, w: number, hotkey: string): string {
  if (!Number.isSafeInteger(w) || w < 0) {
    throw new RangeError(`Invalid window ${w}: expected an integer >= 0`);
  }
  const key = `${kind}-${w}-${hotkey}.${EXT[kind]}`;
  checkKey(key);
  return key;
}

const PARSE =
  /^(update|manifest|scores|status|checkpoint|state|delta)-(0|[1-9]\d{0,15})-([A-Za-z0-9]{1,64})\.(safetensors|json)$/;

/** Parses a key of {@link objectKey}; `null` for any other name. */
export function parseKey(key: string): { kind: Kind; window: number; hotkey: string } | null {
  const m = PARSE.exec(key);
  if (!m || EXT[m[1] as Kind] !== m[4]) return null;
  const window = Number(m[2]);
  if (!Number.isSafeInteger(window)) return null;
  return { kind: m[1] as Kind, window, hotkey: m[3]! };
}

/** The seed protocol's slice key: `{kind}-{window}-{hotkey}.safetensors`. */
export function sliceKey(kind: "state" | "delta", w: number, hotkey: string): string {
  return objectKey(kind, w, hotkey);
}

/**
 * How many windows of per-window objects a participant keeps: enough that anyone can
 * replay every manifest since the lead's newest checkpoint (checkpointInterval + 2),
 * and at least `maxHistory`.
 */
export function keepWindows(hp: { maxHistory: number; checkpointInterval: number }): number {
  return Math.max(hp.maxHistory, hp.checkpointInterval + 2);
}

/**
 * Retention: deletes `hotkey`'s per-window objects (every kind but checkpoints) of
 * windows before `currentWindow − keep`, and its checkpoints but the newest two.
 * Other objects are left alone.
 * @returns the deleted keys
 */
export async function cleanOld(
  store: Store,
  hotkey: string,
  currentWindow: number,
  keep: number,
): Promise<string[]> {
  const deleted: string[] = [];
  const checkpoints: { key: string; window: number }[] = [];
  for (const o of await store.list("")) {
    const k = parseKey(o.key);
    if (!k || k.hotkey !== hotkey) continue;
    if (k.kind === "checkpoint") checkpoints.push({ key: o.key, window: k.window });
    else if (k.window < currentWindow - keep) {
      await store.delete(o.key);
      deleted.push(o.key);
    }
  }
  checkpoints.sort((a, b) => b.window - a.window);
  for (const c of checkpoints.slice(2)) {
    await store.delete(c.key);
    deleted.push(c.key);
  }
  return deleted;
}
