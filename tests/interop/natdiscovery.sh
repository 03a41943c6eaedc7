#!/usr/bin/env bash
# RFC 5780 with coturn's clients: anyturn on 127.0.0.1:P with --other-ip
# 127.0.0.2 (loopback holds all of 127/8).
#   turnutils_natdiscovery -m -f must report the other address
#   (127.0.0.2:P+1), the mapping and the filtering behaviour;
#   turnutils_stunclient -f (which hangs against a server without RFC 5780)
#   must finish with its three RFC 5780 answers.
# Usage: natdiscovery.sh SLOT (the relay port slot).
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

slot="${1:-19}"
require_tool turnutils_natdiscovery
require_tool turnutils_stunclient

# P and P+1 free on 127.0.0.1 (free_port pair); 127.0.0.2 is checked by the
# daemon's own bind, which fails loudly.
server_port="$(free_port pair)"
http_port="$(free_port)"
while ((http_port == server_port || http_port == server_port + 1)); do http_port="$(free_port)"; done
other_port=$((server_port + 1))
server_log="$work/anyturn.log"
export XDG_STATE_HOME="$work/state"
args=(--listen "127.0.0.1:$server_port" --other-ip 127.0.0.2 --http-listen "127.0.0.1:$http_port"
  --relay-ip 127.0.0.1 --relay-ports "$(relay_range "$slot")" --realm anyturn.test
  --user alice:wonderland-password --threads 2)
log "anyturn ${args[*]}"
"$ANYTURN_BINARY" "${args[@]}" >"$server_log" 2>&1 &
server_pid=$!
started_pids+=("$server_pid")
ready=0
for ((i = 0; i < 50; i++)); do
  kill -0 "$server_pid" 2>/dev/null || fail "anyturn exited during start-up"
  if stun_ping "$server_port" 0.2; then
    ready=1
    break
  fi
done
((ready)) || fail "anyturn did not answer a Binding request within 10 s"

# run_bounded NAME CMD...: runs CMD under timeout 20 into $work/NAME.log; fails on a timeout.
run_bounded() {
  local name=$1 rc=0
  shift
  timeout 20 "$@" >"$work/$name.log" 2>&1 &
  local pid=$!
  started_pids+=("$pid")
  wait "$pid" || rc=$?
  cat "$work/$name.log"
  ((rc != 124)) || fail "$name timed out (20 s)"
  ((rc == 0)) || fail "$name exited with status $rc"
}

# ---- turnutils_natdiscovery -m -f
run_bounded natdiscovery turnutils_natdiscovery -m -f -p "$server_port" 127.0.0.1
out="$work/natdiscovery.log"
grep -qF "Other addr: : 127.0.0.2:$other_port" "$out" ||
  fail "natdiscovery did not report the other address 127.0.0.2:$other_port"
grep -qF "Response origin: : 127.0.0.1:$server_port" "$out" ||
  fail "natdiscovery did not report the response origin 127.0.0.1:$server_port"
# Filtering test II (change IP and port) was answered from the other socket.
grep -qF "Response origin: : 127.0.0.2:$other_port" "$out" ||
  fail "no answer came from 127.0.0.2:$other_port (CHANGE-REQUEST ip+port)"
grep -qF "NAT with Endpoint Independent Mapping!" "$out" || fail "natdiscovery found no mapping behaviour"
# MAPPED-ADDRESS beside XOR-MAPPED-ADDRESS: its ALG check (as against coturn).
grep -qF "No ALG: Mapped == XOR-Mapped" "$out" || fail "natdiscovery could not compare MAPPED-ADDRESS"
grep -qF "NAT with Endpoint Independent Filtering!" "$out" || fail "natdiscovery found no filtering behaviour"
log "natdiscovery: other address 127.0.0.2:$other_port, endpoint-independent mapping and filtering"

# ---- turnutils_stunclient -f: RESPONSE-PORT, CHANGE-REQUEST, PADDING
run_bounded stunclient turnutils_stunclient -f -p "$server_port" 127.0.0.1
out="$work/stunclient.log"
answers="$(grep -c "RFC 5780 response" "$out" || true)"
((answers == 3)) || fail "turnutils_stunclient -f got $answers RFC 5780 answers, expected 3"
grep -qF "Response origin: : 127.0.0.2:$other_port" "$out" ||
  fail "turnutils_stunclient -f: no answer from 127.0.0.2:$other_port"
log "stunclient -f: 3 RFC 5780 answers"

# The CHANGE-REQUESTs were counted (natdiscovery's filtering tests and
# stunclient's two), none refused.
metrics="$(python3 - "$http_port" <<'PY'
import sys, urllib.request
print(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=5).read().decode())
PY
)"
changed="$(awk '/^anyturn_nat_discovery_total\{result="changed"\}/ {print $2}' <<<"$metrics")"
refused="$(awk '/^anyturn_nat_discovery_total\{result="refused"\}/ {print $2}' <<<"$metrics")"
[[ -n "$changed" ]] && ((changed >= 3)) || fail "anyturn_nat_discovery_total{result=\"changed\"} is '$changed', expected >= 3"
[[ "$refused" == "0" ]] || fail "anyturn_nat_discovery_total{result=\"refused\"} is '$refused', expected 0"
log "metrics: changed=$changed refused=$refused"

stop_server
log "PASS"
