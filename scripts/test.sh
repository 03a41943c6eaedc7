#!/usr/bin/env bash
# Installs the build dependencies, builds anyturn and its tests
# (RelWithDebInfo) into build/ (scripts/run.sh's Release build has its own
# build-release/), and runs the whole suite:
#   - ctest: unit, integration (real daemon, C++ TURN client) and interop
#     (coturn's turnutils_* clients against the real daemon);
#   - the fuzz smoke test, scripts/fuzz.sh 15, when that script exists.
# Exits non-zero if anything fails, and prints one summary line at the end.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
start=$SECONDS
jobs="$(nproc)"

scripts/setup.sh
# The browser test's playwright-core, pinned by its lockfile (never a browser
# download: it drives Debian's /usr/bin/chromium).
npm ci --prefix tests/interop/browser --no-audit --no-fund --loglevel=error
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DANYTURN_BUILD_TESTS=ON \
  -DANYTURN_BUILD_BROWSER_TESTS=ON -DANYTURN_REQUIRE_BROWSER_TESTS=ON \
  "-DANYTURN_BROWSER_TRANSPORTS=udp;tcp;tls"
cmake --build build -j"$jobs"

results=()
failed=0

if ctest --test-dir build --output-on-failure --no-tests=error -j"$jobs"; then
  results+=("ctest: passed")
else
  results+=("ctest: FAILED")
  failed=1
fi

if [[ -f scripts/fuzz.sh ]]; then
  if bash scripts/fuzz.sh 15; then
    results+=("fuzz: passed")
  else
    results+=("fuzz: FAILED")
    failed=1
  fi
else
  results+=("fuzz: no scripts/fuzz.sh")
fi

summary="$(IFS=';'; echo "${results[*]}")"
summary="${summary//;/, }"
if ((failed)); then
  echo "test.sh: FAILED (${summary}) in $((SECONDS - start))s"
  exit 1
fi
echo "test.sh: PASSED (${summary}) in $((SECONDS - start))s"
