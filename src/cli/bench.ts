/** `boltzmann bench <name>`: benchmarks that print figures (never timed assertions). */
import type { Command } from "./command.ts";
import { UsageError } from "./args.ts";
import { BENCHES } from "../bench/mod.ts";

export const command: Command = {
  name: "bench",
  summary: "Benchmarks that print figures: " + Object.keys(BENCHES).join(", "),
  usage: [
    "boltzmann bench <name> [flags]",
    "",
    "Benchmarks (each compares against a reference measured in the same run):",
    ...Object.entries(BENCHES).map(([n, b]) => `  ${n.padEnd(8)}  ${b.summary}`),
    "",
    "Flags: --json, plus each benchmark's own (see docs/PERFORMANCE.md)",
  ].join("\n"),
  async run(argv) {
    const [name, ...rest] = argv;
    const b = name === undefined ? undefined : BENCHES[name];
    if (!b) {
      throw new UsageError(
        `Unknown benchmark '${name ?? ""}': use one of ${Object.keys(BENCHES).join(", ")}`,
      );
    }
    return await b.run(rest);
  },
};
