/**
 * The mechanics of the one configuration schema: a flag is a row (name, type, default,
 * environment variable, help line, validator) in a {@link Surface}; this module turns the
 * surfaces a command accepts into `node:util` `parseArgs` options, parsed and validated
 * {@link Options}, `--help` lines and the README's flag tables. The rows themselves live
 * in `flags.ts`. It leaves out flags that depend on one another (a missing `--netuid`
 * only matters to `inspect --window`): commands check those with {@link Options.need}.
 *
 * @module
 */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";

/** A bad flag or value: printed as one line, exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** How a flag's value is read and checked. */
export type FlagType = "boolean" | "string" | "int" | "number" | "choice";

/** One row of the schema. */
export interface Flag {
  /** Without the leading `--`. */
  name: string;
  type: FlagType;
  /** The value's placeholder in help text (`N`, `DIR`). */
  arg?: string;
  short?: string;
  /** The value when the flag is absent (and no environment variable is set). */
  default?: string | number | boolean;
  /** Shown instead of {@link default} when the default is not a constant. */
  defaultText?: string;
  /** An environment variable read when the flag is absent (after `.env`). */
  env?: string;
  /** One line: what the flag does. */
  help: string;
  /** Bounds of an `int` or `number`. */
  min?: number;
  max?: number;
  /** The accepted values of a `choice`. */
  choices?: readonly string[];
  /** Extra check after the type's: the "expected ..." text when `v` is refused. */
  check?: (v: string | number) => string | undefined;
}

/** A named group of flags that several commands can accept together. */
export interface Surface {
  /** Short name, used as the README table's heading. */
  name: string;
  /** What the group is for (help and README). */
  title: string;
  flags: readonly Flag[];
  /** Environment variables (also read from `.env`) the group's commands read, no flag. */
  environment?: readonly { name: string; help: string }[];
}

type Value = string | number | boolean;

function expected(f: Flag): string {
  switch (f.type) {
    case "int":
    case "number": {
      const what = f.type === "int" ? "an integer" : "a number";
      const min = f.min ?? (f.type === "int" ? 0 : -Infinity);
      const max = f.max ?? Number.MAX_SAFE_INTEGER;
      if (max >= Number.MAX_SAFE_INTEGER) return `${what} >= ${min}`;
      return `${what} from ${min} to ${max}`;
    }
    case "choice":
      return `one of ${f.choices!.join(", ")}`;
    default:
      return "a value";
  }
}

/**
 * The value of flag `f` given as text `raw`, checked.
 * @throws {UsageError} `Invalid --name 'raw': expected ...`
 */
export function checkValue(f: Flag, raw: string): Value {
  const bad = (why = expected(f)) =>
    new UsageError(`Invalid --${f.name} '${raw}': expected ${why}`);
  let v: Value = raw;
  if (f.type === "int" || f.type === "number") {
    const n = f.type === "int"
      ? (/^-?\d+$/.test(raw) ? Number(raw) : NaN)
      : (/^-?(\d+\.?\d*|\.\d+)(e-?\d+)?$/i.test(raw) ? Number(raw) : NaN);
    const min = f.min ?? (f.type === "int" ? 0 : -Infinity);
    const max = f.max ?? Number.MAX_SAFE_INTEGER;
    const ok = f.type === "int" ? Number.isSafeInteger(n) : Number.isFinite(n);
    if (!ok || n < min || n > max) throw bad();
    v = n;
  } else if (f.type === "choice") {
    if (!f.choices!.includes(raw)) throw bad();
  }
  const why = f.check?.(v as string | number);
  if (why !== undefined) throw bad(why);
  return v;
}

/** `v`, which the schema gives a default: undefined is a programming error. */
function withDefault<T>(name: string, v: T | undefined): T {
  if (v === undefined) throw new Error(`flag --${name} has no default`);
  return v;
}

/** Parsed, validated flag values of one command (defaults and environment applied). */
export class Options {
  readonly #byName: ReadonlyMap<string, Flag>;
  readonly #values: ReadonlyMap<string, Value>;
  /** Flags the user gave (not defaults or environment). */
  readonly given: ReadonlySet<string>;

  constructor(
    byName: ReadonlyMap<string, Flag>,
    values: ReadonlyMap<string, Value>,
    given: Set<string>,
  ) {
    this.#byName = byName;
    this.#values = values;
    this.given = given;
  }

  #flag(name: string, types: readonly FlagType[]): Flag {
    const f = this.#byName.get(name);
    // A programming error, not a user's: the command reads a flag it does not declare.
    if (!f) throw new Error(`flag --${name} is not in this command's schema`);
    if (!types.includes(f.type)) throw new Error(`flag --${name} is a ${f.type}`);
    return f;
  }

  /** A string or choice flag, or undefined when absent without a default. */
  strOpt(name: string): string | undefined {
    this.#flag(name, ["string", "choice"]);
    return this.#values.get(name) as string | undefined;
  }

  /** A string or choice flag that has a default in the schema. */
  str(name: string): string {
    return withDefault(name, this.strOpt(name));
  }

  /** A choice flag narrowed to its values. */
  choice<T extends string>(name: string, _values?: readonly T[]): T {
    this.#flag(name, ["choice"]);
    return this.str(name) as T;
  }

  /** An int or number flag, or undefined when absent without a default. */
  numOpt(name: string): number | undefined {
    this.#flag(name, ["int", "number"]);
    return this.#values.get(name) as number | undefined;
  }

  /** An int or number flag that has a default in the schema. */
  num(name: string): number {
    return withDefault(name, this.numOpt(name));
  }

  /** A boolean flag (false when absent). */
  bool(name: string): boolean {
    this.#flag(name, ["boolean"]);
    return this.#values.get(name) === true;
  }

  /**
   * A flag that must be present here (the schema cannot say so when it depends on
   * other flags).
   * @throws {UsageError} `Missing --name ARG: why`
   */
  need(name: string, why: string): void {
    const f = this.#byName.get(name);
    if (!f) throw new Error(`flag --${name} is not in this command's schema`);
    if (!this.#values.has(name)) {
      throw new UsageError(`Missing --${name}${f.arg ? ` ${f.arg}` : ""}: ${why}`);
    }
  }
}

/** The flags of `surfaces`, by name; a name declared twice is a programming error. */
export function flagTable(surfaces: readonly Surface[]): Map<string, Flag> {
  const byName = new Map<string, Flag>();
  for (const s of surfaces) {
    for (const f of s.flags) {
      if (byName.has(f.name)) throw new Error(`flag --${f.name} declared twice (${s.name})`);
      byName.set(f.name, f);
    }
  }
  return byName;
}

/** `parseArgs` options for `surfaces`. */
export function parseArgsOptions(surfaces: readonly Surface[]): ParseArgsOptionsConfig {
  const options: ParseArgsOptionsConfig = {};
  for (const f of flagTable(surfaces).values()) {
    options[f.name] = {
      type: f.type === "boolean" ? "boolean" : "string",
      ...(f.short ? { short: f.short } : {}),
    };
  }
  return options;
}

/**
 * Parses `argv` against `surfaces`: strict (unknown flags and missing values are usage
 * errors), every value checked by its row, defaults and environment variables applied.
 * @param env environment lookup for rows with `env`
 * @throws {UsageError} naming the flag and the accepted forms
 */
export function parseOptions(
  argv: string[],
  surfaces: readonly Surface[],
  opts: { positionals?: boolean; env?: (key: string) => string | undefined } = {},
): { options: Options; positionals: string[] } {
  const byName = flagTable(surfaces);
  const config = parseArgsOptions(surfaces);
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: config,
      strict: true,
      allowPositionals: opts.positionals ?? false,
    });
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    const m = /Unknown option '([^']+)'/.exec(msg);
    if (m) {
      const known = Object.keys(config).map((k) => `--${k}`).join(" ");
      throw new UsageError(`Unknown flag '${m[1]}': accepted flags are ${known}`);
    }
    throw new UsageError(msg.split("\n")[0]!.replace(/\.$/, ""));
  }
  const env = opts.env ?? ((k: string) => Deno.env.get(k));
  const values = new Map<string, Value>();
  const given = new Set<string>();
  for (const f of byName.values()) {
    const raw = (parsed.values as Record<string, string | boolean | undefined>)[f.name];
    if (raw !== undefined) {
      given.add(f.name);
      values.set(f.name, typeof raw === "boolean" ? raw : checkValue(f, raw));
      continue;
    }
    const fromEnv = f.env ? env(f.env) : undefined;
    if (fromEnv !== undefined && fromEnv !== "") {
      values.set(f.name, checkValue(f, fromEnv));
    } else if (f.default !== undefined) values.set(f.name, f.default);
  }
  return { options: new Options(byName, values, given), positionals: parsed.positionals };
}

/** The placeholder-and-name column of a row: `--name ARG`. */
function flagColumn(f: Flag): string {
  const arg = f.type === "boolean"
    ? ""
    : ` ${f.arg ?? (f.type === "choice" ? f.choices!.join("|") : "V")}`;
  return `${f.short ? `-${f.short}, ` : ""}--${f.name}${arg}`;
}

/** The default column of a row, or "" when it has none. */
function defaultColumn(f: Flag): string {
  if (f.defaultText !== undefined) return f.defaultText;
  if (f.default === undefined || f.default === false) return "";
  return String(f.default);
}

/** `--help` lines for `surfaces`: one per flag, with its default and environment variable. */
export function helpLines(surfaces: readonly Surface[]): string[] {
  const lines: string[] = [];
  // Long flag columns go on a line of their own instead of widening every row.
  const w = Math.min(
    22,
    Math.max(...surfaces.flatMap((s) => s.flags.map((f) => flagColumn(f).length))),
  );
  const row = (col: string, text: string) =>
    lines.push(
      col.length > w ? `  ${col}\n  ${"".padEnd(w)}  ${text}` : `  ${col.padEnd(w)}  ${text}`,
    );
  for (const s of surfaces) {
    lines.push("", `${s.title}:`);
    for (const f of s.flags) {
      const d = defaultColumn(f);
      const extra = [d && `default ${d}`, f.env && `env ${f.env}`].filter(Boolean).join("; ");
      row(flagColumn(f), `${f.help}${extra ? ` (${extra})` : ""}`);
    }
    for (const e of s.environment ?? []) row(`$${e.name}`, e.help);
  }
  return lines;
}

/** A Markdown table cell: pipes escaped, nothing that breaks the row. */
function cell(s: string): string {
  return s.replaceAll("|", "\\|").replaceAll("\n", " ");
}

/** The README's table rows of one surface (header included), cells unpadded. */
export function markdownRows(s: Surface): string[][] {
  return [
    ["flag", "type", "default", "env", "what"],
    ...s.flags.map((f) => [
      "`" + cell(flagColumn(f)) + "`",
      f.type,
      cell(defaultColumn(f)),
      f.env ? "`" + f.env + "`" : "",
      cell(f.help),
    ]),
    ...(s.environment ?? []).map((e) => ["", "env", "", "`" + e.name + "`", cell(e.help)]),
  ];
}

/**
 * The README's Markdown for `surfaces`: a heading and a table each.
 * @param usedBy the commands that accept each surface, named under its heading
 */
export function markdownTables(
  surfaces: readonly Surface[],
  usedBy: ReadonlyMap<Surface, readonly string[]> = new Map(),
): string {
  const out: string[] = [];
  for (const s of surfaces) {
    const rows = markdownRows(s);
    const who = usedBy.get(s);
    out.push(`#### ${s.name}`, "", `${s.title}${who ? ` (${who.join(", ")})` : ""}.`, "");
    out.push(`| ${rows[0]!.join(" | ")} |`);
    out.push(`| ${rows[0]!.map(() => "---").join(" | ")} |`);
    for (const r of rows.slice(1)) out.push(`| ${r.join(" | ")} |`);
    out.push("");
  }
  return out.join("\n");
}
