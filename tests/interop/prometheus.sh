#!/usr/bin/env bash
# A real Prometheus server (Debian package prometheus) scrapes anyturn: the
# test starts both on loopback (free ports, the TSDB in a temp dir, a 1 s
# scrape interval), relays traffic with turnutils_uclient, and asks
# Prometheus' HTTP API until it reports the target up and
# sum(anyturn_relayed_bytes_total) above zero. Everything it started is
# stopped by PID (lib.sh).
# Usage: prometheus.sh SLOT
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

slot="${1:?usage: prometheus.sh SLOT}"
require_tool turnutils_uclient
require_tool curl
command -v prometheus >/dev/null 2>&1 || fail "prometheus not found (Debian package prometheus)"

start_server --relay-ip 127.0.0.1 --relay-ports "$(relay_range "$slot")" --realm anyturn.test \
  --user alice:wonderland --allow-peer 127.0.0.1/32 --threads 2

prom_port="$(free_port)"
while [[ "$prom_port" == "$server_port" || "$prom_port" == "$http_port" ]]; do prom_port="$(free_port)"; done
cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: anyturn
    scrape_interval: 1s
    static_configs:
      - targets: ["127.0.0.1:$http_port"]
EOF
log "prometheus on 127.0.0.1:$prom_port scraping 127.0.0.1:$http_port"
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" --log.level=warn >"$work/prometheus.log" 2>&1 &
prom_pid=$!
started_pids+=("$prom_pid")

# Traffic for up to ~40 s (2 clients, 2000 messages at 20 ms); stopped by PID
# once Prometheus has seen it.
start_peer
timeout 90 turnutils_uclient -m 2 -n 2000 -l 200 -z 20 -X -u alice -w wonderland \
  -p "$server_port" -e 127.0.0.1 -r "$peer_port" 127.0.0.1 >"$work/uclient.log" 2>&1 &
uclient_pid=$!
started_pids+=("$uclient_pid")

# query PROMQL: prints the first sample's value, or nothing.
query() {
  curl -sS --max-time 2 -G "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$1" \
    2>/dev/null | python3 -c '
import json, sys
try:
    doc = json.load(sys.stdin)
except ValueError:
    sys.exit(0)
result = doc.get("data", {}).get("result", []) if doc.get("status") == "success" else []
if result:
    print(result[0]["value"][1])
' || true
}

up=""
bytes=""
active=""
for ((i = 0; i < 120; i++)); do  # bounded: 120 x 0.5 s
  kill -0 "$prom_pid" 2>/dev/null || fail "prometheus exited"
  up="$(query 'up{job="anyturn"}')"
  bytes="$(query 'sum(anyturn_relayed_bytes_total{job="anyturn"})')"
  active="$(query 'sum(anyturn_allocations_active{job="anyturn"})')"
  if [[ "$up" == 1 ]] && python3 -c "import sys; sys.exit(0 if float('${bytes:-0}') > 0 else 1)"; then
    break
  fi
  sleep 0.5
done
log "prometheus: up=${up:-none} sum(anyturn_relayed_bytes_total)=${bytes:-none} sum(anyturn_allocations_active)=${active:-none}"
[[ "$up" == 1 ]] || fail "prometheus never reported up{job=\"anyturn\"} == 1"
python3 -c "import sys; sys.exit(0 if float('${bytes:-0}') > 0 else 1)" ||
  fail "prometheus never saw anyturn_relayed_bytes_total above zero"
kill -0 "$uclient_pid" 2>/dev/null || fail "the traffic had already stopped; the check must see it while it flows"
# The scrape itself is healthy: no samples were dropped.
scraped="$(query 'scrape_samples_scraped{job="anyturn"}')"
log "scrape_samples_scraped=${scraped:-none}"
python3 -c "import sys; sys.exit(0 if float('${scraped:-0}') > 50 else 1)" ||
  fail "prometheus scraped too few samples (${scraped:-none})"

# Every query of docs/grafana-dashboard.json parses and evaluates here.
python3 - "$here/../../docs/grafana-dashboard.json" "$prom_port" <<'PY' || fail "a dashboard query failed"
import json, sys, urllib.parse, urllib.request
dash = json.load(open(sys.argv[1]))
subst = {"$job": "anyturn", "$instance": ".*", "$tenant": ".*", "$__rate_interval": "5s", "$__range": "1m"}
exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
for e in exprs:
    q = e
    for k, v in subst.items():
        q = q.replace(k, v)
    url = f"http://127.0.0.1:{sys.argv[2]}/api/v1/query?" + urllib.parse.urlencode({"query": q})
    try:
        doc = json.load(urllib.request.urlopen(url, timeout=5))
    except Exception as err:  # 400 for a bad expression
        sys.exit(f"dashboard query {e!r}: {err}")
    if doc.get("status") != "success":
        sys.exit(f"dashboard query {e!r}: {doc}")
print(f"{len(exprs)} dashboard queries evaluate")
PY

stop_pid "$uclient_pid"
stop_pid "$prom_pid"
stop_server
log "PASS"
