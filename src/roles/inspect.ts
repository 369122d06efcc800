/**
 * `inspect --window N`: everything a person debugging window N wants — who uploaded
 * what (bytes, norm, the θ digest it says it was computed at, reported
 * loss/tokens/batches, upload time), rejections with reasons, the lead's manifest (what
 * was aggregated, θ digests before and after), pairwise cosines between the updates,
 * each update against a freshly computed gradient at θ_N on its own pages, and the
 * validators' scores for N. Downloads go through the validator's fetch path
 * (exchange.ts `fetchUploads`), so inspect refuses exactly what a validator refuses.
 *
 * @module
 */
import type { Hparams } from "../hparams.ts";
import type { Tensors } from "../model/params.ts";
import { computeUpdate } from "../protocol/mod.ts";
import type { Store } from "../store/mod.ts";
import type { Dataset } from "../data/pages.ts";
import type { Trainer } from "../train/trainer.ts";
import { cosine, norm } from "../tensor_math.ts";
import {
  fetchUploads,
  getSmall,
  isValidator,
  leadOf,
  listPeers,
  type PeerSource,
  uploadContext,
} from "./exchange.ts";
import { decodeManifest, MANIFEST_MAX_BYTES } from "./manifest.ts";
import { windowPlan } from "./plan.ts";
import type { ValidatorWindow } from "./validator.ts";

/** One upload of window N. */
export interface UploadInfo {
  uid: number;
  hotkey: string;
  bytes: number;
  valid: boolean;
  reason?: string;
  codec?: string;
  norm?: number;
  theta?: string;
  loss?: number;
  tokens?: number;
  batches?: number;
  uploadedAt?: string;
  /** In the lead's manifest of N, with this weight. */
  weight?: number;
  /** cos(update, ĝ) with ĝ freshly computed at θ_N on the uploader's own pages. */
  gradCos?: number;
}

/** What `inspect --window` reports (its `--json`). */
export interface WindowInspection {
  window: number;
  blocks: { start: number; deadline: number; scoreEnd: number };
  manifest: { lead: string; baseDigest: string; digest: string; uids: number[] } | null;
  uploads: UploadInfo[];
  pairwise: { uids: number[]; cos: number[][] };
  scores: { validator: string; scores: ValidatorWindow["scores"] }[];
}

/** What inspecting a window needs. */
export interface InspectDeps {
  hp: Hparams;
  chain: PeerSource;
  netuid: number;
  openStore: (location: string) => Store;
  /** With these (θ_N), each update is compared with a freshly computed gradient. */
  dataset?: Dataset;
  trainer?: Trainer;
  params?: Tensors;
}

/** Gathers everything about window `w`; never throws for a bad upload (it is reported). */
export async function inspectWindow(d: InspectDeps, w: number): Promise<WindowInspection> {
  const plan = windowPlan(w, d.hp.windowLength);
  const ctx = uploadContext(d.hp);
  const peers = await listPeers(d.chain, d.netuid);
  const miners = peers.filter((p) => !isValidator(p));
  const got = await fetchUploads(ctx, miners, d.openStore, w);
  const lead = leadOf(peers);
  let manifest: WindowInspection["manifest"] = null;
  const weights = new Map<number, number>();
  if (lead) {
    try {
      const b = await getSmall(
        null,
        d.openStore(lead.location),
        plan.keys.manifest(lead.hotkey),
        MANIFEST_MAX_BYTES,
      );
      if (b) {
        const m = decodeManifest(b, {
          window: w,
          lead: lead.hotkey,
          fingerprint: ctx.fingerprint,
          codec: ctx.spec.name,
        });
        for (const e of m.uploads) weights.set(e.uid, e.weight);
        manifest = {
          lead: m.lead,
          baseDigest: m.baseDigest,
          digest: m.digest,
          uids: m.uploads.map((e) => e.uid),
        };
      }
    } catch { /* no valid manifest: shown as none */ }
  }
  const uploads: UploadInfo[] = [];
  for (const f of got.accepted) {
    uploads.push({
      uid: f.peer.uid,
      hotkey: f.peer.hotkey,
      bytes: f.raw.length,
      valid: true,
      codec: f.enc.codec,
      norm: norm(f.update),
      theta: f.meta.theta,
      loss: f.meta.loss,
      tokens: f.meta.tokens,
      batches: f.meta.batches,
      uploadedAt: f.uploadedAt ? new Date(f.uploadedAt).toISOString() : undefined,
      weight: weights.get(f.peer.uid),
    });
  }
  for (const r of got.rejected) {
    uploads.push({ uid: r.uid, hotkey: r.hotkey, bytes: 0, valid: false, reason: r.reason });
  }
  uploads.sort((a, b) => a.uid - b.uid);
  if (d.trainer && d.dataset && d.params) {
    for (const f of got.accepted) {
      const batches = (await d.dataset.batchesFor(w, f.peer.uid))
        .slice(0, Math.max(1, f.meta.batches ?? 1));
      const g = await computeUpdate(d.trainer, d.params, batches);
      uploads.find((u) => u.uid === f.peer.uid)!.gradCos = cosine(f.update, g);
    }
  }
  const byUid = new Map(got.accepted.map((f) => [f.peer.uid, f.update]));
  const uids = [...byUid.keys()].sort((a, b) => a - b);
  const cos = uids.map((a) => uids.map((b) => cosine(byUid.get(a)!, byUid.get(b)!)));
  const scores: WindowInspection["scores"] = [];
  for (const p of peers.filter(isValidator)) {
    try {
      const b = await getSmall(null, d.openStore(p.location), plan.keys.scores(p.hotkey));
      if (b) {
        const r = JSON.parse(new TextDecoder().decode(b)) as ValidatorWindow;
        if (Array.isArray(r.scores)) scores.push({ validator: p.hotkey, scores: r.scores });
      }
    } catch { /* a validator without scores for w: nothing to show */ }
  }
  return {
    window: w,
    blocks: { start: plan.start, deadline: plan.deadline, scoreEnd: plan.scoreEnd },
    manifest,
    uploads,
    pairwise: { uids, cos },
    scores,
  };
}

function num(x: number | undefined, digits = 4): string {
  return x === undefined || !Number.isFinite(x) ? "-" : x.toFixed(digits);
}

/** The table form of an inspection. */
export function formatInspection(r: WindowInspection): string {
  const lines = [
    `window ${r.window} (blocks ${r.blocks.start}–${
      r.blocks.deadline - 1
    }, deadline ${r.blocks.deadline})`,
    r.manifest
      ? `manifest by ${r.manifest.lead}: ${r.manifest.uids.length} uploads, θ ${
        r.manifest.baseDigest.slice(0, 12)
      } → ${r.manifest.digest.slice(0, 12)}`
      : "no manifest from the lead",
    "",
    "uid  bytes      norm       θ            loss    tokens batches weight grad-cos  status",
  ];
  for (const u of r.uploads) {
    lines.push(
      [
        String(u.uid).padEnd(4),
        String(u.bytes).padEnd(10),
        num(u.norm, 6).padEnd(10),
        (u.theta?.slice(0, 12) ?? "-").padEnd(12),
        num(u.loss).padEnd(7),
        String(u.tokens ?? "-").padEnd(6),
        String(u.batches ?? "-").padEnd(7),
        num(u.weight, 3).padEnd(6),
        num(u.gradCos).padEnd(9),
        u.valid ? "ok" : `REJECTED ${u.reason}`,
      ].join(" "),
    );
  }
  if (r.pairwise.uids.length) {
    lines.push("", "pairwise cosine between updates:");
    lines.push("      " + r.pairwise.uids.map((u) => String(u).padStart(7)).join(""));
    r.pairwise.uids.forEach((u, i) =>
      lines.push(
        String(u).padEnd(6) + r.pairwise.cos[i]!.map((c) => c.toFixed(3).padStart(7)).join(""),
      )
    );
  }
  for (const s of r.scores) {
    lines.push("", `scores by validator ${s.validator}:`);
    for (const x of s.scores) {
      lines.push(
        `  uid ${String(x.uid).padEnd(4)} score ${x.score.toFixed(4)} moving ${
          x.moving.toFixed(4)
        } cos-own ${x.cosOwn.toFixed(4)} cos-other ${x.cosOther.toFixed(4)}${
          x.reasons.length ? ` (${x.reasons.join(", ")})` : ""
        }`,
      );
    }
  }
  return lines.join("\n");
}
