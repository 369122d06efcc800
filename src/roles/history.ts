/**
 * The shared model's history as the lead validator publishes it (manifests, checkpoints)
 * and peers hold it (the uploads a manifest lists): the {@link History} that
 * shared.ts's catch-up and re-sync read, over the one fetch path of exchange.ts.
 *
 * @module
 */
import type { Hparams } from "../hparams.ts";
import type { Store } from "../store/mod.ts";
import type { BlockClock } from "./clock.ts";
import { getLogger } from "../log.ts";
import { downloadUpload, getSmall, leadOf, type Peer, type UploadContext } from "./exchange.ts";
import { objectKey } from "./keys.ts";
import { decodeManifest, type Manifest, MANIFEST_MAX_BYTES } from "./manifest.ts";
import { latestCheckpointWindow, loadLatestCheckpoint } from "./checkpoints.ts";
import type { History } from "./shared.ts";

const log = getLogger(["boltzmann", "history"]);

/** What reading the history needs. */
export interface HistoryDeps {
  hp: Hparams;
  ctx: UploadContext;
  openStore: (location: string) => Store;
  /** Current peers (the lead among them, and the uploaders' buckets). */
  peers: () => readonly Peer[];
  lead: () => Peer | undefined;
  /** Uploads we hold ourselves (our own), by window: no download needed. */
  own?: Map<number, { hotkey: string; bytes: Uint8Array }>;
}

/** The lead's history; manifests are cached (they never change once valid). */
export function leadHistory(d: HistoryDeps): History {
  const cache = new Map<number, Manifest>();
  return {
    async manifest(w) {
      const hit = cache.get(w);
      if (hit) return hit;
      const lead = d.lead();
      if (!lead) return null;
      const bytes = await getSmall(
        d.ctx,
        d.openStore(lead.location),
        objectKey("manifest", w, lead.hotkey),
        MANIFEST_MAX_BYTES,
      );
      if (!bytes) return null;
      const m = decodeManifest(bytes, {
        window: w,
        lead: lead.hotkey,
        fingerprint: d.ctx.fingerprint,
        codec: d.ctx.spec.name,
      });
      cache.set(w, m);
      if (cache.size > 64) cache.delete(Math.min(...cache.keys()));
      return m;
    },
    async upload(w, e) {
      const own = d.own?.get(w);
      if (own && own.hotkey === e.hotkey) return own.bytes;
      const peer = d.peers().find((p) => p.hotkey === e.hotkey);
      if (!peer) return null;
      return (await downloadUpload(d.ctx, peer, d.openStore, w))?.bytes ?? null;
    },
    checkpoint: (atMost) => loadLatestCheckpoint(d.hp, d.peers(), d.openStore, atMost),
    checkpointWindow: (atMost) => latestCheckpointWindow(d.peers(), d.openStore, atMost),
  };
}

/** The peers a role saw last (it sets `peers` from the chain each window) and the history of their lead. */
export interface PeerHistory {
  peers: Peer[];
  readonly history: History;
}

/**
 * What the miner and the validator both start with: an empty peer list and the lead's
 * history over it, the lead being {@link leadOf} the current peers.
 */
export function peerHistory(d: Omit<HistoryDeps, "peers" | "lead">): PeerHistory {
  const s: { peers: Peer[]; history?: History } = { peers: [] };
  const history = leadHistory({ ...d, peers: () => s.peers, lead: () => leadOf(s.peers) });
  return Object.assign(s, { history });
}

/**
 * Polls for the lead's manifest of `w` until it appears or the chain reaches block
 * `until`; null then. A manifest that fails validation is logged and waited past.
 */
export async function waitForManifest(
  history: History,
  w: number,
  clock: BlockClock,
  until: number,
  signal: AbortSignal,
  pollMs = 250,
): Promise<Manifest | null> {
  for (;;) {
    try {
      const m = await history.manifest(w);
      if (m) return m;
    } catch (e) {
      log.warn(`Manifest of window ${w}: ${(e as Error).message}`);
    }
    if (clock.block >= until || signal.aborted) return null;
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
