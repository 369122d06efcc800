/** boltzmann: entry point. Only dispatches to the CLI. */
import { main } from "./src/cli/main.ts";

if (import.meta.main) Deno.exit(await main(Deno.args));
