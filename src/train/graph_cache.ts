/**
 * On-disk cache of built graphs (ModelProto bytes), keyed by a hash of everything the
 * graph depends on: graph kind and version, model config, batch shape, dtype. A graph is
 * built once per key and machine; later runs load the file. Writes are atomic (temp file
 * + rename), so concurrent processes at worst build the same graph twice.
 *
 * @module
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import { getLogger } from "../log.ts";

const log = getLogger(["boltzmann", "graphs"]);

/**
 * The graph cache directory from environment values: `$XDG_CACHE_HOME/boltzmann/graphs`,
 * else `$HOME/.cache/boltzmann/graphs`; undefined when neither is set (no disk cache).
 */
export function defaultCacheDir(
  env: { XDG_CACHE_HOME?: string; HOME?: string },
): string | undefined {
  if (env.XDG_CACHE_HOME) return `${env.XDG_CACHE_HOME}/boltzmann/graphs`;
  if (env.HOME) return `${env.HOME}/.cache/boltzmann/graphs`;
  return undefined;
}

/** File name of a graph: `<kind>-<32 hex of SHA-256 over canonical JSON of key>.onnx`. */
export function graphFileName(kind: string, key: unknown): string {
  const json = JSON.stringify(
    key,
    (_k, v) =>
      v && typeof v === "object" && !Array.isArray(v)
        ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)))
        : v,
  );
  return `${kind}-${bytesToHex(sha256(utf8ToBytes(`${kind}\n${json}`))).slice(0, 32)}.onnx`;
}

/**
 * The bytes of graph `kind`/`key`: from `dir` when cached, else `build()` (then stored).
 * A cache that cannot be read or written only costs a rebuild (logged at debug).
 */
export async function cachedGraph(
  dir: string | undefined,
  kind: string,
  key: unknown,
  build: () => Uint8Array,
): Promise<{ bytes: Uint8Array; path?: string; hit: boolean }> {
  if (!dir) return { bytes: build(), hit: false };
  const path = `${dir}/${graphFileName(kind, key)}`;
  try {
    return { bytes: await Deno.readFile(path), path, hit: true };
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      log.debug("Cannot read cached graph {path}: {e}", { path, e: String(e) });
    }
  }
  const bytes = build();
  try {
    await Deno.mkdir(dir, { recursive: true });
    const tmp = `${path}.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`;
    await Deno.writeFile(tmp, bytes);
    await Deno.rename(tmp, path);
  } catch (e) {
    log.debug("Cannot cache graph at {path}: {e}", { path, e: String(e) });
    return { bytes, hit: false };
  }
  return { bytes, path, hit: false };
}

/** Removes a cached graph (after ONNX Runtime refused it). */
export async function dropCachedGraph(path: string): Promise<void> {
  await Deno.remove(path).catch(() => {});
}
