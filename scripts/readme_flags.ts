/**
 * Writes the README's flag tables from the schema (src/cli/flags.ts): everything between
 * `<!-- flags:begin -->` and `<!-- flags:end -->` is replaced, then `deno fmt` aligns
 * it. `deno task flags` runs it; tests/flags_test.ts fails when the README is stale.
 *
 * @module
 */
import { markdownTables, type Surface } from "../src/cli/args.ts";
import { COMMANDS, GLOBAL, SURFACES } from "../src/cli/flags.ts";
import { BENCHES } from "../src/cli/bench.ts";

export const BEGIN = "<!-- flags:begin (generated from src/cli/flags.ts by `deno task flags`) -->";
export const END = "<!-- flags:end -->";

/** The commands (and benchmarks) that accept each surface. */
export async function surfaceUsers(): Promise<Map<Surface, string[]>> {
  const users = new Map<Surface, string[]>([[GLOBAL, ["every command"]]]);
  const add = (s: Surface, who: string) => users.set(s, [...(users.get(s) ?? []), who]);
  for (const c of COMMANDS) for (const s of (await c.load()).command.surfaces) add(s, c.name);
  for (const [n, b] of Object.entries(BENCHES)) for (const s of b.surfaces) add(s, `bench ${n}`);
  return users;
}

/** `readme` with its flag section replaced by the schema's tables. */
export async function withFlagTables(readme: string): Promise<string> {
  const a = readme.indexOf(BEGIN), b = readme.indexOf(END);
  if (a < 0 || b < a) throw new Error(`README has no ${BEGIN} … ${END} section`);
  const tables = markdownTables(SURFACES, await surfaceUsers());
  return readme.slice(0, a + BEGIN.length) + "\n\n" + tables + "\n" + readme.slice(b);
}

if (import.meta.main) {
  const path = new URL("../README.md", import.meta.url).pathname;
  await Deno.writeTextFile(path, await withFlagTables(await Deno.readTextFile(path)));
  const fmt = await new Deno.Command(Deno.execPath(), { args: ["fmt", "--quiet", path] }).output();
  if (!fmt.success) throw new Error("deno fmt README.md failed");
}
