/**
 * The shape of a subcommand (one file per subcommand under src/cli/) and the two things
 * derived from its flag surfaces: its `--help` text and its parsed options.
 *
 * @module
 */
import { helpLines, type Options, parseOptions, type Surface } from "./args.ts";
import { loadEnv } from "./config.ts";
import { GLOBAL } from "./flags.ts";

/** A subcommand (its name and one-line summary are in main.ts's table, which loads it). */
export interface Command {
  /** Synopsis and description: the `--help` text above the flag tables. */
  about: string;
  /** The flag surfaces it accepts (from flags.ts; {@link GLOBAL} is always added). */
  surfaces: readonly Surface[];
  /** Runs with the arguments after the subcommand name; returns the exit code. */
  run(argv: string[]): Promise<number>;
  /** The `--help` text for `argv` when it is not {@link usage}'s (bench: per benchmark). */
  help?(argv: string[]): string;
}

/** The `--help` text: the command's description, then every flag it accepts. */
export function usage(about: string, surfaces: readonly Surface[]): string {
  return [about, ...helpLines([...surfaces, GLOBAL])].join("\n");
}

/**
 * `argv` parsed against `surfaces` plus {@link GLOBAL}, environment rows read from the
 * process environment with `.env` underneath.
 * @throws {UsageError} naming the bad flag or value
 */
export function parseCommand(
  argv: string[],
  surfaces: readonly Surface[],
  positionals = false,
): { o: Options; positionals: string[] } {
  const r = parseOptions(argv, [...surfaces, GLOBAL], { positionals, env: loadEnv() });
  return { o: r.options, positionals: r.positionals };
}
