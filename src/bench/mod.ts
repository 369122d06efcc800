/** The benchmark registry: one file per benchmark, each `run(argv) → exit code`. */
import { bench as indices } from "./indices.ts";
import { bench as train } from "./train.ts";
import { bench as data } from "./data.ts";
import { bench as slices } from "./slices.ts";

export interface Bench {
  summary: string;
  run(argv: string[]): Promise<number>;
}

export const BENCHES: Readonly<Record<string, Bench>> = { indices, train, data, slices };
