#!/usr/bin/env bash
# Installs everything anyturn needs to build, test and run (Debian bookworm).
#
# Idempotent: packages already installed are detected with dpkg and nothing is
# downloaded on a second run. Needs root, or sudo without a password prompt,
# only when something is missing. Installing coturn (its test clients are
# used by tests/interop) or redis-server (the fleet tests run their own) never
# starts its system service: a temporary /usr/sbin/policy-rc.d forbids it,
# and any pre-existing one is put back exactly as it was.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

packages=(
  build-essential cmake g++ clang-14 libclang-rt-14-dev
  libboost1.81-dev libboost-json1.81-dev libssl-dev libspdlog-dev libyaml-cpp-dev
  libhiredis-dev pkg-config redis-server
  libgtest-dev libgmock-dev libbenchmark-dev
  coturn prometheus python3 openssl iproute2 procps curl
  chromium libnss3-tools gnuplot-nox
  haproxy kubectl lintian fakeroot podman debootstrap systemd
  clang libbpf-dev bpftool xdp-tools ethtool
)
# Node.js and npm drive the browser test (playwright-core). The machine image
# ships them; install Debian's only where they are missing.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi

is_installed() {
  [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

missing_packages() {
  local p
  for p in "${packages[@]}"; do
    is_installed "$p" || printf '%s\n' "$p"
  done
}

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "setup: dpkg-query not found: this script supports Debian/Ubuntu only." >&2
  echo "setup: install these packages by other means: ${packages[*]}" >&2
  exit 1
fi

mapfile -t missing < <(missing_packages)
if ((${#missing[@]} == 0)); then
  echo "setup: all ${#packages[@]} packages are installed"
  exit 0
fi

echo "setup: missing packages: ${missing[*]}"

as_root=()
if ((EUID != 0)); then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n env DEBIAN_FRONTEND=noninteractive)
  else
    echo "setup: not root and no password-less sudo; cannot install." >&2
    echo "setup: as root run: apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
fi

# Keep package scripts from starting services (coturn's turnserver and
# redis-server in particular: the fleet tests start their own redis-server on
# a loopback port) while we install: invoke-rc.d obeys policy-rc.d's exit code 101.
policy=/usr/sbin/policy-rc.d
policy_backup=""
restore_policy() {
  # A rename back restores the original exactly (contents, mode, owner,
  # timestamps, or a symlink as a symlink).
  if [[ -n "$policy_backup" ]]; then
    "${as_root[@]}" mv -f "$policy_backup" "$policy"
  else
    "${as_root[@]}" rm -f "$policy"
  fi
}
if [[ -e "$policy" || -L "$policy" ]]; then
  policy_backup="$policy.anyturn-backup.$$"
  "${as_root[@]}" mv -f "$policy" "$policy_backup"
fi
trap restore_policy EXIT
printf '#!/bin/sh\n# written by anyturn scripts/setup.sh during apt-get install\nexit 101\n' |
  "${as_root[@]}" tee "$policy.anyturn-tmp" >/dev/null
"${as_root[@]}" chmod 0755 "$policy.anyturn-tmp"
"${as_root[@]}" mv -f "$policy.anyturn-tmp" "$policy"

status=0
if ! "${as_root[@]}" apt-get update; then
  echo "setup: apt-get update failed" >&2
  status=1
fi
if ((status == 0)) &&
  ! "${as_root[@]}" apt-get install -y --no-install-recommends "${missing[@]}"; then
  echo "setup: apt-get install failed" >&2
  status=1
fi

restore_policy
trap - EXIT

mapfile -t still_missing < <(missing_packages)
if ((${#still_missing[@]} > 0)); then
  echo "setup: these packages are still missing: ${still_missing[*]}" >&2
  exit 1
fi
if ((status != 0)); then
  exit "$status"
fi
echo "setup: installed ${missing[*]}"
