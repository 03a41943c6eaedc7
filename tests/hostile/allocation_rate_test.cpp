// Allocations pushing past limits.allocation.packets_per_second and
// bytes_per_second (token buckets, each direction on its own): what is over
// is dropped and counted as anyturn_dropped_packets_total{reason=
// "packet_rate"|"byte_rate"} (and per tenant), the peer receives no more
// than the limit allows, and turnutils_uclient (well under the limits)
// keeps zero loss.
#include "hostile.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace anyturn::itest::hostile {
namespace {

constexpr int pps = 200;
constexpr int bps = 80000;  // the smallest allowed is 65536 (one second holds any datagram)

// An allocation with channel 0x4000 bound to `peer`; returns its relayed address.
std::optional<stun::endpoint> allocate_and_bind(turn_client& c, const stun::endpoint& peer) {
  c.set_credentials(user());
  auto a = c.allocate();
  EXPECT_TRUE(a && a->is_success()) << describe(a);
  if (!a || !a->is_success()) return std::nullopt;
  auto b = c.channel_bind(0x4000, peer);
  EXPECT_TRUE(b && b->is_success()) << describe(b);
  if (!b || !b->is_success()) return std::nullopt;
  return a->address(stun::attr::xor_relayed_address);
}

// Reads what arrives on `s` until it has been quiet for 300 ms (at most 10 s).
std::size_t drain(const udp_socket& s) {
  std::size_t n = 0;
  const auto deadline = clock::now() + std::chrono::seconds{10};
  while (clock::now() < deadline && s.recv(std::chrono::milliseconds{300})) ++n;
  return n;
}

double seconds_since(clock::time_point t) {
  return std::chrono::duration<double>(clock::now() - t).count();
}

TEST(hostile_limits, allocations_past_their_packet_and_byte_rates_are_dropped) {
  server_options so;
  so.config_yaml = "limits:\n  allocation:\n    packets_per_second: " + std::to_string(pps) +
                   "\n    bytes_per_second: " + std::to_string(bps) + "\n";
  server s(so);
  ASSERT_TRUE(s.start()) << s.d().log();

  const std::string before = s.scrape();
  const std::string packet_rate = R"(anyturn_dropped_packets_total{reason="packet_rate"})";
  const std::string byte_rate = R"(anyturn_dropped_packets_total{reason="byte_rate"})";
  const std::string tenant_packet_rate =
      R"(anyturn_tenant_dropped_packets_total{tenant="default",reason="packet_rate"})";
  const double packet0 = server::metric(before, packet_rate);
  const double byte0 = server::metric(before, byte_rate);
  const double tenant_packet0 = server::metric(before, tenant_packet_rate);

  uclient_options uo = well_behaved(s);
  uclient good(uo);
  ASSERT_TRUE(good.start()) << good.why();

  // A: 3,000 small ChannelData as fast as possible, then the peer answers
  // with 3,000 datagrams the same way.
  udp_socket sink_a(v4_loopback());
  turn_client a(s.udp());
  const auto relayed_a = allocate_and_bind(a, sink_a.local());
  ASSERT_TRUE(relayed_a.has_value());
  const bytes small(20, std::byte{0x11});
  const auto a_begin = clock::now();
  // (1 ms rests every 100 packets, so that the kernel's socket buffers
  // are not what drops them: still 100 times the packet rate.)
  for (int i = 0; i < 3000; ++i) {
    a.send_channel_data(0x4000, small);
    if (i % 100 == 99) std::this_thread::sleep_for(std::chrono::milliseconds{1});
  }
  const std::size_t a_reached_peer = drain(sink_a);
  const double a_seconds = seconds_since(a_begin);
  const double packet_after_a = server::metric(s.scrape(), packet_rate) - packet0;
  const auto back_begin = clock::now();
  for (int i = 0; i < 3000; ++i) {
    sink_a.send_to(*relayed_a, small);
    if (i % 100 == 99) std::this_thread::sleep_for(std::chrono::milliseconds{1});
  }
  std::size_t a_reached_client = 0;
  while (a.recv_raw(std::chrono::milliseconds{300})) ++a_reached_client;
  const double back_seconds = seconds_since(back_begin);

  // B: 1,200-byte packets at 100 a second for 2 s: under the packet rate,
  // 1.5x the byte rate.
  udp_socket sink_b(v4_loopback());
  turn_client b(s.udp());
  ASSERT_TRUE(allocate_and_bind(b, sink_b.local()).has_value());
  const bytes big(1200, std::byte{0x22});
  // Read while sending: 200 such datagrams overflow a default receive buffer.
  std::atomic<bool> sending{true};
  std::size_t b_reached_peer = 0;
  std::thread reader([&] {
    for (;;) {
      if (sink_b.recv(std::chrono::milliseconds{300})) {
        ++b_reached_peer;
      } else if (!sending.load()) {
        break;  // quiet for 300 ms after the last send
      }
    }
  });
  const auto b_begin = clock::now();
  for (int i = 0; i < 200; ++i) {
    b.send_channel_data(0x4000, big);
    std::this_thread::sleep_until(b_begin + std::chrono::milliseconds{10 * (i + 1)});
  }
  sending.store(false);
  reader.join();
  const double b_seconds = seconds_since(b_begin);

  const uclient_result r = good.finish();
  EXPECT_TRUE(r.zero_loss(good.expected_messages())) << r.summary() << "\n" << r.output;

  const std::string after = s.scrape();
  const double packet_drops = server::metric(after, packet_rate) - packet0;
  const double byte_drops = server::metric(after, byte_rate) - byte0;
  const double tenant_packet_drops = server::metric(after, tenant_packet_rate) - tenant_packet0;
  std::printf("[ hostile rates ] A: 3000 x 20 B to the peer, %zu arrived in %.2f s; 3000 back, %zu arrived in %.2f s; "
              "B: 200 x 1200 B at 100/s, %zu arrived in %.2f s; packet_rate +%.0f (tenant +%.0f), byte_rate +%.0f; %s\n",
              a_reached_peer, a_seconds, a_reached_client, back_seconds, b_reached_peer, b_seconds, packet_drops,
              tenant_packet_drops, byte_drops, r.summary().c_str());
  // What passed is bounded by the rate over the time it took (plus a burst
  // of at most one second's worth).
  EXPECT_LE(static_cast<double>(a_reached_peer), pps * (a_seconds + 1.0));
  EXPECT_LE(static_cast<double>(a_reached_client), pps * (back_seconds + 1.0));
  EXPECT_LE(static_cast<double>(b_reached_peer) * big.size(), bps * (b_seconds + 1.0));
  EXPECT_GT(a_reached_peer, 0u);
  EXPECT_GT(b_reached_peer, 0u);
  // Each direction of A was limited on its own, and every drop counted.
  EXPECT_GE(packet_after_a, 3000.0 - static_cast<double>(a_reached_peer));
  EXPECT_GE(packet_drops, 6000.0 - static_cast<double>(a_reached_peer + a_reached_client));
  EXPECT_GE(byte_drops, 200.0 - static_cast<double>(b_reached_peer));
  EXPECT_GT(byte_drops, 0.0);
  EXPECT_EQ(tenant_packet_drops, packet_drops);
  s.stop();
}

}  // namespace
}  // namespace anyturn::itest::hostile
