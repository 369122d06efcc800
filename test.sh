#!/usr/bin/env bash
# The whole test suite: format, lint, type check, tests. Installs deno from npm if needed.
# Tests start and stop their own services (local chain, local S3 servers).
# Ends with the plain line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")"
source scripts/ensure_deno.sh
passed=0
failed=0
step() {
  local name="$1"
  shift
  echo "== $name" >&2
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $name" >&2; fi
}
step "install" "$DENO" install --frozen --quiet
step "fmt" "$DENO" fmt --check
step "lint" "$DENO" lint
step "check" "$DENO" check main.ts src/ tests/
step "binary" scripts/check_binary.sh
# Size watch: the engine's core (graph builder, ops, autodiff, session; the model) stays
# small enough to read in one sitting, as tinygrad keeps its core under a line budget.
# Non-test TypeScript lines; raise a ceiling on purpose, in a commit that says why.
size_watch() {
  local dir="$1" max="$2" n
  n=$(find "$dir" -name '*.ts' ! -name '*_test.ts' -print0 | xargs -0 cat | wc -l)
  echo "size: $dir $n lines (ceiling $max)" >&2
  [ "$n" -le "$max" ]
}
step "size src/onnx" size_watch src/onnx 1500
step "size src/model" size_watch src/model 1100
log="$(mktemp)"
# Runs `deno test` with the given arguments and adds deno's counts to ours
# (deno prints e.g. "ok | 42 passed (3 steps) | 0 failed (1s)").
run_tests() {
  "$DENO" test -A --frozen "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local summary tp tf
  summary="$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -E '^(ok|FAILED) \| [0-9]+ passed' | tail -1)"
  tp="$(sed -E 's/.*\| ([0-9]+) passed.*/\1/' <<<"$summary")"
  tf="$(sed -E 's/.*\| ([0-9]+) failed.*/\1/' <<<"$summary")"
  if [ -z "$summary" ]; then tp=0; tf=1; fi
  [ "$rc" -ne 0 ] && [ "${tf:-0}" -eq 0 ] && tf=1
  passed=$((passed + ${tp:-0}))
  failed=$((failed + ${tf:-0}))
}
# Everything but the devnet runs in parallel; the devnet tests (a dozen processes on a
# real local chain, paced by block time) run alone afterwards so nothing starves them.
run_tests --parallel --ignore=tests/devnet_test.ts
# The @example blocks of these modules (every exported function has one; checked by
# tests/doc_examples_test.ts): deno test --doc type-checks and runs each.
DOC_MODULES="src/window.ts src/safetensors.ts src/slices/gather.ts src/slices/summary.ts src/slices/validate.ts src/slices/wire.ts src/store/mod.ts src/protocol/codec.ts src/protocol/bits.ts"
# shellcheck disable=SC2086
run_tests --doc $DOC_MODULES
run_tests tests/devnet_test.ts
rm -f "$log"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
