/** The program version, printed by `--version` and `doctor`; bumped with deno.json's. */
export const VERSION = "0.1.0";
