# shellcheck shell=bash
# Shared helpers of the XDP tests (sourced, not run): the topology of
# netns.sh, the daemon in the server namespace with --xdp on both server
# veths, /metrics read inside that namespace. Exit 77 (ctest's skip) with
# the reason when this machine cannot run them (not root, no ip netns, no
# BPF). Every process started here is killed by its PID on exit, and the
# namespaces are deleted even on failure.

set -euo pipefail

: "${ANYTURN_BINARY:?ANYTURN_BINARY must point at the anyturn executable}"
: "${ANYTURN_XDP_PASS_OBJ:?ANYTURN_XDP_PASS_OBJ must point at xdp_pass.bpf.o}"

xdp_here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=netns.sh
source "$xdp_here/netns.sh"

work="$(mktemp -d /tmp/anyturn-xdp.XXXXXX)"
declare -a started_pids=()
server_pid=""
server_log="$work/anyturn.log"
SERVER_PORT=3478
HTTP_PORT=9641
RELAY_PORTS=40000-40199
TURN_USER=alice
TURN_PASSWORD=wonderland-xdp-test
ADMIN_KEY=xdp-test-admin-key-0123456789

# shellcheck source=../support/procs.sh
source "$xdp_here/../support/procs.sh"

skip() {
  echo "SKIP: $*"
  exit 77
}

xdp_cleanup() {
  local rc=$?
  end_started_and_report "$rc" 40
  topo_down_all
  exit "$rc"
}
trap xdp_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# xdp_setup: skips unless XDP can run here, then builds the topology
# (namespaces axdp<PID>-c/-s/-p).
xdp_setup() {
  local why
  why="$(topo_probe_xdp)" || skip "$why"
  command -v curl >/dev/null 2>&1 || skip "curl not found"
  topo_up "axdp$$" || fail "cannot build the test topology"
  log "topology axdp$$ up (client/peer ends: $TOPO_PEER_END)"
}

# in_ns client|server|peer CMD...: runs CMD in that namespace.
in_ns() {
  local which=$1
  shift
  case "$which" in
    client) ip netns exec "$TOPO_CLIENT_NS" "$@" ;;
    server) ip netns exec "$TOPO_SERVER_NS" "$@" ;;
    peer) ip netns exec "$TOPO_PEER_NS" "$@" ;;
    *) fail "in_ns: unknown namespace $which" ;;
  esac
}

# The listener (client side) and relay address (peer side); IPv4 unless the
# test sets them (LISTEN_ADDRESS in brackets for IPv6).
LISTEN_ADDRESS="$TOPO_SERVER_CLIENT4"
RELAY_IP="$TOPO_SERVER_PEER4"

# start_server ARGS...: anyturn in the server namespace, listening on the
# client side, relaying from the peer side, with its HTTP server on the
# namespace's loopback; waits until /metrics answers. ARGS come last (they
# may add --xdp ...). The caller picks the XDP flags.
start_server() {
  export XDG_STATE_HOME="$work/state"
  log "anyturn $*"
  ip netns exec "$TOPO_SERVER_NS" "$ANYTURN_BINARY" \
    --listen "$LISTEN_ADDRESS:$SERVER_PORT" --relay-ip "$RELAY_IP" \
    --relay-ports "$RELAY_PORTS" --http-listen "127.0.0.1:$HTTP_PORT" --realm anyturn.test \
    --user "$TURN_USER:$TURN_PASSWORD" --admin-key "$ADMIN_KEY" "$@" >"$server_log" 2>&1 &
  server_pid=$!
  started_pids+=("$server_pid")
  local i
  for ((i = 0; i < 100; i++)); do
    kill -0 "$server_pid" 2>/dev/null || fail "anyturn exited during start-up"
    if in_ns server curl -sf --max-time 1 -o /dev/null "http://127.0.0.1:$HTTP_PORT/metrics"; then return 0; fi
    sleep 0.1
  done
  fail "anyturn's /metrics did not answer within 10 s"
}

# The XDP flags: native mode on both server veths.
# shellcheck disable=SC2034  # used by the scripts that source this file
xdp_flags=(--xdp "$TOPO_SERVER_CLIENT_IF" --xdp "$TOPO_SERVER_PEER_IF" --xdp-mode native)

# metrics FILE: /metrics into FILE.
metrics() {
  in_ns server curl -sS --max-time 5 -o "$1" "http://127.0.0.1:$HTTP_PORT/metrics" || fail "no answer from /metrics"
}

# metric FILE 'NAME{LABELS}': the sample's value (0 when absent).
metric() {
  awk -v k="$2" '$1 == k { v = $2 } END { printf "%d\n", (v == "" ? 0 : v) }' "$1"
}

stop_server() {
  local rc=0 i
  kill -TERM "$server_pid"
  for ((i = 0; i < 50; i++)); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$server_pid" 2>/dev/null && fail "anyturn did not exit within 5 s of SIGTERM"
  wait "$server_pid" || rc=$?
  ((rc == 0)) || fail "anyturn exited with status $rc after SIGTERM"
}
