/**
 * CLI dispatch: picks the subcommand, sets up logging, turns errors into one line and an
 * exit code (2 for usage errors, 1 otherwise). The only place that prints stack traces is
 * `--log-level debug`.
 *
 * @module
 */
import { VERSION } from "../version.ts";
import { type LOG_FORMATS, type LOG_LEVELS, setupLogging } from "../log.ts";
import { checkValue, UsageError } from "./args.ts";
import { usage } from "./command.ts";
import { COMMANDS, GLOBAL } from "./flags.ts";

function topHelp(): string {
  const w = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    `boltzmann ${VERSION}: train one shared language model together, paid on a Bittensor subnet`,
    "",
    "Usage: boltzmann <command> [flags]   (boltzmann <command> --help for its flags)",
    "",
    "Commands:",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`),
    "",
    "Global flags: --version " +
    GLOBAL.flags.map((f) => `--${f.name}${f.choices ? ` ${f.choices.join("|")}` : ""}`).join(" "),
  ].join("\n");
}

/**
 * Reads `--log-level` / `--log-format` (both `--x v` and `--x=v`) before the subcommand
 * runs, checked and defaulted by their {@link GLOBAL} rows.
 */
function logOptions(argv: string[]): { level: typeof LOG_LEVELS[number]; format: "text" | "json" } {
  const get = (name: string): string => {
    const row = GLOBAL.flags.find((f) => f.name === name)!;
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i]!;
      if (a === `--${name}` && argv[i + 1] !== undefined) {
        return String(checkValue(row, argv[i + 1]!));
      }
      if (a.startsWith(`--${name}=`)) return String(checkValue(row, a.slice(name.length + 3)));
    }
    return String(row.default);
  };
  return {
    level: get("log-level") as typeof LOG_LEVELS[number],
    format: get("log-format") as typeof LOG_FORMATS[number],
  };
}

/** Runs the CLI; returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === "--version" || name === "-V" || name === "version") {
    console.log(`boltzmann ${VERSION}`);
    return 0;
  }
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    console.log(topHelp());
    return 0;
  }
  const entry = COMMANDS.find((c) => c.name === name);
  if (!entry) {
    console.error(
      `Unknown command '${name}': use one of ${COMMANDS.map((c) => c.name).join(", ")}`,
    );
    return 2;
  }
  const { command: cmd } = await entry.load();
  if (rest.includes("--help") || rest.includes("-h")) {
    console.log(cmd.help?.(rest) ?? usage(cmd.about, cmd.surfaces));
    return 0;
  }
  let debug = false;
  try {
    const lo = logOptions(rest);
    debug = lo.level === "debug" || lo.level === "trace";
    await setupLogging(lo.level, lo.format);
    return await cmd.run(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`boltzmann ${name}: ${e.message}`);
      return 2;
    }
    const msg = e instanceof Error ? e.message : String(e);
    console.error(`boltzmann ${name}: ${msg.split("\n")[0]}`);
    if (debug && e instanceof Error && e.stack) console.error(e.stack);
    return 1;
  }
}
