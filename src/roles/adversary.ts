/**
 * How a miner decides what to upload: the honest strategy and the cheaters `boltzmann
 * devnet` plugs in to prove the incentive rule. A {@link Strategy} says whether the miner
 * follows the shared model θ_w (applies manifests, computes an update at θ_w and on which
 * pages), what it needs from peers (an upload of this window or of the last), and maps
 * what it has to the dense update it uploads ({@link adversaryDelta} for the cheaters:
 * pure, reproducible, noise from the keyed generator of src/model/init.ts, never
 * `Math.random`). The miner loop has no branch per cheater; it asks its strategy.
 *
 * @module
 */
import type { Tensors } from "../model/params.ts";
import { fillNormal } from "../model/init.ts";

/** Every adversary the devnet runs. */
export const ADVERSARIES = [
  "random",
  "zero",
  "copycat",
  "stale",
  "scaled",
  "noisy-copy",
  "lazy",
] as const;
/** One adversary's name. */
export type Adversary = typeof ADVERSARIES[number];

/** What an adversary has at hand in window w. */
export interface AdversaryContext {
  /** Its own honestly trained delta (for `lazy`: trained on someone else's pages). */
  honest?: Tensors;
  /** Another miner's delta of the same window (`copycat`, `noisy-copy`). */
  other?: Tensors;
  /** The delta it uploaded, or saw, in window w−1 (`stale`). */
  previous?: Tensors;
  /** Names and lengths to use when nothing else gives them (`random`, `zero`). */
  shape?: Tensors;
  /** Key of the generator, e.g. [hotkey, window]. */
  key: readonly (string | number)[];
  /** `scaled`: the factor (default 10). */
  scale?: number;
  /** `noisy-copy`: noise std relative to the copied delta's RMS (default 0.1). */
  noise?: number;
  /** `random`: value std (default: the honest or other delta's RMS, else 1e-3). */
  std?: number;
}

function rms(t: Tensors): number {
  let s = 0, n = 0;
  for (const x of t.values()) {
    for (let i = 0; i < x.length; i++) s += x[i]! * x[i]!;
    n += x.length;
  }
  return n === 0 ? 0 : Math.sqrt(s / n);
}

function map(t: Tensors, f: (name: string, x: Float32Array) => Float32Array): Tensors {
  const out: Tensors = new Map();
  for (const [name, x] of t) out.set(name, f(name, x));
  return out;
}

function need(kind: Adversary, what: string, t: Tensors | undefined): Tensors {
  if (!t) {
    throw new TypeError(`Adversary '${kind}' needs ctx.${what}: pass the delta it works from`);
  }
  return t;
}

/**
 * The delta adversary `kind` uploads. Never modifies the context's tensors.
 * `stale` without a previous delta (its first window) uploads zeros shaped like
 * `honest`/`shape`.
 *
 * @throws {TypeError} when the context lacks what `kind` needs
 */
export function adversaryDelta(kind: Adversary, ctx: AdversaryContext): Tensors {
  const ref = ctx.honest ?? ctx.other ?? ctx.shape ?? ctx.previous;
  switch (kind) {
    case "random": {
      const std = ctx.std ?? (ref && rms(ref) > 0 ? rms(ref) : 1e-3);
      return map(need(kind, "honest, other or shape", ref), (name, x) => {
        const out = new Float32Array(x.length);
        fillNormal(out, std, ["boltzmann/adversary/v1", kind, ...ctx.key, name]);
        return out;
      });
    }
    case "zero":
      return map(need(kind, "honest, other or shape", ref), (_, x) => new Float32Array(x.length));
    case "copycat":
      return map(need(kind, "other", ctx.other), (_, x) => x.slice());
    case "stale":
      if (ctx.previous) return map(ctx.previous, (_, x) => x.slice());
      return adversaryDelta("zero", ctx);
    case "scaled": {
      const k = ctx.scale ?? 10;
      return map(need(kind, "honest", ctx.honest), (_, x) => x.map((v) => v * k));
    }
    case "noisy-copy": {
      const src = need(kind, "other", ctx.other);
      const std = (ctx.noise ?? 0.1) * rms(src);
      return map(src, (name, x) => {
        const out = new Float32Array(x.length);
        fillNormal(out, std, ["boltzmann/adversary/v1", kind, ...ctx.key, name]);
        for (let i = 0; i < x.length; i++) out[i]! += x[i]!;
        return out;
      });
    }
    case "lazy":
      return map(need(kind, "honest", ctx.honest), (_, x) => x.slice());
  }
}

/** A miner's way of choosing its upload (see the module doc). */
export interface Strategy {
  readonly name: "honest" | Adversary;
  /** Applies the lead's manifests and computes its update at θ_w. */
  readonly followsModel: boolean;
  /** The pages it computes on in window w (its own: w; `lazy`: someone else's). */
  pagesWindow(w: number): number;
  /** Keeps an error-feedback buffer across windows (else a fresh one per upload). */
  readonly errorFeedback: boolean;
  /** A peer's upload it works from: of this window (`now`), of the last (`before`). */
  readonly needs: "none" | "now" | "before";
  /** The dense update to encode and upload, from what it has. */
  update(x: AdversaryContext): Tensors;
}

/** The honest miner: its own pages, its own update, error feedback. */
export const HONEST: Strategy = Object.freeze({
  name: "honest" as const,
  followsModel: true,
  pagesWindow: (w: number) => w,
  errorFeedback: true,
  needs: "none" as const,
  update: (x: AdversaryContext) => need("lazy", "honest", x.honest),
});

/** Far from any real window: `lazy` computes on pages no validator assigns it. */
const LAZY_OFFSET = 100_000;

/** The strategy of `role`. */
export function strategyFor(role: "honest" | Adversary): Strategy {
  if (role === "honest") return HONEST;
  const trains = role === "scaled" || role === "lazy";
  return {
    name: role,
    followsModel: trains,
    pagesWindow: (w) => (role === "lazy" ? w + LAZY_OFFSET : w),
    errorFeedback: trains,
    needs: role === "copycat" || role === "noisy-copy"
      ? "now"
      : role === "stale" || role === "random"
      ? "before"
      : "none",
    update: (x) => adversaryDelta(role, x),
  };
}
