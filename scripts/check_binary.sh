#!/usr/bin/env bash
# Builds dist/boltzmann and checks it the way a user gets it: the one file alone in an
# empty folder, HOME empty, no repository or node_modules beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
./compile.sh >&2
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/home"
cp dist/boltzmann "$tmp/"
cd "$tmp"
run() { env HOME="$tmp/home" XDG_CACHE_HOME= ./boltzmann "$@"; }
run --version | grep -q '^boltzmann '
run --version >/dev/null
t0=$(date +%s%N)
run --version >/dev/null
echo "binary: second start of --version $(( ($(date +%s%N) - t0) / 1000000 )) ms" >&2
run --help | grep -q 'devnet'
run doctor --json | grep -q '"ok": true'
# Every benchmark runs to its end from the binary alone, with a small size.
run bench indices --preset tiny --json | grep -q 'm_indices_per_s'
run bench train --preset tiny --steps 1 --json | grep -q 'tokens_per_s'
run bench data --mb 0.05 --ref-mb 0.02 --json | grep -q 'mb_s'
run bench slices --preset tiny --json | grep -q 's3_upload_mb_s'
run bench converge --miners 1 --windows 1 --batches 1 --eval-batches 1 --json | grep -q '"protocol"'
run bench protocol --peers 2 --repeat 1 --json | grep -q 'read_ms'
echo "binary: --version, --help, doctor (CPU graph ran) and bench indices, train, data, slices, converge, protocol work from $tmp" >&2
