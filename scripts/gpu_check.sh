#!/usr/bin/env bash
# One-command GPU verification (issue 12): on a machine with one NVIDIA GPU, from a
# checkout (or with BOLTZMANN pointing at the binary), with nothing from the network:
#
#   scripts/gpu_check.sh [OUT.json]
#
# It records, in one JSON file (default gpu-check-<UTC time>.json):
#   - nvidia-smi's card, driver and memory; `boltzmann doctor --json` (which providers run);
#   - the CUDA libraries ONNX Runtime's CUDA provider needs and where each was found
#     (ldd of libonnxruntime_providers_cuda.so: nothing may be "not found");
#   - `bench train --device cuda --json` for the `seed` preset (1.2 B, batch 6 × 2048) and
#     the 58 M model (hidden 512, 8 layers, batch 4 × 256), each followed by
#     `bench/torch_step.py --device cuda --json` with the same hyper-parameters (when a
#     python3 with CUDA torch is present), and the tokens/s ratio;
#   - host↔device bytes per step (the bench's bytes_in/out_per_step: every run hands the
#     parameters in and the gradients out through host memory).
#
# Provider libraries: onnxruntime-node's npm package ships none (its install script
# downloads them). Before going offline, put ONNX Runtime 1.30's CUDA provider files —
# libonnxruntime_providers_shared.so and libonnxruntime_providers_cuda.so from the
# onnxruntime-linux-x64-gpu-1.30.0 release (lib/) or the onnxruntime-gpu 1.30.0 wheel
# (onnxruntime/capi/) — and, if the system has no CUDA 13 toolkit, the CUDA runtime
# libraries doctor lists (libcudart.so.13, libcublas.so.13, libcublasLt.so.13,
# libcufft.so.12, libcudnn.so.9) in one directory and set BOLTZMANN_ORT_CUDA_DIR to it.
# The script copies the two provider files beside ORT's native binding (where ORT looks
# for them) and puts that directory on LD_LIBRARY_PATH.
#
# Exit codes: 0 all ran (figures in the file), 2 no GPU or provider libraries missing
# (the file says which), 1 a run failed (the file holds its error).
set -uo pipefail
cd "$(dirname "$0")/.."

OUT="${1:-gpu-check-$(date -u +%Y%m%dT%H%M%SZ).json}"
PY="${PYTHON:-python3}"
if [ -n "${BOLTZMANN:-}" ]; then
  BZ=("$BOLTZMANN")
elif [ -x dist/boltzmann ]; then
  BZ=(./dist/boltzmann)
else
  BZ=(deno run -A --frozen main.ts)
fi
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# json_str VALUE: VALUE as a JSON string (python3 is only needed here and for torch).
json_str() { "$PY" -c 'import json,sys; print(json.dumps(sys.stdin.read().strip()))' <<<"$1"; }

fail() { # fail CODE KEY MESSAGE: write {"ok": false, KEY: MESSAGE, ...partial} and exit
  local code="$1" key="$2" msg="$3"
  echo "gpu_check: $msg" >&2
  {
    echo "{\"ok\": false, \"$key\": $(json_str "$msg"),"
    echo " \"gpu\": ${GPU_JSON:-null}, \"doctor\": ${DOCTOR_JSON:-null}, \"cuda_libraries\": ${LIBS_JSON:-null}}"
  } >"$OUT"
  echo "gpu_check: wrote $OUT" >&2
  exit "$code"
}

# 1. A GPU.
if ! command -v nvidia-smi >/dev/null 2>&1; then
  fail 2 no_gpu "no NVIDIA GPU here: nvidia-smi is not installed (run this on a machine with one NVIDIA GPU and its driver)"
fi
SMI="$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1)"
if [ $? -ne 0 ] || [ -z "$SMI" ]; then
  fail 2 no_gpu "no NVIDIA GPU here: nvidia-smi found none ($(head -1 <<<"$SMI"))"
fi
GPU_JSON="$(json_str "$(head -1 <<<"$SMI")")"

# 2. The provider libraries, beside ORT's native binding.
ORT_DIR="$(ls -d node_modules/.deno/onnxruntime-node@*/node_modules/onnxruntime-node/bin/napi-v6/linux/x64 2>/dev/null | head -1)"
[ -n "$ORT_DIR" ] || fail 2 missing_library "ONNX Runtime's native binding is not under node_modules (run deno install first, while online)"
if [ -n "${BOLTZMANN_ORT_CUDA_DIR:-}" ]; then
  for lib in libonnxruntime_providers_shared.so libonnxruntime_providers_cuda.so; do
    if [ ! -e "$ORT_DIR/$lib" ] && [ -e "$BOLTZMANN_ORT_CUDA_DIR/$lib" ]; then
      cp "$BOLTZMANN_ORT_CUDA_DIR/$lib" "$ORT_DIR/$lib"
    fi
  done
  export LD_LIBRARY_PATH="$BOLTZMANN_ORT_CUDA_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
for lib in libonnxruntime_providers_shared.so libonnxruntime_providers_cuda.so; do
  [ -e "$ORT_DIR/$lib" ] || fail 2 missing_library "$lib is not in $ORT_DIR: set BOLTZMANN_ORT_CUDA_DIR to a directory holding ONNX Runtime 1.30's CUDA provider files (see this script's header)"
done
LDD="$(ldd "$ORT_DIR/libonnxruntime_providers_cuda.so" 2>&1)"
echo "$LDD" >"$TMP/ldd.txt"
LIBS_JSON="$(json_str "$LDD")"
MISSING="$(grep 'not found' <<<"$LDD" | awk '{print $1}' | tr '\n' ' ')"
[ -z "$MISSING" ] || fail 2 missing_library "the CUDA provider cannot load: missing ${MISSING}(put them in BOLTZMANN_ORT_CUDA_DIR or install the CUDA 13 runtime and cuDNN 9)"

# 3. doctor.
"${BZ[@]}" doctor --json >"$TMP/doctor.json" 2>"$TMP/doctor.err" || true

# 4. Benchmarks: ours then PyTorch's, back to back, per model; each result in a file.
echo '{"hidden_size":512,"num_hidden_layers":8,"num_attention_heads":8,"num_key_value_heads":8,"intermediate_size":1408,"batch_size":4,"sequence_length":256}' >"$TMP/m58.json"
TORCH_OK=0
if "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  TORCH_OK=1
fi
run_json() { # run_json FILE CMD...: the command's last JSON line into FILE (stderr beside it)
  local file="$1"
  shift
  "$@" 2>"$file.err" | grep '^{' | tail -1 >"$file"
}
for m in seed 58M; do
  if [ "$m" = seed ]; then args=(--preset seed); else args=(--hparams "$TMP/m58.json"); fi
  echo "gpu_check: bench train --device cuda ($m)…" >&2
  run_json "$TMP/ours-$m.json" "${BZ[@]}" bench train "${args[@]}" --device cuda --steps 5 --json
  if [ "$TORCH_OK" = 1 ]; then
    echo "gpu_check: bench/torch_step.py --device cuda ($m)…" >&2
    run_json "$TMP/torch-$m.json" "$PY" bench/torch_step.py "${args[@]}" --device cuda --steps 5 --json
  fi
done

"$PY" - "$OUT" "$TMP" "$TORCH_OK" "$(head -1 <<<"$SMI")" "$ORT_DIR" <<'EOF'
import json, os, sys
out_path, tmp, torch_ok, gpu, ort_dir = sys.argv[1:6]

def load(name):
    """A JSON result file, or its error text (stderr's last lines) when it holds none."""
    p = os.path.join(tmp, name)
    try:
        with open(p) as f:
            return json.loads(f.read())
    except (OSError, ValueError):
        try:
            with open(p + ".err") as f:
                return {"error": " | ".join(f.read().strip().splitlines()[-3:])}
        except OSError:
            return None

def good(x):
    return isinstance(x, dict) and "tokens_per_s" in x

models, ok = {}, True
for m in ("seed", "58M"):
    a = load(f"ours-{m}.json")
    b = load(f"torch-{m}.json") if torch_ok == "1" else None
    ok = ok and good(a) and (torch_ok != "1" or good(b))
    models[m] = {
        "boltzmann": a,
        "torch": b,
        "ratio_tokens_per_s": round(a["tokens_per_s"] / b["tokens_per_s"], 3) if good(a) and good(b) else None,
        "host_to_device_bytes_per_step": a.get("bytes_in_per_step") if good(a) else None,
        "device_to_host_bytes_per_step": a.get("bytes_out_per_step") if good(a) else None,
    }
with open(os.path.join(tmp, "ldd.txt")) as f:
    ldd = f.read()
out = {
    "ok": ok,
    "gpu": gpu,
    "torch_cuda": torch_ok == "1",
    "ort_library_dir": ort_dir,
    "doctor": load("doctor.json"),
    "cuda_provider_ldd": ldd.splitlines(),
    "models": models,
    "target": "seed: boltzmann >= 1.0x PyTorch eager tokens/s on the same GPU",
}
with open(out_path + ".tmp", "w") as f:
    json.dump(out, f, indent=2)
os.replace(out_path + ".tmp", out_path)
for name, m in models.items():
    print(f"gpu_check: {name}: ratio {m['ratio_tokens_per_s']}", file=sys.stderr)
sys.exit(0 if ok else 1)
EOF
STATUS=$?
echo "gpu_check: wrote $OUT" >&2
exit "$STATUS"
