#!/usr/bin/env bash
# `anyturn import-coturn` end to end: coturn (/usr/bin/turnserver, started here
# on loopback by PID, never the system service) runs on an example
# turnserver.conf, turnutils_uclient relays through it with the example's
# credentials and is refused with a wrong one; then anyturn runs on the
# imported YAML and the same uclient commands give the same results.
# Also `anyturn check-config` on every imported example (Debian's shipped
# turnserver.conf included).
#
# Usage: import_coturn.sh CASE SLOT
#   static  tests/testdata/coturn/static-hex.conf: a plain password and two
#           coturn hex keys (the long-term key MD5(name:realm:password))
#   rest    tests/testdata/coturn/rest-quotas.conf: two static-auth-secret
#           (TURN REST), quotas, max-bps and peer rules
# coturn and anyturn run one after the other on the same ports and relay range.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

case_name="${1:?usage: import_coturn.sh CASE SLOT}"
slot="${2:?usage: import_coturn.sh CASE SLOT}"
require_tool turnserver
require_tool turnutils_uclient
require_tool curl
testdata="$here/../testdata/coturn"

# ---- every example imports into a config check-config accepts ----
for example in debian-turnserver static-hex rest-quotas tls-only; do
  "$ANYTURN_BINARY" import-coturn "$testdata/$example.conf" >"$work/$example.yaml" 2>"$work/$example.import.err" ||
    fail "import-coturn $example.conf exited $?: $(cat "$work/$example.import.err")"
  [[ ! -s "$work/$example.import.err" ]] || fail "import-coturn $example.conf warned: $(cat "$work/$example.import.err")"
  XDG_STATE_HOME="$work/state" "$ANYTURN_BINARY" check-config "$work/$example.yaml" >"$work/$example.check" 2>&1 ||
    fail "check-config refused the import of $example.conf: $(cat "$work/$example.check")"
  grep -q '^configuration OK' "$work/$example.check" || fail "check-config on $example: no 'configuration OK'"
  log "$example.conf: imported, check-config OK ($(grep -c '^# line ' "$work/$example.yaml") options as comments)"
done

# ---- the case's credentials: good ones relay, a wrong one is refused ----
case "$case_name" in
  static)
    conf="$testdata/static-hex.conf"
    # alice has a plain password; bob and carol are stored as hex keys.
    good=("-u alice -w Alice-static-pw-51203" "-u bob -w Bob-static-2nd-pw-9431" "-u carol -w Carol-static-pw-77310")
    wrong="-u bob -w Bob-static-wrong-pw"
    ;;
  rest)
    conf="$testdata/rest-quotas.conf"
    # Both the new and the retiring secret sign valid credentials.
    good=("-u alice -W 5f1c0a9e7d2b4c8a9e13d7f2b6a40c91" "-u bob -W retiring-rest-secret-2f8e61c4a0")
    wrong="-u alice -W not-the-secret-0123456789abcdef"
    ;;
  *) fail "unknown case $case_name" ;;
esac
yaml="$work/${conf##*/}"
yaml="${yaml%.conf}.yaml"
grep -q '^auth:' "$yaml" || fail "the import of $conf has no auth section"

range="$(relay_range "$slot")"
clients=4
messages=50

# run_clients SERVER PORT: every good credential relays with zero loss, the
# wrong one gets no allocation. The wrong one goes last: anyturn's
# failed-authentication limit would otherwise slow the good runs down.
run_clients() {
  local server=$1 port=$2 i=0 creds out
  for creds in "${good[@]}"; do
    out="$work/$server-good-$i.log"
    # shellcheck disable=SC2086
    start_uclient "$out" -m "$clients" -n "$messages" -l 160 -z 5 -X $creds -p "$port" -e 127.0.0.1 \
      -r "$peer_port" 127.0.0.1
    finish_uclient "$out"
    require_zero_loss $((clients * messages))
    log "$server: ${creds% *} accepted, $received/$sent messages relayed, $lost lost"
    i=$((i + 1))
  done
  out="$work/$server-wrong.log"
  # shellcheck disable=SC2086
  start_uclient "$out" -m 1 -n 10 -l 100 -z 5 -X $wrong -p "$port" -e 127.0.0.1 -r "$peer_port" 127.0.0.1
  finish_uclient "$out"
  ((${received:-0} == 0)) || fail "$server: $received messages relayed with a wrong credential"
  grep -q 'Cannot complete Allocation' "$out" || ((rc != 0)) ||
    fail "$server: turnutils_uclient did not report a failed allocation for a wrong credential"
  # ... refused for its credential: coturn logs it, anyturn counts it.
  if [[ "$server" == coturn ]]; then
    grep -qE 'credentials are incorrect|Cannot find credentials of user' "$work/turnserver-file.log" "$work/turnserver.log" ||
      fail "coturn did not log the wrong credential as incorrect"
  else
    curl -sS --max-time 5 -o "$work/metrics.txt" "http://127.0.0.1:$http_port/metrics" || fail "no answer from /metrics"
    bad="$(awk '$1 == "anyturn_auth_failures_total{reason=\"bad_integrity\"}" {print $2}' "$work/metrics.txt")"
    awk -v n="${bad:-0}" 'BEGIN { exit !(n > 0) }' ||
      fail "anyturn_auth_failures_total{reason=\"bad_integrity\"} is ${bad:-absent}, expected > 0"
  fi
  log "$server: a wrong credential (${wrong% *}) refused"
}

start_peer

# ---- coturn on the original file (ports, relay range, logs by flag) ----
c_port="$(free_port pair)"
log "turnserver -c ${conf##*/} on 127.0.0.1:$c_port, relay ports $range"
turnserver -c "$conf" --listening-ip=127.0.0.1 --relay-ip=127.0.0.1 --listening-port="$c_port" \
  --min-port="${range%-*}" --max-port="${range#*-}" --no-cli --no-tls --no-dtls --no-rfc5780 \
  --allow-loopback-peers --simple-log --log-file="$work/turnserver-file.log" \
  --pidfile="$work/turnserver.pid" --db="$work/turndb" >"$work/turnserver.log" 2>&1 &
coturn_pid=$!
started_pids+=("$coturn_pid")
for ((i = 0; i < 50; i++)); do
  kill -0 "$coturn_pid" 2>/dev/null || fail "turnserver exited during start-up"
  if stun_ping "$c_port" 0.2; then break; fi
done
stun_ping "$c_port" 1 || fail "turnserver did not answer a Binding request"
run_clients coturn "$c_port"
stop_pid "$coturn_pid"
wait "$coturn_pid" 2>/dev/null || true
log "turnserver stopped"

# ---- anyturn on the imported YAML (ports, relay range, loopback peer by flag) ----
start_server --config "$yaml" --relay-ip 127.0.0.1 --relay-ports "$range" --allow-peer 127.0.0.1/32
run_clients anyturn "$server_port"
stop_server
log "PASS: coturn and anyturn on the import of ${conf##*/} accept the same credentials and refuse a wrong one"
