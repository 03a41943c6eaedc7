#!/usr/bin/env bash
# coturn's turnutils_uclient against anyturn, with turnutils_peer as the UDP
# echo peer on loopback. Usage: uclient.sh CASE SLOT
#   channel-longterm  ChannelData, long-term credentials (-u -w)
#   send-longterm     Send/Data indications (-s), long-term credentials
#   channel-rest      ChannelData, TURN REST secret (-W)
#   send-rest         Send/Data indications, TURN REST secret
#   wrong-password    long-term credentials with a wrong password: must fail
#   peer-denied       no --allow-peer: the loopback peer must be refused (403)
#   channel-coalesced ChannelData with wake-up coalescing on (--udp-coalesce-us):
#                     zero loss, and /metrics must show coalescing windows
# The relaying cases run 10 clients without -c, so each one also makes an
# RTCP allocation with EVEN-PORT (R bit) and RESERVATION-TOKEN, and require
# zero loss and tot_recv_msgs == tot_send_msgs.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

case_name="${1:?usage: uclient.sh CASE SLOT}"
slot="${2:?usage: uclient.sh CASE SLOT}"
require_tool turnutils_uclient

user=alice
password=wonderland
secret="interop-rest-secret-$RANDOM$RANDOM"
clients=10
messages=50

server_args=(--relay-ip 127.0.0.1 --relay-ports "$(relay_range "$slot")" --realm anyturn.test
  --user "$user:$password" --auth-secret "$secret" --threads 2)
client_args=(-m "$clients" -n "$messages" -l 160 -z 5 -X)
expect=relay
case "$case_name" in
  channel-longterm) client_args+=(-u "$user" -w "$password") ;;
  channel-coalesced)
    client_args+=(-u "$user" -w "$password")
    server_args+=(--udp-coalesce-us 300)
    require_tool curl
    ;;
  send-longterm) client_args+=(-s -u "$user" -w "$password") ;;
  channel-rest) client_args+=(-u "$user" -W "$secret") ;;
  send-rest) client_args+=(-s -u "$user" -W "$secret") ;;
  wrong-password)
    client_args=(-m 1 -n 10 -l 100 -z 5 -X -u "$user" -w "not-$password")
    expect=refused-401
    ;;
  peer-denied)
    client_args=(-m 1 -n 10 -l 100 -z 5 -X -u "$user" -w "$password")
    expect=refused-403
    ;;
  *) fail "unknown case $case_name" ;;
esac
[[ "$expect" == refused-403 ]] || server_args+=(--allow-peer 127.0.0.1/32)

start_server "${server_args[@]}" --log-level debug
start_peer

out="$work/uclient.log"
start_uclient "$out" "${client_args[@]}" -p "$server_port" -e 127.0.0.1 -r "$peer_port" 127.0.0.1
finish_uclient "$out"

case "$expect" in
  relay)
    require_zero_loss $((clients * messages))
    if [[ "$case_name" == channel-coalesced ]]; then
      curl -sS --max-time 5 -o "$work/metrics.txt" "http://127.0.0.1:$http_port/metrics" ||
        fail "no answer from /metrics"
      windows="$(awk '$1 == "anyturn_worker_wakeups_total{cause=\"coalesce_window\"}" {print $2}' "$work/metrics.txt")"
      [[ -n "$windows" ]] || fail "no coalesce_window sample in /metrics"
      awk -v w="$windows" 'BEGIN { exit !(w > 0) }' || fail "no coalescing window was used (anyturn_worker_wakeups_total{cause=\"coalesce_window\"} = $windows)"
      log "coalescing windows used: $windows"
    fi
    ;;
  refused-401)
    # turnutils_uclient retries the Allocate and gives up without printing
    # the code; the server must have created no allocation at all.
    ((${received:-0} == 0)) || fail "$received messages were relayed, expected none"
    grep -q 'Cannot complete Allocation' "$out" || ((rc != 0)) ||
      fail "turnutils_uclient did not report a failed allocation"
    stop_server
    created="$(grep -oE 'allocations created [0-9]+' "$server_log" | tail -n 1 | awk '{print $3}' || true)"
    [[ -n "$created" ]] || fail "no 'allocations created N' in the server's shutdown summary"
    ((created == 0)) || fail "the server created $created allocations for a wrong password"
    log "PASS: wrong password refused, no allocation created"
    exit 0
    ;;
  refused-403)
    ((${received:-0} == 0)) || fail "$received messages were relayed, expected none"
    grep -qE 'error 403' "$out" || fail "turnutils_uclient output does not show error 403"
    log "loopback peer refused with 403 as expected"
    ;;
esac

stop_server
log "PASS"
