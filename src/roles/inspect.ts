/**
 * `inspect --window N`: everything a person debugging window N wants — who published
 * what (kind, bytes, dtype, norm, NaN/Inf, reported loss/tokens/batches, upload time),
 * rejections with reasons, pairwise cosines between the deltas, each delta against a
 * freshly computed gradient on its own pages, and the validators' scores for N.
 *
 * @module
 */
import type { Hparams } from "../hparams.ts";
import { modelFingerprint } from "../hparams.ts";
import { paramTable, type Tensors } from "../model/params.ts";
import { gather } from "../slices/gather.ts";
import { decodeSlice, sliceByteCap, SliceRejected } from "../slices/validate.ts";
import { sliceStats } from "../slices/summary.ts";
import type { Store } from "../store/mod.ts";
import { sliceKey } from "./keys.ts";
import type { Dataset } from "../data/pages.ts";
import type { Trainer } from "../train/trainer.ts";
import { isValidator, listPeers, type PeerSource, windowIndices } from "./exchange.ts";
import { cosine } from "../tensor_math.ts";
import type { ValidatorWindow } from "./validator.ts";

/** One object of window N. */
export interface UploadInfo {
  uid: number;
  hotkey: string;
  kind: "state" | "delta";
  bytes: number;
  valid: boolean;
  reason?: string;
  dtype?: string;
  norm?: number;
  nan?: number;
  inf?: number;
  loss?: number;
  tokens?: number;
  batches?: number;
  uploadedAt?: string;
  /** cos(δ, ĝ) with ĝ freshly computed on the uploader's own pages (deltas only). */
  gradCos?: number;
}

/** What `inspect --window` reports (its `--json`). */
export interface WindowInspection {
  window: number;
  seedBlocks: { state: number; delta: number };
  uploads: UploadInfo[];
  pairwise: { uids: number[]; cos: number[][] };
  scores: { validator: string; scores: ValidatorWindow["scores"] }[];
}

/** What inspecting a window needs. */
export interface InspectDeps {
  hp: Hparams;
  chain: PeerSource & { blockHash(block: number): Promise<string> };
  netuid: number;
  openStore: (location: string) => Store;
  /** With these, each delta is compared with a freshly computed gradient. */
  dataset?: Dataset;
  trainer?: Trainer;
  params?: Tensors;
}

/** Gathers everything about window `w`; never throws for a bad upload (it is reported). */
export async function inspectWindow(d: InspectDeps, w: number): Promise<WindowInspection> {
  const { hp } = d;
  const L = hp.windowLength;
  const table = paramTable(hp.model);
  const fingerprint = modelFingerprint(hp.model);
  const idx = {
    state: windowIndices("state", await d.chain.blockHash(w * L), table, hp.compression),
    delta: windowIndices("delta", await d.chain.blockHash((w + 1) * L), table, hp.compression),
  };
  const peers = await listPeers(d.chain, d.netuid);
  const uploads: UploadInfo[] = [];
  const deltas = new Map<number, Tensors>();
  for (const p of peers) {
    const store = d.openStore(p.location);
    for (const kind of ["delta", "state"] as const) {
      const key = sliceKey(kind, w, p.hotkey);
      let bytes: Uint8Array | null;
      let when: Date | undefined;
      try {
        bytes = await store.get(key, {
          maxBytes: sliceByteCap(table, idx[kind]),
          timeoutMs: 30_000,
        });
        when = (await store.list(key)).find((o) => o.key === key)?.lastModified;
      } catch (e) {
        uploads.push({
          uid: p.uid,
          hotkey: p.hotkey,
          kind,
          bytes: 0,
          valid: false,
          reason: (e as Error).message,
        });
        continue;
      }
      if (!bytes) continue;
      const info: UploadInfo = {
        uid: p.uid,
        hotkey: p.hotkey,
        kind,
        bytes: bytes.length,
        valid: false,
        uploadedAt: when?.toISOString(),
      };
      try {
        const s = decodeSlice(bytes, {
          table,
          indices: idx[kind],
          fingerprint,
          window: w,
          kind,
          hotkey: p.hotkey,
        });
        const st = sliceStats(s.slice).total;
        Object.assign(info, {
          valid: true,
          dtype: s.dtype,
          norm: st.norm,
          nan: st.nan,
          inf: st.inf,
          loss: s.meta.loss,
          tokens: s.meta.tokens,
          batches: s.meta.batches,
        });
        if (kind === "delta") deltas.set(p.uid, s.slice);
      } catch (e) {
        info.reason = e instanceof SliceRejected
          ? `${e.reason}: ${e.detail}`
          : (e as Error).message;
      }
      uploads.push(info);
    }
  }
  if (d.trainer && d.dataset && d.params) {
    for (const u of uploads) {
      const delta = deltas.get(u.uid);
      if (u.kind !== "delta" || !delta) continue;
      const batches = (await d.dataset.batchesFor(w, u.uid)).slice(0, Math.max(1, u.batches ?? 1));
      const g = gather((await d.trainer.lossAndGrad(d.params, batches)).grads, idx.delta);
      u.gradCos = cosine(delta, g);
    }
  }
  const uids = [...deltas.keys()].sort((a, b) => a - b);
  const cos = uids.map((a) => uids.map((b) => cosine(deltas.get(a)!, deltas.get(b)!)));
  const scores: WindowInspection["scores"] = [];
  for (const p of peers.filter(isValidator)) {
    try {
      const b = await d.openStore(p.location).get(`scores-${w}-${p.hotkey}.json`, {
        maxBytes: 1 << 20,
        timeoutMs: 10_000,
      });
      if (b) {
        const r = JSON.parse(new TextDecoder().decode(b)) as ValidatorWindow;
        if (Array.isArray(r.scores)) scores.push({ validator: p.hotkey, scores: r.scores });
      }
    } catch { /* a validator without scores for w: nothing to show */ }
  }
  return {
    window: w,
    seedBlocks: { state: w * L, delta: (w + 1) * L },
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
    `window ${r.window} (state indices seeded by block ${r.seedBlocks.state}, delta by block ${r.seedBlocks.delta})`,
    "",
    "uid  kind   bytes      dtype  norm       nan inf loss    tokens batches grad-cos  status",
  ];
  for (const u of r.uploads) {
    lines.push(
      [
        String(u.uid).padEnd(4),
        u.kind.padEnd(6),
        String(u.bytes).padEnd(10),
        (u.dtype ?? "-").padEnd(6),
        num(u.norm, 6).padEnd(10),
        String(u.nan ?? "-").padEnd(3),
        String(u.inf ?? "-").padEnd(3),
        num(u.loss).padEnd(7),
        String(u.tokens ?? "-").padEnd(6),
        String(u.batches ?? "-").padEnd(7),
        num(u.gradCos).padEnd(9),
        u.valid ? "ok" : `REJECTED ${u.reason}`,
      ].join(" "),
    );
  }
  if (r.pairwise.uids.length) {
    lines.push("", "pairwise cosine between deltas:");
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
