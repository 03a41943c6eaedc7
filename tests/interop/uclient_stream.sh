#!/usr/bin/env bash
# coturn's turnutils_uclient over TCP (-t) and TLS (-t -S) against anyturn,
# with turnutils_peer as the UDP echo peer on loopback. Usage:
#   uclient_stream.sh CASE SLOT
#     tcp-channel   TCP, ChannelData, long-term credentials
#     tcp-send      TCP, Send/Data indications (-s), long-term credentials
#     tls-channel   TLS, ChannelData, TURN REST secret (-W)
#     tls-send      TLS, Send/Data indications, long-term credentials
# 10 clients, each also making uclient's extra RTCP allocation; zero loss
# and tot_recv_msgs == tot_send_msgs are required. The TLS server runs
# without tls.cert, so it also exercises the generated development
# certificate (in a temporary state directory).
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

case_name="${1:?usage: uclient_stream.sh CASE SLOT}"
slot="${2:?usage: uclient_stream.sh CASE SLOT}"
require_tool turnutils_uclient

user=alice
password=wonderland
secret="interop-rest-secret-$RANDOM$RANDOM"
clients=10
messages=50

tls_port="$(free_port)"
export XDG_STATE_HOME="$work/state"  # where the development certificate goes
server_args=(--relay-ip 127.0.0.1 --relay-ports "$(relay_range "$slot")" --realm anyturn.test
  --user "$user:$password" --auth-secret "$secret" --threads 2 --allow-peer 127.0.0.1/32
  --tls-listen "127.0.0.1:$tls_port")
client_args=(-t -m "$clients" -n "$messages" -l 160 -z 5 -X)
case "$case_name" in
  tcp-channel) client_args+=(-u "$user" -w "$password") ;;
  tcp-send) client_args+=(-s -u "$user" -w "$password") ;;
  tls-channel) client_args+=(-S -u "$user" -W "$secret") ;;
  tls-send) client_args+=(-S -s -u "$user" -w "$password") ;;
  *) fail "unknown case $case_name" ;;
esac

start_server "${server_args[@]}" --log-level debug
start_peer
port="$server_port"
[[ "$case_name" == tls-* ]] && port="$tls_port"

out="$work/uclient.log"
start_uclient "$out" "${client_args[@]}" -p "$port" -e 127.0.0.1 -r "$peer_port" 127.0.0.1
finish_uclient "$out"
require_zero_loss $((clients * messages))

stop_server
# Every allocation was made over a stream and ended with its connection.
summary="$(grep -E 'streams: connections' "$server_log" | tail -n 1 || true)"
[[ -n "$summary" ]] || fail "no stream summary in the server log"
log "server: $summary"
accepted="$(grep -oE 'connections [0-9]+ accepted' <<<"$summary" | awk '{print $2}')"
((accepted >= clients)) || fail "the server accepted only $accepted stream connections"
if [[ "$case_name" == tls-* ]]; then
  handshakes="$(grep -oE 'TLS handshakes [0-9]+ ok' <<<"$summary" | awk '{print $3}')"
  ((handshakes >= clients)) || fail "only $handshakes TLS handshakes"
  grep -q 'SELF-SIGNED' "$server_log" || fail "the development certificate was not announced"
fi
log "PASS"
