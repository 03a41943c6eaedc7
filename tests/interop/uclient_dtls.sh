#!/usr/bin/env bash
# coturn's turnutils_uclient over DTLS (-S without -t) against anyturn's
# --dtls-listen, with turnutils_peer as the UDP echo peer on loopback. Usage:
#   uclient_dtls.sh CASE SLOT
#     channel   ChannelData, long-term credentials
#     send      Send/Data indications (-s), TURN REST secret (-W)
# 10 clients, each also making uclient's extra RTCP allocation; zero loss
# and tot_recv_msgs == tot_send_msgs are required. The server runs without
# tls.cert (the generated development certificate, in a temporary state
# directory). Afterwards /metrics must show a DTLS handshake per client,
# every one after a HelloVerifyRequest (cookie_sent). uclient ends some of
# its sessions with close_notify and just leaves others: those must end by
# dtls.idle_timeout (10 s here), counted, leaving no session open.
# uclient also tries DTLS 1.0 on some connections; the server (DTLS 1.2
# only) refuses those with a protocol_version alert, counted as
# result="failed", and uclient retries with 1.2.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

case_name="${1:?usage: uclient_dtls.sh CASE SLOT}"
slot="${2:?usage: uclient_dtls.sh CASE SLOT}"
require_tool turnutils_uclient

user=alice
password=wonderland
secret="interop-rest-secret-$RANDOM$RANDOM"
clients=10
messages=50

dtls_port="$(free_port)"
printf 'dtls:\n  idle_timeout: 10\n' >"$work/dtls.yaml"
server_args=(--relay-ip 127.0.0.1 --relay-ports "$(relay_range "$slot")" --realm anyturn.test
  --user "$user:$password" --auth-secret "$secret" --threads 2 --allow-peer 127.0.0.1/32
  --dtls-listen "127.0.0.1:$dtls_port" --config "$work/dtls.yaml")
client_args=(-S -m "$clients" -n "$messages" -l 160 -z 5 -X)
case "$case_name" in
  channel) client_args+=(-u "$user" -w "$password") ;;
  send) client_args+=(-s -u "$user" -W "$secret") ;;
  *) fail "unknown case $case_name" ;;
esac

start_server "${server_args[@]}" --log-level debug
start_peer

metric() {  # metric SERIES: its value in /metrics (0 when absent)
  curl -s --max-time 3 "http://127.0.0.1:$http_port/metrics" |
    awk -v s="$1" '$1 == s { v = $2 } END { print (v == "" ? 0 : v) }'
}

out="$work/uclient.log"
start_uclient "$out" "${client_args[@]}" -p "$dtls_port" -e 127.0.0.1 -r "$peer_port" 127.0.0.1
finish_uclient "$out"
require_zero_loss $((clients * messages))

ok="$(metric 'anyturn_dtls_handshakes_total{result="ok"}')"
cookies="$(metric 'anyturn_dtls_handshakes_total{result="cookie_sent"}')"
failed="$(metric 'anyturn_dtls_handshakes_total{result="failed"}')"
log "server: dtls handshakes ok=$ok cookie_sent=$cookies failed=$failed"
((ok >= clients)) || fail "only $ok DTLS handshakes completed, expected at least $clients"
((cookies >= ok)) || fail "$ok handshakes but only $cookies HelloVerifyRequests: a session skipped the cookie"

# Sessions uclient left without close_notify end by the idle timeout.
left="$(metric anyturn_dtls_sessions_open)"
idle_before="$(metric 'anyturn_dtls_sessions_closed_total{reason="idle_timeout"}')"
log "server: dtls sessions open right after the run: $left"
open="$left"
for ((i = 0; i < 150; i++)); do
  open="$(metric anyturn_dtls_sessions_open)"
  [[ "$open" == 0 ]] && break
  sleep 0.1
done
idle="$(metric 'anyturn_dtls_sessions_closed_total{reason="idle_timeout"}')"
log "server: dtls sessions open after the idle timeout: $open; idle timeouts: $idle_before -> $idle"
[[ "$open" == 0 ]] || fail "$open DTLS sessions still open after the idle timeout"
((idle - idle_before == left)) || fail "$left sessions were left open but $((idle - idle_before)) idle timeouts counted"
active="$(metric 'anyturn_allocations_active{transport="dtls"}')"
[[ "$active" == 0 ]] || fail "$active DTLS allocations outlived their sessions"

stop_server
grep -q 'SELF-SIGNED' "$server_log" || fail "the development certificate was not announced"
grep -qE 'allocation start: dtls ' "$server_log" || fail "no allocation was made over DTLS"
log "PASS"
