# Shared helpers for the interop scripts (sourced, not run).
#
# Every process started here is recorded by PID and killed by that PID on
# exit; every wait is bounded; ports are picked at run time.

set -euo pipefail

: "${ANYTURN_BINARY:?ANYTURN_BINARY must point at the anyturn executable}"

work="$(mktemp -d /tmp/anyturn-interop.XXXXXX)"
declare -a started_pids=()
server_pid=""
server_port=""
server_log=""
http_port=""

# shellcheck source=../support/procs.sh
source "$(dirname "${BASH_SOURCE[0]}")/../support/procs.sh"

cleanup() {
  local rc=$?
  end_started_and_report "$rc" 60
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

require_tool() {
  command -v "$1" >/dev/null 2>&1 || fail "$1 not found (install the coturn package: scripts/setup.sh)"
}

# A relay port range of 200 ports outside the kernel's ephemeral range,
# unique per slot (0..24). Interop scripts use the second half of a
# 10000-port window; integration tests (tests/support/daemon.cpp) the first.
relay_range() {  # relay_range SLOT
  local slot=$1 lo hi base=20000 candidate
  read -r lo hi </proc/sys/net/ipv4/ip_local_port_range
  for candidate in 20000 10000 1100; do
    if ((candidate + 9999 < lo || candidate > hi)); then
      base=$candidate
      break
    fi
  done
  local low=$((base + 5000 + (slot % 25) * 200))
  echo "${low}-$((low + 199))"
}

# A loopback port free for UDP and TCP; with "pair", PORT+1 is free for UDP too.
# Drawn from 31500-32199, below the kernel's ephemeral range, so that no client
# socket of a parallel test takes it before the server binds it (the C++
# integration tests draw from 30000-31499, the browser test from 32200-32766); the kernel picks if that block is
# inside the ephemeral range.
free_port() {
  python3 - "${1:-}" <<'PY'
import random, socket, sys
pair = sys.argv[1] == "pair"
with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
    lo, hi = (int(x) for x in f.read().split())
block = (31500, 32199)
use_block = block[1] + 1 < lo or block[0] > hi
for _ in range(200):
    held = []
    try:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        held.append(u)
        u.bind(("127.0.0.1", random.randint(*block) if use_block else 0))
        port = u.getsockname()[1]
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        held.append(t)
        t.bind(("127.0.0.1", port))
        if pair:
            u2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            held.append(u2)
            u2.bind(("127.0.0.1", port + 1))
        print(port)
        sys.exit(0)
    except OSError:
        pass
    finally:
        for s in held:
            s.close()
sys.exit("no free port")
PY
}

# Sends STUN Binding requests to 127.0.0.1:PORT until one is answered.
stun_ping() {  # stun_ping PORT TIMEOUT_SECONDS
  python3 - "$1" "$2" <<'PY'
import os, socket, struct, sys, time
port, limit = int(sys.argv[1]), float(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.2)
deadline = time.monotonic() + limit
while time.monotonic() < deadline:
    tid = os.urandom(12)
    s.sendto(struct.pack("!HHI", 0x0001, 0, 0x2112A442) + tid, ("127.0.0.1", port))
    try:
        data, _ = s.recvfrom(2048)
        if len(data) >= 20 and data[8:20] == tid and data[0:2] == b"\x01\x01":
            sys.exit(0)
    except (socket.timeout, ConnectionRefusedError):
        pass
sys.exit(1)
PY
}

# start_server ARGS...: runs anyturn on a free loopback port with ARGS; its
# side HTTP server (metrics, credentials API) on another free port, $http_port.
start_server() {
  server_port="$(free_port)"
  http_port="$(free_port)"
  while [[ "$http_port" == "$server_port" ]]; do http_port="$(free_port)"; done
  server_log="$work/anyturn.log"
  # The daemon's state directory (generated secrets, development
  # certificate) stays inside this test's scratch folder.
  export XDG_STATE_HOME="$work/state"
  log "anyturn --listen 127.0.0.1:$server_port --http-listen 127.0.0.1:$http_port $*"
  "$ANYTURN_BINARY" --listen "127.0.0.1:$server_port" --http-listen "127.0.0.1:$http_port" "$@" \
    >"$server_log" 2>&1 &
  server_pid=$!
  started_pids+=("$server_pid")
  local i
  for ((i = 0; i < 50; i++)); do
    kill -0 "$server_pid" 2>/dev/null || fail "anyturn exited during start-up"
    if stun_ping "$server_port" 0.2; then return 0; fi
  done
  fail "anyturn did not answer a Binding request within 10 s"
}

# stop_server: SIGTERM to the server's PID; it must exit 0 within 5 s.
stop_server() {
  local i rc
  kill -TERM "$server_pid"
  for ((i = 0; i < 50; i++)); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$server_pid" 2>/dev/null && fail "anyturn did not exit within 5 s of SIGTERM"
  rc=0
  wait "$server_pid" || rc=$?
  ((rc == 0)) || fail "anyturn exited with status $rc after SIGTERM"
  log "anyturn stopped cleanly"
}

# start_peer: turnutils_peer on a free loopback port pair (it binds P and P+1).
peer_port=""
start_peer() {
  require_tool turnutils_peer
  peer_port="$(free_port pair)"
  turnutils_peer -L 127.0.0.1 -p "$peer_port" >"$work/peer.log" 2>&1 &
  local pid=$! i
  started_pids+=("$pid")
  for ((i = 0; i < 50; i++)); do
    if ss -H -uln "sport = :$peer_port" 2>/dev/null | grep -q .; then
      log "turnutils_peer on 127.0.0.1:$peer_port"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || fail "turnutils_peer exited"
    sleep 0.1
  done
  fail "turnutils_peer did not bind 127.0.0.1:$peer_port"
}

# start_uclient OUT ARGS...: turnutils_uclient in the background (bounded to
# 90 s), its output in OUT; sets uclient_pid.
uclient_pid=""
start_uclient() {
  local out=$1
  shift
  log "turnutils_uclient $*"
  timeout 90 turnutils_uclient "$@" >"$out" 2>&1 &
  uclient_pid=$!
  started_pids+=("$uclient_pid")
}

# finish_uclient OUT: waits for it and reads its summary into rc, sent,
# received and lost. Its exit status is 0 even when packets are lost, so the
# summary lines are what counts.
finish_uclient() {
  local out=$1
  rc=0
  wait "$uclient_pid" || rc=$?
  ((rc != 124)) || fail "turnutils_uclient did not finish within 90 s"
  tail -n 8 "$out"
  sent="$(grep -oE 'tot_send_msgs=[0-9]+' "$out" | tail -n 1 | cut -d= -f2 || true)"
  received="$(grep -oE 'tot_recv_msgs=[0-9]+' "$out" | tail -n 1 | cut -d= -f2 || true)"
  lost="$(grep -oE 'Total lost packets [0-9]+' "$out" | tail -n 1 | awk '{print $4}' || true)"
  log "exit=$rc sent=${sent:-none} received=${received:-none} lost=${lost:-none}"
}

# require_zero_loss MIN_SENT: every message sent came back, and enough were sent.
require_zero_loss() {
  [[ -n "$sent" && -n "$received" && -n "$lost" ]] || fail "no summary lines in turnutils_uclient output"
  ((sent >= $1)) || fail "only $sent messages sent, expected at least $1"
  ((received == sent)) || fail "received $received of $sent messages"
  ((lost == 0)) || fail "$lost packets lost"
}
