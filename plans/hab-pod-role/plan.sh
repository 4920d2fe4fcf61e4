# hab-pod-role as a Habitat package: other plans add it to pkg_deps and call it from their hooks.
# The build bundles the tool with its production dependencies into lib/, so the package needs only Node.

pkg_name=hab-pod-role
pkg_origin=${HAB_ORIGIN:-core}
pkg_version=0.1.0
pkg_maintainer="The hab-pod-role developers"
pkg_license=('Apache-2.0')
pkg_description="Puts a Habitat leader election's result on the Kubernetes pod it runs in, as a role label Services select on."
pkg_upstream_url="https://www.npmjs.com/package/hab-pod-role"
# core/node tracks the current Node LTS; the tool needs Node >= 22.19.
pkg_deps=(core/node)
pkg_build_deps=(core/node)
pkg_bin_dirs=(bin)

# The source is this repository, two directories above the plan.
do_download() { return 0; }
do_verify() { return 0; }
do_unpack() {
  mkdir -p "$HAB_CACHE_SRC_PATH/$pkg_dirname"
  (cd "$PLAN_CONTEXT/../.." && tar -cf - package.json package-lock.json tsconfig.json src tools/bundle.mjs tools/lazy-string-width.mjs) |
    tar -xf - -C "$HAB_CACHE_SRC_PATH/$pkg_dirname"
}

do_build() {
  npm ci --no-audit --no-fund --loglevel=error
  node tools/bundle.mjs
}

do_install() {
  mkdir -p "$pkg_prefix/lib/hab-pod-role" "$pkg_prefix/bin"
  cp -R dist/. "$pkg_prefix/lib/hab-pod-role/"
  # Node reads an extensionless file with import syntax as an ES module; the interpreter line is
  # rewritten to core/node's node, as core-plans does for Node command-line tools.
  cat > "$pkg_prefix/bin/hab-pod-role" <<'SCRIPT'
#!/usr/bin/env node
import '../lib/hab-pod-role/hab-pod-role.mjs';
SCRIPT
  chmod 0755 "$pkg_prefix/bin/hab-pod-role"
  fix_interpreter "$pkg_prefix/bin/hab-pod-role" core/node bin/node
}
