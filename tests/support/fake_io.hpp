// A recording relay::io_port: what the relay core and the TURN handlers
// send and which relay sockets they open, without sockets.
#pragma once

#include <anyturn/relay/io.hpp>

#include <gtest/gtest.h>

#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <system_error>
#include <utility>
#include <vector>

namespace anyturn::test {

using bytes = std::vector<std::byte>;

inline bytes concat(relay::fragments parts) {
  bytes out;
  for (auto p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

struct fake_io final : relay::io_port {
  struct to_client_msg {
    relay::client_ref to;
    bytes data;
  };
  struct to_peer_msg {
    relay::relay_id id;
    stun::endpoint peer;
    bytes data;
    bool dont_fragment;
  };
  bool record = true;  // off: count only, so forwarding can be checked for allocations
  std::size_t client_sends = 0, peer_sends = 0;
  std::vector<to_client_msg> to_client;
  std::vector<to_peer_msg> to_peer;
  std::map<relay::relay_id, stun::endpoint> open;
  std::set<std::uint16_t> ports_in_use_elsewhere;  // the kernel refuses these

  void send_to_client(const relay::client_ref& to, relay::fragments data) override {
    ++client_sends;
    if (record) to_client.push_back({to, concat(data)});
  }
  std::error_code open_relay(relay::relay_id id, const stun::endpoint& bind) override {
    if (ports_in_use_elsewhere.count(bind.port)) return std::make_error_code(std::errc::address_in_use);
    EXPECT_EQ(open.count(id), 0u) << "relay id reused while open";
    open[id] = bind;
    return {};
  }
  void close_relay(relay::relay_id id) override {
    EXPECT_EQ(open.count(id), 1u);
    open.erase(id);
    tcp_open.erase(id);
  }
  bool send_to_peer(relay::relay_id id, const stun::endpoint& peer, relay::fragments data, bool df) override {
    ++peer_sends;
    if (record) to_peer.push_back({id, peer, concat(data), df});
    return true;
  }
  // RFC 5780 groups (io_port::alternate): with `other_ip` set, UDP
  // listeners 0-3 are one group around `primary` (A:P): bit 0 of the index
  // is port P+1, bit 1 the other IP. Listeners 1-3 serve Binding only.
  std::optional<stun::endpoint> primary, other_ip;
  stun::endpoint group_socket(std::uint32_t index) const {
    stun::endpoint e = (index & 2U) != 0 ? *other_ip : *primary;
    e.port = static_cast<std::uint16_t>(primary->port + ((index & 1U) != 0 ? 1 : 0));
    return e;
  }
  std::optional<relay::client_ref> alternate(const relay::client_ref& c, bool change_ip,
                                             bool change_port) override {
    if (!other_ip || c.proto != relay::transport::udp || c.listener > 3) return std::nullopt;
    relay::client_ref out = c;
    out.listener = c.listener ^ (change_ip ? 2U : 0U) ^ (change_port ? 1U : 0U);
    out.local = group_socket(out.listener);
    return out;
  }
  bool binding_only(const relay::client_ref& c) override {
    return other_ip && c.proto == relay::transport::udp && c.listener >= 1 && c.listener <= 3;
  }
  // ---- TCP relay allocations (RFC 6062) ----
  std::map<relay::relay_id, stun::endpoint> tcp_open;  // listening relays
  std::map<std::uint32_t, relay::relay_id> tcp_waiting;  // unbound connections
  std::map<std::uint32_t, relay::client_ref> tcp_bound;  // bound: the data connection
  std::vector<std::pair<relay::relay_id, stun::endpoint>> tcp_connects;
  std::vector<unsigned> streams_moved;  // hand_off_stream's owners
  std::uint32_t next_cid = 0x00000100;
  bool refuse_connect = false;
  std::error_code open_tcp_relay(relay::relay_id id, const stun::endpoint& bind) override {
    if (ports_in_use_elsewhere.count(bind.port)) return std::make_error_code(std::errc::address_in_use);
    open[id] = bind;
    tcp_open[id] = bind;
    return {};
  }
  bool tcp_peer_exists(relay::relay_id id, const stun::endpoint& peer) override {
    for (const auto& [rid, p] : tcp_connects)
      if (rid == id && p == peer) return true;
    return false;
  }
  std::uint32_t tcp_connect(relay::relay_id id, const stun::endpoint& peer) override {
    if (refuse_connect) return 0;
    tcp_connects.emplace_back(id, peer);
    tcp_waiting[++next_cid] = id;
    return next_cid;
  }
  relay::relay_id tcp_unbound(std::uint32_t cid) override {
    const auto it = tcp_waiting.find(cid);
    return it == tcp_waiting.end() ? relay::no_relay : it->second;
  }
  bool tcp_bind(std::uint32_t cid, const relay::client_ref& data) override {
    if (tcp_waiting.erase(cid) == 0) return false;
    tcp_bound[cid] = data;
    return true;
  }
  bool hand_off_stream(const relay::client_ref&, unsigned owner, stun::bytes_view) override {
    streams_moved.push_back(owner);
    return true;
  }

  std::optional<relay::relay_id> relay_with_port(std::uint16_t port) const {
    for (const auto& [id, ep] : open)
      if (ep.port == port) return id;
    return std::nullopt;
  }
};

}  // namespace anyturn::test
