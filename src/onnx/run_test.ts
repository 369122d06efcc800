import assert from "node:assert/strict";
import { cudaError, DeviceError, missingCudaLibrary, ortLibraryDir, Session } from "./run.ts";
import { Graph } from "./graph.ts";
import { add } from "./ops.ts";

Deno.test("Session runs a graph and returns named outputs", async () => {
  const g = new Graph();
  const x = g.input("x", "float32", [3]);
  g.output(add(x, 1), "y");
  const s = await Session.create(g.encode(), { threads: 1 });
  assert.deepEqual(s.inputNames, ["x"]);
  const r = await s.run({ x: { data: Float32Array.of(1, 2, 3), dims: [3] } });
  assert.deepEqual([...r.y!.data as Float32Array], [2, 3, 4]);
  await s.release();
});

Deno.test("missingCudaLibrary() names the first absent provider library", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assert.equal(missingCudaLibrary(dir), `${dir}/libonnxruntime_providers_shared.so`);
    await Deno.writeFile(`${dir}/libonnxruntime_providers_shared.so`, new Uint8Array());
    assert.equal(missingCudaLibrary(dir), `${dir}/libonnxruntime_providers_cuda.so`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const e = cudaError(new Error("libcudnn.so.9: cannot open shared object file"));
  assert.ok(e instanceof DeviceError);
  assert.match(
    e.message,
    /^Cannot use --device cuda: ONNX Runtime could not load 'libcudnn\.so\.9'/,
  );
});

Deno.test("Session.create(cuda) without provider libraries fails with one line naming the library", async () => {
  const missing = missingCudaLibrary(ortLibraryDir());
  if (!missing) return; // a machine with the CUDA provider installed: nothing to check here
  const g = new Graph();
  g.output(g.input("x", "float32", [1]), "y");
  await assert.rejects(Session.create(g.encode(), { device: "cuda" }), (e: Error) => {
    assert.ok(e instanceof DeviceError);
    assert.match(e.message, /could not load 'libonnxruntime_providers_(shared|cuda)\.so'/);
    assert.ok(!e.message.includes("\n"));
    return true;
  });
});
