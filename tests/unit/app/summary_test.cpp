#include <anyturn/app/summary.hpp>

#include <gtest/gtest.h>

namespace anyturn::app {
namespace {

TEST(summary, accumulate_sums_every_counter_across_workers) {
  turn::worker_counters a, b;
  turn::bump(a.allocations_created, 2);
  turn::bump(b.allocations_created, 3);
  turn::bump(a.packets_to_peer, 10);
  turn::bump(b.bytes_to_client, 1600);
  turn::bump(b.kernel_drops, 7);
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

}  // namespace
}  // namespace anyturn::app
