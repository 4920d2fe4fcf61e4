# Two commands set everything up on a fresh machine: `make demo` runs the main job, `make test` the tests.
# Node >= 22.19 is provisioned when the system's is older; Kubernetes is built from Go modules (cached).

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

NODE_BIN := $(shell bash tools/provision-node.sh)
export PATH := $(NODE_BIN):$(PATH)
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
# Node's compile cache (tsc and vitest turn it on, and so does the tool) would otherwise be left in /tmp.
export NODE_COMPILE_CACHE := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/hab-pod-role/node-compile-cache

.PHONY: help deps system-deps build sea control-plane typecheck test test-unit demo bench cluster-up cluster-down clean

help:
	@echo "make demo           run the demonstration against a local control plane"
	@echo "make test           typecheck, unit and integration tests (builds what they need)"
	@echo "make bench          benchmarks against kubectl, results in bench/RESULTS.md (SECTIONS=\"failover contest\" runs only those, and prints them)"
	@echo "make build          bundle dist/hab-pod-role.mjs"
	@echo "make sea            build build/hab-pod-role, one executable with Node inside (what the Habitat plan packages)"
	@echo "make cluster-up     start a control plane on loopback and a real node, kubeconfig in .cluster/kubeconfig"
	@echo "make cluster-down   stop both and undo what the node changed on the machine"

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

deps: node_modules/.package-lock.json

# The tests run the real redis-server; openssl makes the control plane's certificates; iproute2 gives
# each Redis member a network namespace of its own, as a pod has. The real node runs containerd, runc
# and the CNI bridge plugin; kube-proxy needs nftables (and the kubelet iptables, conntrack); socat
# forwards the API server to the node's bridge; gcc and libc6-dev build the static pause program;
# busybox-static is the shell of the test image. The packaging test builds the Habitat plan (patchelf,
# file and binutils' strip, as hab-plan-build uses them) and runs it in an image holding only /hab and
# the static busybox at /bin, as `hab pkg export container` makes it.
NODE_PACKAGES := containerd runc containernetworking-plugins iptables nftables conntrack socat ipset busybox-static gcc libc6-dev
PACKAGING_PACKAGES := patchelf file binutils
system-deps:
	@command -v redis-server >/dev/null && command -v openssl >/dev/null && command -v ip >/dev/null && \
	  command -v containerd >/dev/null && command -v runc >/dev/null && [[ -x /usr/lib/cni/bridge ]] && command -v nft >/dev/null && \
	  command -v iptables >/dev/null && command -v conntrack >/dev/null && command -v socat >/dev/null && command -v ipset >/dev/null && \
	  [[ -x /bin/busybox ]] && command -v gcc >/dev/null && [[ -f /usr/lib/x86_64-linux-gnu/libc.a || -f /usr/lib/aarch64-linux-gnu/libc.a ]] && \
	  command -v patchelf >/dev/null && command -v file >/dev/null && command -v strip >/dev/null || { \
	  echo "installing redis-server, openssl, iproute2, the node's packages ($(NODE_PACKAGES)) and the packaging test's ($(PACKAGING_PACKAGES)) from Debian's packages"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server redis-tools openssl iproute2 $(NODE_PACKAGES) $(PACKAGING_PACKAGES) >/dev/null; }

build: deps
	node tools/bundle.mjs

sea: deps
	bash tools/build-sea.sh build/hab-pod-role

control-plane:
	bash tools/build-control-plane.sh >/dev/null

typecheck: deps
	npx tsc --noEmit -p .

test: deps system-deps control-plane typecheck
	npx vitest run

test-unit: deps
	npx vitest run --project unit

demo: deps system-deps build control-plane
	node tools/demo.ts

# Benchmarks against kubectl on a real control plane, the npm package and the single executable; writes bench/RESULTS.md. Not part of `make test`.
bench: build sea control-plane system-deps
	@command -v /usr/bin/time >/dev/null || $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
	node bench/bench.ts $(SECTIONS)

cluster-up: control-plane system-deps
	node tools/control-plane.ts up .cluster

cluster-down:
	node tools/control-plane.ts down .cluster

clean: cluster-down
	rm -rf dist build node_modules .cluster
