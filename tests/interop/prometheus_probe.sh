#!/usr/bin/env bash
# The Prometheus side of GET /probe (docs/probe.md): promtool checks the
# example scrape config and alert rules in docs/prometheus/, and a real
# /probe answer from the daemon (its own UDP listener, only a static user
# configured, the admin key): `promtool check metrics` passes and it says
# probe_success 1. Everything it started is stopped by PID (lib.sh).
# Usage: prometheus_probe.sh SLOT
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

slot="${1:?usage: prometheus_probe.sh SLOT}"
require_tool curl
require_tool promtool
docs="$here/../../docs/prometheus"

# The scrape config reads the admin key from a file, and promtool checks
# that the file exists: point it at one in the scratch folder.
key="prometheus-probe-admin-key-$RANDOM$RANDOM"
printf '%s\n' "$key" >"$work/admin-key"
sed "s#/etc/prometheus/anyturn-admin-key#$work/admin-key#" "$docs/probe-scrape.yml" >"$work/probe-scrape.yml"
cp "$docs/probe-alerts.yml" "$work/probe-alerts.yml"
promtool check config "$work/probe-scrape.yml" || fail "promtool check config failed on docs/prometheus/probe-scrape.yml"
promtool check rules "$docs/probe-alerts.yml" || fail "promtool check rules failed on docs/prometheus/probe-alerts.yml"

start_server --relay-ip 127.0.0.1 --relay-ports "$(relay_range "$slot")" --realm anyturn.test \
  --user alice:wonderland --allow-peer 127.0.0.1/32 --threads 1 --admin-key "$key"

url="turn:127.0.0.1:$server_port?transport=udp"
status="$(curl -sS --max-time 15 -o "$work/probe.txt" -w '%{http_code}' -G \
  -H "Authorization: Bearer $key" --data-urlencode "target=$url" "http://127.0.0.1:$http_port/probe")" \
  || fail "GET /probe failed"
[[ "$status" == 200 ]] || fail "GET /probe answered $status: $(cat "$work/probe.txt")"
log "GET /probe?target=$url:"
cat "$work/probe.txt"
promtool check metrics <"$work/probe.txt" || fail "promtool check metrics failed on the /probe answer"
grep -qx 'probe_success 1' "$work/probe.txt" || fail "the probe of the node's own listener failed"
# Without the key: 401.
status="$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' -G --data-urlencode "target=$url" \
  "http://127.0.0.1:$http_port/probe")"
[[ "$status" == 401 ]] || fail "GET /probe without the admin key answered $status, not 401"

stop_server
log "PASS: promtool accepts the scrape config, the rules and a real /probe answer"
