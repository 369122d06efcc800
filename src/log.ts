/**
 * Logging: the root logger setup (`@logtape/logtape`). Modules take named children with
 * `getLogger(["boltzmann", "module"])`; only the CLI calls {@link setupLogging}.
 *
 * @module
 */
import { configure, getLogger, type LogLevel, type LogRecord, reset } from "@logtape/logtape";

export { getLogger };

/** Accepted `--log-level` values. */
export const LOG_LEVELS = ["trace", "debug", "info", "warning", "error", "fatal"] as const;
/** Accepted `--log-format` values. */
export const LOG_FORMATS = ["text", "json"] as const;

function renderMessage(r: LogRecord): string {
  return r.message.map((m) => (typeof m === "string" ? m : JSON.stringify(m))).join("");
}

/** One readable line: `HH:MM:SS LEVEL module: message key=value ...`. */
export function textLine(r: LogRecord): string {
  const t = new Date(r.timestamp).toISOString().slice(11, 19);
  const lvl = r.level.toUpperCase().padEnd(7);
  const mod = r.category.slice(1).join(".") || "boltzmann";
  return `${t} ${lvl} ${mod}: ${renderMessage(r)}`;
}

/** One JSON object per line with the record's properties as fields. */
export function jsonLine(r: LogRecord): string {
  return JSON.stringify({
    time: new Date(r.timestamp).toISOString(),
    level: r.level,
    logger: r.category.join("."),
    msg: renderMessage(r),
    ...r.properties,
  });
}

/** Configure the root logger to write to stderr. Safe to call more than once. */
export async function setupLogging(
  level: LogLevel = "info",
  format: "text" | "json" = "text",
): Promise<void> {
  await reset();
  const fmt = format === "json" ? jsonLine : textLine;
  await configure({
    sinks: {
      stderr: (r: LogRecord) => {
        console.error(fmt(r));
      },
    },
    loggers: [
      { category: ["boltzmann"], lowestLevel: level, sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
}
