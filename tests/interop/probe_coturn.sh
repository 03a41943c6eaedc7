#!/usr/bin/env bash
# `anyturn probe` (the binary) against coturn (/usr/bin/turnserver, started
# here on loopback ports by PID, never the system service) and against
# anyturn, over UDP, TCP and TLS: each run exits 0 and its --json lines show
# success, two relayed addresses and no loss. Then the failures: a wrong
# password (exit 1, phase allocate), a closed port (exit 1, phase connect)
# and an untrusted certificate (exit 1, phase tls).
#
# Usage: probe_coturn.sh [SLOT]   (relay ports: SLOT for anyturn, SLOT+1 for coturn)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

slot="${1:-16}"
require_tool turnserver
require_tool openssl

user=alice
password="probe-$RANDOM-$RANDOM"

# A self-signed certificate for 127.0.0.1 (and probe.test): --ca trusts it,
# the system store does not.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -keyout "$work/key.pem" -out "$work/cert.pem" -subj "/CN=probe.test" \
  -addext "subjectAltName=IP:127.0.0.1,DNS:probe.test" >"$work/openssl.log" 2>&1 ||
  fail "openssl could not make a certificate"

# ---- anyturn ----
a_tls="$(free_port)"
start_server --relay-ip 127.0.0.1 --relay-ports "$(relay_range "$slot")" --realm probe.test \
  --user "$user:$password" --allow-peer 127.0.0.1/32 --threads 2 \
  --tls-listen "127.0.0.1:$a_tls" --tls-cert "$work/cert.pem" --tls-key "$work/key.pem"
a_port="$server_port"

# ---- coturn ----
c_port="$(free_port)"
c_tls="$(free_port)"
while [[ "$c_tls" == "$c_port" ]]; do c_tls="$(free_port)"; done
c_range="$(relay_range $((slot + 1)))"
log "turnserver on 127.0.0.1:$c_port (tls $c_tls), relay ports $c_range"
turnserver -n --no-cli --no-rfc5780 --no-dtls --simple-log --log-file=stdout \
  --pidfile="$work/turnserver.pid" --db="$work/turndb" \
  --listening-ip=127.0.0.1 --listening-port="$c_port" --tls-listening-port="$c_tls" \
  --cert="$work/cert.pem" --pkey="$work/key.pem" \
  --relay-ip=127.0.0.1 --min-port="${c_range%-*}" --max-port="${c_range#*-}" \
  --realm=probe.test --lt-cred-mech --user="$user:$password" --allow-loopback-peers \
  >"$work/turnserver.log" 2>&1 &
coturn_pid=$!
started_pids+=("$coturn_pid")
for ((i = 0; i < 50; i++)); do
  kill -0 "$coturn_pid" 2>/dev/null || fail "turnserver exited during start-up"
  if stun_ping "$c_port" 0.2; then break; fi
done
stun_ping "$c_port" 1 || fail "turnserver did not answer a Binding request"

# probe OUT EXPECTED_EXIT ARGS...: runs `anyturn probe ARGS` (bounded), checks its exit code.
probe() {
  local out=$1 expected=$2 rc=0
  shift 2
  log "anyturn probe $*"
  timeout 60 "$ANYTURN_BINARY" probe "$@" >"$out" 2>"$out.err" || rc=$?
  cat "$out"
  ((rc == expected)) || fail "anyturn probe exited $rc, expected $expected ($(cat "$out.err"))"
}

# check_json FILE LINES [FAILED_PHASE]: every line passed with two relayed
# addresses and no loss, or (with FAILED_PHASE) failed in that phase.
check_json() {
  python3 - "$@" <<'PY'
import json, sys
path, lines, phase = sys.argv[1], int(sys.argv[2]), (sys.argv[3] if len(sys.argv) > 3 else None)
reports = [json.loads(l) for l in open(path) if l.strip()]
assert len(reports) == lines, f"{len(reports)} JSON lines, expected {lines}"
for r in reports:
    if phase is None:
        assert r["success"] is True, f"{r['url']}: {r['error']}"
        assert len(r["relayed"]) == 2, r
        assert r["loss"] == 0 and r["received"] == r["sent"] > 0, r
        assert r["rtt_us"] is not None, r
        print(f"{r['url']}: pass, rtt p50 {r['rtt_us']['p50']} us, p99 {r['rtt_us']['p99']} us, max {r['rtt_us']['max']} us, software {r['software']!r}")
    else:
        assert r["success"] is False, r
        last = r["phases"][-1]
        assert last["phase"] == phase and not last["ok"], f"{r['url']}: failed in {last['phase']}, expected {phase}"
        assert r["error"].startswith(phase + ":") or r["error"].endswith(" in " + phase), r["error"]
        print(f"{r['url']}: failed as expected: {r['error']}")
PY
}

closed="$(free_port)"  # nothing listens there
for server in anyturn coturn; do
  if [[ "$server" == anyturn ]]; then port=$a_port tls=$a_tls; else port=$c_port tls=$c_tls; fi
  urls=("turn:127.0.0.1:$port?transport=udp" "turn:127.0.0.1:$port?transport=tcp"
        "turns:127.0.0.1:$tls?transport=tcp")
  common=(--count 20 --interval-ms 5 --timeout-s 10)

  probe "$work/$server-pass.json" 0 "${urls[@]}" --user "$user" --password "$password" \
    --ca "$work/cert.pem" "${common[@]}" --json
  check_json "$work/$server-pass.json" 3 || fail "$server: the probes did not all pass"
  probe "$work/$server-pass.txt" 0 "${urls[2]}" --user "$user" --password "$password" \
    --ca "$work/cert.pem" "${common[@]}"
  grep -q "PASS" "$work/$server-pass.txt" || fail "$server: no PASS in the text output"

  probe "$work/$server-wrong.json" 1 "${urls[0]}" "${urls[1]}" --user "$user" --password wrong \
    "${common[@]}" --json
  check_json "$work/$server-wrong.json" 2 allocate || fail "$server: a wrong password did not fail in allocate"

  probe "$work/$server-closed.json" 1 "turn:127.0.0.1:$closed?transport=tcp" \
    "turns:127.0.0.1:$closed" --user "$user" --password "$password" "${common[@]}" --json
  check_json "$work/$server-closed.json" 2 connect || fail "$server: a closed port did not fail in connect"

  probe "$work/$server-untrusted.json" 1 "${urls[2]}" --user "$user" --password "$password" \
    "${common[@]}" --json
  check_json "$work/$server-untrusted.json" 1 tls || fail "$server: an untrusted certificate did not fail in tls"
done

kill -TERM "$coturn_pid"
stop_server
log "PASS: anyturn probe against anyturn and coturn over udp, tcp and tls"
