#!/usr/bin/env bash
# Builds the libFuzzer targets with clang-14 in build-fuzz/ and runs each for
# SECONDS (default 20) on a temporary copy of its committed corpus, so the
# corpus in the tree is never modified. Exits non-zero if a fuzzer crashes.
#
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail

seconds="${1:-20}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [[ "$seconds" -eq 0 ]]; then
  echo "usage: $0 [SECONDS]" >&2
  exit 2
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build-fuzz"
jobs="${FUZZ_BUILD_JOBS:-2}"

# tests/fuzz is a standalone CMake project as well, so the fuzzers build
# regardless of the state of the other modules. Its `all` target is the
# fuzzers, and it writes their names to fuzz_targets.txt: the target list
# lives only in tests/fuzz/CMakeLists.txt.
CC=clang-14 CXX=clang++-14 cmake -S "$root/tests/fuzz" -B "$build" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$jobs"
mapfile -t targets < <(grep -v '^[[:space:]]*$' "$build/fuzz_targets.txt")
if ((${#targets[@]} == 0)); then
  echo "fuzz.sh: no fuzz targets listed in $build/fuzz_targets.txt" >&2
  exit 1
fi
for target in "${targets[@]}"; do
  corpus_dir="$root/tests/fuzz/corpus/${target%_fuzz}"
  if [[ ! -x "$build/$target" ]] || ! compgen -G "$corpus_dir/*" >/dev/null; then
    echo "fuzz.sh: $target needs the binary $build/$target and a non-empty $corpus_dir" >&2
    exit 1
  fi
done

work="$(mktemp -d "${TMPDIR:-/tmp}/anyturn-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT

status=0
for target in "${targets[@]}"; do
  corpus_name="${target%_fuzz}"
  corpus="$work/corpus-$corpus_name"
  artifacts="$work/artifacts-$corpus_name/"
  mkdir -p "$corpus" "$artifacts"
  cp "$root/tests/fuzz/corpus/$corpus_name/"* "$corpus/"
  echo "== $target: ${seconds}s on a copy of tests/fuzz/corpus/$corpus_name"
  if ! "$build/$target" -max_total_time="$seconds" -print_final_stats=1 \
      -artifact_prefix="$artifacts" "$corpus" >"$work/$target.log" 2>&1; then
    status=1
    echo "!! $target FAILED; last lines of its log:" >&2
    tail -n 40 "$work/$target.log" >&2
    mkdir -p "$build/crashes"
    cp -r "$artifacts". "$build/crashes/" 2>/dev/null || true
    echo "!! crash inputs copied to $build/crashes/" >&2
  else
    grep -E "stat::number_of_executed_units|stat::new_units_added" "$work/$target.log" || true
    echo "   corpus: $(ls "$corpus" | wc -l) inputs (committed: $(ls "$root/tests/fuzz/corpus/$corpus_name" | wc -l))"
  fi
done
exit "$status"
