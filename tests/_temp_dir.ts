/**
 * A fresh temporary directory for one test, removed afterwards whatever the test did.
 *
 * @module
 */

/** Runs `fn` in a new directory named `boltzmann-PREFIX-…`, then removes it. */
export async function withTempDir(
  prefix: string,
  fn: (dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: `boltzmann-${prefix}-` });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
