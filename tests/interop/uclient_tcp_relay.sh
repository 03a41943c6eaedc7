#!/usr/bin/env bash
# coturn's turnutils_uclient in RFC 6062 mode (-T) against anyturn: TCP relay
# allocations. -T implies -t -y -c: pairs of clients allocate TCP relays
# over TCP control connections and relay TCP to each other through the
# server (Connect from one, ConnectionAttempt + ConnectionBind on the
# other), so no peer runs and the server must allow relaying between two
# of its own allocations (loopback relay addresses). Two workers, so data
# connections land on a worker that does not own their allocation and move
# there. Usage: uclient_tcp_relay.sh SLOT
# Zero loss and tot_recv_msgs == tot_send_msgs are required, and the
# server's metrics must show the binds.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

slot="${1:?usage: uclient_tcp_relay.sh SLOT}"
require_tool turnutils_uclient

user=alice
password=wonderland
clients=10
messages=50

server_args=(--relay-ip 127.0.0.1 --relay-ports "$(relay_range "$slot")" --realm anyturn.test
  --user "$user:$password" --threads 2 --allow-peer 127.0.0.1/32)

start_server "${server_args[@]}" --log-level debug

out="$work/uclient.log"
start_uclient "$out" -T -m "$clients" -n "$messages" -l 160 -z 5 -u "$user" -w "$password" \
  -p "$server_port" -e 127.0.0.1 127.0.0.1
finish_uclient "$out"
require_zero_loss $((clients * messages))

metrics="$(curl -fsS "http://127.0.0.1:$http_port/metrics")" || fail "no /metrics"
bound="$(grep -E '^anyturn_tcp_relay_connections_total\{result="bound"\}' <<<"$metrics" | awk '{print $2}')"
log "TCP relay connections bound: ${bound:-none}"
[[ -n "$bound" ]] && ((bound >= clients)) || fail "only ${bound:-0} data connections bound"
grep -E '^anyturn_tcp_relay_connections_total' <<<"$metrics" || true

stop_server
log "PASS"
