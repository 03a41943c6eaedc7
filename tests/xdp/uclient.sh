#!/usr/bin/env bash
# coturn's turnutils_uclient in the client namespace, through anyturn with
# XDP on both server veths (native), to turnutils_peer in the peer namespace,
# over channels: zero loss, and the XDP counters show the packets took the
# fast path (both directions redirected between the veths), while user
# space relayed only a small part of them. Usage: uclient.sh [4|6] (the
# address family of the client, relay and peer; default 4).
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

command -v turnutils_uclient >/dev/null 2>&1 || skip "turnutils_uclient not found (Debian coturn)"
command -v turnutils_peer >/dev/null 2>&1 || skip "turnutils_peer not found (Debian coturn)"
xdp_setup

clients=10
messages=200
peer_port=3480
family="${1:-4}"
case "$family" in
  4) server_ip=$TOPO_SERVER_CLIENT4 peer_ip=$TOPO_PEER4 family_flag=-X host_len=32 ;;
  6)
    server_ip=$TOPO_SERVER_CLIENT6 peer_ip=$TOPO_PEER6 family_flag=-x host_len=128
    LISTEN_ADDRESS="[$TOPO_SERVER_CLIENT6]" RELAY_IP=$TOPO_SERVER_PEER6
    ;;
  *) fail "usage: uclient.sh [4|6]" ;;
esac
start_server "${xdp_flags[@]}" --allow-peer "$peer_ip/$host_len" --threads 2
log "$(grep -m 2 " xdp" "$server_log" || true)"
metrics "$work/before.txt"
[[ "$(metric "$work/before.txt" anyturn_xdp_attached)" == 1 ]] || fail "anyturn_xdp_attached is not 1"

ip netns exec "$TOPO_PEER_NS" turnutils_peer -L "$peer_ip" -p "$peer_port" >"$work/peer.log" 2>&1 &
started_pids+=($!)
for ((i = 0; i < 50; i++)); do
  in_ns peer ss -H -uln "sport = :$peer_port" | grep -q . && break
  sleep 0.1
done

out="$work/uclient.log"
log "turnutils_uclient -m $clients -n $messages $family_flag (channels, IPv$family)"
rc=0
timeout 90 ip netns exec "$TOPO_CLIENT_NS" turnutils_uclient -m "$clients" -n "$messages" -l 160 -z 5 "$family_flag" \
  -u "$TURN_USER" -w "$TURN_PASSWORD" -p "$SERVER_PORT" -e "$peer_ip" -r "$peer_port" \
  "$server_ip" >"$out" 2>&1 || rc=$?
((rc != 124)) || fail "turnutils_uclient did not finish within 90 s"
tail -n 6 "$out"
sent="$(grep -oE 'tot_send_msgs=[0-9]+' "$out" | tail -n 1 | cut -d= -f2 || true)"
received="$(grep -oE 'tot_recv_msgs=[0-9]+' "$out" | tail -n 1 | cut -d= -f2 || true)"
lost="$(grep -oE 'Total lost packets [0-9]+' "$out" | tail -n 1 | awk '{print $4}' || true)"
[[ -n "$sent" && -n "$received" && -n "$lost" ]] || fail "no summary lines in turnutils_uclient output"
log "uclient: sent=$sent received=$received lost=$lost"
((sent >= clients * messages)) || fail "only $sent messages sent"
((received == sent && lost == 0)) || fail "loss: received $received of $sent, lost $lost"

sleep 2  # the workers fold the program's counters once a second
metrics "$work/after.txt"
delta() { echo $(($(metric "$work/after.txt" "$1") - $(metric "$work/before.txt" "$1"))); }
xdp_to_peer=$(($(delta 'anyturn_xdp_packets_total{direction="to_peer",action="redirect"}') +
  $(delta 'anyturn_xdp_packets_total{direction="to_peer",action="tx"}')))
xdp_to_client=$(($(delta 'anyturn_xdp_packets_total{direction="to_client",action="redirect"}') +
  $(delta 'anyturn_xdp_packets_total{direction="to_client",action="tx"}')))
redirect_to_peer=$(delta 'anyturn_xdp_packets_total{direction="to_peer",action="redirect"}')
redirect_to_client=$(delta 'anyturn_xdp_packets_total{direction="to_client",action="redirect"}')
relayed_to_peer=$(delta 'anyturn_relayed_packets_total{direction="to_peer"}')
relayed_to_client=$(delta 'anyturn_relayed_packets_total{direction="to_client"}')
log "xdp to_peer redirect=$redirect_to_peer (all forwarded $xdp_to_peer), to_client redirect=$redirect_to_client" \
  "(all $xdp_to_client); anyturn_relayed_packets_total to_peer=$relayed_to_peer to_client=$relayed_to_client"
# Every message the client sent went client -> peer and came back peer ->
# client; the fast path moved them, between two veths (redirect).
((redirect_to_peer >= sent)) || fail "XDP redirected $redirect_to_peer packets to peers, fewer than the $sent relayed"
((redirect_to_client >= sent)) || fail "XDP redirected $redirect_to_client packets to clients, fewer than the $sent relayed"
# The relay counters include what the program forwarded (folded in).
((relayed_to_peer >= sent && relayed_to_client >= sent)) ||
  fail "anyturn_relayed_packets_total ($relayed_to_peer/$relayed_to_client) misses packets the program forwarded"
# User space itself relayed at most a tenth: the rest never reached it.
# (anyturn_relayed_packets_total includes what the program forwarded; the
# workers' wake-ups count only what user space read.)
user_to_peer=$((relayed_to_peer - xdp_to_peer))
user_to_client=$((relayed_to_client - xdp_to_client))
wakeups=$(delta 'anyturn_worker_wakeups_total{cause="socket"}')
log "relayed by user space: to_peer=$user_to_peer to_client=$user_to_client; worker wake-ups: $wakeups"
((wakeups * 4 <= sent)) || fail "the workers woke up $wakeups times for $sent packets each way"
((user_to_peer * 10 <= sent && user_to_client * 10 <= sent)) ||
  fail "user space relayed $user_to_peer/$user_to_client of $sent packets: most did not take the fast path"

# The kernel forwarded none of it: the server's veths kept forwarding off.
for ifname in "$TOPO_SERVER_CLIENT_IF" "$TOPO_SERVER_PEER_IF"; do
  for family in ipv4 ipv6; do
    [[ "$(in_ns server cat "/proc/sys/net/$family/conf/$ifname/forwarding")" == 0 ]] ||
      fail "$family forwarding is on for $ifname"
  done
done

stop_server
log "PASS: $sent messages each way, 0 lost; XDP redirected $redirect_to_peer to peers, $redirect_to_client to clients"
