/**
 * Writes the README's flag tables from the schema (src/cli/flags.ts): everything between
 * `<!-- flags:begin -->` and `<!-- flags:end -->` is replaced, then `deno fmt` aligns
 * it. `deno task flags` runs it; tests/flags_test.ts fails when the README is stale.
 *
 * @module
 */
import { markdownTables } from "../src/cli/args.ts";
import { SURFACES } from "../src/cli/flags.ts";

export const BEGIN = "<!-- flags:begin (generated from src/cli/flags.ts by `deno task flags`) -->";
export const END = "<!-- flags:end -->";

/** `readme` with its flag section replaced by the schema's tables. */
export function withFlagTables(readme: string): string {
  const a = readme.indexOf(BEGIN), b = readme.indexOf(END);
  if (a < 0 || b < a) throw new Error(`README has no ${BEGIN} … ${END} section`);
  return readme.slice(0, a + BEGIN.length) + "\n\n" + markdownTables(SURFACES) + "\n" +
    readme.slice(b);
}

if (import.meta.main) {
  const path = new URL("../README.md", import.meta.url).pathname;
  await Deno.writeTextFile(path, withFlagTables(await Deno.readTextFile(path)));
  const fmt = await new Deno.Command(Deno.execPath(), { args: ["fmt", "--quiet", path] }).output();
  if (!fmt.success) throw new Error("deno fmt README.md failed");
}
