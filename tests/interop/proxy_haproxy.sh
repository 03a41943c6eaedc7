#!/usr/bin/env bash
# anyturn behind a real haproxy (mode tcp, send-proxy-v2) on loopback, with
# --proxy-protocol on its TCP and TLS listeners trusting 127.0.0.1 (where
# haproxy connects from). Usage:
#   proxy_haproxy.sh CASE SLOT
#     tcp   turnutils_uclient -t through haproxy to the TCP listener
#     tls   turnutils_uclient -t -S through haproxy (TLS passthrough) to the TLS listener
# The clients connect from 127.0.0.2, haproxy from 127.0.0.1, so the two
# differ: a Binding request through haproxy must come back with
# XOR-MAPPED-ADDRESS 127.0.0.2:<the client's port>, and 10 uclient clients
# relay with zero loss. anyturn_proxy_protocol_accepted_total counts the
# headers, and a connection from 127.0.0.2 straight to anyturn (not a trusted
# source) is refused and counted as untrusted.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

case_name="${1:?usage: proxy_haproxy.sh CASE SLOT}"
slot="${2:?usage: proxy_haproxy.sh CASE SLOT}"
require_tool turnutils_uclient
haproxy_bin="$(command -v haproxy || true)"
[[ -z "$haproxy_bin" && -x /usr/sbin/haproxy ]] && haproxy_bin=/usr/sbin/haproxy
[[ -n "$haproxy_bin" ]] || fail "haproxy not found (scripts/setup.sh installs it)"

user=alice
password=wonderland
clients=10
messages=50
client_ip=127.0.0.2

tls_port="$(free_port)"
front_port="$(free_port)"
while [[ "$front_port" == "$tls_port" ]]; do front_port="$(free_port)"; done
proxy_flags=(--proxy-protocol --proxy-trusted 127.0.0.1/32)
# start_server puts its own --listen first: proxy_flags right after apply to it.
start_server "${proxy_flags[@]}" --relay-ip 127.0.0.1 --relay-ports "$(relay_range "$slot")" \
  --realm anyturn.test --user "$user:$password" --threads 2 --allow-peer 127.0.0.1/32 \
  --tls-listen "127.0.0.1:$tls_port" "${proxy_flags[@]}" --log-level debug
start_peer

backend="$server_port"
[[ "$case_name" == tls ]] && backend="$tls_port"
case "$case_name" in
  tcp | tls) ;;
  *) fail "unknown case $case_name" ;;
esac

cat >"$work/haproxy.cfg" <<EOF
global
  maxconn 512
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend turn
  bind 127.0.0.1:$front_port
  default_backend anyturn
backend anyturn
  server anyturn 127.0.0.1:$backend send-proxy-v2
EOF
log "haproxy: 127.0.0.1:$front_port -> 127.0.0.1:$backend (send-proxy-v2)"
"$haproxy_bin" -f "$work/haproxy.cfg" -db >"$work/haproxy.log" 2>&1 &
haproxy_pid=$!
started_pids+=("$haproxy_pid")
for ((i = 0; i < 50; i++)); do
  ss -H -tln "sport = :$front_port" 2>/dev/null | grep -q . && break
  kill -0 "$haproxy_pid" 2>/dev/null || fail "haproxy exited"
  sleep 0.1
done
ss -H -tln "sport = :$front_port" 2>/dev/null | grep -q . || fail "haproxy did not listen on $front_port"

metric() {  # metric SERIES: its value from /metrics (0 when absent)
  python3 - "$http_port" "$1" <<'PY'
import sys, urllib.request
port, series = sys.argv[1], sys.argv[2]
body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=3).read().decode()
for line in body.splitlines():
    if line.startswith(series + " "):
        print(int(float(line.split()[-1])))
        sys.exit(0)
print(0)
PY
}

# A Binding request over TCP (or TLS) from CLIENT_IP to PORT; prints
# "MAPPED LOCAL": the XOR-MAPPED-ADDRESS and the client's own address.
binding() {  # binding PORT TLS(0|1)
  python3 - "$client_ip" "$1" "$2" <<'PY'
import os, socket, ssl, struct, sys
client_ip, port, use_tls = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(client_ip, 0))
local = "%s:%d" % s.getsockname()
if use_tls:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s = ctx.wrap_socket(s)
tid = os.urandom(12)
s.sendall(struct.pack("!HHI", 0x0001, 0, 0x2112A442) + tid)
data = b""
while len(data) < 20 or len(data) < 20 + struct.unpack("!H", data[2:4])[0]:
    chunk = s.recv(4096)
    if not chunk:
        sys.exit("connection closed before the response")
    data += chunk
kind, length = struct.unpack("!HH", data[:4])
if kind != 0x0101 or data[8:20] != tid:
    sys.exit("not a Binding success response: type 0x%04x" % kind)
body = data[20:20 + length]
pos = 0
while pos + 4 <= len(body):
    t, l = struct.unpack("!HH", body[pos:pos + 4])
    v = body[pos + 4:pos + 4 + l]
    if t == 0x0020 and v[1] == 1:
        mport = struct.unpack("!H", v[2:4])[0] ^ 0x2112
        mip = bytes(a ^ b for a, b in zip(v[4:8], struct.pack("!I", 0x2112A442)))
        print("%s:%d %s" % (socket.inet_ntoa(mip), mport, local))
        sys.exit(0)
    pos += 4 + ((l + 3) & ~3)
sys.exit("no IPv4 XOR-MAPPED-ADDRESS")
PY
}

tls_flag=0
[[ "$case_name" == tls ]] && tls_flag=1
read -r mapped local_addr < <(binding "$front_port" "$tls_flag") || fail "Binding through haproxy failed"
log "through haproxy: XOR-MAPPED-ADDRESS $mapped, client $local_addr"
[[ "$mapped" == "$local_addr" ]] || fail "XOR-MAPPED-ADDRESS $mapped is not the client's address $local_addr"

client_args=(-t -m "$clients" -n "$messages" -l 160 -z 5 -X -u "$user" -w "$password" -L "$client_ip")
[[ "$case_name" == tls ]] && client_args+=(-S)
out="$work/uclient.log"
start_uclient "$out" "${client_args[@]}" -p "$front_port" -e 127.0.0.1 -r "$peer_port" 127.0.0.1
finish_uclient "$out"
require_zero_loss $((clients * messages))

accepted="$(metric anyturn_proxy_protocol_accepted_total)"
log "anyturn_proxy_protocol_accepted_total $accepted"
((accepted >= clients + 1)) || fail "only $accepted PROXY headers accepted"
# The server logged the real client, not haproxy.
grep -q "client $client_ip:" "$server_log" || fail "no log line names the client $client_ip"

# Straight to anyturn from an untrusted source: refused and counted.
if binding "$backend" "$tls_flag" >/dev/null 2>&1; then fail "an untrusted source was served"; fi
untrusted="$(metric 'anyturn_proxy_protocol_rejected_total{reason="untrusted"}')"
((untrusted == 1)) || fail "untrusted rejections: $untrusted, expected 1"

stop_pid "$haproxy_pid"
stop_server
log "PASS"
