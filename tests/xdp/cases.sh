#!/usr/bin/env bash
# The crafted XDP cases (xdp_cases.py CASE) against anyturn with --xdp on
# both server veths (native), each with the configuration it needs:
#   send_indication     Send/Data indications go through user space
#   no_permission       a peer without permission: dropped by user space
#   expired_permission  lifetimes.permission 2 s, then both directions dropped
#   stop_refresh        after Refresh(0) nothing forwarded from +100 ms
#   stop_revoke         after POST /admin/revoke, the same
#   stop_reload         after a SIGHUP reload that denies the peers' range
#   accounting          usage record and relayed bytes = bytes sent, with XDP
#                       and again with XDP off
#   map_full            xdp.max_channels 1, two channels: both relayed, map_full
#   bandwidth           limits.allocation.packets_per_second 200, a burst
#   hairpin             a peer on the client's side: XDP_TX both ways
# Usage: cases.sh CASE
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

case_name="${1:?usage: cases.sh CASE}"
xdp_setup

# A second peer address (the peer without permission).
PEER2_IP=10.71.2.3
in_ns peer ip addr add "$PEER2_IP/24" dev "$TOPO_PEER_IF" || fail "cannot add $PEER2_IP"

config="$work/anyturn.yaml"
usage_log="$work/usage.log"
# write_config ALLOW EXTRA_YAML: the file the daemon loads (and reloads).
write_config() {
  printf 'peers:\n  allow: [%s]\n  deny: [%s]\nusage_log: %s\n%b' "$1" "$2" "$usage_log" "$3" >"$config"
}
extra=""
HAIRPIN_PEER_IP=10.71.1.3
allow="\"$TOPO_PEER4/32\""
case "$case_name" in
  expired_permission) extra='lifetimes:\n  permission: 2\n' ;;
  map_full) extra='xdp:\n  max_channels: 1\n' ;;
  bandwidth) extra='limits:\n  allocation:\n    packets_per_second: 200\n' ;;
  hairpin)
    # A second address on the client's veth is the peer; it reaches the
    # relay address through the server.
    in_ns client ip addr add "$HAIRPIN_PEER_IP/24" dev "$TOPO_CLIENT_IF" || fail "cannot add $HAIRPIN_PEER_IP"
    in_ns client ip route add "$TOPO_SERVER_PEER4/32" via "$TOPO_SERVER_CLIENT4" || fail "no route to the relay address"
    mac="$(in_ns client cat "/sys/class/net/$TOPO_CLIENT_IF/address")"
    in_ns server ip neigh replace "$HAIRPIN_PEER_IP" lladdr "$mac" dev "$TOPO_SERVER_CLIENT_IF" nud permanent ||
      fail "cannot add the neighbour entry"
    allow="\"$TOPO_PEER4/32\", \"$HAIRPIN_PEER_IP/32\""
    ;;
  send_indication | no_permission | stop_refresh | stop_revoke | stop_reload | accounting) ;;
  *) fail "unknown case $case_name" ;;
esac
write_config "$allow" "" "$extra"

export TOPO_CLIENT_NS TOPO_SERVER_NS TOPO_PEER_NS TOPO_SERVER_CLIENT4 TOPO_CLIENT4 TOPO_PEER4 PEER2_IP HAIRPIN_PEER_IP
export SERVER_PORT HTTP_PORT TURN_USER TURN_PASSWORD ADMIN_KEY
export USAGE_LOG="$usage_log" CONFIG="$config" PERMISSION_LIFETIME=2 RATE=200
# The reload's file: the peer's range denied, nothing allowed.
deny_config="$work/anyturn-deny.yaml"
printf 'peers:\n  allow: []\n  deny: ["%s/24"]\nusage_log: %s\n' "$TOPO_PEER4" "$usage_log" >"$deny_config"
export CONFIG_DENY_FILE="$deny_config"

run_case() {  # run_case PATH_KIND: the driver against the running server
  SERVER_PID="$server_pid" PATH_KIND="$1" python3 "$here/xdp_cases.py" "$case_name" 2>&1 | tee "$work/driver-$1.txt"
  return "${PIPESTATUS[0]}"
}

start_server --config "$config" "${xdp_flags[@]}" --threads 2
run_case xdp || fail "$case_name (XDP on)"
stop_server
if [[ "$case_name" == accounting ]]; then
  server_log="$work/anyturn-user.log"
  start_server --config "$config" --threads 2
  metrics "$work/off.txt"
  [[ "$(metric "$work/off.txt" anyturn_xdp_attached)" == 0 ]] || fail "XDP attached without --xdp"
  run_case user || fail "$case_name (XDP off)"
  stop_server
fi
log "PASS: $case_name"
