#!/usr/bin/env bash
# Builds the libFuzzer targets with clang-14 in build-fuzz/ and runs them.
#
#   scripts/fuzz.sh [SECONDS]
#       The smoke run (CI): first replays every committed regression input
#       (tests/fuzz/regressions/NAME/*, inputs that once crashed), then runs
#       each target for SECONDS (default 20) on a temporary copy of its
#       committed corpus, so the tree is never modified.
#   scripts/fuzz.sh --long SECONDS [--update-corpus] [--jobs N] [TARGET...]
#       Runs each target (or the ones named) for SECONDS, then merges what it
#       found into a minimized corpus (-merge=1) in build-fuzz/merged/NAME.
#       With --update-corpus that minimized corpus replaces
#       tests/fuzz/corpus/NAME. Prints, per target, the executions, exec/s and
#       libFuzzer's coverage (cov: edges, ft: features) before and after.
#
# Each target NAME_fuzz runs with tests/fuzz/NAME.dict when it exists.
# Exits non-zero if a fuzzer crashes (its input is copied to
# build-fuzz/crashes/; make it a regression input and fix the bug).
set -euo pipefail

usage() {
  echo "usage: $0 [SECONDS] | --long SECONDS [--update-corpus] [TARGET...]" >&2
  exit 2
}

seconds=20
long=0
update=0
only=()
while (($#)); do
  case "$1" in
    --long) long=1; seconds="${2:-}"; shift 2 || usage ;;
    --update-corpus) update=1; shift ;;
    -h|--help) usage ;;
    *_fuzz) only+=("$1"); shift ;;
    *) seconds="$1"; shift ;;
  esac
done
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [[ "$seconds" -eq 0 ]]; then usage; fi
if ((update && !long)); then
  echo "fuzz.sh: --update-corpus needs --long" >&2
  exit 2
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build-fuzz"
jobs="${FUZZ_BUILD_JOBS:-2}"

# tests/fuzz is a standalone CMake project as well, so the fuzzers build
# regardless of the state of the other modules. Its `all` target is the
# fuzzers, and it writes their names to fuzz_targets.txt: the target list
# lives only in tests/fuzz/CMakeLists.txt.
launcher=()
if command -v ccache >/dev/null 2>&1; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
CC=clang-14 CXX=clang++-14 cmake -S "$root/tests/fuzz" -B "$build" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" >/dev/null
nice -n 10 cmake --build "$build" -j "$jobs"
mapfile -t targets < <(grep -v '^[[:space:]]*$' "$build/fuzz_targets.txt")
if ((${#targets[@]} == 0)); then
  echo "fuzz.sh: no fuzz targets listed in $build/fuzz_targets.txt" >&2
  exit 1
fi
if ((${#only[@]})); then
  for t in "${only[@]}"; do
    printf '%s\n' "${targets[@]}" | grep -qx "$t" || { echo "fuzz.sh: unknown target $t" >&2; exit 2; }
  done
  targets=("${only[@]}")
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

dict_args() {
  local dict="$root/tests/fuzz/$1.dict"
  if [[ -f "$dict" ]]; then echo "-dict=$dict"; fi
}

# libFuzzer's last "cov: N ft: M" of a log, as "cov N ft M".
coverage_of() {
  grep -Eo 'cov: [0-9]+ ft: [0-9]+' "$1" | tail -n 1 | tr -d ':' || true
}

failed() {  # target log artifacts
  echo "!! $1 FAILED; last lines of its log:" >&2
  tail -n 40 "$2" >&2
  mkdir -p "$build/crashes"
  cp -r "$3". "$build/crashes/" 2>/dev/null || true
  echo "!! crash inputs copied to $build/crashes/" >&2
}

# One target: its regression replay, the timed run and (--long) the merge.
# Prints its report; returns non-zero when the target failed.
run_target() {
  local target="$1" name corpus artifacts regressions runs rate start_cov end_cov merged merged_cov
  local -a dict
  name="${target%_fuzz}"
  corpus="$work/corpus-$name"
  artifacts="$work/artifacts-$name/"
  mkdir -p "$corpus" "$artifacts"
  cp "$root/tests/fuzz/corpus/$name/"* "$corpus/"
  read -r -a dict <<<"$(dict_args "$name")"

  # Inputs that once crashed a target must keep passing.
  regressions="$root/tests/fuzz/regressions/$name"
  if compgen -G "$regressions/*" >/dev/null; then
    if ! "$build/$target" "${dict[@]}" "$regressions"/* >"$work/$target.replay.log" 2>&1; then
      status=1
      failed "$target (regression replay)" "$work/$target.replay.log" "$artifacts"
      return 1
    fi
    echo "== $target: $(ls "$regressions" | wc -l) regression inputs pass"
  fi

  echo "== $target: ${seconds}s on a copy of tests/fuzz/corpus/$name"
  if ! nice -n 10 "$build/$target" "${dict[@]}" -max_total_time="$seconds" -print_final_stats=1 \
      -artifact_prefix="$artifacts" "$corpus" >"$work/$target.log" 2>&1; then
    status=1
    failed "$target" "$work/$target.log" "$artifacts"
    return 1
  fi
  runs="$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$work/$target.log" | grep -Eo '[0-9]+$')"
  rate="$(grep -Eo 'stat::average_exec_per_sec: *[0-9]+' "$work/$target.log" | grep -Eo '[0-9]+$')"
  start_cov="$(grep -E 'INITED' "$work/$target.log" | grep -Eo 'cov: [0-9]+ ft: [0-9]+' | tr -d ':' || true)"
  end_cov="$(coverage_of "$work/$target.log")"
  echo "   $runs executions ($rate/s); coverage at start: ${start_cov:-?}, at end: ${end_cov:-?}"
  echo "   corpus: $(ls "$corpus" | wc -l) inputs (committed: $(ls "$root/tests/fuzz/corpus/$name" | wc -l))"

  if ((long)); then
    # Minimize: the committed corpus plus what this run found, merged into
    # an empty directory keeps only inputs that add coverage.
    merged="$build/merged/$name"
    rm -rf "$merged"
    mkdir -p "$merged"
    if ! "$build/$target" "${dict[@]}" -merge=1 "$merged" "$root/tests/fuzz/corpus/$name" "$corpus" \
        >"$work/$target.merge.log" 2>&1; then
      status=1
      failed "$target (merge)" "$work/$target.merge.log" "$artifacts"
      return 1
    fi
    merged_cov="$(grep -Eo 'MERGE-OUTER: [0-9]+ new files with [0-9]+ new features' "$work/$target.merge.log" | tail -n 1 || true)"
    echo "   minimized corpus: $(ls "$merged" | wc -l) inputs in $merged (${merged_cov:-merge done})"
    if ((update)); then
      rm -f "$root/tests/fuzz/corpus/$name/"*
      cp "$merged/"* "$root/tests/fuzz/corpus/$name/"
      echo "   tests/fuzz/corpus/$name updated"
    fi
    echo "$target: ${seconds}s, $runs executions ($rate/s), ${end_cov:-?}, corpus $(ls "$merged" | wc -l)" >"$work/$target.summary"
  fi
}

# The smoke run takes two targets at a time (one per core; CI's machine has
# two), each report printed whole when its target ends. --long runs one at a
# time: its runs are the measurement.
parallel="${FUZZ_PARALLEL:-2}"
((long)) && parallel=1
status=0
pids=()
names=()
finish_oldest() {
  wait "${pids[0]}" || status=1
  cat "$work/${names[0]}.out"
  pids=("${pids[@]:1}")
  names=("${names[@]:1}")
}
for target in "${targets[@]}"; do
  run_target "$target" >"$work/$target.out" 2>&1 &
  pids+=("$!")
  names+=("$target")
  if ((${#pids[@]} >= parallel)); then finish_oldest; fi
done
while ((${#pids[@]})); do finish_oldest; done
if ((long)); then
  echo "== summary"
  for target in "${targets[@]}"; do
    [[ -f "$work/$target.summary" ]] && printf '   %s\n' "$(cat "$work/$target.summary")"
  done
fi
exit "$status"
