# shellcheck shell=bash disable=SC2034  # the TOPO_* variables are for the caller
# The XDP tests' network topology (sourced, not run; the benchmark sources it
# too). Three namespaces and two veth pairs:
#
#   PREFIX-c (client)            PREFIX-s (server)                 PREFIX-p (peer)
#   c0 10.71.1.2  <--veth-->  s0 10.71.1.1   s1 10.71.2.1  <--veth-->  p0 10.71.2.2
#      fd00:71:1::2              fd00:71:1::1   fd00:71:2::1              fd00:71:2::2
#
# The addresses live only inside these namespaces, so parallel topologies
# (different PREFIX) can use the same ones. The client and the peer each know
# only their own /24 and /64: they have no route to each other, so the kernel
# of the server namespace never gets a packet to forward between them, and
# whatever reaches the other side was relayed by anyturn (user space or its
# XDP program). Forwarding stays off on the server's interfaces as well (the
# program asks its route lookups as from loopback, and anyturn's loader turns
# on loopback's forwarding only).
#
# The client and peer ends:
#  - send with tx checksum offload off: a locally generated UDP packet on a
#    veth otherwise carries CHECKSUM_PARTIAL (an incomplete checksum) that the
#    XDP program would rewrite incrementally into a wrong one;
#  - run an XDP_PASS program (src/xdp/bpf/xdp_pass.bpf.o, $ANYTURN_XDP_PASS_OBJ),
#    or, when it is not given or cannot attach, GRO: a veth end receives
#    frames sent with XDP_TX or redirected to it only then. TOPO_FORCE_GRO=1
#    takes GRO even when the program is there.
# Neighbour entries are static (no ARP/ND on the first packets, which the
# XDP program would pass up while the neighbour is unresolved) and IPv6
# addresses skip duplicate address detection.
#
#   topo_up PREFIX      creates it (fails with the failed command on stderr)
#   topo_down PREFIX    deletes it (and whatever part of it exists)
#   topo_down_all       deletes every topology this shell created: call it
#                       from your EXIT trap, or use topo_install_trap
#   topo_probe_xdp      returns 0 if a native XDP program attaches to a veth
#                       here (root, ip netns, BPF); else prints why, returns 1
#
# PREFIX must be unique per run and short (namespace names are PREFIX-c
# etc.): e.g. "axdp$$". After topo_up the TOPO_* variables below name the
# namespaces, interfaces and addresses; TOPO_PEER_END says what the client
# and peer ends run ("xdp_pass" or "gro").

TOPO_CLIENT_IF=c0
TOPO_SERVER_CLIENT_IF=s0
TOPO_SERVER_PEER_IF=s1
TOPO_PEER_IF=p0
TOPO_CLIENT4=10.71.1.2
TOPO_SERVER_CLIENT4=10.71.1.1
TOPO_SERVER_PEER4=10.71.2.1
TOPO_PEER4=10.71.2.2
TOPO_CLIENT6=fd00:71:1::2
TOPO_SERVER_CLIENT6=fd00:71:1::1
TOPO_SERVER_PEER6=fd00:71:2::1
TOPO_PEER6=fd00:71:2::2
TOPO_PEER_END=""
topo_created=()  # global even when sourced inside a function

_topo_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# _topo_run CMD...: runs it quietly; on failure prints it with its output.
_topo_run() {
  local out
  if ! out="$("$@" 2>&1)"; then
    echo "topo: failed: $* ${out:+($out)}" >&2
    return 1
  fi
}

# topo_ethtool NS IF tx|gro on|off: `ethtool -K` when installed, else the
# same ioctl from veth_features.py.
topo_ethtool() {
  local ns=$1 ifname=$2 feature=$3 state=$4
  if command -v ethtool >/dev/null 2>&1; then
    _topo_run ip netns exec "$ns" ethtool -K "$ifname" "$feature" "$state"
  else
    _topo_run ip netns exec "$ns" python3 "$_topo_dir/veth_features.py" "$ifname" "$feature" "$state"
  fi
}

# _topo_mac NS IF: the interface's MAC address.
_topo_mac() {
  ip netns exec "$1" cat "/sys/class/net/$2/address"
}

# _topo_peer_end NS IF: XDP_PASS on the interface, else GRO.
_topo_peer_end() {
  local ns=$1 ifname=$2
  if [[ -z "${TOPO_FORCE_GRO:-}" && -n "${ANYTURN_XDP_PASS_OBJ:-}" && -f "$ANYTURN_XDP_PASS_OBJ" ]] &&
    ip -n "$ns" link set dev "$ifname" xdpdrv obj "$ANYTURN_XDP_PASS_OBJ" sec xdp 2>/dev/null; then
    TOPO_PEER_END=xdp_pass
    return 0
  fi
  topo_ethtool "$ns" "$ifname" gro on || return 1
  TOPO_PEER_END=gro
}

topo_up() {
  local p=$1
  local c="$p-c" s="$p-s" x="$p-p" ns
  TOPO_CLIENT_NS=$c
  TOPO_SERVER_NS=$s
  TOPO_PEER_NS=$x
  topo_down "$p"
  topo_created+=("$p")
  for ns in "$c" "$s" "$x"; do
    _topo_run ip netns add "$ns" || return 1
    _topo_run ip -n "$ns" link set lo up || return 1
    # New interfaces (and their link-local addresses) skip DAD.
    _topo_run ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 ||
      return 1
  done
  _topo_run ip -n "$s" link add "$TOPO_SERVER_CLIENT_IF" type veth peer name "$TOPO_CLIENT_IF" netns "$c" || return 1
  _topo_run ip -n "$s" link add "$TOPO_SERVER_PEER_IF" type veth peer name "$TOPO_PEER_IF" netns "$x" || return 1
  _topo_run ip netns exec "$s" sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0 || return 1

  _topo_run ip -n "$c" addr add "$TOPO_CLIENT4/24" dev "$TOPO_CLIENT_IF" || return 1
  _topo_run ip -n "$c" addr add "$TOPO_CLIENT6/64" dev "$TOPO_CLIENT_IF" nodad || return 1
  _topo_run ip -n "$s" addr add "$TOPO_SERVER_CLIENT4/24" dev "$TOPO_SERVER_CLIENT_IF" || return 1
  _topo_run ip -n "$s" addr add "$TOPO_SERVER_CLIENT6/64" dev "$TOPO_SERVER_CLIENT_IF" nodad || return 1
  _topo_run ip -n "$s" addr add "$TOPO_SERVER_PEER4/24" dev "$TOPO_SERVER_PEER_IF" || return 1
  _topo_run ip -n "$s" addr add "$TOPO_SERVER_PEER6/64" dev "$TOPO_SERVER_PEER_IF" nodad || return 1
  _topo_run ip -n "$x" addr add "$TOPO_PEER4/24" dev "$TOPO_PEER_IF" || return 1
  _topo_run ip -n "$x" addr add "$TOPO_PEER6/64" dev "$TOPO_PEER_IF" nodad || return 1
  _topo_run ip -n "$c" link set "$TOPO_CLIENT_IF" up || return 1
  _topo_run ip -n "$s" link set "$TOPO_SERVER_CLIENT_IF" up || return 1
  _topo_run ip -n "$s" link set "$TOPO_SERVER_PEER_IF" up || return 1
  _topo_run ip -n "$x" link set "$TOPO_PEER_IF" up || return 1

  local mac_c mac_sc mac_sp mac_p
  mac_c="$(_topo_mac "$c" "$TOPO_CLIENT_IF")" || return 1
  mac_sc="$(_topo_mac "$s" "$TOPO_SERVER_CLIENT_IF")" || return 1
  mac_sp="$(_topo_mac "$s" "$TOPO_SERVER_PEER_IF")" || return 1
  mac_p="$(_topo_mac "$x" "$TOPO_PEER_IF")" || return 1
  local a
  for a in "$TOPO_CLIENT4" "$TOPO_CLIENT6"; do
    _topo_run ip -n "$s" neigh replace "$a" lladdr "$mac_c" dev "$TOPO_SERVER_CLIENT_IF" nud permanent || return 1
  done
  for a in "$TOPO_PEER4" "$TOPO_PEER6"; do
    _topo_run ip -n "$s" neigh replace "$a" lladdr "$mac_p" dev "$TOPO_SERVER_PEER_IF" nud permanent || return 1
  done
  for a in "$TOPO_SERVER_CLIENT4" "$TOPO_SERVER_CLIENT6"; do
    _topo_run ip -n "$c" neigh replace "$a" lladdr "$mac_sc" dev "$TOPO_CLIENT_IF" nud permanent || return 1
  done
  for a in "$TOPO_SERVER_PEER4" "$TOPO_SERVER_PEER6"; do
    _topo_run ip -n "$x" neigh replace "$a" lladdr "$mac_sp" dev "$TOPO_PEER_IF" nud permanent || return 1
  done

  topo_ethtool "$c" "$TOPO_CLIENT_IF" tx off || return 1
  topo_ethtool "$x" "$TOPO_PEER_IF" tx off || return 1
  _topo_peer_end "$c" "$TOPO_CLIENT_IF" || return 1
  _topo_peer_end "$x" "$TOPO_PEER_IF" || return 1
}

topo_down() {
  local p=$1 ns
  for ns in "$p-c" "$p-s" "$p-p"; do
    if [[ -e "/run/netns/$ns" ]]; then ip netns del "$ns" 2>/dev/null || true; fi
  done
}

topo_down_all() {
  local p
  for p in "${topo_created[@]}"; do topo_down "$p"; done
}

# topo_install_trap: deletes the topologies on exit (for scripts without
# their own EXIT trap; keeps the exit status).
_topo_exit() {
  local rc=$?
  topo_down_all
  exit "$rc"
}
topo_install_trap() {
  trap _topo_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

topo_probe_xdp() {
  if ((EUID != 0)); then
    echo "not root (XDP and network namespaces need CAP_NET_ADMIN and CAP_BPF)"
    return 1
  fi
  if ! ip netns list >/dev/null 2>&1; then
    echo "ip netns is not available"
    return 1
  fi
  if [[ -z "${ANYTURN_XDP_PASS_OBJ:-}" || ! -f "$ANYTURN_XDP_PASS_OBJ" ]]; then
    echo "no XDP_PASS object to probe with (ANYTURN_XDP_PASS_OBJ='${ANYTURN_XDP_PASS_OBJ:-}')"
    return 1
  fi
  local ns="axdp-probe-$$" why=""
  if ! why="$(ip netns add "$ns" 2>&1)"; then
    echo "cannot create a network namespace: $why"
    return 1
  fi
  if ! why="$(ip -n "$ns" link add v0 type veth peer name v1 2>&1 &&
    ip -n "$ns" link set dev v0 xdpdrv obj "$ANYTURN_XDP_PASS_OBJ" sec xdp 2>&1)"; then
    ip netns del "$ns" 2>/dev/null || true
    echo "cannot attach a native XDP program to a veth: ${why:-unknown error}"
    return 1
  fi
  ip netns del "$ns" 2>/dev/null || true
}
