/**
 * `LocalStore`: a {@link Store} on a local directory, for the devnet and for tests.
 * Writes go to a temporary file in the same directory and are renamed into place, so
 * concurrent writers and readers only ever see whole objects.
 *
 * @module
 */
import type { GetOptions, ObjectInfo, Store } from "./mod.ts";
import { checkKey, ObjectTooLarge, StoreError } from "./mod.ts";

/** A directory as a flat object store; created on first write. */
export class LocalStore implements Store {
  readonly location: string;

  /** @param dir the directory (absolute or relative to the working directory) */
  constructor(readonly dir: string) {
    const abs = dir.startsWith("/") ? dir : `${Deno.cwd()}/${dir}`;
    this.location = `file://${abs.replace(/\/+$/, "")}`;
  }

  #path(key: string): string {
    checkKey(key);
    return `${this.dir}/${key}`;
  }

  async put(key: string, bytes: Uint8Array): Promise<void> {
    const path = this.#path(key);
    await Deno.mkdir(this.dir, { recursive: true });
    // Leading '.' never matches KEY_PATTERN, so temporaries are invisible to list().
    const tmp = `${this.dir}/.tmp-${crypto.randomUUID()}`;
    try {
      await Deno.writeFile(tmp, bytes);
      await Deno.rename(tmp, path);
    } catch (e) {
      await Deno.remove(tmp).catch(() => {});
      throw new StoreError(`Cannot write '${path}': ${(e as Error).message}`, false);
    }
  }

  async get(key: string, opts: GetOptions): Promise<Uint8Array | null> {
    const path = this.#path(key);
    let f: Deno.FsFile;
    try {
      f = await Deno.open(path, { read: true });
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return null;
      throw new StoreError(`Cannot read '${path}': ${(e as Error).message}`, false);
    }
    try {
      // The open file is immutable: writers replace it by rename, never in place.
      const { size } = await f.stat();
      if (size > opts.maxBytes) throw new ObjectTooLarge(key, opts.maxBytes, size);
      const out = new Uint8Array(size);
      const deadline = Date.now() + opts.timeoutMs;
      let n = 0;
      while (n < size) {
        if (opts.signal?.aborted || Date.now() > deadline) {
          throw new StoreError(`Timed out reading '${path}' after ${opts.timeoutMs} ms`, true);
        }
        const r = await f.read(out.subarray(n));
        if (r === null) break;
        n += r;
      }
      if (n !== size) throw new StoreError(`Short read of '${path}': ${n} of ${size} bytes`, true);
      return out;
    } finally {
      f.close();
    }
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    try {
      for await (const e of Deno.readDir(this.dir)) {
        if (!e.isFile || !e.name.startsWith(prefix) || e.name.startsWith(".")) continue;
        try {
          checkKey(e.name);
          const st = await Deno.stat(`${this.dir}/${e.name}`);
          out.push({ key: e.name, size: st.size, lastModified: st.mtime ?? new Date(0) });
        } catch {
          // Not one of ours (bad name) or deleted while listing: skip.
        }
      }
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return [];
      throw e;
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(key: string): Promise<void> {
    try {
      await Deno.remove(this.#path(key));
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
}
