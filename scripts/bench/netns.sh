# shellcheck shell=bash
# The benchmark's veth topology (sourced by scripts/bench-xdp.sh):
#
#   ns $BENCH_NS_CLIENT          ns $BENCH_NS_SERVER              ns $BENCH_NS_PEER
#   bcli0 10.217.1.2/24 <-veth-> bsrvc 10.217.1.1/24
#                                bsrvp 10.217.2.1/24 <-veth-> bpeer0 10.217.2.2/24
#
# Clients reach the server at 10.217.1.1, peers its relay address 10.217.2.1;
# nothing is routed between the namespaces, and nothing leaves them. The
# client and peer ends have tx checksum offload off (their packets carry
# complete UDP checksums, which an XDP rewrite on the server updates) and
# GRO on: a redirect or XDP_TX into a veth needs GRO (or an XDP program) on
# the receiving end, and GRO also coalesces the generator's receives.
# Created by netns_up, deleted by netns_down (also at the start, in case an
# earlier run was killed).

BENCH_NS_CLIENT=${BENCH_NS_CLIENT:-atbd-cli}
BENCH_NS_SERVER=${BENCH_NS_SERVER:-atbd-srv}
BENCH_NS_PEER=${BENCH_NS_PEER:-atbd-peer}
BENCH_SERVER_IP=10.217.1.1
BENCH_CLIENT_IP=10.217.1.2
BENCH_RELAY_IP=10.217.2.1
BENCH_PEER_IP=10.217.2.2
# shellcheck disable=SC2034  # used by scripts/bench-xdp.sh
BENCH_SERVER_IFACES=(bsrvc bsrvp)
# anyturn-bench-ifconf (tests/bench/ifconf.cpp): set by the caller.
BENCH_IFCONF=${BENCH_IFCONF:-build/tests/bench/anyturn-bench-ifconf}

netns_down() {
  local ns
  for ns in "$BENCH_NS_CLIENT" "$BENCH_NS_SERVER" "$BENCH_NS_PEER"; do
    ip netns del "$ns" 2>/dev/null || true
  done
}

netns_up() {
  netns_down
  ip netns add "$BENCH_NS_CLIENT" && ip netns add "$BENCH_NS_SERVER" && ip netns add "$BENCH_NS_PEER" || return 1
  ip link add bcli0 address 02:17:00:00:01:02 netns "$BENCH_NS_CLIENT" type veth \
    peer name bsrvc address 02:17:00:00:01:01 netns "$BENCH_NS_SERVER" || return 1
  ip link add bpeer0 address 02:17:00:00:02:02 netns "$BENCH_NS_PEER" type veth \
    peer name bsrvp address 02:17:00:00:02:01 netns "$BENCH_NS_SERVER" || return 1
  ip -n "$BENCH_NS_CLIENT" addr add "$BENCH_CLIENT_IP/24" dev bcli0
  ip -n "$BENCH_NS_SERVER" addr add "$BENCH_SERVER_IP/24" dev bsrvc
  ip -n "$BENCH_NS_SERVER" addr add "$BENCH_RELAY_IP/24" dev bsrvp
  ip -n "$BENCH_NS_PEER" addr add "$BENCH_PEER_IP/24" dev bpeer0
  local ns
  for ns in "$BENCH_NS_CLIENT" "$BENCH_NS_SERVER" "$BENCH_NS_PEER"; do
    ip -n "$ns" link set lo up
  done
  ip -n "$BENCH_NS_CLIENT" link set bcli0 up
  ip -n "$BENCH_NS_PEER" link set bpeer0 up
  ip -n "$BENCH_NS_SERVER" link set bsrvc up
  ip -n "$BENCH_NS_SERVER" link set bsrvp up
  # ethtool -K IF tx off gro on (ethtool is not installed here).
  ip netns exec "$BENCH_NS_CLIENT" "$BENCH_IFCONF" bcli0 tx off gro on || return 1
  ip netns exec "$BENCH_NS_PEER" "$BENCH_IFCONF" bpeer0 tx off gro on || return 1
  # GRO on the server's ends too, as on a real NIC: what limits.udp_gro
  # receives coalesced (the XDP programs run before GRO).
  ip netns exec "$BENCH_NS_SERVER" "$BENCH_IFCONF" bsrvc gro on || return 1
  ip netns exec "$BENCH_NS_SERVER" "$BENCH_IFCONF" bsrvp gro on || return 1
  # bpf_fib_lookup answers only for interfaces that forward (otherwise
  # BPF_FIB_LKUP_RET_FWD_DISABLED). Nothing is routed between the client and
  # the peer namespaces: neither has a route to the other's subnet.
  ip netns exec "$BENCH_NS_SERVER" sh -c 'echo 1 > /proc/sys/net/ipv4/conf/all/forwarding' || return 1
  # Static neighbours: the XDP programs pass a packet up while the FIB has
  # no neighbour for it, which would make the first packets take the slow path.
  ip -n "$BENCH_NS_SERVER" neigh replace "$BENCH_CLIENT_IP" lladdr 02:17:00:00:01:02 dev bsrvc nud permanent &&
    ip -n "$BENCH_NS_SERVER" neigh replace "$BENCH_PEER_IP" lladdr 02:17:00:00:02:02 dev bsrvp nud permanent &&
    ip -n "$BENCH_NS_CLIENT" neigh replace "$BENCH_SERVER_IP" lladdr 02:17:00:00:01:01 dev bcli0 nud permanent &&
    ip -n "$BENCH_NS_PEER" neigh replace "$BENCH_RELAY_IP" lladdr 02:17:00:00:02:01 dev bpeer0 nud permanent
}
