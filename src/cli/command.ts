import { NETWORK_FLAGS, parseFlags } from "./args.ts";

/** The shape of a subcommand: one file per subcommand under src/cli/. */
export interface Command {
  name: string;
  /** One line for the top-level help. */
  summary: string;
  /** The full `--help` text. */
  usage: string;
  /** Runs with the arguments after the subcommand name; returns the exit code. */
  run(argv: string[]): Promise<number>;
}

/** Placeholder for a subcommand whose engine is not built yet: says so, exit 1. */
export function notBuilt(name: string, summary: string, issue: number): Command {
  return {
    name,
    summary: `${summary} (not built yet)`,
    usage: `boltzmann ${name}: ${summary}\n\nNot built yet: see issue #${issue}.`,
    run(argv) {
      parseFlags(argv, NETWORK_FLAGS, true);
      console.error(`boltzmann ${name}: not built yet (issue #${issue}); nothing was done`);
      return Promise.resolve(1);
    },
  };
}
