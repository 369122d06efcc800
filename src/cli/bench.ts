/**
 * `boltzmann bench <name>`: benchmarks that print figures (never timed assertions). Each
 * benchmark's flags are a surface in flags.ts; this file maps the parsed options to the
 * benchmark's own options type (src/bench/ never reads flags).
 *
 * @module
 */
import { type Command, parseCommand, usage } from "./command.ts";
import { type Options, type Surface, UsageError } from "./args.ts";
import { hparamsFromFlags } from "./config.ts";
import {
  BENCH_CONVERGE,
  BENCH_DATA,
  BENCH_HPARAMS,
  BENCH_PROTOCOL,
  BENCH_TRAIN,
  ENGINE,
  HPARAMS,
} from "./flags.ts";
import { bench as indices } from "../bench/indices.ts";
import { bench as train } from "../bench/train.ts";
import { bench as data } from "../bench/data.ts";
import { bench as slices } from "../bench/slices.ts";
import { bench as converge } from "../bench/converge.ts";
import { bench as protocol } from "../bench/protocol.ts";
import { networkCodec } from "../roles/exchange.ts";
import { parseCodec } from "../protocol/codec.ts";

/** A benchmark as the CLI sees it: its flags and how they become its options. */
interface Entry {
  summary: string;
  surfaces: readonly Surface[];
  run(o: Options): Promise<number>;
}

const json = (o: Options) => o.bool("json");

/** `--codec SPEC`, a bad spec a usage error (exit 2). */
function codecFlag(text: string) {
  try {
    return parseCodec(text);
  } catch (e) {
    throw new UsageError(`--codec: ${(e as Error).message}`);
  }
}

/** Every benchmark, by name. */
export const BENCHES: Readonly<Record<string, Entry>> = {
  indices: {
    summary: indices.summary,
    surfaces: [BENCH_HPARAMS],
    run: async (o) => indices.run({ hp: await hparamsFromFlags(o, "seed"), json: json(o) }),
  },
  train: {
    summary: train.summary,
    surfaces: [BENCH_TRAIN, HPARAMS],
    run: async (o) =>
      train.run({
        hp: await hparamsFromFlags(o),
        device: o.choice<"cpu" | "cuda">("device"),
        steps: o.num("steps"),
        threads: o.numOpt("threads") ?? (navigator.hardwareConcurrency || 2),
        json: json(o),
        profile: o.strOpt("profile"),
        ladder: o.bool("ladder")
          ? {
            rungs: o.strOpt("rungs")?.split(",").map((s) => s.trim()).filter(Boolean),
            pairs: o.num("pairs"),
            python: o.str("python"),
          }
          : undefined,
      }),
  },
  data: {
    summary: data.summary,
    surfaces: [BENCH_DATA],
    run: (o) => data.run({ mb: o.num("mb"), refMb: o.num("ref-mb"), json: json(o) }),
  },
  slices: {
    summary: slices.summary,
    surfaces: [BENCH_HPARAMS],
    run: async (o) => slices.run({ hp: await hparamsFromFlags(o, "seed"), json: json(o) }),
  },
  converge: {
    summary: converge.summary,
    surfaces: [BENCH_CONVERGE, HPARAMS, ENGINE],
    run: async (o) =>
      converge.run({
        hp: await hparamsFromFlags(o),
        miners: o.num("miners"),
        windows: o.num("windows"),
        batches: o.num("batches"),
        evalBatches: o.num("eval-batches"),
        evalEvery: o.numOpt("eval-every"),
        codec: o.strOpt("codec"),
        runs: o.strOpt("runs"),
        seed: o.num("seed"),
        threads: o.numOpt("threads") ?? (navigator.hardwareConcurrency || 2),
        device: o.choice<"cpu" | "cuda">("device"),
        plot: o.strOpt("plot"),
        json: json(o),
      }),
  },
  protocol: {
    summary: protocol.summary,
    surfaces: [BENCH_PROTOCOL, HPARAMS],
    run: async (o) => {
      const hp = await hparamsFromFlags(o);
      const codec = o.strOpt("codec");
      return protocol.run({
        hp,
        spec: codec === undefined ? networkCodec(hp) : codecFlag(codec),
        peers: o.num("peers"),
        repeat: o.num("repeat"),
        json: json(o),
      });
    },
  },
};

const ABOUT = [
  "boltzmann bench <name> [flags]   (boltzmann bench <name> --help for its flags)",
  "",
  "Benchmarks (each compares against a reference measured in the same run):",
  ...Object.entries(BENCHES).map(([n, b]) => `  ${n.padEnd(8)}  ${b.summary}`),
  "",
  "See docs/PERFORMANCE.md.",
].join("\n");

function entry(name: string | undefined): Entry {
  const b = name === undefined ? undefined : BENCHES[name];
  if (!b) {
    throw new UsageError(
      `Unknown benchmark '${name ?? ""}': use one of ${Object.keys(BENCHES).join(", ")}`,
    );
  }
  return b;
}

export const command: Command = {
  about: ABOUT,
  surfaces: [],
  help(argv) {
    const name = argv[0];
    const b = name !== undefined && !name.startsWith("-") ? BENCHES[name] : undefined;
    return b ? usage(`boltzmann bench ${name} [flags]\n\n${b.summary}`, b.surfaces) : ABOUT;
  },
  async run(argv) {
    const [name, ...rest] = argv;
    const b = entry(name);
    const { o } = parseCommand(rest, b.surfaces);
    return await b.run(o);
  },
};
