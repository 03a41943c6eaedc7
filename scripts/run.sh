#!/usr/bin/env bash
# Installs the build dependencies, builds anyturn (Release) into
# build-release/ and runs it on config/anyturn.yaml. scripts/test.sh builds
# into build/, so running one after the other rebuilds nothing needlessly.
# Extra arguments go to anyturn and override the config file, e.g.:
#   ./scripts/run.sh --listen 0.0.0.0:3478 --relay-ip 203.0.113.10 --log-level debug
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

scripts/setup.sh
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release
cmake --build build-release --target anyturn -j"$(nproc)"
exec build-release/anyturn --config config/anyturn.yaml "$@"
