/**
 * Execution-provider probe for `boltzmann doctor`: builds a one-node ONNX graph
 * (Add of two float vectors) by hand and runs it on each provider, so "the provider
 * loads" means "a graph actually ran", not "the name is listed".
 *
 * @module
 */
import onnxProto from "onnx-proto";
import * as ort from "onnxruntime-node";

const { onnx } = onnxProto;

/** ONNX Runtime's version as the npm binding reports it. */
export function ortVersion(): string {
  return ort.env.versions.node ?? ort.env.versions.common;
}

function addGraphBytes(): Uint8Array {
  const vec = (name: string) =>
    onnx.ValueInfoProto.create({
      name,
      type: {
        tensorType: {
          elemType: onnx.TensorProto.DataType.FLOAT,
          shape: { dim: [{ dimValue: 3 }] },
        },
      },
    });
  const model = onnx.ModelProto.create({
    irVersion: 9,
    opsetImport: [{ domain: "", version: 17 }],
    producerName: "boltzmann-doctor",
    graph: {
      name: "probe",
      node: [{ opType: "Add", input: ["a", "b"], output: ["c"] }],
      input: [vec("a"), vec("b")],
      output: [vec("c")],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

/** Result of running the probe graph on one provider. */
export interface ProbeResult {
  provider: string;
  ok: boolean;
  ms?: number;
  error?: string;
}

/** Runs the probe on `provider`; never throws. */
export async function probeProvider(provider: "cpu" | "cuda"): Promise<ProbeResult> {
  ort.env.logLevel = "fatal"; // the reason goes in our one line, not in ORT native spam
  const t0 = performance.now();
  try {
    const s = await ort.InferenceSession.create(addGraphBytes(), {
      executionProviders: [provider],
      logSeverityLevel: 3,
    });
    const a = new ort.Tensor("float32", Float32Array.from([1, 2, 3]), [3]);
    const b = new ort.Tensor("float32", Float32Array.from([10, 20, 30]), [3]);
    const out = await s.run({ a, b });
    const c = out.c?.data as Float32Array | undefined;
    await s.release();
    if (!c || c[0] !== 11 || c[1] !== 22 || c[2] !== 33) {
      return { provider, ok: false, error: "Probe graph ran but returned wrong values" };
    }
    return { provider, ok: true, ms: +(performance.now() - t0).toFixed(1) };
  } catch (e) {
    const msg = (e instanceof Error ? e.message : String(e)).split("\n")[0]!;
    return { provider, ok: false, error: msg };
  }
}
