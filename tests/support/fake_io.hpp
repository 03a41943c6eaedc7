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
  }
  bool send_to_peer(relay::relay_id id, const stun::endpoint& peer, relay::fragments data, bool df) override {
    ++peer_sends;
    if (record) to_peer.push_back({id, peer, concat(data), df});
    return true;
  }
  std::optional<relay::relay_id> relay_with_port(std::uint16_t port) const {
    for (const auto& [id, ep] : open)
      if (ep.port == port) return id;
    return std::nullopt;
  }
};

}  // namespace anyturn::test
