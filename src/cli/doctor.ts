/**
 * `boltzmann doctor`: without flags, what this machine can do — versions, which ONNX
 * Runtime execution providers actually run a graph, CUDA libraries found or missing, where
 * wallets and caches live, whether S3 credentials are set (never their values). With
 * wallet, chain or bucket flags, the preflight (src/cli/preflight.ts): a PASS/FAIL list,
 * exit code 1 on any FAIL.
 */
import { type Command, parseCommand } from "./command.ts";
import type { Options } from "./args.ts";
import { CHAIN, STORAGE, WALLET } from "./flags.ts";
import { loadEnv } from "./config.ts";
import { VERSION } from "../version.ts";
import { ortVersion, probeProvider } from "../onnx/probe.ts";

/** Shared libraries ONNX Runtime's CUDA 13 provider loads (ORT 1.29/1.30 builds). */
const CUDA_LIBS = [
  "libcuda.so.1",
  "libcudart.so.13",
  "libcublas.so.13",
  "libcublasLt.so.13",
  "libcufft.so.12",
  "libcudnn.so.9",
  "libonnxruntime_providers_shared.so",
  "libonnxruntime_providers_cuda.so",
];

function libDirs(env: (k: string) => string | undefined): string[] {
  const dirs = (env("LD_LIBRARY_PATH") ?? "").split(":").filter(Boolean);
  dirs.push(
    "/usr/lib/x86_64-linux-gnu",
    "/usr/local/cuda/lib64",
    "/usr/local/cuda/targets/x86_64-linux/lib",
    "/usr/lib64",
    "/lib/x86_64-linux-gnu",
  );
  const ortDir = env("BOLTZMANN_ORT_CUDA_DIR");
  if (ortDir) dirs.unshift(ortDir);
  return dirs;
}

function findLib(name: string, dirs: string[]): string | null {
  for (const d of dirs) {
    try {
      Deno.statSync(`${d}/${name}`);
      return `${d}/${name}`;
    } catch { /* not here */ }
  }
  return null;
}

const SURFACES = [WALLET, CHAIN, STORAGE];

/** `doctor` with wallet, chain or bucket flags: the preflight list. */
async function preflightCmd(o: Options): Promise<number> {
  const env = loadEnv();
  const network = o.strOpt("subtensor.network");
  const endpoint = o.strOpt("subtensor.chain_endpoint");
  if (network !== undefined || endpoint !== undefined) {
    o.need("netuid", "the subnet to check registration and parameters on");
  }
  // Dynamic: the chain client loads only when the preflight runs.
  const { defaultWalletPath } = await import("../chain/wallet.ts");
  const { formatChecks, preflight } = await import("./preflight.ts");
  const checks = await preflight({
    wallet: {
      walletPath: o.strOpt("wallet.path") ?? defaultWalletPath(env("HOME") ?? "."),
      name: o.strOpt("wallet.name") ?? "default",
      hotkey: o.strOpt("wallet.hotkey") ?? "default",
    },
    network: network as "finney" | "test" | "local" | undefined,
    endpoint,
    netuid: o.numOpt("netuid"),
    bucket: o.strOpt("bucket"),
    env,
  });
  const ok = !checks.some((c) => c.status === "fail");
  console.log(o.bool("json") ? JSON.stringify({ ok, checks }, null, 2) : formatChecks(checks));
  return ok ? 0 : 1;
}

export const command: Command = {
  about: `boltzmann doctor [--json]
boltzmann doctor --wallet.name W --wallet.hotkey H [--wallet.path P] [--json]
boltzmann doctor --subtensor.network finney|test|local (or --subtensor.chain_endpoint URL)
                 --netuid N --wallet.name W --wallet.hotkey H [--bucket B] [--json]

Without flags: the boltzmann, Deno, V8 and ONNX Runtime versions; a tiny ONNX graph on
each execution provider (cpu, cuda) and which ran; the CUDA libraries found or missing;
where wallets and caches live; whether S3 credentials are set.

With wallet flags only: the key alone (ss58 address, a sign/verify self-test).
With a network and --netuid: also the engine, the endpoint, runtime name and spec
version, every transaction extension understood, the hotkey registered (uid), permit
and stake, commit-reveal and reveal period, weights rate limit and version key, our
bucket commitment present and parseable. With --bucket: a probe object put, read and
deleted, and read back as a peer would, from the commitment alone.
Prints one PASS/FAIL/SKIP line per check; exit code 1 on any FAIL.`,
  surfaces: SURFACES,
  async run(argv) {
    const { o } = parseCommand(argv, SURFACES);
    const mine = SURFACES.flatMap((s) => s.flags.map((f) => f.name));
    if (mine.some((f) => o.given.has(f))) return await preflightCmd(o);
    const env = (k: string) => Deno.env.get(k);
    const home = env("HOME") ?? ".";
    const dirs = libDirs(env);
    const cuda = CUDA_LIBS.map((name) => ({ name, path: findLib(name, dirs) }));
    const providers = [await probeProvider("cpu"), await probeProvider("cuda")];
    const missing = cuda.filter((c) => !c.path).map((c) => c.name);
    // ORT's own message only says "Failed to load shared library": name which ones.
    for (const p of providers) {
      if (p.provider === "cuda" && !p.ok && missing.length) {
        p.error += ` (missing ${missing.join(", ")})`;
      }
    }
    const report = {
      boltzmann: VERSION,
      deno: Deno.version.deno,
      v8: Deno.version.v8,
      typescript: Deno.version.typescript,
      os: `${Deno.build.os}-${Deno.build.arch}`,
      cpus: navigator.hardwareConcurrency,
      onnxruntime: ortVersion(),
      providers,
      cuda_libraries: cuda,
      cuda_missing: missing,
      wallets: env("BT_WALLET_PATH") ?? `${home}/.bittensor/wallets`,
      cache: `${env("XDG_CACHE_HOME") ?? `${home}/.cache`}/boltzmann`,
      s3_credentials: {
        AWS_ACCESS_KEY_ID: env("AWS_ACCESS_KEY_ID") ? "set" : "unset",
        AWS_SECRET_ACCESS_KEY: env("AWS_SECRET_ACCESS_KEY") ? "set" : "unset",
        AWS_ENDPOINT_URL: env("AWS_ENDPOINT_URL") ?? "unset (AWS S3)",
        AWS_REGION: env("AWS_REGION") ?? "unset (us-east-1)",
      },
    };
    if (o.bool("json")) {
      console.log(JSON.stringify(report, null, 2));
      return 0;
    }
    const lines = [
      `boltzmann   ${report.boltzmann}`,
      `deno        ${report.deno} (V8 ${report.v8}, TypeScript ${report.typescript}) on ${report.os}, ${report.cpus} CPUs`,
      `onnxruntime ${report.onnxruntime}`,
      ...providers.map((p) =>
        `  provider ${p.provider.padEnd(5)} ${
          p.ok ? `ok (ran a graph in ${p.ms} ms)` : `unavailable: ${p.error}`
        }`
      ),
      `cuda libs   ${
        report.cuda_missing.length === 0 ? "all found" : `missing ${report.cuda_missing.join(", ")}`
      }`,
      ...cuda.filter((c) => c.path).map((c) => `  found ${c.path}`),
      `wallets     ${report.wallets}`,
      `cache       ${report.cache}`,
      `s3          ${Object.entries(report.s3_credentials).map(([k, v]) => `${k}=${v}`).join(" ")}`,
    ];
    console.log(lines.join("\n"));
    return providers[0]!.ok ? 0 : 1;
  },
};
