// The server's own addresses as peers: src/relay/own_addresses.cpp.
#include <anyturn/relay/own_addresses.hpp>

#include <gtest/gtest.h>

namespace anyturn::relay {
namespace {

stun::endpoint ep(const char* text) { return *stun::endpoint::parse(text); }

TEST(OwnAddresses, ContainsEveryListedIpOnAnyPortAndTheRelays) {
  auto pool = std::make_shared<port_pool>(50000, 50009);
  const own_addresses own({ep("192.0.2.1:3478"), ep("[2001:db8::1]:443"), ep("192.0.2.1:9641")},
                          {{ep("198.51.100.7:0"), pool}});
  EXPECT_EQ(own.ips().size(), 3u) << "duplicates and ports are dropped";
  EXPECT_TRUE(own.contains(ep("192.0.2.1:1")));
  EXPECT_TRUE(own.contains(ep("[2001:db8::1]:9")));
  EXPECT_TRUE(own.contains(ep("198.51.100.7:50000")));
  EXPECT_TRUE(own.contains(ep("[::ffff:192.0.2.1]:3478"))) << "IPv4-mapped form";
  EXPECT_FALSE(own.contains(ep("192.0.2.2:3478")));
  EXPECT_FALSE(own.contains(ep("[2001:db8::2]:443")));
  EXPECT_TRUE(own.is_relay_ip(ep("198.51.100.7:1")));
  EXPECT_FALSE(own.is_relay_ip(ep("192.0.2.1:1")));
}

TEST(OwnAddresses, ARelayPortIsLiveWhileThePoolHoldsIt) {
  auto pool = std::make_shared<port_pool>(50000, 50009);
  const own_addresses own({}, {{ep("198.51.100.7:0"), pool}});
  EXPECT_FALSE(own.is_relay_port(ep("198.51.100.7:50003")));
  ASSERT_TRUE(pool->acquire_exact(50003));
  EXPECT_TRUE(own.is_relay_port(ep("198.51.100.7:50003")));
  EXPECT_FALSE(own.is_relay_port(ep("198.51.100.8:50003"))) << "another IP";
  EXPECT_FALSE(own.is_relay_port(ep("198.51.100.7:3478"))) << "outside the range";
  pool->release(50003);
  EXPECT_FALSE(own.is_relay_port(ep("198.51.100.7:50003")));
}

}  // namespace
}  // namespace anyturn::relay
