#!/usr/bin/env bash
# Config hot reload under load: while coturn's turnutils_uclient relays
# ChannelData through anyturn to turnutils_peer, 50 reloads alternate a good
# config (a different extra user each time, alice unchanged) and a bad one
# (a YAML syntax error, then a validation error). Requires: every good
# reload answered 200 and every bad one 400, zero packets lost
# (tot_recv_msgs == tot_send_msgs, "Total lost packets 0"), and no
# allocation ended by a reload. Usage: reload_uclient.sh SLOT
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

slot="${1:?usage: reload_uclient.sh SLOT}"
require_tool turnutils_uclient
require_tool curl

admin_key="reload-interop-admin-key-$RANDOM$RANDOM"
clients=10
messages=400
reloads=50
config="$work/anyturn.yaml"

good_config() {  # good_config N
  cat >"$config.tmp" <<YAML
auth:
  users:
    - {name: alice, password: wonderland}
    - {name: extra-$1, password: extra-password-$1-0123456789}
peers:
  allow: ["127.0.0.1/32"]
YAML
  mv "$config.tmp" "$config"
}
bad_config() {  # bad_config N: a syntax error or a validation error
  if (($1 % 4 == 1)); then
    printf 'auth:\n  users: [\n    - {name: alice\n' >"$config.tmp"
  else
    printf 'auth:\n  users: [{name: alice, password: wonderland}]\nlifetimes:\n  allocation_max: 0\n' >"$config.tmp"
  fi
  mv "$config.tmp" "$config"
}

good_config 0
start_server --config "$config" --relay-ip 127.0.0.1 --relay-ports "$(relay_range "$slot")" \
  --realm anyturn.test --threads 2 --admin-key "$admin_key"
start_peer

out="$work/uclient.log"
start_uclient "$out" -m "$clients" -n "$messages" -l 160 -z 10 -X -u alice -w wonderland \
  -p "$server_port" -e 127.0.0.1 -r "$peer_port" 127.0.0.1
sleep 1  # the clients have allocated and bound their channels

ok=0
bad=0
for ((i = 0; i < reloads; i++)); do
  if ((i % 2 == 0)); then good_config "$((i + 1))"; want=200; else bad_config "$i"; want=400; fi
  code="$(curl -sS --max-time 5 -o "$work/reload.json" -w '%{http_code}' -X POST \
    -H "Authorization: Bearer $admin_key" "http://127.0.0.1:$http_port/admin/reload")" ||
    fail "no answer from /admin/reload (reload $i)"
  [[ "$code" == "$want" ]] || fail "reload $i answered $code, expected $want: $(cat "$work/reload.json")"
  if ((want == 200)); then ok=$((ok + 1)); else bad=$((bad + 1)); fi
  sleep 0.05
done
log "$reloads reloads: $ok applied, $bad refused"
kill -0 "$uclient_pid" 2>/dev/null || fail "turnutils_uclient finished before the reloads did: raise -n"

finish_uclient "$out"
require_zero_loss $((clients * messages))

curl -sS --max-time 5 -o "$work/metrics.txt" "http://127.0.0.1:$http_port/metrics" ||
  fail "no answer from /metrics"
sample() { awk -v s="$1" '$1 == s {print $2}' "$work/metrics.txt"; }
[[ "$(sample 'anyturn_config_reloads_total{result="ok"}')" == "$ok" ]] ||
  fail "anyturn_config_reloads_total{result=\"ok\"} is $(sample 'anyturn_config_reloads_total{result="ok"}'), expected $ok"
[[ "$(sample 'anyturn_config_reloads_total{result="error"}')" == "$bad" ]] ||
  fail "anyturn_config_reloads_total{result=\"error\"} is $(sample 'anyturn_config_reloads_total{result="error"}'), expected $bad"
[[ "$(sample 'anyturn_config_generation')" == "$((ok + 1))" ]] ||
  fail "anyturn_config_generation is $(sample 'anyturn_config_generation'), expected $((ok + 1))"
for reason in reloaded revoked expired; do
  n="$(sample "anyturn_allocations_closed_total{reason=\"$reason\"}")"
  [[ "${n:-0}" == 0 ]] || fail "$n allocations ended with reason $reason during the reloads"
done
log "0 packets lost, 0 allocations dropped over $reloads reloads"
stop_server
log "PASS"
