#!/usr/bin/env bash
# Relay benchmark: anyturn vs coturn vs a bare UDP forwarder, side by side.
#
# Builds Release into build-bench/, then for every repetition and scenario
# starts each server fresh (pinned to its own CPU), drives it with
# anyturn-load (pinned to another CPU), stops it, and records one JSON line.
# Servers run in a rotated order in each repetition, so drift over time
# spreads evenly. Afterwards scripts/bench/report.py writes the medians and
# ratios to docs/benchmarks.md and a gnuplot chart to docs/benchmarks.png.
#
#   scripts/bench.sh [--quick] [--reps N] [--duration S] [--threads N]
#                    [--only SCENARIO[,SCENARIO...]] [--skip-memory]
#                    [--profile] [--no-build] [--no-report] [--out FILE.md]
#                    [--coalesce-us N]
#
#   --quick       1 repetition, 2 s windows, small memory steps: a smoke test
#   --profile     also record a perf (or callgrind) profile of anyturn under
#                 the 100-client 200 B load and put its top functions in the report
#   --coalesce-us N  the paced scenario also runs "anyturn-coalesce": anyturn
#                 with --udp-coalesce-us N (default 500; 0 leaves it out)
#
# Environment: BENCH_SERVER_CPUS / BENCH_GEN_CPUS (taskset lists; default the
# last CPU for the server, the first for the generator), COTURN (default
# /usr/bin/turnserver). Everything runs on loopback; coturn's system service
# is never touched: we start our own turnserver and kill it by PID.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build-bench"
# The benchmarks' limits (one user, many allocations, full speed).
bench_config="$root/tests/bench/anyturn-bench.yaml"
coturn="${COTURN:-/usr/bin/turnserver}"

quick=0 reps=5 duration=3 warmup=1 threads=1 only="" skip_memory=0 profile=0 do_build=1 do_report=1
coalesce_us=500
out_md="$root/docs/benchmarks.md"
while (($#)); do
  case "$1" in
    --quick) quick=1 ;;
    --reps) reps="$2"; shift ;;
    --duration) duration="$2"; shift ;;
    --threads) threads="$2"; shift ;;
    --only) only="$2"; shift ;;
    --skip-memory) skip_memory=1 ;;
    --profile) profile=1 ;;
    --no-build) do_build=0 ;;
    --no-report) do_report=0 ;;
    --out) out_md="$2"; shift ;;
    --coalesce-us) coalesce_us="$2"; shift ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
if ((quick)); then
  reps=1 duration=2 warmup=0.5
fi

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---------------------------------------------------------------- build
if ((do_build)); then
  log "building Release into $build"
  mkdir -p "$build"
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DANYTURN_BUILD_TESTS=ON >"$build/bench-cmake.log" 2>&1 ||
    { cat "$build/bench-cmake.log" >&2; exit 1; }
  cmake --build "$build" --target anyturn anyturn-load anyturn-bare-forwarder anyturn-core-scale -j2 >"$build/bench-build.log" 2>&1 ||
    { tail -40 "$build/bench-build.log" >&2; exit 1; }
fi
anyturn_bin="$build/anyturn"
load_bin="$build/tests/bench/anyturn-load"
fwd_bin="$build/tests/bench/anyturn-bare-forwarder"
core_bin="$build/tests/bench/anyturn-core-scale"
for b in "$anyturn_bin" "$load_bin" "$fwd_bin" "$coturn"; do
  [[ -x "$b" ]] || { echo "bench.sh: missing $b" >&2; exit 1; }
done

run_id="$(date +%Y%m%d-%H%M%S)"
work="$build/bench-runs/$run_id"
mkdir -p "$work"
results="$work/results.jsonl"
: >"$results"

# ---------------------------------------------------------------- CPUs and ports
ncpu="$(nproc)"
if [[ -z "${BENCH_SERVER_CPUS:-}" ]]; then
  if ((ncpu >= 2)); then
    if ((threads > 1 && ncpu > threads)); then BENCH_SERVER_CPUS="1-$threads"; else BENCH_SERVER_CPUS="$((ncpu - 1))"; fi
    BENCH_GEN_CPUS="0"
  else
    BENCH_SERVER_CPUS="0" BENCH_GEN_CPUS="0"
  fi
fi
BENCH_GEN_CPUS="${BENCH_GEN_CPUS:-0}"

read -r eph_lo eph_hi </proc/sys/net/ipv4/ip_local_port_range
outside_ephemeral() { (($2 < eph_lo || $1 > eph_hi)); }
# Relay ranges: each server its own relay address, so no range overlaps
# another server's or the other engineers' tests (they relay from 127.0.0.1).
anyturn_relay_ip=127.0.0.2 anyturn_ports="20000-29999"
coturn_relay_ip=127.0.0.3 coturn_lo=10000 coturn_hi=19999
fwd_relay_ip=127.0.0.4 fwd_ports="61000-64999"
memory_ports_lo=10000 memory_ports_hi=31999   # memory runs need one port per allocation
client_ips="127.0.1.1-127.0.1.16" client_ports="61000-65535"
for r in "20000 29999" "$coturn_lo $coturn_hi" "61000 65535" "$memory_ports_lo $memory_ports_hi"; do
  # shellcheck disable=SC2086
  outside_ephemeral $r || log "warning: relay range ${r/ /-} overlaps the ephemeral range $eph_lo-$eph_hi"
done

udp_port_busy() { ss -Huan "sport = :$1" 2>/dev/null | grep -q .; }
pick_port() {  # a free UDP port below the ephemeral range, outside the relay ranges
  local p
  for p in $(seq 3700 3999); do
    udp_port_busy "$p" || { echo "$p"; return 0; }
  done
  echo "bench.sh: no free listening port" >&2
  return 1
}

# The open-file hard limit caps concurrent allocations (one relay socket,
# and one client socket, each): the memory steps adapt to it.
fd_hard="$(ulimit -Hn)"
[[ "$fd_hard" == unlimited ]] && fd_hard=1048576
memory_top=$((fd_hard - 1000))
((memory_top > 50000)) && memory_top=50000
((memory_top > memory_ports_hi - memory_ports_lo)) && memory_top=$((memory_ports_hi - memory_ports_lo))
if ((quick)); then memory_steps="2000,5000"; else memory_steps="10000,$memory_top"; fi
((memory_top < 10000)) && memory_steps="$((memory_top / 2)),$memory_top"

# ---------------------------------------------------------------- servers
declare -A server_pid=()
cleanup() {
  local k
  for k in "${!server_pid[@]}"; do
    kill "${server_pid[$k]}" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_listening() {  # wait_listening PID PORT
  local i
  for i in $(seq 1 100); do
    kill -0 "$1" 2>/dev/null || return 1
    udp_port_busy "$2" && return 0
    sleep 0.05
  done
  return 1
}

stop_server() {  # stop_server NAME
  local pid="${server_pid[$1]:-}" i
  [[ -n "$pid" ]] || return 0
  kill "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset "server_pid[$1]"
}

# start_server NAME PORT [memory] -> sets server_pid[NAME]; logs in $work
start_server() {
  local name="$1" port="$2" mode="${3:-}" logf="$work/$1.log"
  local a_ports="$anyturn_ports" c_lo="$coturn_lo" c_hi="$coturn_hi"
  if [[ "$mode" == memory ]]; then
    a_ports="$memory_ports_lo-$memory_ports_hi" c_lo=$memory_ports_lo c_hi=$memory_ports_hi
  fi
  case "$name" in
    anyturn | anyturn-coalesce)
      local extra=()
      [[ "$name" == anyturn-coalesce ]] && extra=(--udp-coalesce-us "$coalesce_us")
      taskset -c "$BENCH_SERVER_CPUS" "$anyturn_bin" --config "$bench_config" --listen "127.0.0.1:$port" --relay-ip "$anyturn_relay_ip" \
        --relay-ports "$a_ports" --user "bench:$bench_password" --allow-peer 127.0.0.0/8 --threads "$threads" \
        --http-listen "127.0.0.1:$((port + 1))" --log-level warn "${extra[@]}" >>"$logf" 2>&1 &
      ;;
    coturn)
      taskset -c "$BENCH_SERVER_CPUS" "$coturn" -n --no-cli --listening-ip=127.0.0.1 --listening-port="$port" \
        --relay-ip="$coturn_relay_ip" --min-port="$c_lo" --max-port="$c_hi" --user="bench:$bench_password" --realm=anyturn \
        --lt-cred-mech --allow-loopback-peers --no-tls --no-dtls --no-tcp --relay-threads="$threads" \
        --pidfile="$work/coturn.pid" --log-file=stdout >"$logf" 2>&1 &
      ;;
    forwarder)
      taskset -c "$BENCH_SERVER_CPUS" "$fwd_bin" --listen "127.0.0.1:$port" --relay-ip "$fwd_relay_ip" \
        --relay-ports "$fwd_ports" --threads "$threads" --max-seconds 600 >>"$logf" 2>&1 &
      ;;
  esac
  server_pid[$name]=$!
  if ! wait_listening "${server_pid[$name]}" "$port"; then
    log "$name did not start; last log lines:"
    tail -5 "$logf" >&2
    stop_server "$name"
    return 1
  fi
}

# Waits (bounded) until other users of the machine leave the CPUs mostly idle;
# prints the busy percentage seen last.
cpu_busy_pct() {
  local a b
  read -r _ a1 a2 a3 a4 a5 a6 a7 _ </proc/stat
  sleep 0.5
  read -r _ b1 b2 b3 b4 b5 b6 b7 _ </proc/stat
  a=$((a1 + a2 + a3 + a4 + a5 + a6 + a7)) b=$((b1 + b2 + b3 + b4 + b5 + b6 + b7))
  local idle=$(((b4 + b5) - (a4 + a5))) total=$((b - a))
  ((total > 0)) || { echo 0; return; }
  echo $((100 * (total - idle) / total))
}
wait_quiet() {
  local limit=$1 busy i
  for ((i = 0; i < limit * 2; ++i)); do
    busy=$(cpu_busy_pct)
    ((busy <= 25)) && break
  done
  echo "${busy:-$(cpu_busy_pct)}"
}

# ---------------------------------------------------------------- scenarios
# name | modes | anyturn-load arguments
# A fresh password per run: anyturn refuses passwords that appear in its
# documentation, and this command line is recorded in docs/benchmarks.md.
bench_password="$(openssl rand -hex 12)"
common="--duration $duration --warmup $warmup --password $bench_password"
declare -A scenario_args=(
  [c1_200]="throughput --clients 1 --size 200 --inflight 8"
  [c100_200]="throughput --clients 100 --size 200 --inflight 4"
  [a1000_50]="throughput --clients 1000 --active 50 --size 200 --inflight 4"
  [c100_1200]="throughput --clients 100 --size 1200 --inflight 4"
  [paced100]="paced --clients 100 --size 200 --rate 50"
  [allocrate]="alloc-rate --concurrency 32 --client-ips $client_ips --client-ports $client_ports"
)
scenario_order=(c1_200 c100_200 a1000_50 c100_1200 paced100 allocrate)
if [[ -n "$only" ]]; then
  IFS=, read -r -a scenario_order <<<"$only"
fi
servers=(forwarder anyturn coturn)
# The paced scenario also measures anyturn with wake-up coalescing on: the
# trade of latency for CPU per packet that limits.udp_coalesce_us offers.
servers_for() {  # servers_for SCENARIO -> the servers to run, one per line
  printf '%s\n' "${servers[@]}"
  [[ "$1" == paced100 ]] && ((coalesce_us > 0)) && echo anyturn-coalesce
  return 0
}

# Waiting for quiet moments and repeating disturbed measurements stop once
# the run has used its time budget, so a busy machine cannot stretch it.
quiet_wait=3 retry_budget=660
((quick)) && quiet_wait=0

# One measurement. When other users of the machine took more than
# $max_others% of a CPU during the window, it is repeated (at most twice,
# after waiting for a quieter moment) and the least disturbed attempt kept.
max_others=30
run_one() {  # run_one REP SCENARIO SERVER
  local rep=$1 sc=$2 sv=$3 port busy raw="" line best="" best_others=1000 attempt others
  [[ "$sv" == forwarder && "$sc" == allocrate ]] && return 0
  [[ "$sv" == forwarder ]] && raw="--raw"
  for attempt in 1 2 3; do
    if ((SECONDS - start_time < retry_budget)); then busy=$(wait_quiet $quiet_wait); else busy=$(wait_quiet 0); fi
    port=$(pick_port)
    start_server "$sv" "$port" || return 0
    sleep 0.2
    # shellcheck disable=SC2086
    line=$(timeout 300 taskset -c "$BENCH_GEN_CPUS" "$load_bin" ${scenario_args[$sc]} $common $raw \
      --server "127.0.0.1:$port" --server-pid "${server_pid[$sv]}" --label "$sv" 2>>"$work/load.log" | tail -1) || true
    stop_server "$sv"
    if [[ "$line" != \{* ]]; then
      log "$sc on $sv (rep $rep) produced no result; see $work/load.log"
      continue
    fi
    tail -1 "$work/load.log" >&2
    others=100
    [[ "$line" =~ \"others_cpu_pct\":([0-9.]+) ]] && others=${BASH_REMATCH[1]%.*}
    if ((others < best_others)); then
      best_others=$others
      best="{\"scenario\":\"$sc\",\"server\":\"$sv\",\"rep\":$rep,\"attempts\":$attempt,\"bg_busy_pct\":$busy,${line:1}"
    fi
    ((others <= max_others || quick || SECONDS - start_time >= retry_budget)) && break
    log "others used ${others}% of a CPU during $sc on $sv: measuring again"
  done
  [[ -n "$best" ]] && echo "$best" >>"$results"
  return 0
}

run_memory() {  # run_memory SERVER
  local sv=$1 port line
  port=$(pick_port)
  start_server "$sv" "$port" memory || return 0
  sleep 0.5
  line=$(timeout 900 taskset -c "$BENCH_GEN_CPUS" "$load_bin" memory --steps "$memory_steps" --rounds 2 --password "$bench_password" \
    --client-ips "$client_ips" --client-ports "$client_ports" --server "127.0.0.1:$port" \
    --server-pid "${server_pid[$sv]}" --label "$sv" 2>>"$work/load.log" | tail -1) || true
  stop_server "$sv"
  if [[ "$line" == \{* ]]; then
    echo "{\"scenario\":\"memory\",\"server\":\"$sv\",\"rep\":0,${line:1}" >>"$results"
    grep "^$sv memory" "$work/load.log" | tail -2 >&2
  else
    log "memory on $sv produced no result; see $work/load.log"
  fi
}

# The TURN core alone (no sockets, so no open-file limit) at up to 100,000
# allocations: memory per allocation, forwarding cost with random senders,
# memory after freeing. See tests/bench/core_scale.cpp.
run_core_scale() {
  local line steps="1000,10000,100000"
  ((quick)) && steps="1000,10000"
  line=$(timeout 300 taskset -c "$BENCH_SERVER_CPUS" "$core_bin" --steps "$steps" 2>>"$work/load.log" | tail -1) || true
  if [[ "$line" == \{* ]]; then
    echo "{\"scenario\":\"core-scale\",\"server\":\"anyturn-core\",\"rep\":0,${line:1}" >>"$results"
    grep "^core-scale" "$work/load.log" | tail -6 >&2
  else
    log "core-scale produced no result; see $work/load.log"
  fi
}

profile_anyturn() {
  local port pid prof="$work/profile.txt" tool=""
  port=$(pick_port)
  start_server anyturn "$port" || return 0
  pid=${server_pid[anyturn]}
  sleep 0.2
  if command -v perf >/dev/null && perf record -e cpu-clock -o "$work/probe.data" -- true >/dev/null 2>&1; then
    tool=perf
    # shellcheck disable=SC2086
    taskset -c "$BENCH_GEN_CPUS" "$load_bin" ${scenario_args[c100_200]} --duration 6 --warmup 1 --password "$bench_password" \
      --server "127.0.0.1:$port" --server-pid "$pid" --label anyturn-profiled >/dev/null 2>>"$work/load.log" &
    local load_pid=$!
    sleep 1.5
    perf record -e cpu-clock -F 2999 -g -p "$pid" -o "$work/perf.data" -- sleep 3 >/dev/null 2>&1 || true
    perf stat -x, -e 'syscalls:sys_enter_sendmsg,syscalls:sys_enter_sendmmsg,syscalls:sys_enter_recvmmsg,syscalls:sys_enter_recvmsg,syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendto,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_ctl' \
      -p "$pid" -- sleep 1 2>&1 >/dev/null | awk -F, '$1 ~ /^[0-9]+$/ && $1 > 0 {printf "#   %-32s %9d/s\n", $3, $1}' >"$work/syscalls.txt" || true
    wait "$load_pid" || true
    stop_server anyturn
    {
      echo "# perf record -e cpu-clock -g -p ANYTURN (3 s of the 100-client 200 B closed loop); self time"
      echo "# by binary:"
      perf report -i "$work/perf.data" --stdio --no-children --sort dso -g none 2>/dev/null |
        grep -E '^ +[0-9.]+%' | sed -E 's/[[:space:]]+$//' | head -6 || true
      echo "# top symbols (k = kernel, . = user space):"
      perf report -i "$work/perf.data" --stdio --no-children --sort dso,symbol -g none --percent-limit 0.7 2>/dev/null |
        grep -E '^ +[0-9.]+%' | sed -E 's/[[:space:]]+$//; s/ +- +-$//; s/  +/  /g' | cut -c1-150 | head -40 || true
      echo "# user space only (anyturn, libc, libstdc++, libcrypto):"
      perf report -i "$work/perf.data" --stdio --no-children --sort dso,symbol -g none \
        --dsos anyturn,libc.so.6,libstdc++.so.6.0.30,libcrypto.so.3 2>/dev/null |
        grep -E '^ +[0-9.]+%' | sed -E 's/[[:space:]]+$//; s/ +- +-$//; s/  +/  /g' | cut -c1-150 | head -20 || true
      echo "# system calls entered by anyturn during the same load, per second:"
      cat "$work/syscalls.txt" 2>/dev/null || true
    } >"$prof"
  elif command -v valgrind >/dev/null; then
    stop_server anyturn
    tool=callgrind
    taskset -c "$BENCH_SERVER_CPUS" valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out" \
      "$anyturn_bin" --config "$bench_config" --listen "127.0.0.1:$port" --relay-ip "$anyturn_relay_ip" --relay-ports "$anyturn_ports" \
      --user "bench:$bench_password" --allow-peer 127.0.0.0/8 --threads 1 --http-listen "127.0.0.1:$((port + 1))" \
      --log-level warn >>"$work/anyturn.log" 2>&1 &
    pid=$!
    server_pid[anyturn]=$pid
    wait_listening "$pid" "$port" || sleep 3
    # shellcheck disable=SC2086
    taskset -c "$BENCH_GEN_CPUS" "$load_bin" ${scenario_args[c100_200]} --duration 5 --warmup 1 --password "$bench_password" \
      --server "127.0.0.1:$port" --label anyturn-callgrind >/dev/null 2>>"$work/load.log" || true
    stop_server anyturn
    callgrind_annotate "$work/callgrind.out" 2>/dev/null | head -60 >"$prof" || true
  fi
  [[ -n "$tool" ]] && log "profile ($tool) written to $prof"
}

# ---------------------------------------------------------------- run
log "run $run_id: $reps repetition(s), ${duration}s windows, $threads server thread(s), server CPUs $BENCH_SERVER_CPUS, generator CPUs $BENCH_GEN_CPUS"
start_time=$SECONDS
for ((rep = 1; rep <= reps; ++rep)); do
  for sc in "${scenario_order[@]}"; do
    [[ -n "${scenario_args[$sc]:-}" ]] || { log "unknown scenario $sc"; continue; }
    # Rotate the server order each repetition.
    mapfile -t these < <(servers_for "$sc")
    for ((k = 0; k < ${#these[@]}; ++k)); do
      run_one "$rep" "$sc" "${these[$(((k + rep - 1) % ${#these[@]}))]}"
    done
  done
  log "repetition $rep done after $((SECONDS - start_time)) s"
done
if ((!skip_memory)) && [[ -z "$only" || ",$only," == *,memory,* ]]; then
  for sv in anyturn coturn; do run_memory "$sv"; done
  run_core_scale
fi
((profile)) && profile_anyturn
log "measurements done in $((SECONDS - start_time)) s: $results"

# ---------------------------------------------------------------- report
if ((do_report)); then
  meta="$work/meta.json"
  python3 - "$meta" <<EOF
import json, platform, subprocess, sys
def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        return ""
meta = {
    "run_id": "$run_id",
    "nproc": sh("nproc"),
    "cpu_model": sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip(),
    "kernel": platform.release(),
    "memory": sh("free -h | awk '/Mem:/{print \$2}'"),
    "anyturn_version": sh("$anyturn_bin --version 2>&1 | head -1"),
    "anyturn_commit": sh("git -C $root rev-parse --short HEAD") + (" (dirty tree)" if sh("git -C $root status --porcelain") else ""),
    "coturn_version": sh("$coturn --version 2>&1 | tail -1"),
    "compiler": sh("c++ --version | head -1"),
    "threads": $threads, "reps": $reps, "duration": $duration, "warmup": $warmup, "quick": $quick,
    "server_cpus": "$BENCH_SERVER_CPUS", "gen_cpus": "$BENCH_GEN_CPUS", "coalesce_us": $coalesce_us,
    "ephemeral": "$eph_lo-$eph_hi", "fd_hard": "$fd_hard", "memory_steps": "$memory_steps",
    "commands": {
        "anyturn": "taskset -c $BENCH_SERVER_CPUS build-bench/anyturn --config tests/bench/anyturn-bench.yaml --listen 127.0.0.1:PORT --relay-ip $anyturn_relay_ip --relay-ports $anyturn_ports --user bench:PASSWORD --allow-peer 127.0.0.0/8 --threads $threads --http-listen 127.0.0.1:PORT+1 --log-level warn",
        "anyturn-coalesce": "the anyturn command plus --udp-coalesce-us $coalesce_us (paced scenario only)",
        "coturn": "taskset -c $BENCH_SERVER_CPUS $coturn -n --no-cli --listening-ip=127.0.0.1 --listening-port=PORT --relay-ip=$coturn_relay_ip --min-port=$coturn_lo --max-port=$coturn_hi --user=bench:PASSWORD --realm=anyturn --lt-cred-mech --allow-loopback-peers --no-tls --no-dtls --no-tcp --relay-threads=$threads --pidfile=RUN/coturn.pid --log-file=stdout",
        "forwarder": "taskset -c $BENCH_SERVER_CPUS build-bench/tests/bench/anyturn-bare-forwarder --listen 127.0.0.1:PORT --relay-ip $fwd_relay_ip --relay-ports $fwd_ports --threads $threads",
        "core-scale": "taskset -c $BENCH_SERVER_CPUS build-bench/tests/bench/anyturn-core-scale --steps 1000,10000,100000",
        "memory": "relay ports $memory_ports_lo-$memory_ports_hi for both servers; anyturn-load memory --steps $memory_steps --client-ips $client_ips --client-ports $client_ports",
        "load": "taskset -c $BENCH_GEN_CPUS build-bench/tests/bench/anyturn-load MODE ARGS $common --server 127.0.0.1:PORT --server-pid PID [--raw for the forwarder]",
    },
    "scenarios": {$(for sc in "${!scenario_args[@]}"; do printf '"%s": "%s", ' "$sc" "${scenario_args[$sc]}"; done) "memory": "memory --steps $memory_steps"},
}
json.dump(meta, open(sys.argv[1], "w"), indent=1)
EOF
  profile_arg=()
  [[ -s "$work/profile.txt" ]] && profile_arg=(--profile "$work/profile.txt")
  python3 "$root/scripts/bench/report.py" --results "$results" --meta "$meta" --out "$out_md" \
    --png "${out_md%.md}.png" "${profile_arg[@]}"
  log "report: $out_md"
fi
