// The server's own listener, its HTTP port and another local service (a UDP
// socket this test binds on 127.0.0.1) as peers. The relay address is
// 127.0.0.1 and no peers.allow entry covers it (an allow entry re-opens the
// server's own addresses by design), so ChannelBind to each gets 403,
// counted in anyturn_peer_denied_total{reason="self"}. A permission for the
// relay IP is granted (it is how two allocations reach each other), but Send
// indications under it to those ports are dropped and counted in anyturn_dropped_packets_total
// {reason="self_peer"}: nothing reaches them. turnutils_uclient relays to its
// peer on 127.0.0.2 (allowed with 127.0.0.2/32) with zero loss.
#include "hostile.hpp"

#include <gtest/gtest.h>

#include <sys/socket.h>

namespace anyturn::itest::hostile {
namespace {

TEST(hostile_peers, the_servers_own_addresses_are_refused_as_peers) {
  server_options so;
  so.allow_peers = {"127.0.0.2/32"};
  server s(so);
  ASSERT_TRUE(s.start()) << s.d().log();

  udp_socket service(v4_loopback());  // another local service
  const std::vector<stun::endpoint> own = {
      s.udp(),                                    // the TURN listener
      v4_loopback(s.http_port()),                 // the side HTTP server
      service.local(),                            // some other service on the host
  };

  const std::string before = s.scrape();
  const std::string denied_self = R"(anyturn_peer_denied_total{reason="self"})";
  const std::string dropped_self = R"(anyturn_dropped_packets_total{reason="self_peer"})";
  const double denied0 = server::metric(before, denied_self);
  const double dropped0 = server::metric(before, dropped_self);
  const double requests0 = server::metric(before, R"(anyturn_requests_total{method="binding"})");

  uclient_options uo = well_behaved(s);
  uo.peer_ip = "127.0.0.2";
  uclient good(uo);
  ASSERT_TRUE(good.start()) << good.why();

  turn_client attacker(s.udp());
  attacker.set_credentials(user());
  auto a = attacker.allocate();
  ASSERT_TRUE(a && a->is_success()) << describe(a);

  int refused = 0;
  std::uint16_t channel = 0x4000;
  for (const auto& target : own) {
    auto r = attacker.channel_bind(channel++, target);
    EXPECT_TRUE(r && r->error_code() == 403) << target.to_string() << ": " << describe(r);
    if (r && r->error_code() == 403) ++refused;
    // 127.0.0.1 is also the relay address, and a permission is per IP, so
    // it is granted (another allocation's relayed address is a valid
    // peer); what it reaches is checked per packet below.
    auto p = attacker.create_permission({target});
    EXPECT_TRUE(p && p->is_success()) << "permission for " << target.to_string() << ": " << describe(p);
  }
  // Send indications carrying a Binding request (TURN inside TURN) and plain bytes.
  constexpr int sends_per_target = 20;
  const bytes inner = attacker.build_request(stun::method::binding, turn_client::random_tid(), {}, false);
  const bytes plain(100, std::byte{0x33});
  for (int i = 0; i < sends_per_target; ++i) {
    for (const auto& target : own) attacker.send_indication(target, i % 2 == 0 ? inner : plain);
  }
  // ChannelData on the refused channels goes nowhere either.
  for (std::uint16_t ch = 0x4000; ch < channel; ++ch) attacker.send_channel_data(ch, plain);

  const uclient_result r = good.finish();
  EXPECT_TRUE(r.zero_loss(good.expected_messages())) << r.summary() << "\n" << r.output;

  EXPECT_FALSE(service.recv(std::chrono::milliseconds{300}).has_value()) << "the local service received a datagram";
  const std::string after = s.scrape();
  const double denied = server::metric(after, denied_self) - denied0;
  const double dropped = server::metric(after, dropped_self) - dropped0;
  const double bindings = server::metric(after, R"(anyturn_requests_total{method="binding"})") - requests0;
  std::printf("[ hostile own peers ] %d of %zu ChannelBinds refused with 403; peer_denied{self} +%.0f, "
              "dropped{self_peer} +%.0f of %zu Sends; Binding requests seen +%.0f; %s\n",
              refused, own.size(), denied, dropped, own.size() * sends_per_target, bindings, r.summary().c_str());
  EXPECT_EQ(refused, static_cast<int>(own.size()));
  EXPECT_GE(denied, static_cast<double>(own.size()));
  EXPECT_EQ(dropped, static_cast<double>(own.size() * sends_per_target));
  // No TURN-inside-TURN Binding reached the listener through the relay.
  EXPECT_EQ(bindings, 0.0);
  s.stop();
}

}  // namespace
}  // namespace anyturn::itest::hostile
