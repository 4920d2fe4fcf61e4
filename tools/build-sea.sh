#!/usr/bin/env bash
# Builds hab-pod-role as one executable file: the pinned Node 24 with the tool's one-file bundle injected.
# Usage: bash tools/build-sea.sh [OUT] (default build/hab-pod-role: outside dist/, which the npm package ships).
# SEA_MAIN=script.cjs injects that script instead of the tool (the benchmark's floors: the same Node, doing nothing).
# Needs node_modules (npm ci) and npm.
# `make sea` and the Habitat plan's do_build both call it, so the package and local builds are the same file.
set -euo pipefail

out=${1:-build/hab-pod-role}
# Always the pinned Node, never the system's: the blob format belongs to the Node that runs it, and the
# executable is a copy of that Node. SEA_NODE_DIR names the directory of another copy to run, and SEA_BASE
# the binary to inject into (the Habitat plan's: it runs a patched copy but injects into the unpatched one,
# because postject corrupts a binary patchelf has changed; patchelf after postject is fine).
node_bin=${SEA_NODE_DIR:-$(FORCE_NODE_PROVISION=1 bash tools/provision-node.sh)}
base=${SEA_BASE:-$node_bin/node}
export PATH="$node_bin:$PATH"

work="$(dirname "$out")/.sea-build"
rm -rf "$work" && mkdir -p "$work" "$(dirname "$out")"
trap 'rm -rf "$work"' EXIT

if [[ -n "${SEA_MAIN:-}" ]]; then
  cp "$SEA_MAIN" "$work/hab-pod-role.cjs" && echo '// none' > "$work/kubeconfig-plugins.cjs"
else
  node tools/bundle.mjs --single-file "$work/hab-pod-role.cjs"
fi
# useCodeCache keeps V8's compiled code for the script in the executable; each start skips that work.
# The asset is the part of the bundle only exec plugins and the like need (tools/bundle.mjs says why).
cat > "$work/sea-config.json" <<JSON
{ "main": "$work/hab-pod-role.cjs", "output": "$work/sea-prep.blob", "disableExperimentalSEAWarning": true, "useCodeCache": true,
  "assets": { "kubeconfig-plugins.cjs": "$work/kubeconfig-plugins.cjs" } }
JSON
node --experimental-sea-config "$work/sea-config.json" >"$work/sea.log" 2>&1 || { cat "$work/sea.log" >&2; exit 1; }

cp "$base" "$work/hab-pod-role"
chmod 0755 "$work/hab-pod-role"
# The fuse is Node's documented sentinel: Node looks for the blob only when it is flipped.
node_modules/.bin/postject "$work/hab-pod-role" NODE_SEA_BLOB "$work/sea-prep.blob" \
  --sentinel-fuse NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2 >/dev/null 2>"$work/postject.log" ||
  { cat "$work/postject.log" >&2; exit 1; }
mv "$work/hab-pod-role" "$out"
