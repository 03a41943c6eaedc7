#!/usr/bin/env bash
# Installs the build dependencies, builds anyturn and its tests
# (RelWithDebInfo) into build/ (scripts/run.sh's Release build has its own
# build-release/), and runs the whole suite:
#   - ctest: unit, integration (real daemon, C++ TURN client), interop
#     (coturn's turnutils_* clients against the real daemon) and hostile
#     (abusive clients against the real daemon, turnutils_uclient alongside);
#   - the fuzz smoke test, scripts/fuzz.sh 15, when that script exists.
# Exits non-zero if anything fails, and prints one summary line at the end.
#
#   scripts/test.sh --sanitize   ASan + UBSan build in build-asan/ (g++,
#                                -fno-sanitize-recover=all); runs the `unit`
#                                and `integration` labels, the daemon included.
#   scripts/test.sh --tsan       TSan build in build-tsan/; runs the tests
#                                labelled `tsan` (those with several threads).
# Sanitizer builds run niced, with SANITIZE_JOBS (default 2) compile jobs.
# Every sanitizer report (of a test or of the daemon it started) is written
# under <build>/sanitizer-logs/ and fails the run, even if the test passed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
start=$SECONDS
jobs="$(nproc)"

sanitized_run() {  # mode: address,undefined | thread
  local mode="$1" build labels name
  if [[ "$mode" == thread ]]; then
    build=build-tsan labels='tsan' name=tsan
  else
    build=build-asan labels='unit|integration' name='asan+ubsan'
  fi
  local launcher=()
  if command -v ccache >/dev/null 2>&1; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
  # The test programs' own code under ASan: -O0 (a third of the compile time
  # of -O1; it only drives the code under test). Under TSan it stays at -O1,
  # where the concurrent tests' own loops are hot.
  local test_flags="-O0 -g1"
  [[ "$mode" == thread ]] && test_flags="-O1 -g1"
  scripts/setup.sh
  # -O1 -g1 (line tables only): sanitizer reports keep file:line, and the
  # build takes about half the time of -O2 -g.
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DANYTURN_BUILD_TESTS=ON \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" "-DANYTURN_TEST_CXX_FLAGS=$test_flags" \
    -DCMAKE_CXX_COMPILER=g++ "-DANYTURN_SANITIZE=$mode" "${launcher[@]}"
  # Only what the selected labels run: the daemon and the unit and
  # integration test programs (not the hostile tests or the benchmarks).
  local targets
  mapfile -t targets < <(cmake --build "$build" --target help |
    sed -n 's/^\.\.\. \(anyturn\(_[a-z_]*_tests\)\{0,1\}\)$/\1/p' | grep -vx 'anyturn_hostile_tests')
  local t0=$SECONDS
  nice -n 15 cmake --build "$build" -j"${SANITIZE_JOBS:-2}" --target "${targets[@]}"
  local built=$((SECONDS - t0))
  local logs="$root/$build/sanitizer-logs"
  rm -rf "$logs"
  mkdir -p "$logs"
  # halt/abort on the first report; log_path collects the daemon's reports
  # too (integration tests run it as a child process).
  export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1:log_path=$logs/asan"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$logs/ubsan"
  export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:history_size=4:log_path=$logs/tsan"
  if [[ -f "$root/tests/sanitizers/$name.supp" ]]; then
    # Each entry there says why it is a false positive.
    export TSAN_OPTIONS="$TSAN_OPTIONS:suppressions=$root/tests/sanitizers/$name.supp"
  fi
  t0=$SECONDS
  local rc=0
  rm -f "$build/Testing/Temporary/LastTestsFailed.log" "$build/ci-failures.txt"
  ctest --test-dir "$build" -L "$labels" --output-on-failure --no-tests=error \
    -j"${SANITIZE_TEST_JOBS:-2}" --timeout 300 || rc=1
  scripts/ctest_failures.sh "$build" >"$build/ci-failures.txt" || true
  local tested=$((SECONDS - t0))
  if compgen -G "$logs/*" >/dev/null; then
    echo "test.sh: sanitizer reports in $logs:" >&2
    for f in "$logs"/*; do echo "--- $f" >&2; head -n 60 "$f" >&2; done
    for f in "$logs"/*; do echo "--- sanitizer report $f"; head -n 30 "$f"; done >>"$build/ci-failures.txt"
    rc=1
  fi
  local verdict=PASSED
  ((rc == 0)) || verdict=FAILED
  echo "test.sh: $name $verdict (build ${built}s, tests ${tested}s; load average: $(cut -d' ' -f1-3 /proc/loadavg))"
  return "$rc"
}

case "${1:-}" in
  --sanitize) sanitized_run address,undefined; exit $? ;;
  --tsan) sanitized_run thread; exit $? ;;
  "") ;;
  *) echo "usage: $0 [--sanitize | --tsan]" >&2; exit 2 ;;
esac

scripts/setup.sh
# The browser test's playwright-core, pinned by its lockfile (never a browser
# download: it drives Debian's /usr/bin/chromium).
npm ci --prefix tests/interop/browser --no-audit --no-fund --loglevel=error
# The container test's base images (debootstrap from the Debian mirror,
# minutes on a cold machine, waiting on the network rather than the CPU):
# started now so it overlaps the build; the test waits for it (a lock).
base_image_pid=""
if ((EUID == 0)) && [[ -x tests/package/base_image.sh ]]; then
  mkdir -p build
  tests/package/base_image.sh >build/base-image.log 2>&1 &
  base_image_pid=$!
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DANYTURN_BUILD_TESTS=ON \
  -DANYTURN_BUILD_BROWSER_TESTS=ON -DANYTURN_REQUIRE_BROWSER_TESTS=ON \
  "-DANYTURN_BROWSER_TRANSPORTS=udp;tcp;tls"
cmake --build build -j"$jobs"

results=()
failed=0

# build/ci-failures.txt: what failed, each with the end of its output;
# .ci/run prints it again last, where a truncated CI log still shows it.
rm -f build/Testing/Temporary/LastTestsFailed.log build/ci-failures.txt
if ctest --test-dir build --output-on-failure --no-tests=error -j"$jobs"; then
  results+=("ctest: passed")
else
  results+=("ctest: FAILED")
  failed=1
  scripts/ctest_failures.sh build >build/ci-failures.txt || true
fi

if [[ -n "$base_image_pid" ]]; then
  # Over by now (the container test waited for its lock); its result is
  # that test's to judge, this only makes sure nothing outlives the script.
  wait "$base_image_pid" || true
  echo "test.sh: $(tail -n 1 build/base-image.log)"
fi

if [[ -f scripts/fuzz.sh ]]; then
  if bash scripts/fuzz.sh 15 2>&1 | tee build/fuzz.log; then
    results+=("fuzz: passed")
  else
    results+=("fuzz: FAILED")
    failed=1
    { echo "--- FAILED: scripts/fuzz.sh 15"; tail -n 40 build/fuzz.log; } >>build/ci-failures.txt
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
