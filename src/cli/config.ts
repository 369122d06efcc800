/**
 * Configuration surfaces shared by subcommands: hyper-parameters from `--preset` and
 * `--hparams FILE`, and the environment (`.env` + process env) for secrets.
 *
 * @module
 */
import { type Hparams, PRESETS, resolveHparams } from "../hparams.ts";
import { type Options, UsageError } from "./args.ts";

/** Largest `--hparams` file accepted. */
const MAX_HPARAMS_BYTES = 64 * 1024;

/**
 * Hyper-parameters from `--preset` (default `fallback`) and an optional `--hparams FILE`
 * (JSON with the original's hparams.json keys; may name its own `preset`).
 * @throws {UsageError} naming the bad preset, file or key
 */
export function hparamsFromFlags(o: Options, fallback = "tiny"): Promise<Hparams> {
  return hparamsOf(o.strOpt("preset"), o.strOpt("hparams"), fallback);
}

/**
 * Hyper-parameters from a preset name (default `fallback`) and an optional overrides file.
 * @throws {UsageError} naming the bad preset, file or key
 */
export async function hparamsOf(
  presetName: string | undefined,
  file: string | undefined,
  fallback = "tiny",
): Promise<Hparams> {
  let overrides: Record<string, unknown> = {};
  if (file) {
    let text: string;
    try {
      const st = await Deno.stat(file);
      if (st.size > MAX_HPARAMS_BYTES) {
        throw new UsageError(
          `Hyper-parameter file '${file}' is ${st.size} bytes: the limit is ${MAX_HPARAMS_BYTES}`,
        );
      }
      text = await Deno.readTextFile(file);
    } catch (e) {
      if (e instanceof UsageError) throw e;
      throw new UsageError(`Cannot read --hparams '${file}': ${(e as Error).message}`);
    }
    try {
      overrides = JSON.parse(text);
    } catch (e) {
      throw new UsageError(`Invalid --hparams '${file}': not JSON (${(e as Error).message})`);
    }
  }
  const preset = presetName ??
    (typeof overrides.preset === "string" ? overrides.preset : fallback);
  if (!PRESETS[preset]) {
    throw new UsageError(
      `Unknown preset '${preset}': use one of ${Object.keys(PRESETS).join(", ")}`,
    );
  }
  try {
    return resolveHparams(preset, overrides);
  } catch (e) {
    throw new UsageError((e as Error).message + (file ? ` (in --hparams '${file}')` : ""));
  }
}

/**
 * The environment with `.env` (KEY=VALUE lines in the working directory) underneath:
 * real environment variables win. Values are never logged.
 */
export function loadEnv(dotenvPath = ".env"): (key: string) => string | undefined {
  const file = new Map<string, string>();
  try {
    for (const line of Deno.readTextFileSync(dotenvPath).split("\n")) {
      const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
      if (!m) continue;
      let v = m[2]!;
      if (/^(['"]).*\1$/.test(v)) v = v.slice(1, -1);
      file.set(m[1]!, v);
    }
  } catch { /* no .env: fine */ }
  return (key) => Deno.env.get(key) ?? file.get(key);
}
