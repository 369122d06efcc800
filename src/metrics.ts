/**
 * A small Prometheus registry: gauges and counters with labels, rendered in the text
 * exposition format (version 0.0.4). Serving it over HTTP is the CLI's job.
 *
 * @module
 */

type Labels = Record<string, string | number>;

interface Family {
  type: "gauge" | "counter";
  help: string;
  values: Map<string, { labels: Labels; value: number }>;
}

function labelKey(labels: Labels): string {
  return Object.keys(labels).sort().map((k) => `${k}=${labels[k]}`).join(",");
}

function escapeLabel(v: string | number): string {
  return String(v).replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

/** Metric names must match Prometheus' `[a-zA-Z_:][a-zA-Z0-9_:]*`. */
const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

/** A registry of named metric families. */
export class Metrics {
  #families = new Map<string, Family>();

  #family(name: string, type: Family["type"], help: string): Family {
    if (!NAME.test(name)) throw new RangeError(`Invalid metric name '${name}'`);
    let f = this.#families.get(name);
    if (!f) {
      f = { type, help, values: new Map() };
      this.#families.set(name, f);
    }
    return f;
  }

  /** Sets a gauge. */
  set(name: string, value: number, labels: Labels = {}, help = name): void {
    this.#family(name, "gauge", help).values.set(labelKey(labels), { labels, value });
  }

  /** Adds `by` (default 1) to a counter. */
  inc(name: string, labels: Labels = {}, by = 1, help = name): void {
    const f = this.#family(name, "counter", help);
    const k = labelKey(labels);
    const cur = f.values.get(k);
    f.values.set(k, { labels, value: (cur?.value ?? 0) + by });
  }

  /** Current value, or undefined. */
  get(name: string, labels: Labels = {}): number | undefined {
    return this.#families.get(name)?.values.get(labelKey(labels))?.value;
  }

  /** The text exposition format. */
  render(): string {
    const out: string[] = [];
    for (const [name, f] of this.#families) {
      out.push(`# HELP ${name} ${f.help}`, `# TYPE ${name} ${f.type}`);
      for (const { labels, value } of f.values.values()) {
        const ls = Object.keys(labels).sort().map((k) => `${k}="${escapeLabel(labels[k]!)}"`);
        const v = Number.isFinite(value)
          ? String(value)
          : Number.isNaN(value)
          ? "NaN"
          : value > 0
          ? "+Inf"
          : "-Inf";
        out.push(`${name}${ls.length ? `{${ls.join(",")}}` : ""} ${v}`);
      }
    }
    return out.join("\n") + "\n";
  }
}
