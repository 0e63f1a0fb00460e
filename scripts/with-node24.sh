#!/usr/bin/env bash
# Runs a command with Node 24 (the LTS the container image uses) first on PATH, so the test
# runner and every service it spawns run on it. Node 24 comes from the npm registry's `node@24`
# package, cached under .cache/ (outside git).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
prefix="$root/.cache/node24"
if [ ! -x "$prefix/node_modules/.bin/node" ]; then
  mkdir -p "$prefix"
  npm install --no-save --no-audit --no-fund --prefix "$prefix" node@24 >&2
fi
export PATH="$prefix/node_modules/.bin:$PATH"
echo "with-node24: $(node --version)" >&2
exec "$@"
