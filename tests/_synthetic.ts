/**
 * A synthetic but realistic training world for the incentive tests: each data page's
 * gradient is `common_w + specific_page`, seen through micro-batch noise; honest miners
 * run AdamW-like steps (momentum, per-coordinate normalisation, moments kept across
 * windows), so their deltas are sign-like and only modestly aligned with any gradient.
 * Test support only; deterministic from its seed.
 *
 * @module
 */
import type { Tensors } from "../src/model/params.ts";
import { fillNormal } from "../src/model/init.ts";
import { type Adversary, adversaryDelta } from "../src/roles/adversary.ts";

/** Shape and statistics of the world. */
export interface WorldOptions {
  seed: string;
  /** Tensor names and lengths of the sampled slice. */
  shape: [string, number][];
  /** Std of the common direction, of a page's specific part, and of micro-batch noise. */
  common: number;
  specific: number;
  batchNoise: number;
  lr: number;
  beta1: number;
  beta2: number;
}

/** Defaults: honest cos(δ, ĝ_own) comes out around 0.1–0.3, like a real LLM step. */
export const WORLD: WorldOptions = {
  seed: "world",
  shape: [["a", 6000], ["b", 2000]],
  common: 1,
  specific: 1.5,
  batchNoise: 1.5,
  lr: 1e-3,
  beta1: 0.9,
  beta2: 0.95,
};

function zeros(shape: [string, number][]): Tensors {
  return new Map(shape.map(([n, k]) => [n, new Float32Array(k)]));
}

function normal(o: WorldOptions, std: number, key: (string | number)[]): Tensors {
  const t = zeros(o.shape);
  for (const [n, x] of t) fillNormal(x, std, [o.seed, ...key, n]);
  return t;
}

function add(a: Tensors, b: Tensors, k = 1): Tensors {
  const out: Tensors = new Map();
  for (const [n, x] of a) {
    const y = b.get(n)!;
    out.set(n, x.map((v, i) => v + k * y[i]!));
  }
  return out;
}

/** The common gradient direction of window w (an AR(1) drift across windows). */
const commons = new Map<string, Tensors>();
function common(o: WorldOptions, w: number): Tensors {
  const key = JSON.stringify([o, w]);
  const hit = commons.get(key);
  if (hit) return hit;
  let c = normal(o, o.common, ["common", 0]);
  for (let i = 1; i <= w; i++) {
    const xi = normal(o, o.common * 0.6, ["common", i]);
    c = add(new Map([...c].map(([n, x]) => [n, x.map((v) => 0.8 * v)])), xi);
  }
  commons.set(key, c);
  return c;
}

/** A gradient on `page` in window w, through the noise of micro-batch draw `draw`. */
export function gradient(o: WorldOptions, w: number, page: number, draw: string): Tensors {
  const g = add(common(o, w), normal(o, o.specific, ["page", w, page]));
  return add(g, normal(o, o.batchNoise, ["batch", w, page, draw]));
}

/** AdamW moments of one trainer, kept across windows. */
export class Trainer {
  m: Tensors;
  v: Tensors;
  t = 0;
  constructor(readonly o: WorldOptions) {
    this.m = zeros(o.shape);
    this.v = zeros(o.shape);
  }
  /** One step on gradient g; returns δ = before − after. */
  step(g: Tensors): Tensors {
    const { beta1: b1, beta2: b2, lr } = this.o;
    this.t++;
    const c1 = 1 - b1 ** this.t, c2 = 1 - b2 ** this.t;
    const out: Tensors = new Map();
    for (const [n, gx] of g) {
      const m = this.m.get(n)!, v = this.v.get(n)!;
      const d = new Float32Array(gx.length);
      for (let i = 0; i < gx.length; i++) {
        m[i] = b1 * m[i]! + (1 - b1) * gx[i]!;
        v[i] = b2 * v[i]! + (1 - b2) * gx[i]! * gx[i]!;
        d[i] = (lr * (m[i]! / c1)) / (Math.sqrt(v[i]! / c2) + 1e-8);
      }
      out.set(n, d);
    }
    return out;
  }
}

/** Role of a synthetic miner. */
export type Role = "honest" | Adversary;

/** One window of uploads with the validator's gradients for each. */
export interface SimWindow {
  window: number;
  uploads: { uid: number; hotkey: string; role: Role; delta: Tensors }[];
  gradOwn: Tensors[];
  gradOther: Tensors[];
  previous: Tensors[];
}

/**
 * Runs `windows` windows with `honest` honest miners (uids 0..honest−1) followed by one
 * of each adversary in `adversaries`. The page of uid u in window w is u; `lazy` trains
 * on page 1000+u (nobody's). `copycat` and `noisy-copy` copy uid 0 and 1, `stale`
 * re-uploads uid 2's delta of the previous window. The validator's ĝ_other for a uid is
 * the gradient on the page of the next uid (cyclically).
 */
export function simulate(
  o: WorldOptions,
  honest: number,
  adversaries: readonly Adversary[],
  windows: number,
): SimWindow[] {
  const roles: Role[] = [...Array(honest).fill("honest"), ...adversaries];
  const trainers = roles.map(() => new Trainer(o));
  const out: SimWindow[] = [];
  let previous: Tensors[] = [];
  for (let w = 0; w < windows; w++) {
    const own: Tensors[] = [];
    roles.forEach((r, u) => {
      if (r === "honest" || r === "scaled" || r === "lazy") {
        const page = r === "lazy" ? 1000 + u : u;
        own[u] = trainers[u]!.step(gradient(o, w, page, `miner${u}`));
      }
    });
    const deltas = roles.map((r, u) =>
      r === "honest" ? own[u]! : adversaryDelta(r, {
        honest: own[u],
        other: own[r === "copycat" ? 0 : 1],
        previous: previous[2],
        shape: own[0],
        std: r === "random" ? rmsOf(own[0]!) : undefined,
        key: [o.seed, u, w],
      })
    );
    out.push({
      window: w,
      uploads: roles.map((role, uid) => ({ uid, hotkey: `hk${uid}`, role, delta: deltas[uid]! })),
      gradOwn: roles.map((_, u) => gradient(o, w, u, "validator")),
      gradOther: roles.map((_, u) => gradient(o, w, (u + 1) % roles.length, "validator")),
      previous,
    });
    previous = deltas;
  }
  return out;
}

function rmsOf(t: Tensors): number {
  let s = 0, n = 0;
  for (const x of t.values()) for (const v of x) (s += v * v), n++;
  return Math.sqrt(s / n);
}
