#!/usr/bin/env bash
# Sourced by test.sh and compile.sh: sets DENO to a working deno 2 binary.
# Uses `deno` from PATH when present, else installs the pinned npm package `deno`
# into the git-ignored .tools/ folder (only the npm registry is assumed reachable).
DENO_VERSION=2.9.6
_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -n "${DENO:-}" ] && [ -x "$DENO" ]; then
  :
elif command -v deno >/dev/null 2>&1 && deno --version | grep -q '^deno 2\.'; then
  DENO="$(command -v deno)"
else
  DENO="$_root/.tools/node_modules/deno/deno"
  if [ ! -x "$DENO" ]; then
    echo "Installing deno@$DENO_VERSION from npm into .tools/ ..." >&2
    command -v npm >/dev/null 2>&1 || { echo "npm is required to install deno (apt-get install -y npm)" >&2; exit 1; }
    mkdir -p "$_root/.tools"
    npm install --silent --no-save --no-audit --no-fund --prefix "$_root/.tools" "deno@$DENO_VERSION" >&2
  fi
fi
export DENO
export DENO_NO_UPDATE_CHECK=1
