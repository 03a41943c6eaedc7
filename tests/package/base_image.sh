#!/usr/bin/env bash
# The container test's base images (tests/package/container.sh, step 1):
# `debootstrap --variant=minbase bookworm`, kept as a tarball in
# $ANYTURN_TEST_CACHE (default /var/cache/anyturn-test, outside the clone),
# then `podman import`ed as debian:bookworm and debian:bookworm-slim (kept in
# podman's store). Idempotent and serialised by a lock in the cache, so
# scripts/test.sh can start it in the background while it compiles (a cold
# debootstrap spends minutes waiting on the Debian mirror, not on the CPU)
# and container.sh, which calls it again, waits for that run and finds the
# images ready.
#
# Prints one line: "base images: warm|cached tarball|cold (N s)".
# Exit codes: 0 ready; 77 cannot work here (reason on stderr); 1 failed.
set -uo pipefail

cache="${ANYTURN_TEST_CACHE:-/var/cache/anyturn-test}"
mirror="${ANYTURN_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
t0=$SECONDS

cannot() {
  echo "base_image.sh: $*" >&2
  exit 77
}

((EUID == 0)) || cannot "needs root (debootstrap)"
for tool in podman debootstrap flock tar timeout; do
  command -v "$tool" >/dev/null 2>&1 || cannot "$tool not found (scripts/setup.sh installs it)"
done
mkdir -p "$cache" || cannot "cannot create $cache"
exec 9>"$cache/base-image.lock"
# One run at a time; a waiting run gives up after 15 minutes.
flock -w 900 9 || cannot "another run holds $cache/base-image.lock for over 15 minutes"

if podman image exists debian:bookworm && podman image exists debian:bookworm-slim; then
  echo "base images: warm ($((SECONDS - t0)) s)"
  exit 0
fi
state="cached tarball"
tarball="$cache/bookworm-minbase.tar"
if [[ ! -s "$tarball" ]]; then
  state=cold
  rootfs="$cache/rootfs.tmp"
  rm -rf "$rootfs"
  # Bounded: a mirror that stalls must not hold the suite.
  if ! timeout 1200 debootstrap --variant=minbase bookworm "$rootfs" "$mirror" \
    >"$cache/debootstrap.log" 2>&1; then
    rm -rf "$rootfs"
    cannot "debootstrap cannot work here: $(tail -n 3 "$cache/debootstrap.log" | tr '\n' ' ')"
  fi
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  if ! tar -C "$rootfs" --numeric-owner -cf "$tarball.tmp" .; then
    rm -rf "$rootfs" "$tarball.tmp"
    echo "base_image.sh: tar of the root file system failed" >&2
    exit 1
  fi
  mv "$tarball.tmp" "$tarball"
  rm -rf "$rootfs"
fi
podman import "$tarball" debian:bookworm >"$cache/import.log" 2>&1 ||
  cannot "podman import cannot work here: $(tail -n 3 "$cache/import.log" | tr '\n' ' ')"
podman tag debian:bookworm debian:bookworm-slim ||
  cannot "podman tag cannot work here"
echo "base images: $state ($((SECONDS - t0)) s)"
