#!/usr/bin/env bash
# Installs the build dependencies, builds anyturn (Release) into build/ and
# runs it on config/anyturn.yaml. Extra arguments go to anyturn and override
# the config file, e.g.:
#   ./scripts/run.sh --listen 0.0.0.0:3478 --relay-ip 203.0.113.10 --log-level debug
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build --target anyturn -j"$(nproc)"
exec build/anyturn --config config/anyturn.yaml "$@"
