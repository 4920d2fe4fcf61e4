# Redis in Habitat's leader topology, with hab-pod-role putting the election's result on the pod.
# This package only adds configuration and hooks; redis-server and hab-pod-role come from its deps.

pkg_name=redis-leader
# hab-plan-build replaces this with HAB_ORIGIN.
pkg_origin=example
pkg_version=0.1.0
pkg_maintainer="The hab-pod-role developers"
pkg_license=('Apache-2.0')
pkg_description="Redis leader/follower under Habitat on Kubernetes; Services follow the elected leader."
# hab-pod-role is built under your own origin (plans/hab-pod-role): build both with the same HAB_ORIGIN.
# core/redis is 4.0.14; the templates use only what Redis 4.0 has (README.md).
pkg_deps=(core/redis "${HAB_ORIGIN:-example}/hab-pod-role")
pkg_exports=([port]=port)
pkg_exposes=(port)
pkg_svc_user=hab
pkg_svc_group=$pkg_svc_user

do_build() { return 0; }
do_install() { return 0; }
