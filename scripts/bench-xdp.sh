#!/usr/bin/env bash
# Relay benchmark on the veth topology, with honest ceilings (issue 17):
# coturn, anyturn in user space, anyturn with limits.udp_gro, anyturn --xdp
# (when this build has it), the user-space ceiling (anyturn-bare-forwarder
# --gso-gro) and the kernel ceiling (anyturn-xdp-ceiling), each started fresh
# in the server namespace for every measurement, in an order rotated per
# repetition, driven by anyturn-load --gso-gro from the client and peer
# namespaces (scripts/bench/netns.sh). Medians of the repetitions and the
# ratios against the issue's targets go to stdout (markdown) and the raw
# JSON lines to $work/results.jsonl.
#
#   scripts/bench-xdp.sh [--reps N] [--duration S] [--build DIR] [--no-xdp]
#                        [--only SCENARIO[,...]] [--servers NAME[,...]]
#
#   --build DIR   the build tree with anyturn and tests/bench (default build)
#   --no-xdp      leave anyturn --xdp out even when the binary has the flag
#
# Needs root (network namespaces, XDP). Scenarios: c1_200 (1 client, 200 B,
# closed loop, 32 in flight), c100_200 (100 clients, 16 in flight each),
# paced100 (100 clients at 50 pkt/s: 5,000 pkt/s). Every load is bounded
# (--duration plus 1 s warm-up), every server has --max-seconds or is
# killed by PID; the namespaces are deleted at exit.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build" reps=3 duration=3 warmup=1 only="" servers_only="" use_xdp=1
coturn="${COTURN:-/usr/bin/turnserver}"
while (($#)); do
  case "$1" in
    --reps) reps="$2"; shift ;;
    --duration) duration="$2"; shift ;;
    --build) build="$2"; shift ;;
    --only) only="$2"; shift ;;
    --servers) servers_only="$2"; shift ;;
    --no-xdp) use_xdp=0 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "bench-xdp.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
[[ "$(id -u)" == 0 ]] || { echo "bench-xdp.sh: needs root (network namespaces, XDP)" >&2; exit 1; }

anyturn_bin="$build/anyturn"
load_bin="$build/tests/bench/anyturn-load"
fwd_bin="$build/tests/bench/anyturn-bare-forwarder"
ceiling_bin="$build/tests/bench/anyturn-xdp-ceiling"
BENCH_IFCONF="$build/tests/bench/anyturn-bench-ifconf"
for b in "$anyturn_bin" "$load_bin" "$fwd_bin" "$ceiling_bin" "$BENCH_IFCONF" "$coturn"; do
  [[ -x "$b" ]] || { echo "bench-xdp.sh: missing $b" >&2; exit 1; }
done
# shellcheck source=scripts/bench/netns.sh
source "$root/scripts/bench/netns.sh"

log() { printf '[bench-xdp %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

run_id="$(date +%Y%m%d-%H%M%S)"
work="$build/bench-runs/xdp-$run_id"
mkdir -p "$work"
results="$work/results.jsonl"
: >"$results"

server_cpu=1 gen_cpu=0
port=3478
password="$(openssl rand -hex 12)"
gro_config="$work/anyturn-gro.yaml" nogro_config="$work/anyturn-nogro.yaml"
{ cat "$root/tests/bench/anyturn-bench.yaml"; echo "  udp_gro: true"; } >"$gro_config"
{ cat "$root/tests/bench/anyturn-bench.yaml"; echo "  udp_gro: false"; } >"$nogro_config"

servers=(coturn anyturn anyturn-gro ceiling-gso ceiling-xdp)
if ((use_xdp)) && "$anyturn_bin" --help 2>&1 | grep -q -- '--xdp'; then
  servers+=(anyturn-xdp)
else
  log "anyturn --xdp is left out (no --xdp in this build, or --no-xdp)"
fi
[[ -n "$servers_only" ]] && IFS=, read -r -a servers <<<"$servers_only"

declare -A scenario_args=(
  [c1_200]="throughput --clients 1 --size 200 --inflight 32"
  [c100_200]="throughput --clients 100 --size 200 --inflight 16"
  [paced100]="paced --clients 100 --size 200 --rate 50"
)
scenario_order=(c1_200 c100_200 paced100)
[[ -n "$only" ]] && IFS=, read -r -a scenario_order <<<"$only"

server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; fi
  netns_down
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Run with &: exec, so that $! is the server itself (nsenter and taskset exec;
# ip netns exec forks here).
in_server() { exec nsenter --net="/run/netns/$BENCH_NS_SERVER" taskset -c "$server_cpu" "$@"; }

start_server() {  # start_server NAME LOGFILE -> server_pid
  local name="$1" logf="$2"
  case "$name" in
    coturn)
      in_server "$coturn" -n --no-cli --listening-ip="$BENCH_SERVER_IP" --listening-port="$port" \
        --relay-ip="$BENCH_RELAY_IP" --min-port=40000 --max-port=49999 --user="bench:$password" --realm=anyturn \
        --lt-cred-mech --no-tls --no-dtls --no-tcp --relay-threads=1 --pidfile="$work/coturn.pid" \
        --log-file=stdout >"$logf" 2>&1 &
      ;;
    anyturn | anyturn-gro | anyturn-xdp)
      local extra=(--config "$nogro_config")
      # anyturn-xdp: the defaults (UDP_GRO on) for what the program passes up.
      [[ "$name" != anyturn ]] && extra=(--config "$gro_config")
      [[ "$name" == anyturn-xdp ]] && extra+=(--xdp "${BENCH_SERVER_IFACES[0]}" --xdp "${BENCH_SERVER_IFACES[1]}" --xdp-mode native)
      in_server "$anyturn_bin" "${extra[@]}" --listen "$BENCH_SERVER_IP:$port" --relay-ip "$BENCH_RELAY_IP" \
        --relay-ports 40000-49999 --user "bench:$password" --allow-peer "$BENCH_PEER_IP/32" --threads 1 \
        --log-level warn >"$logf" 2>&1 &
      ;;
    ceiling-gso)
      in_server "$fwd_bin" --listen "$BENCH_SERVER_IP:$port" --relay-ip "$BENCH_RELAY_IP" --relay-ports 40000-49999 \
        --threads 1 --max-seconds 120 --gso-gro >"$logf" 2>&1 &
      ;;
    ceiling-xdp)
      in_server "$ceiling_bin" --listen "$BENCH_SERVER_IP:$port" --relay-ip "$BENCH_RELAY_IP" --relay-ports 40000-49999 \
        --iface "${BENCH_SERVER_IFACES[0]}" --iface "${BENCH_SERVER_IFACES[1]}" --mode native --max-seconds 120 >"$logf" 2>&1 &
      ;;
  esac
  server_pid=$!
  for _ in $(seq 1 100); do
    kill -0 "$server_pid" 2>/dev/null || return 1
    ip netns exec "$BENCH_NS_SERVER" ss -Huan "sport = :$port" 2>/dev/null | grep -q . && return 0
    sleep 0.05
  done
  return 1
}

stop_server() {
  [[ -n "$server_pid" ]] || return 0
  kill "$server_pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.05
  done
  kill -9 "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

# Busy % of the whole machine over 0.5 s, niced work (other people's builds)
# left out.
machine_busy_pct() {
  local a1 a2 a3 a4 a5 a6 a7 b1 b2 b3 b4 b5 b6 b7
  read -r _ a1 a2 a3 a4 a5 a6 a7 _ </proc/stat
  sleep 0.5
  read -r _ b1 b2 b3 b4 b5 b6 b7 _ </proc/stat
  local total=$(((b1 + b2 + b3 + b4 + b5 + b6 + b7) - (a1 + a2 + a3 + a4 + a5 + a6 + a7)))
  local idle=$(((b4 + b5 + b2) - (a4 + a5 + a2)))
  ((total > 0)) || { echo 0; return; }
  echo $((100 * (total - idle) / total))
}

run_one() {  # run_one REP SCENARIO SERVER
  local rep=$1 sc=$2 sv=$3 raw="" pidarg=() busy logf
  logf="$work/$sv-$sc-$rep.log"
  [[ "$sv" == ceiling-* ]] && raw="--raw"
  # A few seconds at most for other people's jobs to calm down.
  for _ in 1 2 3 4 5 6; do
    busy=$(machine_busy_pct)
    ((busy <= 15)) && break
  done
  netns_up || { log "netns set-up failed"; return 1; }
  if ! start_server "$sv" "$logf"; then
    log "$sv did not start: $(tail -3 "$logf" | tr '\n' ' ')"
    stop_server
    return 0
  fi
  [[ "$sv" != ceiling-xdp ]] && pidarg=(--server-pid "$server_pid")
  local line
  # shellcheck disable=SC2086
  line=$(timeout $((duration + 60)) taskset -c "$gen_cpu" "$load_bin" ${scenario_args[$sc]} $raw --gso-gro \
    --duration "$duration" --warmup "$warmup" --password "$password" --server "$BENCH_SERVER_IP:$port" \
    --client-ips "$BENCH_CLIENT_IP" --peer-ip "$BENCH_PEER_IP" --client-netns "$BENCH_NS_CLIENT" \
    --peer-netns "$BENCH_NS_PEER" --label "$sv" "${pidarg[@]}" 2>>"$logf" | tail -1) || true
  stop_server
  if [[ "$line" == "{"* ]]; then
    printf '%s\n' "${line%\}},\"server\":\"$sv\",\"scenario\":\"$sc\",\"rep\":$rep,\"busy_before_pct\":$busy}" >>"$results"
    log "rep $rep $sc $sv: $(tail -1 "$logf")"
  else
    log "rep $rep $sc $sv: no result ($(tail -2 "$logf" | tr '\n' ' '))"
  fi
}

log "run $run_id: servers ${servers[*]}; scenarios ${scenario_order[*]}; $reps reps of ${duration}s"
for ((rep = 1; rep <= reps; ++rep)); do
  for sc in "${scenario_order[@]}"; do
    n=${#servers[@]}
    for ((k = 0; k < n; ++k)); do
      run_one "$rep" "$sc" "${servers[$(((k + rep - 1 + ${#sc}) % n))]}"
    done
  done
done
netns_down
python3 "$root/scripts/bench/report_xdp.py" "$results" | tee "$work/report.md"
log "raw results: $results"
