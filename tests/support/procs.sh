# shellcheck shell=bash
# Process and log helpers of the shell tests (sourced by tests/interop/lib.sh
# and tests/xdp/lib.sh, not run): every process a test starts goes into
# started_pids and is ended by that PID only; every wait is bounded.
#
# The sourcing script sets `work` (its temporary directory) and
# `declare -a started_pids=()`, then installs a trap that calls
# end_started_and_report.

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
fail() {
  log "FAIL: $*"
  exit 1
}

stop_pid() {  # stop_pid PID [SIGNAL]: SIGNAL (TERM), wait up to 5 s, then KILL
  local pid=$1 sig=${2:-TERM} i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -"$sig" "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

# end_started_and_report RC LINES: stops and reaps every started process; when
# RC says the test failed (not 0, not 77: skipped), prints the last LINES
# lines of each log in $work; removes $work unless ANYTURN_KEEP_LOGS is set.
# shellcheck disable=SC2154  # work and started_pids: set by the sourcing script
end_started_and_report() {
  local rc=$1 lines=$2 pid f
  for pid in "${started_pids[@]}"; do stop_pid "$pid"; done
  for pid in "${started_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if ((rc != 0 && rc != 77)); then
    for f in "$work"/*.log; do
      [[ -f "$f" ]] || continue
      echo "---- $f (last $lines lines)"
      tail -n "$lines" "$f"
    done
  fi
  if [[ -z "${ANYTURN_KEEP_LOGS:-}" ]]; then rm -rf "$work"; else echo "logs kept in $work"; fi
}
