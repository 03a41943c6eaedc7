// The worker's allocation table: slots, the 5-tuple index and relay ids.
#include <anyturn/relay/allocation_table.hpp>

#include <gtest/gtest.h>

#include <memory>

namespace anyturn::relay {
namespace {

client_ref client_on(std::uint16_t port) {
  client_ref c;
  c.remote = *stun::endpoint::parse("203.0.113.10:1");
  c.remote.port = port;
  c.local = *stun::endpoint::parse("192.0.2.1:3478");
  return c;
}

std::unique_ptr<allocation> record_for(const client_ref& c) {
  auto a = std::make_unique<allocation>();
  a->client = c;
  return a;
}

TEST(allocation_table, a_reserved_slot_is_found_only_after_insert) {
  allocation_table t;
  const auto s = t.reserve();
  EXPECT_EQ(t.at(s), nullptr);
  EXPECT_FALSE(t.contains(client_on(1)));
  t.insert(s, record_for(client_on(1)));
  EXPECT_EQ(t.find(client_on(1)), s);
  EXPECT_EQ(t.find_allocation(client_on(1)), t.at(s));
  EXPECT_EQ(t.size(), 1u);
  t.erase(s);
  EXPECT_FALSE(t.contains(client_on(1)));
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.reserve(), s);  // freed slots are reused
}

TEST(allocation_table, a_cancelled_slot_comes_back) {
  allocation_table t;
  const auto s = t.reserve();
  t.cancel(s);
  EXPECT_EQ(t.reserve(), s);
  EXPECT_EQ(t.slot_count(), 1u);
}

TEST(allocation_table, relay_ids_map_back_to_their_allocation_and_are_reused) {
  allocation_table t;
  const auto s = t.reserve();
  const relay_id v4 = t.take_relay_id(s);
  const relay_id v6 = t.take_relay_id(s);
  EXPECT_NE(v4, v6);
  EXPECT_EQ(t.by_relay(v4), nullptr);  // not inserted yet
  t.insert(s, record_for(client_on(2)));
  EXPECT_EQ(t.by_relay(v4), t.at(s));
  EXPECT_EQ(t.by_relay(v6), t.at(s));
  t.release_relay_id(v6);
  EXPECT_EQ(t.by_relay(v6), nullptr);
  EXPECT_EQ(t.by_relay(12345), nullptr);  // never handed out
  EXPECT_EQ(t.take_relay_id(s), v6);
}

TEST(allocation_table, many_allocations_stay_findable_through_churn) {
  allocation_table t;
  for (std::uint16_t p = 1; p <= 2000; ++p) t.insert(t.reserve(), record_for(client_on(p)));
  for (std::uint16_t p = 1; p <= 2000; p += 2) t.erase(*t.find(client_on(p)));
  t.shrink_if_sparse();
  EXPECT_EQ(t.size(), 1000u);
  for (std::uint16_t p = 1; p <= 2000; ++p) EXPECT_EQ(t.contains(client_on(p)), p % 2 == 0) << p;
}

}  // namespace
}  // namespace anyturn::relay
