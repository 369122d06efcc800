/**
 * The benchmark shape: one file per benchmark, each `run(options) → exit code` with the
 * options already parsed (the CLI's `bench` command maps flags to them; see
 * src/cli/bench.ts). Benchmarks print figures against a reference measured in the same
 * run and never assert on time.
 *
 * @module
 */

/** A benchmark that takes options `O`. */
export interface Bench<O> {
  summary: string;
  run(options: O): Promise<number>;
}
