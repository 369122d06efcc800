/**
 * The shared model θ_w as one participant holds it, and how it moves from window to
 * window: apply the lead validator's manifest (exactly the uploads it lists, decoded,
 * aggregated with its weights, one outer step), compare the result's digest with the
 * lead's, and re-sync from the lead's newest checkpoint plus a replay of every manifest
 * since when it disagrees, when a manifest is missing, or when a participant starts
 * late or restarts (docs/PROTOCOL.md, "Divergence and re-sync").
 *
 * @module
 */
import type { Hparams } from "../hparams.ts";
import { initParams } from "../model/init.ts";
import type { Tensors } from "../model/params.ts";
import { getLogger } from "../log.ts";
import {
  aggregate,
  type CodecSpec,
  newOuterState,
  type OuterHparams,
  type OuterState,
  outerStep,
  paramsDigest,
  readUpload,
} from "../protocol/mod.ts";
import type { Manifest } from "./manifest.ts";
import { sha256Hex } from "./manifest.ts";

const log = getLogger(["boltzmann", "shared"]);

/** θ at the start of window `window`, with the outer optimizer's state. */
export interface ModelAt {
  window: number;
  params: Tensors;
  outer: OuterState;
}

/** Where the shared model's history comes from (the lead validator's bucket and peers'). */
export interface History {
  /** The lead's manifest of window w, or null while it is not published. */
  manifest(w: number): Promise<Manifest | null>;
  /** The bytes of one upload a manifest lists, or null when gone. */
  upload(w: number, entry: Manifest["uploads"][number]): Promise<Uint8Array | null>;
  /** The lead's newest checkpoint at or before window `atMost`, or null. */
  checkpoint(atMost: number): Promise<ModelAt | null>;
  /** Its window only (a listing, no download), or null. */
  checkpointWindow(atMost: number): Promise<number | null>;
}

/** What applying one manifest cost and gave. */
export interface Applied {
  window: number;
  digest: string;
  agrees: boolean;
  bytesDown: number;
}

/** What checking and applying uploads needs. */
export interface ApplyOptions {
  spec: CodecSpec;
  /** The parameter table (names and shapes set every size). */
  table: ReadonlyArray<{ name: string; shape: readonly number[] }>;
  fingerprint: string;
  outer: OuterHparams;
}

/**
 * θ_{w+1} from θ_w and manifest(w): each listed upload fetched, checked against the
 * pinned SHA-256, decoded strictly, then {@link applyUpdates}. In place on `m`.
 * @throws {Error} when an upload is gone, altered or undecodable (then re-sync)
 */
export async function applyManifest(
  m: ModelAt,
  man: Manifest,
  history: History,
  o: ApplyOptions,
): Promise<Applied> {
  if (man.window !== m.window) {
    throw new Error(`Manifest of window ${man.window} does not apply to θ of window ${m.window}`);
  }
  let bytesDown = 0;
  const updates = await Promise.all(man.uploads.map(async (e) => {
    const bytes = await history.upload(man.window, e);
    if (!bytes) throw new Error(`Upload of uid ${e.uid} for window ${man.window} is gone`);
    bytesDown += bytes.length;
    if (sha256Hex(bytes) !== e.sha256) {
      throw new Error(`Upload of uid ${e.uid} for window ${man.window} differs from the manifest`);
    }
    const r = readUpload(bytes, {
      spec: o.spec,
      params: o.table,
      fingerprint: o.fingerprint,
      window: man.window,
      hotkey: e.hotkey,
    });
    return { update: r.update, weight: e.weight, key: e.hotkey };
  }));
  const digest = applyUpdates(m, updates, o.outer);
  return { window: m.window, digest, agrees: digest === man.digest, bytesDown };
}

/**
 * The shared step, in place: θ_{w+1} = outerStep(θ_w, aggregate(updates)) (no updates:
 * θ stays), window + 1. Returns paramsDigest(θ_{w+1}).
 */
export function applyUpdates(
  m: ModelAt,
  updates: ReadonlyArray<{ update: Tensors; weight: number; key: string }>,
  outer: OuterHparams,
): string {
  if (updates.length > 0) outerStep(m.params, m.outer, aggregate(updates), outer);
  m.window++;
  return paramsDigest(m.params);
}

/**
 * Copies `from` into `m`'s own arrays (callers keep references to m.params), or takes
 * its arrays where `m` has none of that name.
 */
export function adopt(m: ModelAt, from: ModelAt): void {
  const into = (dst: Tensors, src: Tensors) => {
    for (const [k, v] of src) {
      const d = dst.get(k);
      if (d && d.length === v.length) d.set(v);
      else dst.set(k, v);
    }
  };
  into(m.params, from.params);
  into(m.outer.m, from.outer.m);
  into(m.outer.v, from.outer.v);
  m.outer.step = from.outer.step;
  m.outer.beta1Pow = from.outer.beta1Pow;
  m.outer.beta2Pow = from.outer.beta2Pow;
  m.window = from.window;
}

/** The model a participant starts with: `params` at an unknown window (-1). */
export function startModel(params: Tensors): ModelAt {
  return { window: -1, params, outer: newOuterState(params) };
}

/** The outer optimizer's settings from the hyper-parameters (the same names). */
export function outerHparams(hp: Hparams): OuterHparams {
  return {
    learningRate: hp.learningRate,
    beta1: hp.beta1,
    beta2: hp.beta2,
    eps: hp.eps,
    weightDecay: hp.weightDecay,
    gradClip: hp.gradClip,
    precondition: (hp as { precondition?: boolean }).precondition,
  };
}

/** θ_0: the deterministic initialisation every network starts from, at window `w`. */
export function genesis(model: Parameters<typeof initParams>[0], w: number): ModelAt {
  const params = initParams(model, 0);
  return { window: w, params, outer: newOuterState(params) };
}

/**
 * Brings `m` to window `target` (in place): applies manifests m.window … target − 1,
 * waiting for the last one with `waitManifest`; when one does not follow from our θ
 * (its base digest differs), is missing, or gives another digest than the lead's,
 * re-syncs once from the lead's newest checkpoint and replays from there.
 * @returns what was applied, and whether a re-sync happened
 * @throws {Error} when no path to `target` exists (the caller skips the window)
 */
export async function catchUp(
  m: ModelAt,
  target: number,
  history: History,
  o: ApplyOptions & {
    waitManifest: (w: number) => Promise<Manifest | null>;
  },
): Promise<{ applied: Applied[]; resynced: boolean; bytesDown: number }> {
  const applied: Applied[] = [];
  let resynced = false, bytesDown = 0;
  const resync = async (why: string) => {
    if (resynced) throw new Error(`Cannot follow the shared model: ${why} after a re-sync`);
    const c = await history.checkpoint(target);
    if (!c) throw new Error(`Cannot re-sync (${why}): the lead has published no checkpoint`);
    log.info(`Re-syncing from the lead's checkpoint of window ${c.window}: ${why}`);
    adopt(m, c);
    resynced = true;
  };
  if (m.window < 0) {
    // Starting: the lead's newest checkpoint, else a new network starts from our θ here.
    const c = await history.checkpoint(target);
    if (c) {
      adopt(m, c);
      log.info(`Starting from the lead's checkpoint of window ${c.window}`);
    } else m.window = target;
  }
  if (m.window > target) await resync(`our θ is of window ${m.window}, past ${target}`);
  while (m.window < target) {
    // Any manifest may be late (a busy lead): wait for it as long as the caller allows.
    let man: Manifest | null = null;
    try {
      man = await history.manifest(m.window) ?? await o.waitManifest(m.window);
    } catch (e) {
      log.warn(`Manifest of window ${m.window}: ${(e as Error).message}`);
    }
    if (!man) {
      // Re-syncing helps only past the gap: from a checkpoint newer than our θ.
      const c = resynced ? null : await history.checkpointWindow(target);
      if (c !== null && c > m.window) {
        await resync(`no manifest of window ${m.window}`);
        continue;
      }
      throw new Error(`No manifest of window ${m.window} from the lead yet`);
    }
    const digest = paramsDigest(m.params);
    if (man.baseDigest !== digest) {
      await resync(`manifest of window ${m.window} builds on another θ`);
      continue;
    }
    let a: Applied;
    try {
      a = await applyManifest(m, man, history, o);
    } catch (e) {
      await resync((e as Error).message);
      continue;
    }
    bytesDown += a.bytesDown;
    applied.push(a);
    if (!a.agrees) await resync(`θ of window ${a.window} differs from the lead's digest`);
  }
  return { applied, resynced, bytesDown };
}
