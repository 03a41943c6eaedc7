#!/usr/bin/env bash
# The credentials API end to end: no key and a wrong key get 401 with a JSON
# error; a good key gets iceServers whose credentials then carry a
# turnutils_uclient session (coturn's client) through the same anyturn with
# zero loss. While that session runs, /metrics must show an active
# allocation and relayed bytes above zero.
# Usage: credentials_api.sh SLOT
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

slot="${1:?usage: credentials_api.sh SLOT}"
require_tool turnutils_uclient
require_tool curl

api_key="interop-api-key-$RANDOM$RANDOM$RANDOM"
secret="interop-rest-secret-$RANDOM$RANDOM"
clients=4
messages=300   # at 10 ms intervals: the session lasts about 3 s

start_server --relay-ip 127.0.0.1 --relay-ports "$(relay_range "$slot")" --realm anyturn.test \
  --auth-secret "$secret" --api-key "$api_key" --allow-peer 127.0.0.1/32 --threads 2
api="http://127.0.0.1:$http_port/api/v1/ice-servers"

# api_call OUT [curl args...]: body to OUT, prints the HTTP status.
api_call() {
  local out=$1
  shift
  curl -sS --max-time 5 -o "$out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    "$@" "$api"
}

status="$(api_call "$work/none.json" -d '{}')"
[[ "$status" == 401 ]] || fail "no key: expected 401, got $status"
grep -q '"error":"missing API key"' "$work/none.json" || fail "no key: body $(cat "$work/none.json")"

status="$(api_call "$work/wrong.json" -H "Authorization: Bearer not-$api_key" -d '{}')"
[[ "$status" == 401 ]] || fail "wrong key: expected 401, got $status"
grep -q '"error":"invalid API key"' "$work/wrong.json" || fail "wrong key: body $(cat "$work/wrong.json")"
log "401 without a key and with a wrong key"

status="$(api_call "$work/ice.json" -H "Authorization: Bearer $api_key" -d '{"ttl": 600, "user": "uclient"}')"
[[ "$status" == 200 ]] || fail "good key: expected 200, got $status: $(cat "$work/ice.json")"
log "iceServers: $(cat "$work/ice.json")"
# username, credential, and whether the TURN UDP URL names this server.
read -r username credential has_url < <(python3 - "$work/ice.json" "$server_port" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
port = sys.argv[2]
turn = [s for s in doc["iceServers"] if "username" in s]
assert len(turn) == 1, doc
s = turn[0]
url = f"turn:127.0.0.1:{port}?transport=udp"
print(s["username"], s["credential"], "yes" if url in s["urls"] else "no")
PY
)
[[ -n "$username" && -n "$credential" ]] || fail "no credentials in the response"
[[ "$has_url" == yes ]] || fail "the TURN URLs do not name 127.0.0.1:$server_port"
[[ "$username" =~ ^[0-9]+:uclient$ ]] || fail "unexpected username '$username'"

start_peer
out="$work/uclient.log"
start_uclient "$out" -m "$clients" -n "$messages" -l 160 -z 10 -X -u "$username" -w "$credential" \
  -p "$server_port" -e 127.0.0.1 -r "$peer_port" 127.0.0.1

# Scrape while the session runs (bounded: 300 x 0.1 s).
seen_active=0
seen_bytes=0
metric_sum() {  # metric_sum FILE FAMILY: sum of the family's samples
  awk -v f="$2" '$1 == f || index($1, f "{") == 1 { s += $NF } END { printf "%d\n", s }' "$1"
}
for ((i = 0; i < 300; i++)); do
  kill -0 "$uclient_pid" 2>/dev/null || break
  if curl -sS --max-time 2 -o "$work/metrics.txt" "http://127.0.0.1:$http_port/metrics" 2>/dev/null; then
    active="$(metric_sum "$work/metrics.txt" anyturn_allocations_active)"
    relayed="$(metric_sum "$work/metrics.txt" anyturn_relayed_bytes_total)"
    ((active > seen_active)) && seen_active=$active
    ((relayed > seen_bytes)) && seen_bytes=$relayed
    if ((seen_active > 0 && seen_bytes > 0)); then
      log "during the session: /metrics shows $active active allocations, $relayed bytes relayed"
      break
    fi
  fi
  sleep 0.1
done
kill -0 "$uclient_pid" 2>/dev/null || log "note: turnutils_uclient ended before the scrape condition held"
((seen_active > 0)) || fail "no scrape during the session showed an active allocation"
((seen_bytes > 0)) || fail "no scrape during the session showed relayed bytes"

finish_uclient "$out"
require_zero_loss $((clients * messages))

# The session was counted under the default tenant, and the API issue too.
curl -sS --max-time 2 -o "$work/metrics.txt" "http://127.0.0.1:$http_port/metrics"
grep -q '^anyturn_http_credentials_issued_total{tenant="default"} 1$' "$work/metrics.txt" ||
  fail "anyturn_http_credentials_issued_total{tenant=\"default\"} is not 1"
grep -q '^anyturn_http_api_auth_failures_total{reason="invalid"} 1$' "$work/metrics.txt" ||
  fail "anyturn_http_api_auth_failures_total{reason=\"invalid\"} is not 1"

stop_server
log "PASS"
