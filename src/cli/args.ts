/**
 * Flag parsing shared by every subcommand: `node:util` `parseArgs` in strict mode, the
 * flags users of the original and btcli know, and {@link UsageError} for exit code 2.
 *
 * @module
 */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";

/** A bad flag or value: printed as one line, exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Flags every subcommand understands. */
export const GLOBAL_FLAGS: ParseArgsOptionsConfig = {
  help: { type: "boolean", short: "h" },
  json: { type: "boolean" },
  "log-level": { type: "string" },
  "log-format": { type: "string" },
};

/** Wallet / chain / storage / compute flags of the original and btcli. */
export const NETWORK_FLAGS: ParseArgsOptionsConfig = {
  "wallet.name": { type: "string" },
  "wallet.hotkey": { type: "string" },
  "wallet.path": { type: "string" },
  "subtensor.network": { type: "string" },
  "subtensor.chain_endpoint": { type: "string" },
  netuid: { type: "string" },
  bucket: { type: "string" },
  device: { type: "string" },
  hparams: { type: "string" },
  preset: { type: "string" },
};

export type Flags = Record<string, string | boolean | undefined>;

/**
 * Parse `argv` against `spec` (plus {@link GLOBAL_FLAGS}).
 * @throws {UsageError} naming the unknown flag or the missing value
 */
export function parseFlags(
  argv: string[],
  spec: ParseArgsOptionsConfig,
  allowPositionals = false,
): { flags: Flags; positionals: string[] } {
  const options = { ...GLOBAL_FLAGS, ...spec };
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options,
      strict: true,
      allowPositionals,
    });
    return { flags: values as Flags, positionals };
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    const m = /Unknown option '([^']+)'/.exec(msg);
    if (m) {
      const known = Object.keys(options).map((k) => `--${k}`).join(" ");
      throw new UsageError(`Unknown flag '${m[1]}': accepted flags are ${known}`);
    }
    throw new UsageError(msg.split("\n")[0]!.replace(/\.$/, ""));
  }
}

/** A string flag, or `fallback`. */
export function str(flags: Flags, name: string, fallback?: string): string | undefined {
  const v = flags[name];
  return typeof v === "string" ? v : fallback;
}

/**
 * An integer flag within [min, max], or `fallback` when absent.
 * @throws {UsageError} on a value that is not such an integer
 */
export function int(
  flags: Flags,
  name: string,
  fallback: number,
  min = 0,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const v = flags[name];
  if (v === undefined) return fallback;
  const n = typeof v === "string" && /^-?\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`Invalid --${name} '${v}': expected an integer from ${min} to ${max}`);
  }
  return n;
}

/**
 * A flag restricted to a set of values, or `fallback`.
 * @throws {UsageError} listing the accepted values
 */
export function oneOf<T extends string>(
  flags: Flags,
  name: string,
  accepted: readonly T[],
  fallback: T,
): T {
  const v = flags[name];
  if (v === undefined) return fallback;
  if (typeof v !== "string" || !accepted.includes(v as T)) {
    throw new UsageError(`Invalid --${name} '${v}': expected one of ${accepted.join(", ")}`);
  }
  return v as T;
}
