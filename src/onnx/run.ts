/**
 * Running graphs: the only importer of `onnxruntime-node`. A {@link Session} is created
 * once per graph and run many times; feeds and results are plain typed arrays so the
 * rest of the program never sees ORT types. CUDA is asked for by name; when its provider
 * libraries cannot load, the error names the missing library.
 *
 * @module
 */
import * as ort from "onnxruntime-node";
import { createRequire } from "node:module";
import type { DType } from "./graph.ts";

/** Typed array of a {@link DType}. */
export type Data = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;

/** One named input or output. */
export interface Value {
  data: Data;
  dims: readonly number[];
}

/** Where and how a graph runs. */
export interface SessionOptions {
  device?: "cpu" | "cuda";
  /** Intra-op threads (ORT default: one per core). */
  threads?: number;
  /** Graph optimisation level (default "all"; float64 graphs may need "basic"). */
  optimization?: "all" | "basic";
  /**
   * Plain malloc/free per tensor instead of ORT's CPU arena and pre-planned memory
   * pattern: at 58 M parameters peak RSS 3.46 → 2.28 GB for the same total CPU time
   * (fewer user cycles, more page faults; docs/PERFORMANCE.md). CPU only.
   */
  lowMemory?: boolean;
  /** Let idle intra-op threads spin (ORT's default; off here, see Session.create). */
  spin?: boolean;
  /** Write ORT's per-node profile (Chrome trace JSON) to `<profile>_<time>.json` on release. */
  profile?: string;
}

const ORT_TYPE: Record<DType, ort.Tensor.Type> = {
  float32: "float32",
  float64: "float64",
  int64: "int64",
  int32: "int32",
  bool: "bool",
};

/** The execution provider asked for cannot run here; the message names what is missing. */
export class DeviceError extends Error {
  override name = "DeviceError";
}

/** Where ONNX Runtime's native libraries live (the provider libraries must sit beside them). */
export function ortLibraryDir(): string {
  const index = createRequire(import.meta.url).resolve("onnxruntime-node");
  return index.replace(
    /dist\/index\.js$/,
    `bin/napi-v6/${Deno.build.os}/${Deno.build.arch === "x86_64" ? "x64" : "arm64"}`,
  );
}

/** Provider libraries ORT loads for CUDA, which the npm package does not ship. */
export const CUDA_PROVIDER_LIBS = [
  "libonnxruntime_providers_shared.so",
  "libonnxruntime_providers_cuda.so",
];

/** The first CUDA provider library missing from `dir`, if any. */
export function missingCudaLibrary(dir: string): string | undefined {
  for (const lib of CUDA_PROVIDER_LIBS) {
    try {
      Deno.statSync(`${dir}/${lib}`);
    } catch {
      return `${dir}/${lib}`;
    }
  }
  return undefined;
}

/** Explains a provider load failure in one line naming the library. */
export function cudaError(e: unknown): DeviceError {
  const msg = e instanceof Error ? e.message : String(e);
  const lib = /(lib[\w.+-]+\.so[\w.]*)/.exec(msg)?.[1];
  return new DeviceError(
    lib
      ? `Cannot use --device cuda: ONNX Runtime could not load '${lib}'; install the CUDA provider libraries (see docs/PERFORMANCE.md) or use --device cpu`
      : `Cannot use --device cuda: ONNX Runtime's CUDA provider failed to start (${
        msg.split("\n")[0]
      }); see docs/PERFORMANCE.md or use --device cpu`,
  );
}

/** A compiled graph, ready to run many times with the same shapes. */
export class Session {
  private constructor(
    private readonly s: ort.InferenceSession,
    readonly device: "cpu" | "cuda",
    private readonly profiling = false,
  ) {}

  /**
   * Loads a model (bytes or a file path) into ONNX Runtime.
   * @throws {DeviceError} one line when the CUDA provider cannot load
   */
  static async create(model: Uint8Array | string, opts: SessionOptions = {}): Promise<Session> {
    const device = opts.device ?? "cpu";
    if (device === "cuda") {
      const missing = missingCudaLibrary(ortLibraryDir());
      if (missing) throw cudaError(new Error(`cannot open ${missing}`));
    }
    const options: ort.InferenceSession.SessionOptions = {
      executionProviders: device === "cuda" ? ["cuda"] : ["cpu"],
      graphOptimizationLevel: opts.optimization ?? "all",
      logSeverityLevel: 3, // errors only: failures reach the caller as exceptions
      // Idle intra-op threads sleep instead of spinning (ORT's default): on shared,
      // oversubscribed machines spinning threads steal the cores the working ones need
      // (tiny under load: 447–505 vs 185–299 tokens/s, less CPU; docs/PERFORMANCE.md).
      // PyTorch's counterpart is OMP_WAIT_POLICY=PASSIVE, which bench/torch_step.py sets.
      extra: { session: { intra_op: { allow_spinning: opts.spin ? "1" : "0" } } },
      ...(opts.threads ? { intraOpNumThreads: opts.threads } : {}),
      ...(opts.lowMemory && device === "cpu"
        ? { enableCpuMemArena: false, enableMemPattern: false }
        : {}),
      ...(opts.profile ? { enableProfiling: true, profileFilePrefix: opts.profile } : {}),
    };
    try {
      const s = typeof model === "string"
        ? await ort.InferenceSession.create(model, options)
        : await ort.InferenceSession.create(model, options);
      return new Session(s, device, !!opts.profile);
    } catch (e) {
      if (device === "cuda") throw cudaError(e);
      throw e;
    }
  }

  /** Input names in graph order. */
  get inputNames(): readonly string[] {
    return this.s.inputNames;
  }

  /** Output names in graph order. */
  get outputNames(): readonly string[] {
    return this.s.outputNames;
  }

  /** Runs once; returns every output (or only `fetch`). */
  async run(
    feeds: Record<string, Value>,
    fetch?: readonly string[],
  ): Promise<Record<string, Value>> {
    const f = toTensors(feeds);
    const res = fetch ? await this.s.run(f, fetch as string[]) : await this.s.run(f);
    const out: Record<string, Value> = {};
    for (const [k, t] of Object.entries(res)) out[k] = { data: t.data as Data, dims: t.dims };
    return out;
  }

  /**
   * Runs once, ORT writing the outputs named in `into` straight into those arrays (sized
   * as the graph's outputs; no fresh result arrays per run) and returning only `fetch`
   * besides. The inputs are read in place (the binding wraps the feeds' memory).
   */
  async runInto(
    feeds: Record<string, Value>,
    into: Record<string, Value>,
    fetch: readonly string[] = [],
  ): Promise<Record<string, Value>> {
    const fetches: Record<string, ort.Tensor | null> = toTensors(into);
    for (const k of fetch) fetches[k] = null;
    const res = await this.s.run(toTensors(feeds), fetches);
    const out: Record<string, Value> = {};
    for (const k of fetch) {
      const t = res[k]!;
      out[k] = { data: t.data as Data, dims: t.dims };
    }
    return out;
  }

  /** Frees the native session. */
  async release(): Promise<void> {
    if (this.profiling) this.s.endProfiling();
    await this.s.release();
  }
}

function toTensors(vs: Record<string, Value>): Record<string, ort.Tensor> {
  const f: Record<string, ort.Tensor> = {};
  for (const [k, v] of Object.entries(vs)) f[k] = new ort.Tensor(typeOf(v.data), v.data, v.dims);
  return f;
}

function typeOf(d: Data): ort.Tensor.Type {
  if (d instanceof Float32Array) return ORT_TYPE.float32;
  if (d instanceof Float64Array) return ORT_TYPE.float64;
  if (d instanceof BigInt64Array) return ORT_TYPE.int64;
  if (d instanceof Int32Array) return ORT_TYPE.int32;
  return ORT_TYPE.bool;
}
