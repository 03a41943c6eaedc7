#include <anyturn/stun/endpoint.hpp>

#include <gtest/gtest.h>

#include <unordered_set>

namespace anyturn::stun {
namespace {

TEST(Endpoint, V4Constructor) {
  auto e = endpoint::v4(0xC0000201, 3478);
  EXPECT_TRUE(e.is_v4());
  EXPECT_EQ(e.ip_size(), 4U);
  EXPECT_EQ(e.ip[0], 192);
  EXPECT_EQ(e.ip[3], 1);
  for (std::size_t i = 4; i < 16; ++i) EXPECT_EQ(e.ip[i], 0);
  EXPECT_EQ(e.v4_host_order(), 0xC0000201U);
  EXPECT_EQ(e.to_string(), "192.0.2.1:3478");
  EXPECT_EQ(e.ip_string(), "192.0.2.1");
}

TEST(Endpoint, V6Constructor) {
  std::array<std::uint8_t, 16> ip{0x20, 0x01, 0x0d, 0xb8};
  ip[15] = 1;
  auto e = endpoint::v6(ip, 443);
  EXPECT_FALSE(e.is_v4());
  EXPECT_EQ(e.ip_size(), 16U);
  EXPECT_EQ(e.v4_host_order(), 0U);
  EXPECT_EQ(e.to_string(), "[2001:db8::1]:443");
  EXPECT_EQ(e.ip_string(), "2001:db8::1");
}

TEST(Endpoint, ParseValid) {
  auto a = endpoint::parse("10.1.2.3:65535");
  ASSERT_TRUE(a);
  EXPECT_EQ(*a, endpoint::v4(0x0A010203, 65535));
  auto b = endpoint::parse("[::1]:5");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->family, address_family::ipv6);
  EXPECT_EQ(b->ip[15], 1);
  EXPECT_EQ(b->port, 5);
  auto c = endpoint::parse("0.0.0.0:0");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->port, 0);
  auto mapped = endpoint::parse("[::ffff:1.2.3.4]:9");
  ASSERT_TRUE(mapped);
  EXPECT_EQ(mapped->family, address_family::ipv6);
  EXPECT_EQ(mapped->to_string(), "[::ffff:1.2.3.4]:9");
}

TEST(Endpoint, ParsePortOptional) {
  EXPECT_FALSE(endpoint::parse("1.2.3.4"));
  EXPECT_FALSE(endpoint::parse("::1"));
  EXPECT_FALSE(endpoint::parse("[::1]"));
  auto a = endpoint::parse("1.2.3.4", true);
  ASSERT_TRUE(a);
  EXPECT_EQ(*a, endpoint::v4(0x01020304, 0));
  auto b = endpoint::parse("2001:db8::2", true);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->ip_string(), "2001:db8::2");
  auto c = endpoint::parse("[2001:db8::2]", true);
  ASSERT_TRUE(c);
  EXPECT_EQ(*b, *c);
  auto d = endpoint::parse("1.2.3.4:80", true);  // a port is still taken
  ASSERT_TRUE(d);
  EXPECT_EQ(d->port, 80);
}

TEST(Endpoint, ParseInvalid) {
  for (const char* s : {"", ":", "1.2.3.4:", "1.2.3.4:65536", "1.2.3.4:-1", "1.2.3.4:+1",
                        "1.2.3.4:80x", "1.2.3.4:123456", "1.2.3:80", "1.2.3.4.5:80", "256.1.1.1:1",
                        "[::1]:", "[::1]80", "[::1", "[]:80", "[1.2.3.4]:80", "[::1]:99999",
                        "[fe80::1%eth0]:1", "host:80", " 1.2.3.4:80", "1.2.3.4:80 ",
                        "[::g]:1", "1.2.3.4:8:0"}) {
    EXPECT_FALSE(endpoint::parse(s)) << s;
  }
  EXPECT_FALSE(endpoint::parse("::1:80", false));  // bare v6 needs brackets for a port
  EXPECT_FALSE(endpoint::parse(std::string(200, '1'), true));
  for (const char* s : {"", "1.2.3", "::g", "[::1", "host", "[1.2.3.4]"}) {
    EXPECT_FALSE(endpoint::parse(s, true)) << s;
  }
}

TEST(Endpoint, ToStringParseRoundTrip) {
  for (const char* s : {"192.0.2.1:32853", "[2001:db8:1234:5678:11:2233:4455:6677]:32853",
                        "[::]:0", "255.255.255.255:65535", "[fe80::1:2:3:4]:7"}) {
    auto e = endpoint::parse(s);
    ASSERT_TRUE(e) << s;
    EXPECT_EQ(e->to_string(), s);
    EXPECT_EQ(*endpoint::parse(e->to_string()), *e);
  }
}

TEST(Endpoint, OrderingAndEquality) {
  auto a = endpoint::v4(0x01020304, 1);
  auto b = endpoint::v4(0x01020304, 2);
  EXPECT_LT(a, b);
  EXPECT_NE(a, b);
  EXPECT_TRUE(a.same_ip(b));
  EXPECT_FALSE(a.same_ip(*endpoint::parse("[::1]:1")));
}

TEST(Endpoint, HashSpreads) {
  endpoint_hash h;
  EXPECT_EQ(h(endpoint::v4(1, 2)), h(endpoint::v4(1, 2)));
  EXPECT_NE(h(endpoint::v4(1, 2)), h(endpoint::v4(1, 3)));
  EXPECT_NE(h(endpoint::v4(1, 2)), h(endpoint::v4(2, 2)));
  // A v4 address and the v6 address with the same leading bytes differ.
  std::array<std::uint8_t, 16> ip{1, 2, 3, 4};
  EXPECT_NE(h(endpoint::v4(0x01020304, 5)), h(endpoint::v6(ip, 5)));
  // Sequential ports and addresses land in distinct buckets (no collisions
  // in a small sample, low bits vary).
  std::unordered_set<std::size_t> seen;
  std::unordered_set<std::size_t> low_bits;
  for (std::uint32_t i = 0; i < 4096; ++i) {
    const auto v = h(endpoint::v4(0x0A000000 + (i / 64), static_cast<std::uint16_t>(50000 + i % 64)));
    seen.insert(v);
    low_bits.insert(v & 0xFF);
  }
  EXPECT_EQ(seen.size(), 4096U);
  EXPECT_GT(low_bits.size(), 240U);
}

}  // namespace
}  // namespace anyturn::stun
