#!/usr/bin/env bash
# Builds etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy and kubectl
# from the pinned Go modules into a cache outside the repository, and prints the directory holding them.
#
# The cache key is the content of the two scratch modules plus the Go version, so a bump of
# either rebuilds and an unchanged checkout reuses the binaries in well under a second.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
kube_version=v1.33.13
cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/hab-pod-role

command -v go >/dev/null || { echo "build-control-plane: Go >= 1.24 is needed to build Kubernetes; install it from go.dev and retry." >&2; exit 69; }

key=$( { cat "$here"/kube/go.mod "$here"/kube/go.sum "$here"/etcd/go.mod "$here"/etcd/go.sum "$0"; go version; } | sha256sum | cut -c1-16)
out="$cache_root/control-plane-$kube_version-$key"
bins=(etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)

all_built() { for b in "${bins[@]}"; do [[ -x "$out/$b" ]] || return 1; done; }
if all_built; then echo "$out"; exit 0; fi

mkdir -p "$out.tmp"
started=$(date +%s)
echo "build-control-plane: building Kubernetes $kube_version and etcd into $out (a cold build takes tens of minutes; later runs reuse it)" >&2

export CGO_ENABLED=0 GOFLAGS=-mod=readonly
minor=${kube_version#v1.}; minor=${minor%%.*}
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$kube_version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"

(cd "$here/etcd" && go build -trimpath -o "$out.tmp/etcd" go.etcd.io/etcd/server/v3)
(cd "$here/kube" && go build -trimpath -ldflags "$ldflags" -o "$out.tmp/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler \
  k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/cmd/kubectl)

rm -rf "$out" && mv "$out.tmp" "$out"
echo "build-control-plane: built in $(( $(date +%s) - started )) s" >&2
echo "$out"
