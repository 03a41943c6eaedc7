#!/usr/bin/env bash
# The program never outlives the daemon, and a start where XDP cannot attach
# is handled as the mode says:
#  1. anyturn with --xdp on both server veths (native) shows the program on
#     them; after kill -9 neither veth has an XDP program (the BPF links die
#     with the process: nothing keeps forwarding for allocations that no
#     longer exist), nor after a clean exit (SIGTERM);
#  2. --xdp nosuch0 --xdp-mode auto: starts, logs why XDP is off, serves,
#     anyturn_xdp_attached 0;
#  3. --xdp nosuch0 --xdp-mode native: fails to start, with a message that
#     names the interface.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"
xdp_setup

has_xdp() {  # has_xdp IF: the server's interface carries an XDP program
  in_ns server ip link show dev "$1" | grep -qw 'xdp\|xdpgeneric\|xdpdrv'
}

# 1. kill -9 detaches.
start_server "${xdp_flags[@]}" --allow-peer "$TOPO_PEER4/32"
for ifname in "$TOPO_SERVER_CLIENT_IF" "$TOPO_SERVER_PEER_IF"; do
  has_xdp "$ifname" || fail "no XDP program on $ifname while anyturn runs"
done
log "program attached to $TOPO_SERVER_CLIENT_IF and $TOPO_SERVER_PEER_IF: $(in_ns server ip -d link show dev "$TOPO_SERVER_CLIENT_IF" | grep -o 'prog/xdp id [0-9]*' | head -n 1)"
kill -KILL "$server_pid"
wait "$server_pid" 2>/dev/null || true
gone_after=""
for ((i = 0; i < 50; i++)); do
  if ! has_xdp "$TOPO_SERVER_CLIENT_IF" && ! has_xdp "$TOPO_SERVER_PEER_IF"; then
    gone_after=$((i * 100))
    break
  fi
  sleep 0.1
done
[[ -n "$gone_after" ]] || fail "an XDP program is still attached 5 s after kill -9: $(in_ns server ip link show)"
log "after kill -9: no XDP program on the server veths (checked after ${gone_after} ms)"

# 1b. A clean exit (SIGTERM) detaches too.
server_log="$work/anyturn-term.log"
start_server "${xdp_flags[@]}" --allow-peer "$TOPO_PEER4/32"
has_xdp "$TOPO_SERVER_CLIENT_IF" || fail "no XDP program on $TOPO_SERVER_CLIENT_IF after the restart"
stop_server
if has_xdp "$TOPO_SERVER_CLIENT_IF" || has_xdp "$TOPO_SERVER_PEER_IF"; then
  fail "an XDP program is still attached after a clean exit"
fi
log "after SIGTERM (exit 0): no XDP program on the server veths"

# 2. auto mode on a missing interface: runs without.
server_log="$work/anyturn-auto.log"
start_server --xdp nosuch0 --xdp-mode auto --allow-peer "$TOPO_PEER4/32"
metrics "$work/auto.txt"
[[ "$(metric "$work/auto.txt" anyturn_xdp_attached)" == 0 ]] || fail "anyturn_xdp_attached is not 0 in auto mode without the interface"
grep -q 'xdp.*nosuch0' "$server_log" || fail "auto mode did not log why XDP is off (no xdp line naming nosuch0)"
log "auto mode runs without XDP and says why: $(grep -m1 nosuch0 "$server_log")"
stop_server

# 3. native mode on a missing interface: the start fails, clearly.
native_log="$work/anyturn-native.log"
rc=0
timeout 20 ip netns exec "$TOPO_SERVER_NS" "$ANYTURN_BINARY" --listen "$TOPO_SERVER_CLIENT4:$SERVER_PORT" \
  --relay-ip "$TOPO_SERVER_PEER4" --relay-ports "$RELAY_PORTS" --realm anyturn.test \
  --user "$TURN_USER:$TURN_PASSWORD" --xdp nosuch0 --xdp-mode native >"$native_log" 2>&1 || rc=$?
((rc != 124)) || fail "native mode with a missing interface did not exit within 20 s"
((rc != 0)) || fail "native mode with a missing interface started (exit 0)"
grep -q 'nosuch0' "$native_log" || fail "the start failure does not name the interface: $(tail -n 3 "$native_log")"
log "native mode refuses to start (exit $rc): $(grep -m1 nosuch0 "$native_log")"
log "PASS"
