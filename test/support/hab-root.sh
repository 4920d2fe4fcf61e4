#!/usr/bin/env bash
# Runs a command in a private mount namespace (needs root), as a Habitat studio or an exported image sees the machine.
#   studio WORK CMD...         this machine's directories with WORK/hab at /hab, and no node, npm or npx
#                              of the machine's (a studio has only what /hab holds); the root is WORK/studio-root
#   image ROOT NAME=VALUE... -- CMD...
#                              ROOT alone (what `hab pkg export container` puts in an image: /hab and /bin),
#                              with /proc and /dev as a container runtime provides them, and only the given environment
# Every mount belongs to the namespace and goes when the command ends, also when it is killed.
set -euo pipefail

mode=$1 dir=$2
shift 2
if [[ -z ${HAB_ROOT_NAMESPACE:-} ]]; then
  exec env HAB_ROOT_NAMESPACE=1 unshare --mount --propagation private bash "$0" "$mode" "$dir" "$@"
fi
chroot=$(command -v chroot)

case $mode in
studio)
  root=$dir/studio-root
  mkdir -p "$root"
  for entry in /*; do
    name=${entry#/}
    case $name in hab | proc | dev | sys | lost+found) continue ;; esac
    if [[ -L $entry ]]; then
      cp -P "$entry" "$root/$name"
    elif [[ -d $entry ]]; then
      # Not recursive: the mounts below these (if any) are not needed, and /tmp holds this root itself.
      mkdir -p "$root/$name"
      mount --bind "$entry" "$root/$name"
    fi
  done
  mkdir -p "$root/hab" "$root/proc" "$root/dev" "$root/sys"
  mount --bind "$dir/hab" "$root/hab"
  mount -t proc proc "$root/proc"
  mount --rbind /dev "$root/dev"
  mount --rbind /sys "$root/sys"
  for tool in node npm npx corepack; do
    for bin in /usr/bin /usr/local/bin; do
      if [[ -e $root$bin/$tool ]]; then mount --bind /dev/null "$root$bin/$tool"; fi
    done
  done
  exec "$chroot" "$root" "$@"
  ;;
image)
  environment=()
  while [[ $1 != -- ]]; do environment+=("$1"); shift; done
  shift
  mkdir -p "$dir/proc" "$dir/dev"
  mount -t proc proc "$dir/proc"
  mount --rbind /dev "$dir/dev"
  exec env -i "${environment[@]}" "$chroot" "$dir" "$@"
  ;;
*)
  echo "hab-root.sh: the mode is studio or image, not $mode" >&2
  exit 64
  ;;
esac
