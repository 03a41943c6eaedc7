#include <anyturn/app/summary.hpp>

#include <gtest/gtest.h>

namespace anyturn::app {
namespace {

TEST(summary, accumulate_sums_every_counter_across_workers) {
  relay::worker_counters a, b;
  relay::bump(a.allocations_created, 2);
  relay::bump(b.allocations_created, 3);
  relay::bump(a.packets_to_peer, 10);
  relay::bump(b.bytes_to_client, 1600);
  relay::bump(b.kernel_drops, 7);
  a.active_allocations.store(1);
  b.active_allocations.store(4);
  counter_totals t;
  accumulate(t, a);
  accumulate(t, b);
  EXPECT_EQ(t.allocations_created, 5u);
  EXPECT_EQ(t.packets_to_peer, 10u);
  EXPECT_EQ(t.bytes_to_client, 1600u);
  EXPECT_EQ(t.kernel_drops, 7u);
  EXPECT_EQ(t.active_allocations, 5u);
  EXPECT_EQ(t.binding_requests, 0u);
}

TEST(summary, line_names_allocations_and_both_directions) {
  counter_totals t;
  t.allocations_created = 12;
  t.allocations_expired = 3;
  t.packets_to_peer = 400;
  t.bytes_to_peer = 64000;
  t.packets_to_client = 390;
  t.bytes_to_client = 62400;
  const std::string line = summary_line(t);
  EXPECT_NE(line.find("allocations created 12 (expired 3"), std::string::npos) << line;
  EXPECT_NE(line.find("client->peer 400 packets / 64000 bytes"), std::string::npos) << line;
  EXPECT_NE(line.find("peer->client 390 packets / 62400 bytes"), std::string::npos) << line;
  EXPECT_EQ(line.find('\n'), std::string::npos);
}

TEST(summary, stream_line_sums_the_net_counters) {
  net::net_counters a, b;
  relay::bump(a.connections_accepted, 5);
  relay::bump(b.connections_accepted, 7);
  relay::bump(b.connections_refused_per_ip, 3);
  relay::bump(a.tls_handshakes, 4);
  relay::bump(b.tls_handshake_failures, 1);
  relay::bump(a.idle_timeouts, 2);
  relay::bump(b.stream_write_dropped, 9);
  relay::bump(b.stream_write_dropped_bytes, 9000);
  b.connections_open.store(2);
  net_totals t;
  accumulate(t, a);
  accumulate(t, b);
  EXPECT_EQ(t.connections_accepted, 12u);
  EXPECT_EQ(t.connections_open, 2u);
  const std::string line = stream_summary_line(t);
  EXPECT_NE(line.find("connections 12 accepted (refused: 0 total limit, 3 per-address limit)"),
            std::string::npos) << line;
  EXPECT_NE(line.find("TLS handshakes 4 ok / 1 failed / 0 timed out"), std::string::npos) << line;
  EXPECT_NE(line.find("closed: 2 idle"), std::string::npos) << line;
  EXPECT_NE(line.find("write queue full: 9 messages / 9000 bytes dropped"), std::string::npos) << line;
}

}  // namespace
}  // namespace anyturn::app
