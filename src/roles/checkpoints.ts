/**
 * Full checkpoints in the lead validator's bucket, so a miner or validator that joins
 * late (or lost its disk) starts from the shared model instead of from scratch:
 * `checkpoint-{window}-{hotkey}.safetensors`, every parameter in float32 with HF names,
 * metadata `window` and `fingerprint`. Loading validates names, shapes, dtype, size
 * and finiteness like any other download.
 *
 * @module
 */
import { type Hparams, modelFingerprint } from "../hparams.ts";
import { paramCount, paramTable, type Tensors } from "../model/params.ts";
import { decodeSafetensors, encodeSafetensors, toFloat32 } from "../safetensors.ts";
import type { Store } from "../store/mod.ts";
import { isValidator, type Peer } from "./exchange.ts";

const PREFIX = "checkpoint-";

/** Uploads a full checkpoint of `params` for window `w`; keeps only the newest two. */
export async function publishCheckpoint(
  store: Store,
  hp: Hparams,
  params: Tensors,
  w: number,
  hotkey: string,
): Promise<void> {
  const table = paramTable(hp.model);
  const bytes = encodeSafetensors(
    table.map((p) => ({ name: p.name, dtype: "F32", shape: p.shape, data: params.get(p.name)! })),
    { window: String(w), fingerprint: modelFingerprint(hp.model), format: "pt" },
  );
  await store.put(`${PREFIX}${w}-${hotkey}.safetensors`, bytes);
  const old = (await store.list(PREFIX)).map((o) => ({ o, w: checkpointWindow(o.key) }))
    .filter((x) => x.w !== null && x.w < w).sort((a, b) => b.w! - a.w!).slice(1);
  for (const x of old) await store.delete(x.o.key);
}

function checkpointWindow(key: string): number | null {
  const m = /^checkpoint-(\d+)-[A-Za-z0-9]+\.safetensors$/.exec(key);
  return m ? Number(m[1]) : null;
}

/**
 * The newest checkpoint published by the lead validator among `peers` (highest stake
 * with a permit), or null when there is none.
 * @throws {Error} one line when the object is invalid
 */
export async function loadLatestCheckpoint(
  hp: Hparams,
  peers: readonly Peer[],
  openStore: (location: string) => Store,
): Promise<{ window: number; params: Tensors; from: string } | null> {
  const lead = peers.filter(isValidator)
    .sort((a, b) => b.stake - a.stake || (a.hotkey < b.hotkey ? -1 : 1))[0];
  if (!lead) return null;
  const store = openStore(lead.location);
  const newest = (await store.list(PREFIX))
    .filter((o) => o.key.endsWith(`-${lead.hotkey}.safetensors`))
    .map((o) => ({ key: o.key, w: checkpointWindow(o.key) }))
    .filter((x) => x.w !== null).sort((a, b) => b.w! - a.w!)[0];
  if (!newest) return null;
  const table = paramTable(hp.model);
  const maxBytes = paramCount(table) * 4 + 1_000_000;
  const bytes = await store.get(newest.key, { maxBytes, timeoutMs: 120_000 });
  if (!bytes) return null;
  const { tensors, metadata } = decodeSafetensors(bytes, {
    label: `checkpoint '${newest.key}'`,
    maxHeaderBytes: 1_000_000,
  });
  const bad = (why: string) => new Error(`Cannot use checkpoint '${newest.key}': ${why}`);
  if (metadata.fingerprint !== modelFingerprint(hp.model)) throw bad("model fingerprint differs");
  if (tensors.size !== table.length) throw bad(`${tensors.size} tensors, expected ${table.length}`);
  const params: Tensors = new Map();
  for (const p of table) {
    const t = tensors.get(p.name);
    if (!t || t.dtype !== "F32" || t.shape.join(",") !== p.shape.join(",")) {
      throw bad(`tensor '${p.name}' missing or not F32 [${p.shape}]`);
    }
    const v = toFloat32(t.dtype, t.bytes);
    for (let i = 0; i < v.length; i++) {
      if (!Number.isFinite(v[i]!)) throw bad(`tensor '${p.name}' holds NaN or Inf`);
    }
    params.set(p.name, v);
  }
  return { window: newest.w!, params, from: lead.hotkey };
}
