/**
 * The CLI's schema: every subcommand (its name, its line in the top-level help, the module
 * that runs it) and every flag of every subcommand, one {@link Surface} per group.
 * Parsing, validation, `--help` and the README's flag tables are all derived from these
 * rows (see `args.ts`). A new flag goes here, in the surface of the commands that read it; the
 * README section between the `flags:begin`/`flags:end` markers is regenerated with
 * `deno task flags` and a test fails when it is stale.
 *
 * Lists of accepted values that live in heavy modules (the chain's networks, the data
 * sources) are written out here so that a command's start does not load the chain
 * client; tests/flags_test.ts checks they equal the modules' own lists.
 *
 * @module
 */
import { LOG_FORMATS, LOG_LEVELS } from "../log.ts";
import { ADVERSARIES } from "../roles/adversary.ts";
import { PRESETS } from "../hparams.ts";
import type { Surface } from "./args.ts";
import type { Command } from "./command.ts";

/** `chain/subtensor.ts` NETWORKS, written out (see the module doc). */
export const NETWORK_NAMES = ["finney", "test", "local"] as const;
/** `data/open.ts` DATASETS, written out (see the module doc). */
export const DATASET_NAMES = ["embedded", "fineweb"] as const;

const PRESET_NAMES = Object.keys(PRESETS).join("|");

/**
 * A subcommand's name and its one line in the top-level help (the only place they are
 * written); its module loads only when it runs (fast start: loading every command's
 * modules up front adds 1.2–1.9 s to `boltzmann --help`, measured 2026-12-02).
 */
interface Entry {
  name: string;
  summary: string;
  load: () => Promise<{ command: Command }>;
}

/** Every subcommand, in the order of the top-level help. */
export const COMMANDS: readonly Entry[] = [
  {
    name: "miner",
    summary: "Train the shared model on your assigned pages and publish signed updates",
    load: () => import("./miner.ts"),
  },
  {
    name: "validator",
    summary: "Lead or follow the shared model, score miners' updates, set weights",
    load: () => import("./validator.ts"),
  },
  {
    name: "inspect",
    summary: "Everything about one window (--window N), or one slice file (--slice FILE)",
    load: () => import("./inspect.ts"),
  },
  {
    name: "devnet",
    summary: "Run a whole local network: chain, storage, miners, adversaries, validator",
    load: () => import("./devnet.ts"),
  },
  {
    name: "localnet",
    summary: "Start a local subtensor chain from the embedded genesis",
    load: () => import("./localnet.ts"),
  },
  {
    name: "train",
    summary: "Train the model locally on the embedded corpus",
    load: () => import("./train.ts"),
  },
  {
    name: "grad",
    summary: "Loss and gradients of a checkpoint on given tokens",
    load: () => import("./grad.ts"),
  },
  { name: "init", summary: "Write a fresh checkpoint", load: () => import("./init.ts") },
  {
    name: "data",
    summary: "Show the pages a (window, uid) trains on",
    load: () => import("./data.ts"),
  },
  {
    name: "wallet",
    summary: "Create or show bittensor-compatible wallets",
    load: () => import("./wallet.ts"),
  },
  {
    name: "doctor",
    summary: "Check this machine, or preflight a wallet, chain and bucket (PASS/FAIL)",
    load: () => import("./doctor.ts"),
  },
  {
    name: "bench",
    summary: "Benchmarks that print figures against a reference measured in the same run",
    load: () => import("./bench.ts"),
  },
];

/** Flags every subcommand understands. */
export const GLOBAL: Surface = {
  name: "global",
  title: "Global",
  flags: [
    { name: "help", short: "h", type: "boolean", help: "print the command's help and exit" },
    { name: "json", type: "boolean", help: "machine-readable output (JSON)" },
    {
      name: "log-level",
      type: "choice",
      choices: LOG_LEVELS,
      default: "info",
      help: "least severe log record printed (debug also prints stack traces)",
    },
    {
      name: "log-format",
      type: "choice",
      choices: LOG_FORMATS,
      default: "text",
      help: "log records as text lines or JSON lines (on stderr)",
    },
  ],
};

/** The hotkey that signs, in btcli's wallet layout. */
export const WALLET: Surface = {
  name: "wallet",
  title: "Wallet (btcli layout)",
  flags: [
    {
      name: "wallet.name",
      type: "string",
      arg: "N",
      defaultText: "default",
      help: "the wallet (coldkey) name",
    },
    {
      name: "wallet.hotkey",
      type: "string",
      arg: "H",
      defaultText: "default",
      help: "the hotkey that signs",
    },
    {
      name: "wallet.path",
      type: "string",
      arg: "P",
      env: "BT_WALLET_PATH",
      defaultText: "~/.bittensor/wallets",
      help: "wallets folder",
    },
  ],
};

/** Which chain and subnet. */
export const CHAIN: Surface = {
  name: "chain",
  title: "Chain",
  flags: [
    {
      name: "subtensor.network",
      type: "choice",
      choices: NETWORK_NAMES,
      defaultText: "finney",
      help: "a public network by name",
    },
    {
      name: "subtensor.chain_endpoint",
      type: "string",
      arg: "URL",
      help: "a node's ws:// or wss:// endpoint instead of a named network",
    },
    { name: "netuid", type: "int", arg: "N", max: 65535, help: "the subnet" },
  ],
};

/** Our own bucket. */
export const STORAGE: Surface = {
  name: "storage",
  title: "Storage ($VARIABLES: from the environment, or .env in the working directory)",
  environment: [
    {
      name: "AWS_ACCESS_KEY_ID",
      help: "our bucket's key id (with the secret; neither: anonymous)",
    },
    { name: "AWS_SECRET_ACCESS_KEY", help: "our bucket's secret key (never logged)" },
    { name: "AWS_SESSION_TOKEN", help: "temporary credentials' session token" },
    { name: "AWS_ENDPOINT_URL", help: "S3 endpoint (R2, MinIO; AWS_ENDPOINT_URL_S3 wins)" },
    { name: "AWS_REGION", help: "S3 region (or AWS_DEFAULT_REGION; default us-east-1)" },
    { name: "AWS_S3_FORCE_PATH_STYLE", help: "true: path-style URLs instead of bucket hosts" },
    {
      name: "BOLTZMANN_READ_ACCESS_KEY_ID",
      help: "read-only key id committed on chain for peers (public: anyone can read it)",
    },
    { name: "BOLTZMANN_READ_SECRET_ACCESS_KEY", help: "its secret (public too)" },
  ],
  flags: [
    {
      name: "bucket",
      type: "string",
      arg: "B",
      help: "our bucket: s3://name[/prefix], file:///abs/dir, a directory, or a bucket name",
    },
  ],
};

/**
 * `--preset` and `--hparams`; `preset` is the default shown (the code passes the same
 * fallback to `hparamsFromFlags`, because a `--hparams` file may name its own preset).
 */
export function hparamsSurface(preset: string): Surface {
  return {
    name: preset === "tiny" ? "hparams" : `hparams (default ${preset})`,
    title: "Hyper-parameters (all peers must agree)",
    flags: [
      {
        name: "preset",
        type: "string",
        arg: PRESET_NAMES,
        defaultText: preset,
        help: "model and training preset",
      },
      {
        name: "hparams",
        type: "string",
        arg: "FILE",
        help: "JSON overrides with the original's hparams.json keys (may name a preset)",
      },
    ],
  };
}

/** `--preset` (default tiny) and `--hparams`. */
export const HPARAMS: Surface = hparamsSurface("tiny");

/** `--preset` (default seed) and `--hparams` of `bench indices` and `bench slices`. */
export const BENCH_HPARAMS: Surface = hparamsSurface("seed");

/** Compute flags of the commands that run the training engine. */
export const ENGINE: Surface = {
  name: "engine",
  title: "Compute",
  flags: [
    {
      name: "device",
      type: "choice",
      choices: ["cpu", "cuda"],
      default: "cpu",
      help: "cuda: ONNX Runtime's CUDA provider",
    },
    {
      name: "threads",
      type: "int",
      arg: "N",
      min: 1,
      max: 1024,
      defaultText: "one per core",
      help: "ONNX Runtime intra-op threads",
    },
  ],
};

/** The training data source (miner, validator, inspect, data). */
export const DATASET: Surface = {
  name: "dataset",
  title: "Data source",
  flags: [
    {
      name: "dataset",
      type: "choice",
      choices: DATASET_NAMES,
      default: "embedded",
      help: "built-in corpus (no network) or HuggingFaceFW/fineweb-edu-score-2",
    },
    {
      name: "fineweb-config",
      type: "string",
      arg: "C",
      defaultText: "default",
      help: "fineweb config",
    },
    {
      name: "fineweb-rows",
      type: "int",
      arg: "N",
      default: 0,
      defaultText: "ask the server",
      help: "pin the row count instead of asking the server (all peers must agree)",
    },
    {
      name: "fineweb-url",
      type: "string",
      arg: "URL",
      defaultText: "https://datasets-server.huggingface.co",
      help: "datasets-server base URL",
    },
    {
      name: "data-cache-mb",
      type: "int",
      arg: "N",
      max: 1 << 20,
      default: 1024,
      help: "fineweb page cache cap in MB under $XDG_CACHE_HOME/boltzmann/fineweb (0: none)",
    },
  ],
};

/** What a miner and a validator share beyond wallet, chain, storage, engine and data. */
export const PARTICIPANT: Surface = {
  name: "participant",
  title: "Running",
  flags: [
    {
      name: "checkpoint",
      type: "string",
      arg: "DIR",
      defaultText: "the init",
      help: "θ_0 of a new network (a running network's θ: the lead validator's checkpoint)",
    },
    {
      name: "state-dir",
      type: "string",
      arg: "DIR",
      defaultText: "~/.cache/boltzmann/state/<hotkey>",
      help: "our local state (pending weight commits)",
    },
    { name: "metrics", type: "string", arg: "HOST:PORT", help: "serve Prometheus metrics" },
    { name: "max-windows", type: "int", arg: "N", min: 1, help: "stop after N windows" },
  ],
};

/** Flag surfaces of `miner` and `validator` (each adds its own). */
export const PARTICIPANT_SURFACES: readonly Surface[] = [
  WALLET,
  CHAIN,
  STORAGE,
  HPARAMS,
  ENGINE,
  DATASET,
  PARTICIPANT,
];

/** `boltzmann miner`'s own flags. */
export const MINER: Surface = {
  name: "miner",
  title: "Miner",
  flags: [
    {
      name: "max-batches",
      type: "int",
      arg: "N",
      min: 1,
      help: "at most N micro-batches per window",
    },
    {
      name: "adversary",
      type: "choice",
      choices: ADVERSARIES,
      arg: "K",
      help: `misbehave on purpose (devnet/tests): ${ADVERSARIES.join(", ")}`,
    },
  ],
};

/** `boltzmann validator`'s own flags. */
export const VALIDATOR: Surface = {
  name: "validator",
  title: "Validator",
  flags: [
    {
      name: "eval-batches",
      type: "int",
      arg: "N",
      min: 1,
      max: 1000,
      default: 2,
      help: "batches of a miner's pages recomputed",
    },
  ],
};

/** `boltzmann inspect`'s own flags. */
export const INSPECT: Surface = {
  name: "inspect",
  title: "Inspect",
  flags: [
    { name: "slice", type: "string", arg: "FILE", help: "validate and summarise this slice file" },
    {
      name: "window",
      type: "int",
      arg: "N",
      help: "the window to show (with --slice: the window the slice must be for)",
    },
    {
      name: "checkpoint",
      type: "string",
      arg: "DIR",
      help: "the model to check against (its config.json; with --window: its parameters)",
    },
    {
      name: "kind",
      type: "choice",
      choices: ["state", "delta"],
      help: "the kind the slice must be (default: from its file name)",
    },
    { name: "hotkey", type: "string", arg: "SS58", help: "the uploader the slice must be from" },
    { name: "plot", type: "string", arg: "FILE.svg", help: "write the window's cosines as an SVG" },
    { name: "no-grad", type: "boolean", help: "skip recomputing gradients for --window" },
  ],
};

/** `boltzmann devnet`'s own flags. */
export const DEVNET: Surface = {
  name: "devnet",
  title: "Devnet",
  flags: [
    { name: "miners", type: "int", arg: "N", min: 1, max: 64, default: 4, help: "honest miners" },
    {
      name: "windows",
      type: "int",
      arg: "N",
      min: 1,
      max: 100_000,
      default: 16,
      help: "windows the validator scores",
    },
    {
      name: "adversaries",
      type: "string",
      arg: "LIST",
      defaultText: "all",
      help: "comma-separated subset of the adversaries, or none",
      check: (v) =>
        v === "none" ||
          String(v).split(",").every((a) => (ADVERSARIES as readonly string[]).includes(a))
          ? undefined
          : `${ADVERSARIES.join(", ")} (comma-separated) or none`,
    },
    {
      name: "block-ms",
      type: "int",
      arg: "MS",
      min: 200,
      max: 60_000,
      defaultText: "sized to this machine: 10 gradients, at least 5000",
      help: "block time of the local chain",
    },
    {
      name: "max-batches",
      type: "int",
      arg: "N",
      min: 1,
      max: 1000,
      default: 1,
      help: "micro-batches per miner per window",
    },
    {
      name: "port",
      type: "int",
      arg: "P",
      max: 65535,
      default: 0,
      defaultText: "a free one",
      help: "chain RPC port",
    },
    { name: "out", type: "string", arg: "DIR", default: "./devnet-report", help: "report folder" },
    { name: "no-baseline", type: "boolean", help: "skip the one-miner-alone comparison" },
    {
      name: "commit-reveal",
      type: "boolean",
      help: "turn commit-reveal weights on for the subnet (reveal one epoch after the commit)",
    },
  ],
};

/** `boltzmann localnet`'s own flags. */
export const LOCALNET: Surface = {
  name: "localnet",
  title: "Local chain",
  flags: [
    {
      name: "port",
      type: "int",
      arg: "P",
      max: 65535,
      default: 9944,
      help: "port on 127.0.0.1 (0: any free port)",
    },
    {
      name: "block-ms",
      type: "int",
      arg: "MS",
      max: 3_600_000,
      default: 12_000,
      help: "block time (0: a block per transaction only)",
      check: (v) => (v === 0 || Number(v) >= 200 ? undefined : "0 or at least 200"),
    },
    {
      name: "tempo",
      type: "int",
      arg: "T",
      min: 1,
      max: 65535,
      default: 10,
      help: "subnet tempo in blocks",
    },
    {
      name: "hotkeys",
      type: "string",
      arg: "LIST",
      help: "comma-separated SS58 hotkeys or dev URIs (//Alice) to register",
    },
    {
      name: "commit-reveal",
      type: "boolean",
      help: "turn commit-reveal weights on for the subnet (reveal one epoch after the commit)",
    },
  ],
};

/** `boltzmann train`'s own flags. */
export const TRAIN: Surface = {
  name: "train",
  title: "Training",
  flags: [
    {
      name: "checkpoint",
      type: "string",
      arg: "DIR",
      help: "start from this Hugging Face checkpoint instead of a fresh init",
    },
    { name: "steps", type: "int", arg: "N", min: 1, default: 200, help: "optimizer steps" },
    {
      name: "batch",
      type: "int",
      arg: "B",
      min: 1,
      max: 1 << 16,
      defaultText: "the preset's",
      help: "rows per micro-batch",
    },
    {
      name: "seq",
      type: "int",
      arg: "T",
      min: 2,
      max: 1 << 20,
      defaultText: "the preset's",
      help: "tokens per row",
    },
    {
      name: "accum",
      type: "int",
      arg: "K",
      min: 1,
      max: 1 << 16,
      default: 1,
      help: "micro-batches per step",
    },
    {
      name: "seed",
      type: "int",
      arg: "S",
      default: 0,
      help: "initialisation seed for a fresh model",
    },
    {
      name: "eval-batches",
      type: "int",
      arg: "N",
      max: 1 << 16,
      default: 4,
      help: "held-out batches for the before/after loss (0: skip)",
    },
    { name: "out", type: "string", arg: "DIR", help: "write the trained checkpoint here" },
  ],
};

/** `boltzmann grad`'s own flags. */
export const GRAD: Surface = {
  name: "grad",
  title: "Gradients",
  flags: [
    {
      name: "checkpoint",
      type: "string",
      arg: "DIR",
      help: "Hugging Face checkpoint (config.json + model.safetensors)",
    },
    { name: "tokens", type: "string", arg: "FILE", help: "token rows as JSON [[id, ...], ...]" },
    { name: "out", type: "string", arg: "FILE", help: "gradient file to write (atomically)" },
  ],
};

/** `boltzmann init`'s own flags. */
export const INIT: Surface = {
  name: "init",
  title: "Checkpoint",
  flags: [
    { name: "seed", type: "int", arg: "S", default: 0, help: "initialisation seed" },
    { name: "out", type: "string", arg: "DIR", help: "checkpoint directory to write" },
    {
      name: "dtype",
      type: "choice",
      choices: ["f32", "bf16"],
      default: "f32",
      help: "on-disk element type",
    },
  ],
};

/** `boltzmann data`'s own flags. */
export const DATA: Surface = {
  name: "data",
  title: "Pages",
  flags: [
    { name: "window", type: "int", arg: "W", help: "window number (required)" },
    { name: "uid", type: "int", arg: "U", max: 65535, help: "miner uid (required)" },
    {
      name: "rows",
      type: "int",
      arg: "K",
      max: 1000,
      default: 2,
      help: "rows of text to preview per page",
    },
    {
      name: "chars",
      type: "int",
      arg: "N",
      default: 300,
      help: "characters per previewed row (0: whole rows)",
    },
  ],
};

/** `boltzmann wallet`'s own flags (it also takes {@link WALLET}'s as aliases). */
export const WALLET_CMD: Surface = {
  name: "wallet command",
  title: "Wallet command (--wallet.name, --wallet.hotkey also work)",
  flags: [
    { name: "name", type: "string", arg: "N", help: "the wallet (coldkey) name" },
    { name: "hotkey", type: "string", arg: "H", help: "the hotkey name" },
  ],
};

/** `bench train`'s own flags. */
export const BENCH_TRAIN: Surface = {
  name: "bench train",
  title: "Benchmark",
  flags: [
    { name: "steps", type: "int", arg: "N", min: 1, max: 1000, default: 5, help: "timed steps" },
    {
      name: "threads",
      type: "int",
      arg: "N",
      min: 1,
      max: 1024,
      defaultText: "one per core",
      help: "ONNX Runtime intra-op threads",
    },
    {
      name: "device",
      type: "choice",
      choices: ["cpu", "cuda"],
      default: "cpu",
      help: "execution provider",
    },
    {
      name: "profile",
      type: "string",
      arg: "PREFIX",
      help: "write ONNX Runtime's per-node profile of the step graph to PREFIX_<time>.json",
    },
    {
      name: "ladder",
      type: "boolean",
      help: "run tiny, 58M and the largest model that fits memory, each against " +
        "bench/torch_step.py when PyTorch imports (docs/PERFORMANCE.md)",
    },
    {
      name: "rungs",
      type: "string",
      arg: "LIST",
      help:
        "--ladder: only the rungs whose names contain these, comma-separated (tiny,58M,largest)",
    },
    {
      name: "pairs",
      type: "int",
      arg: "N",
      min: 1,
      max: 20,
      default: 1,
      help: "--ladder: back-to-back runs of ours then PyTorch per rung (medians reported)",
    },
    {
      name: "python",
      type: "string",
      arg: "EXE",
      default: "python3",
      help: "--ladder: the Python that runs bench/torch_step.py",
    },
  ],
};

/** `bench data`'s own flags. */
export const BENCH_DATA: Surface = {
  name: "bench data",
  title: "Benchmark",
  flags: [
    {
      name: "mb",
      type: "number",
      arg: "MB",
      min: 0,
      max: 100,
      default: 4,
      help: "megabytes of text for our tokenizer",
      check: (v) => (Number(v) > 0 ? undefined : "megabytes from 0 to 100"),
    },
    {
      name: "ref-mb",
      type: "number",
      arg: "MB",
      min: 0,
      max: 100,
      default: 0.5,
      help: "megabytes of text for the reference tokenizer",
      check: (v) => (Number(v) > 0 ? undefined : "megabytes from 0 to 100"),
    },
  ],
};

/** `bench converge`'s own flags. */
export const BENCH_CONVERGE: Surface = {
  name: "bench converge",
  title: "Benchmark",
  flags: [
    { name: "miners", type: "int", arg: "N", min: 1, max: 64, default: 4, help: "honest miners" },
    { name: "windows", type: "int", arg: "W", min: 1, max: 100000, default: 30, help: "windows" },
    {
      name: "batches",
      type: "int",
      arg: "B",
      min: 1,
      max: 1000,
      default: 2,
      help: "micro-batches per miner per window",
    },
    {
      name: "eval-batches",
      type: "int",
      arg: "N",
      min: 1,
      max: 1000,
      default: 2,
      help: "held-out batches of the loss",
    },
    {
      name: "eval-every",
      type: "int",
      arg: "N",
      min: 1,
      max: 100000,
      defaultText: "windows / 10",
      help: "held-out loss every N windows (curves)",
    },
    {
      name: "codec",
      type: "string",
      arg: "LIST",
      defaultText: "the default codec",
      help: "protocol-v2 codec settings, comma-separated: SPEC[+pc][+lr=X] (docs/PROTOCOL.md)",
    },
    {
      name: "runs",
      type: "string",
      arg: "LIST",
      defaultText: "all",
      help: "which of alone,data_parallel,seed_protocol,protocol to run",
    },
    { name: "seed", type: "int", arg: "N", min: 0, max: 2147483647, default: 0, help: "init seed" },
    { name: "plot", type: "string", arg: "FILE", help: "write the loss curves as SVG" },
  ],
};

/** `bench protocol`'s own flags (with `--preset`/`--hparams`, default tiny). */
export const BENCH_PROTOCOL: Surface = {
  name: "bench protocol",
  title: "Benchmark",
  flags: [
    {
      name: "codec",
      type: "string",
      arg: "SPEC",
      defaultText: "the network's codec",
      help: "protocol-v2 codec to encode and decode (docs/PROTOCOL.md)",
    },
    {
      name: "peers",
      type: "int",
      arg: "N",
      min: 1,
      max: 256,
      default: 10,
      help: "peers in the aggregate",
    },
    {
      name: "repeat",
      type: "int",
      arg: "N",
      min: 1,
      max: 1000,
      default: 3,
      help: "runs per figure (the best is printed)",
    },
  ],
};

/** Every surface, in the README's order. */
export const SURFACES: readonly Surface[] = [
  GLOBAL,
  ...PARTICIPANT_SURFACES,
  MINER,
  VALIDATOR,
  INSPECT,
  DEVNET,
  LOCALNET,
  TRAIN,
  GRAD,
  INIT,
  DATA,
  WALLET_CMD,
  BENCH_HPARAMS,
  BENCH_TRAIN,
  BENCH_DATA,
  BENCH_CONVERGE,
  BENCH_PROTOCOL,
];
