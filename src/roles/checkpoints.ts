/**
 * Full checkpoints in the lead validator's bucket, so a participant that joins late,
 * restarts or disagrees with the lead's θ digest re-syncs from the shared model instead
 * of from scratch: `checkpoint-{w}-{hotkey}.safetensors` holds θ_w (every parameter,
 * float32, HF names) and the outer optimizer's state (`outer.m.NAME`, `outer.v.NAME`,
 * metadata `outer_step`, `outer_beta1_pow`, `outer_beta2_pow`), so that replaying the
 * manifests since gives the same bits as the lead's. Loading validates names, shapes,
 * dtype, size and finiteness like any other download. Retention: keys.ts.
 *
 * @module
 */
import { type Hparams, modelFingerprint } from "../hparams.ts";
import { paramCount, paramTable, type Tensors } from "../model/params.ts";
import { decodeSafetensors, encodeSafetensors, toFloat32 } from "../safetensors.ts";
import type { Store } from "../store/mod.ts";
import { arrayFinite } from "../tensor_math.ts";
import { leadOf, type Peer } from "./exchange.ts";
import { objectKey, parseKey } from "./keys.ts";
import type { ModelAt } from "./shared.ts";

/** Uploads a full checkpoint of θ_w and the outer state. */
export async function publishCheckpoint(
  store: Store,
  hp: Hparams,
  m: ModelAt,
  hotkey: string,
): Promise<void> {
  const table = paramTable(hp.model);
  const entry = (name: string, shape: readonly number[], data: Float32Array) => ({
    name,
    dtype: "F32" as const,
    shape: [...shape],
    data,
  });
  const bytes = encodeSafetensors(
    [
      ...table.map((p) => entry(p.name, p.shape, m.params.get(p.name)!)),
      ...table.map((p) => entry(`outer.m.${p.name}`, p.shape, m.outer.m.get(p.name)!)),
      ...table.map((p) => entry(`outer.v.${p.name}`, p.shape, m.outer.v.get(p.name)!)),
    ],
    {
      window: String(m.window),
      fingerprint: modelFingerprint(hp.model),
      format: "pt",
      outer_step: String(m.outer.step),
      // JS number → shortest text that parses back to the same float64.
      outer_beta1_pow: String(m.outer.beta1Pow),
      outer_beta2_pow: String(m.outer.beta2Pow),
    },
  );
  await store.put(objectKey("checkpoint", m.window, hotkey), bytes);
}

/** The lead's checkpoint keys at or before window `atMost`, newest first. */
async function listCheckpoints(
  peers: readonly Peer[],
  openStore: (location: string) => Store,
  atMost: number,
) {
  const lead = leadOf(peers);
  if (!lead) return { lead, list: [] };
  const list = (await openStore(lead.location).list("checkpoint-"))
    .map((o) => ({ key: o.key, k: parseKey(o.key) }))
    .filter((x) => x.k?.kind === "checkpoint" && x.k.hotkey === lead.hotkey && x.k.window <= atMost)
    .sort((a, b) => b.k!.window - a.k!.window);
  return { lead, list };
}

/** The window of the lead's newest checkpoint at or before `atMost` (a listing only). */
export async function latestCheckpointWindow(
  peers: readonly Peer[],
  openStore: (location: string) => Store,
  atMost = Number.MAX_SAFE_INTEGER,
): Promise<number | null> {
  return (await listCheckpoints(peers, openStore, atMost)).list[0]?.k?.window ?? null;
}

/**
 * The newest checkpoint at or before window `atMost` published by the lead validator
 * among `peers`, or null when there is none.
 * @throws {Error} one line when the object is invalid
 */
export async function loadLatestCheckpoint(
  hp: Hparams,
  peers: readonly Peer[],
  openStore: (location: string) => Store,
  atMost = Number.MAX_SAFE_INTEGER,
): Promise<(ModelAt & { from: string }) | null> {
  const { lead, list } = await listCheckpoints(peers, openStore, atMost);
  const newest = list[0];
  if (!lead || !newest) return null;
  const store = openStore(lead.location);
  const table = paramTable(hp.model);
  const maxBytes = 3 * paramCount(table) * 4 + 3_000_000;
  const bytes = await store.get(newest.key, { maxBytes, timeoutMs: 120_000 });
  if (!bytes) return null;
  const { tensors, metadata } = decodeSafetensors(bytes, {
    label: `checkpoint '${newest.key}'`,
    maxHeaderBytes: 3_000_000,
  });
  const bad = (why: string) => new Error(`Cannot use checkpoint '${newest.key}': ${why}`);
  if (metadata.fingerprint !== modelFingerprint(hp.model)) throw bad("model fingerprint differs");
  if (metadata.window !== String(newest.k!.window)) {
    throw bad("window metadata differs from its name");
  }
  if (tensors.size !== 3 * table.length) {
    throw bad(`${tensors.size} tensors, expected ${3 * table.length}`);
  }
  const read = (name: string, shape: readonly number[]) => {
    const t = tensors.get(name);
    if (!t || t.dtype !== "F32" || t.shape.join(",") !== shape.join(",")) {
      throw bad(`tensor '${name}' missing or not F32 [${shape}]`);
    }
    const v = toFloat32(t.dtype, t.bytes);
    if (!arrayFinite(v)) throw bad(`tensor '${name}' holds NaN or Inf`);
    return v;
  };
  const params: Tensors = new Map(), m: Tensors = new Map(), v: Tensors = new Map();
  for (const p of table) {
    params.set(p.name, read(p.name, p.shape));
    m.set(p.name, read(`outer.m.${p.name}`, p.shape));
    v.set(p.name, read(`outer.v.${p.name}`, p.shape));
  }
  const step = Number(metadata.outer_step);
  const beta1Pow = Number(metadata.outer_beta1_pow), beta2Pow = Number(metadata.outer_beta2_pow);
  if (!Number.isSafeInteger(step) || step < 0) throw bad("outer_step is not an integer >= 0");
  for (const x of [beta1Pow, beta2Pow]) {
    if (!(Number.isFinite(x) && x >= 0 && x <= 1)) throw bad("outer beta powers not in [0, 1]");
  }
  return {
    window: newest.k!.window,
    params,
    outer: { step, beta1Pow, beta2Pow, m, v },
    from: lead.hotkey,
  };
}
