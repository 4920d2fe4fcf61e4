#!/usr/bin/env bash
# A stand-in for hab-plan-build: runs a plan's phases in the real program's order, directories and rules.
#
# Written from habitat-sh/habitat components/plan-build/bin/hab-plan-build-linux.sh and public.bash;
# what a plan can observe is reproduced, the rest (downloading dependencies, signing, the .hart) is not:
# - HAB_ROOT_PATH=/hab; HAB_CACHE_SRC_PATH=/hab/cache/src; pkg_prefix=/hab/pkgs/ORIGIN/NAME/VERSION/RELEASE.
# - The plan is sourced in its own directory; HAB_ORIGIN then overrides pkg_origin.
# - Without pkg_source, SRC_PATH is the plan's directory: do_prepare, do_build, do_check and do_install
#   run there (each wrapper pushd's into SRC_PATH); CACHE_PATH=HAB_CACHE_SRC_PATH/pkg_dirname is removed
#   by do_clean before do_unpack.
# - PATH is the package's bin dirs, then its dependencies' PATH entries, then the caller's PATH.
# - pkg_path_for matches a resolved dependency path ending in ".../DEP/..." (origin/name[/version]);
#   fix_interpreter rewrites `#!.*<interpreter>` to the dependency's INTERPRETERS entry, every line of
#   the file, and nothing else.
# - do_strip runs `strip` on every writable ELF file under pkg_prefix, chosen by `file -bi`.
# - The shell runs with `set -e -E` only (no -u, no pipefail), as hab-plan-build does.
# Dependencies must already be installed under /hab/pkgs (each with IDENT, and TDEPS/PATH/INTERPRETERS
# where it has them), as `hab pkg install` leaves them. Usage: hab-plan-build.sh PLAN_DIR
set -e
set -E

HAB_ROOT_PATH=/hab
HAB_CACHE_SRC_PATH=$HAB_ROOT_PATH/cache/src
HAB_PKG_PATH=$HAB_ROOT_PATH/pkgs
INITIAL_PATH=$PATH
pkg_target=x86_64-linux
pkg_release=$(date -u +%Y%m%d%H%M%S)
PLAN_CONTEXT=$(cd "${1:?usage: hab-plan-build.sh PLAN_DIR}" && pwd)
SRC_PATH=${HAB_SRC_PATH:-$PLAN_CONTEXT}
pkg_deps=() pkg_build_deps=() pkg_bin_dirs=() pkg_lib_dirs=() pkg_interpreters=()

build_line() { echo "   ${pkg_name:-plan}: $*"; }
warn() { echo "   ${pkg_name:-plan}: WARN $*" >&2; }
exit_with() { echo "   ${pkg_name:-plan}: ERROR $1" >&2; exit "${2:-1}"; }

# The path of the dependency `$1` among the resolved paths in the rest of the arguments, by the real rule.
_find_dep() {
  local dep=$1 e
  shift
  for e in "$@"; do
    if echo "${e#"$HAB_PKG_PATH"/}" | grep -E -q "(^|/)${dep}(/|$)"; then echo "$e"; return 0; fi
  done
  return 1
}
pkg_path_for() {
  _find_dep "$1" "${pkg_all_deps_resolved[@]}" || { warn "pkg_path_for() '$1' did not find a suitable installed package"; return 1; }
}
pkg_interpreter_for() {
  local path
  path=$(_find_dep "$1" "${pkg_deps_resolved[@]}") || { warn "Could not resolve the path for $1, is it specified in 'pkg_deps'?"; return 1; }
  grep -x ".*$2" "$path/INTERPRETERS" 2>/dev/null || { warn "Could not find interpreter $2 in package $1"; return 1; }
}
fix_interpreter() {
  local new t
  new=$(pkg_interpreter_for "$2" "$3") || { warn "fix_interpreter() '$2' is not a runtime dependency"; return 1; }
  for t in $1; do
    [[ -f $t ]] || continue
    if [[ -L $t ]]; then t=$(readlink --canonicalize --no-newline "$t"); fi
    build_line "Replacing '.*$3' with '$new' in '$t'"
    sed -e "s#\#\!.*$3#\#\!$new#" -i "$t"
  done
}

# The newest installed release of origin/name[/version], as `hab pkg path` answers.
_installed() {
  local found depth
  # origin/name/version/release/IDENT: the depth below what the ident names.
  depth=$((4 - $(tr -cd / <<<"$1" | wc -c)))
  found=$(find "$HAB_PKG_PATH/$1" -mindepth "$depth" -maxdepth "$depth" -name IDENT -printf '%h\n' 2>/dev/null | sort -V | tail -n 1)
  [[ -n $found ]] || exit_with "Resolving '$1' failed: it is not installed under $HAB_PKG_PATH (hab pkg install $1)" 1
  echo "$found"
}
_resolve_dependencies() {
  local dep p
  pkg_build_deps_resolved=() pkg_deps_resolved=() pkg_tdeps_resolved=()
  for dep in "${pkg_build_deps[@]}"; do pkg_build_deps_resolved+=("$(_installed "$dep")"); done
  for dep in "${pkg_deps[@]}"; do pkg_deps_resolved+=("$(_installed "$dep")"); done
  for p in "${pkg_deps_resolved[@]}"; do
    pkg_tdeps_resolved+=("$p")
    if [[ -f $p/TDEPS ]]; then
      while read -r dep; do if [[ -n $dep ]]; then pkg_tdeps_resolved+=("$HAB_PKG_PATH/$dep"); fi; done <"$p/TDEPS"
    fi
  done
  pkg_all_deps_resolved=("${pkg_deps_resolved[@]}" "${pkg_build_deps_resolved[@]}")
}
_set_build_path() {
  local paths=() dir p
  for dir in "${pkg_bin_dirs[@]}"; do paths+=("$pkg_prefix/$dir"); done
  for p in "${pkg_deps_resolved[@]}" "${pkg_build_deps_resolved[@]}"; do
    if [[ -f $p/PATH ]]; then paths+=("$(cat "$p/PATH")"); fi
  done
  PATH=$(IFS=:; echo "${paths[*]}:$INITIAL_PATH")
  export PATH
}

do_begin() { return 0; }
do_before() { return 0; }
do_download() { [[ -z ${pkg_source:-} ]] || exit_with "this stand-in does not download pkg_source" 1; }
do_verify() { return 0; }
do_clean() { rm -rf "$CACHE_PATH"; }
do_unpack() { return 0; }
do_prepare() { return 0; }
do_build() { ./configure --prefix="$pkg_prefix" && make; }
do_install() { make install; }
do_build_config() {
  if [[ -d $PLAN_CONTEXT/config ]]; then cp -R "$PLAN_CONTEXT/config" "$pkg_prefix/config"; fi
  if [[ -d $PLAN_CONTEXT/hooks ]]; then cp -R "$PLAN_CONTEXT/hooks" "$pkg_prefix/hooks"; chmod 755 "$pkg_prefix/hooks"; fi
  if [[ -f $PLAN_CONTEXT/default.toml ]]; then cp "$PLAN_CONTEXT/default.toml" "$pkg_prefix"; fi
  return 0
}
do_build_service() { return 0; }
do_strip() {
  find "$pkg_prefix" -type f -perm -u+w -print0 2>/dev/null | while read -rd '' f; do
    case "$(file -bi "$f")" in
      *application/x-executable*) strip --strip-all "$f" ;;
      *application/x-pie-executable* | *application/x-sharedlib*) strip --strip-unneeded "$f" ;;
      *application/x-archive*) strip --strip-debug "$f" ;;
    esac
  done
}
do_after() { return 0; }
do_end() { return 0; }

cd "$PLAN_CONTEXT"
source "$PLAN_CONTEXT/plan.sh"
if [[ -n $HAB_ORIGIN ]]; then pkg_origin=$HAB_ORIGIN; fi
: "${pkg_dirname:=${pkg_name}-${pkg_version}}"
: "${pkg_prefix:=$HAB_PKG_PATH/$pkg_origin/$pkg_name/$pkg_version/$pkg_release}"
CACHE_PATH=$HAB_CACHE_SRC_PATH/$pkg_dirname

do_begin
_resolve_dependencies
_set_build_path
mkdir -p "$HAB_CACHE_SRC_PATH"
do_before
do_download
do_verify
do_clean
do_unpack
pushd "$SRC_PATH" >/dev/null; do_prepare; popd >/dev/null
pushd "$SRC_PATH" >/dev/null; do_build; popd >/dev/null
mkdir -p "$pkg_prefix"
for dir in "${pkg_lib_dirs[@]}" "${pkg_bin_dirs[@]}"; do mkdir -p "$pkg_prefix/$dir"; done
pushd "$SRC_PATH" >/dev/null; do_install; popd >/dev/null
do_build_config
do_build_service
do_strip
do_after

# The metadata a Supervisor, `hab pkg exec` and the exporter read.
echo "$pkg_origin/$pkg_name/$pkg_version/$pkg_release" >"$pkg_prefix/IDENT"
echo "$pkg_target" >"$pkg_prefix/TARGET"
for p in "${pkg_deps_resolved[@]}"; do echo "${p#"$HAB_PKG_PATH"/}"; done >"$pkg_prefix/DEPS"
for p in "${pkg_tdeps_resolved[@]}"; do echo "${p#"$HAB_PKG_PATH"/}"; done | sort -u >"$pkg_prefix/TDEPS"
for p in "${pkg_build_deps_resolved[@]}"; do echo "${p#"$HAB_PKG_PATH"/}"; done >"$pkg_prefix/BUILD_DEPS"
if [[ ${#pkg_bin_dirs[@]} -gt 0 ]]; then (IFS=:; echo "${pkg_bin_dirs[*]/#/$pkg_prefix/}") >"$pkg_prefix/PATH"; fi
if [[ ${#pkg_interpreters[@]} -gt 0 ]]; then printf "$pkg_prefix/%s\n" "${pkg_interpreters[@]}" >"$pkg_prefix/INTERPRETERS"; fi
runtime_path=$(cat "$pkg_prefix/PATH" 2>/dev/null || true)
for p in "${pkg_tdeps_resolved[@]}"; do
  if [[ -f $p/PATH ]]; then runtime_path=${runtime_path:+$runtime_path:}$(cat "$p/PATH"); fi
done
if [[ -n $runtime_path ]]; then echo "$runtime_path" >"$pkg_prefix/RUNTIME_PATH"; fi
do_end
echo "$pkg_prefix"
