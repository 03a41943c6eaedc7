#!/usr/bin/env bash
# The container image (label: container; docs/packaging.md, "Container"):
# docker/Dockerfile installs the same .deb that cpack builds. No registry is
# reachable and `podman run` cannot work in this sandbox, so:
#   1. the base image: `debootstrap --variant=minbase bookworm`, imported with
#      `podman import` as debian:bookworm and debian:bookworm-slim, cached in
#      $ANYTURN_TEST_CACHE (default /var/cache/anyturn-test, outside the
#      clone) and in podman's store between runs;
#   2. cpack builds the .deb; `podman build --isolation chroot` builds the image;
#   3. `podman image mount`, and the image's /usr/bin/anyturn (the same bytes
#      as in the .deb) runs under chroot as the image's user anyturn, with a
#      writable state directory bind-mounted (in a private mount namespace)
#      on /var/lib/anyturn: it must answer a STUN Binding and GET /healthz.
# Exits 77 (skipped) with the reason when podman or debootstrap cannot work
# here. Prints how long each phase took (a cold run includes debootstrap).
#   container.sh BUILD_DIR SOURCE_DIR
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build="${1:?usage: container.sh BUILD_DIR SOURCE_DIR}"
source_dir="${2:?usage: container.sh BUILD_DIR SOURCE_DIR}"
export ANYTURN_BINARY="$build/anyturn"
# shellcheck source=../interop/lib.sh
source "$here/../interop/lib.sh"

skip() {
  log "SKIP: $*"
  exit 77
}

image="localhost/anyturn-container-test:$$"
t_start=$SECONDS

((EUID == 0)) || skip "needs root: debootstrap, podman image mount, chroot and mount --bind"
for tool in podman debootstrap cpack unshare chroot curl turnutils_stunclient sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || skip "$tool not found (scripts/setup.sh installs it)"
done
podman info >"$work/podman-info.txt" 2>&1 || skip "podman does not work here: $(tail -n 3 "$work/podman-info.txt")"

mounted=0
container_cleanup() {
  if ((mounted)); then podman image unmount "$image" >/dev/null 2>&1 || true; fi
  podman rmi -f "$image" >/dev/null 2>&1 || true
}
trap 'rc=$?; for p in "${started_pids[@]}"; do stop_pid "$p"; done; container_cleanup; (exit $rc); cleanup' EXIT

# ---- 1. the base images (cached; scripts/test.sh may have started this) ----
t0=$SECONDS
base_rc=0
base_line="$(bash "$here/base_image.sh" 2>"$work/base-image.err")" || base_rc=$?
if ((base_rc == 77)); then skip "$(tail -n 1 "$work/base-image.err")"; fi
((base_rc == 0)) || fail "the base images failed: $(tail -n 5 "$work/base-image.err")"
t_base=$((SECONDS - t0))
log "$base_line; waited $t_base s"

# ---- 2. the .deb and the image ----
t0=$SECONDS
cpack -G DEB -B "$work/cpack" --config "$build/CPackConfig.cmake" >"$work/cpack.log" 2>&1 ||
  fail "cpack failed: $(tail -n 20 "$work/cpack.log")"
mkdir -p "$work/context"
cp "$work"/cpack/anyturn_*.deb "$work/context/"
deb="$(ls "$work"/context/anyturn_*.deb)"
t_deb=$((SECONDS - t0))
log "cpack: $(basename "$deb") ($t_deb s)"
t0=$SECONDS
if ! podman build --isolation chroot -f "$source_dir/docker/Dockerfile" -t "$image" "$work/context" \
  >"$work/build.log" 2>&1; then
  fail "podman build failed: $(tail -n 30 "$work/build.log")"
fi
t_build=$((SECONDS - t0))
log "podman build --isolation chroot: $image ($t_build s)"

# ---- 3. the image's binary under chroot ----
mnt="$(podman image mount "$image")" || fail "podman image mount failed"
mounted=1
[[ -x "$mnt/usr/bin/anyturn" ]] || fail "the image has no /usr/bin/anyturn"
mkdir -p "$work/unpacked"
dpkg-deb -x "$deb" "$work/unpacked"
[[ "$(sha256sum <"$mnt/usr/bin/anyturn")" == "$(sha256sum <"$work/unpacked/usr/bin/anyturn")" ]] ||
  fail "/usr/bin/anyturn in the image differs from the one in the .deb"
grep -q '^Package: anyturn$' "$mnt/var/lib/dpkg/status" || fail "the image's dpkg does not list anyturn"
uid="$(awk -F: '$1 == "anyturn" {print $3}' "$mnt/etc/passwd")"
gid="$(awk -F: '$1 == "anyturn" {print $4}' "$mnt/etc/passwd")"
[[ -n "$uid" && -n "$gid" ]] || fail "the image has no user anyturn (postinst)"
state="$work/state"
mkdir -p "$state"
chown "$uid:$gid" "$state"
chmod 0750 "$state"

port="$(free_port)"
tls_port="$(free_port)"
while [[ "$tls_port" == "$port" ]]; do tls_port="$(free_port)"; done
http="$(free_port)"
while [[ "$http" == "$port" || "$http" == "$tls_port" ]]; do http="$(free_port)"; done
t0=$SECONDS
# A private mount namespace: the bind mount ends with the process. exec keeps
# one PID from unshare to anyturn.
unshare --mount --propagation private -- /bin/sh -c '
  mount --bind "$1" "$2/var/lib/anyturn" || exit 97
  shift 2
  exec chroot --userspec="$0" "$@"' "$uid:$gid" "$state" "$mnt" "$mnt" \
  /usr/bin/anyturn --config /etc/anyturn/anyturn.yaml \
  --listen "127.0.0.1:$port" --tls-listen "127.0.0.1:$tls_port" --http-listen "127.0.0.1:$http" \
  --relay-ip 127.0.0.1 --relay-ports "$(relay_range 23)" --threads 1 >"$work/anyturn.log" 2>&1 &
server_pid=$!
started_pids+=("$server_pid")
answered=0
for ((i = 0; i < 50; i++)); do
  kill -0 "$server_pid" 2>/dev/null || fail "the image's anyturn exited during start-up"
  if stun_ping "$port" 0.2; then
    answered=1
    break
  fi
done
((answered)) || fail "the image's anyturn did not answer a Binding within 10 s"
out="$work/stunclient.log"
timeout 15 turnutils_stunclient -p "$port" 127.0.0.1 >"$out" 2>&1 || true
reflexive="$(grep -oE 'UDP reflexive addr: [0-9.]+:[0-9]+' "$out" | tail -n 1 | awk '{print $4}')"
[[ "${reflexive%:*}" == 127.0.0.1 ]] || fail "no STUN Binding answer from the image's binary: $(cat "$out")"
log "turnutils_stunclient: reflexive address $reflexive"
code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://127.0.0.1:$http/healthz")"
[[ "$code" == 200 ]] || fail "GET /healthz answered $code"
log "GET /healthz: 200"
[[ -f "$state/rest-secret" ]] || fail "the server did not write its state into the writable state directory"
stop_server
t_run=$((SECONDS - t0))

log "times: base images $t_base s (${base_line}), cpack $t_deb s, podman build $t_build s, chroot run $t_run s, total $((SECONDS - t_start)) s"
log "PASS"
