#!/usr/bin/env bash
# coturn's turnutils_stunclient sends an RFC 5389 Binding request to anyturn
# and must print the reflexive (XOR-MAPPED) address it got back.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

require_tool turnutils_stunclient
start_server --relay-ip 127.0.0.1 --relay-ports "$(relay_range 0)" --realm anyturn.test \
  --user alice:wonderland --threads 2

out="$work/stunclient.log"
rc=0
# Without -f it sends a plain Binding; bounded in case it waits for ever.
timeout 15 turnutils_stunclient -p "$server_port" 127.0.0.1 >"$out" 2>&1 &
pid=$!
started_pids+=("$pid")
wait "$pid" || rc=$?
cat "$out"
((rc != 124)) || fail "turnutils_stunclient timed out"

reflexive="$(grep -oE 'UDP reflexive addr: [0-9.]+:[0-9]+' "$out" | tail -n 1 | awk '{print $4}')"
[[ -n "$reflexive" ]] || fail "no 'UDP reflexive addr' in turnutils_stunclient output (exit $rc)"
ip="${reflexive%:*}"
port="${reflexive##*:}"
[[ "$ip" == "127.0.0.1" ]] || fail "reflexive address $reflexive: expected 127.0.0.1"
((port > 0 && port <= 65535 && port != server_port)) || fail "reflexive port $port is implausible"
log "reflexive address $reflexive"

stop_server
log "PASS"
