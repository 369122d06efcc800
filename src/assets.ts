/**
 * Reading the files that ship in assets/ beside the code (the chain genesis, the
 * embedded corpus): a missing or unreadable one is one line naming the file and the fix.
 * Left out: checking the contents (each reader verifies its own: a hash, a format).
 *
 * @module
 */

/**
 * The bytes of the shipped file at `url`.
 * @param what what the file is, for the message ("the chain genesis")
 * @param fix what the user can do about it
 * @throws {Error} `Cannot read WHAT 'PATH': REASON; FIX`
 */
export async function readAsset(url: URL, what: string, fix: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(url);
  } catch (e) {
    throw new Error(`Cannot read ${what} '${url.pathname}': ${(e as Error).message}; ${fix}`);
  }
}
