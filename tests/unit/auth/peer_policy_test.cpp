#include <anyturn/auth/peer_policy.hpp>

#include "endpoints.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

// Counts operator new in this test binary, to prove check() allocates nothing.
namespace {
std::atomic<std::size_t> g_allocations{0};
}  // namespace

void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
// The nothrow form too (std::stable_sort's temporary buffer uses it, and
// frees it with the sized delete below): every form this binary frees with
// std::free must come from std::malloc, or ASan reports a mismatch.
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n == 0 ? 1 : n);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace anyturn::auth {
namespace {

using test::ep;

cidr net(const char* text) {
  auto c = cidr::parse(text);
  if (!c) throw std::invalid_argument(std::string("bad cidr in test: ") + text);
  return *c;
}

const peer_policy defaults_only({}, {});

TEST(peer_policy, every_default_range_is_denied) {
  const char* denied[] = {
      // IPv4
      "0.0.0.0", "0.1.2.3", "10.0.0.1", "10.255.255.255", "100.64.0.1", "100.127.255.254",
      "127.0.0.1", "127.255.255.254", "169.254.169.254", "172.16.0.1", "172.31.255.254",
      "192.0.0.8", "192.0.2.1", "192.88.99.1", "192.168.1.1", "198.18.0.1", "198.19.255.254",
      "198.51.100.7", "203.0.113.9", "224.0.0.1", "239.255.255.250", "240.0.0.1",
      "255.255.255.255",
      // IPv6
      "::", "::1", "64:ff9b:1::1", "100::1", "2001::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2",
      "2001:2::1", "2001:1ff:ffff::1", "2001:db8::1", "2001:db8:ffff::1", "fc00::1", "fd12:3456::1",
      "fe80::1", "febf::1", "fec0::1", "feff::1", "ff02::1", "ff05::1:3", "3fff::1",
      "3fff:fff::1", "5f00::1", "5f00:ffff::1",
  };
  for (const char* a : denied) {
    EXPECT_EQ(defaults_only.check(ep(a)), peer_verdict::denied_default) << a;
    EXPECT_FALSE(is_allowed(defaults_only.check(ep(a)))) << a;
  }
}

TEST(peer_policy, public_addresses_are_allowed) {
  const char* allowed[] = {
      "8.8.8.8", "1.1.1.1", "9.9.9.9", "100.63.255.255", "100.128.0.0", "172.15.255.255",
      "172.32.0.0", "192.0.1.1", "192.88.98.1", "198.17.255.255", "198.20.0.0", "223.255.255.254",
      "2606:4700::1111", "2001:4860:4860::8888", "2001:200::1", "2a00:1450:4001::200e",
      "3fff:1000::1", "2002:808:808::1",
  };
  for (const char* a : allowed) {
    EXPECT_EQ(defaults_only.check(ep(a)), peer_verdict::allowed) << a;
    EXPECT_TRUE(is_allowed(defaults_only.check(ep(a)))) << a;
  }
}

// IPv6 spellings that carry `v4` ("a.b.c.d", with `hex` = "aabb:ccdd").
std::vector<std::string> wrappers(const std::string& v4, const std::string& hex) {
  return {
      "::ffff:" + v4,       // IPv4-mapped
      "::" + v4,            // IPv4-compatible
      "::ffff:0:" + v4,     // IPv4-translated
      "64:ff9b::" + v4,     // NAT64 well-known prefix
      "2002:" + hex + "::", // 6to4
      "2002:" + hex + ":1234::5",
  };
}

TEST(peer_policy, wrapped_private_addresses_are_denied) {
  const std::pair<std::string, std::string> inner[] = {
      {"127.0.0.1", "7f00:1"}, {"10.1.2.3", "a01:203"}, {"192.168.1.1", "c0a8:101"},
      {"169.254.169.254", "a9fe:a9fe"}, {"100.64.0.1", "6440:1"}};
  for (const auto& [v4, hex] : inner) {
    for (const auto& w : wrappers(v4, hex)) {
      EXPECT_EQ(defaults_only.check(ep(w)), peer_verdict::denied_default) << w;
    }
  }
}

TEST(peer_policy, wrapped_public_addresses_are_allowed) {
  for (const auto& w : wrappers("8.8.8.8", "808:808")) {
    EXPECT_EQ(defaults_only.check(ep(w)), peer_verdict::allowed) << w;
  }
}

TEST(peer_policy, loopback_and_unspecified_v6_are_not_unwrapped) {
  // :: and ::1 are IPv6 proper, not IPv4-compatible 0.0.0.0 / 0.0.0.1, so an
  // IPv4 allow rule cannot open them.
  const peer_policy policy({net("0.0.0.0/8")}, {});
  EXPECT_EQ(policy.check(ep("::1")), peer_verdict::denied_default);
  EXPECT_EQ(policy.check(ep("::")), peer_verdict::denied_default);
  EXPECT_EQ(policy.check(ep("::0.0.0.2")), peer_verdict::allowed_explicitly);
}

TEST(peer_policy, operator_allow_overrides_defaults_also_when_wrapped) {
  const peer_policy policy({net("127.0.0.0/8")}, {});
  EXPECT_EQ(policy.check(ep("127.0.0.1")), peer_verdict::allowed_explicitly);
  EXPECT_EQ(policy.check(ep("::ffff:127.0.0.1")), peer_verdict::allowed_explicitly);
  EXPECT_EQ(policy.check(ep("64:ff9b::127.0.0.1")), peer_verdict::allowed_explicitly);
  EXPECT_EQ(policy.check(ep("2002:7f00:1::")), peer_verdict::allowed_explicitly);
  EXPECT_TRUE(is_allowed(policy.check(ep("127.0.0.1"))));
  // Other defaults still apply.
  EXPECT_EQ(policy.check(ep("10.0.0.1")), peer_verdict::denied_default);
  EXPECT_EQ(policy.check(ep("::1")), peer_verdict::denied_default);
  EXPECT_EQ(policy.check(ep("8.8.8.8")), peer_verdict::allowed);

  const peer_policy bare({net("127.0.0.1")}, {});
  EXPECT_EQ(bare.check(ep("127.0.0.1")), peer_verdict::allowed_explicitly);
  EXPECT_EQ(bare.check(ep("::ffff:127.0.0.1")), peer_verdict::allowed_explicitly);
  EXPECT_EQ(bare.check(ep("127.0.0.2")), peer_verdict::denied_default);
}

TEST(peer_policy, operator_allow_v6_range) {
  const peer_policy policy({net("fd00::/8")}, {});
  EXPECT_EQ(policy.check(ep("fd12::1")), peer_verdict::allowed_explicitly);
  EXPECT_EQ(policy.check(ep("fc00::1")), peer_verdict::denied_default);
}

TEST(peer_policy, operator_deny_blocks_public_ranges) {
  const peer_policy policy({}, {net("8.8.8.0/24"), net("2606:4700::/32")});
  EXPECT_EQ(policy.check(ep("8.8.8.8")), peer_verdict::denied_operator);
  EXPECT_EQ(policy.check(ep("::ffff:8.8.8.8")), peer_verdict::denied_operator);
  EXPECT_EQ(policy.check(ep("2002:808:808::")), peer_verdict::denied_operator);
  EXPECT_EQ(policy.check(ep("8.8.4.4")), peer_verdict::allowed);
  EXPECT_EQ(policy.check(ep("2606:4700::1111")), peer_verdict::denied_operator);
  EXPECT_EQ(policy.check(ep("2606:4800::1")), peer_verdict::allowed);
  // Operator deny ranks before the defaults in the verdict.
  const peer_policy overlap({}, {net("10.0.0.0/8")});
  EXPECT_EQ(overlap.check(ep("10.1.1.1")), peer_verdict::denied_operator);
}

TEST(peer_policy, allow_is_checked_before_deny) {
  const peer_policy policy({net("10.1.0.0/16")}, {net("10.0.0.0/8")});
  EXPECT_EQ(policy.check(ep("10.1.2.3")), peer_verdict::allowed_explicitly);
  EXPECT_EQ(policy.check(ep("10.2.0.1")), peer_verdict::denied_operator);
}

TEST(peer_policy, literal_operator_rules_come_before_embedded_ones) {
  const peer_policy policy({net("8.8.8.8")}, {net("2002::/16")});
  EXPECT_EQ(policy.check(ep("2002:808:808::")), peer_verdict::denied_operator);
  EXPECT_EQ(policy.check(ep("::ffff:8.8.8.8")), peer_verdict::allowed_explicitly);

  const peer_policy literal_allow({net("::ffff:10.0.0.0/104")}, {net("10.0.0.0/8")});
  EXPECT_EQ(literal_allow.check(ep("::ffff:10.1.2.3")), peer_verdict::allowed_explicitly);
  EXPECT_EQ(literal_allow.check(ep("10.1.2.3")), peer_verdict::denied_operator);
}

TEST(peer_policy, check_does_not_allocate) {
  const peer_policy policy({net("127.0.0.0/8"), net("fd00::/8")},
                           {net("8.8.8.0/24"), net("2606:4700::/32")});
  const std::vector<stun::endpoint> peers = {
      ep("8.8.8.8"), ep("1.1.1.1"), ep("10.0.0.1"), ep("127.0.0.1"), ep("::ffff:127.0.0.1"),
      ep("2002:a01:203::"), ep("64:ff9b::8.8.4.4"), ep("2606:4700::1111"), ep("fd00::1"),
      ep("ff02::1"), ep("2a00:1450:4001::200e")};
  std::size_t allowed = 0;
  const std::size_t before = g_allocations.load();
  for (int round = 0; round < 100; ++round) {
    for (const auto& p : peers) allowed += is_allowed(policy.check(p)) ? 1 : 0;
  }
  EXPECT_EQ(g_allocations.load(), before);
  // 1.1.1.1, 127.0.0.1, ::ffff:127.0.0.1, 64:ff9b::8.8.4.4, fd00::1, 2a00:1450:4001::200e
  EXPECT_EQ(allowed, 100u * 6);
}

TEST(cidr, parse_and_to_string) {
  struct row {
    const char* text;
    const char* canonical;
    stun::address_family family;
    int prefix;
  };
  const row rows[] = {
      {"10.0.0.0/8", "10.0.0.0/8", stun::address_family::ipv4, 8},
      {"10.1.2.3/8", "10.0.0.0/8", stun::address_family::ipv4, 8},
      {"100.64.0.0/10", "100.64.0.0/10", stun::address_family::ipv4, 10},
      {"100.127.1.1/10", "100.64.0.0/10", stun::address_family::ipv4, 10},
      {"1.2.3.4", "1.2.3.4/32", stun::address_family::ipv4, 32},
      {"0.0.0.0/0", "0.0.0.0/0", stun::address_family::ipv4, 0},
      {"fc00::/7", "fc00::/7", stun::address_family::ipv6, 7},
      {"fdff::1/7", "fc00::/7", stun::address_family::ipv6, 7},
      {"2001:db8::1/32", "2001:db8::/32", stun::address_family::ipv6, 32},
      {"::1", "::1/128", stun::address_family::ipv6, 128},
      {"::/0", "::/0", stun::address_family::ipv6, 0},
      {"::ffff:1.2.3.4/128", "::ffff:1.2.3.4/128", stun::address_family::ipv6, 128},
  };
  for (const auto& r : rows) {
    const auto c = cidr::parse(r.text);
    ASSERT_TRUE(c.has_value()) << r.text;
    EXPECT_EQ(c->family, r.family) << r.text;
    EXPECT_EQ(c->prefix, r.prefix) << r.text;
    EXPECT_EQ(c->to_string(), r.canonical) << r.text;
    EXPECT_EQ(cidr::parse(c->to_string()), c) << r.text;
  }
}

TEST(cidr, parse_errors) {
  for (const char* bad : {"", "/8", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/x",
                          "10.0.0.0/8/8", "10.0.0.0/0008", "10.0.0.0/+8", "10.0.0.0 /8",
                          " 10.0.0.0/8", "::/129", "fc00::/200", "garbage", "garbage/8",
                          "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.4:80", "[::1]", "fe80::1%eth0",
                          "::1::2"}) {
    EXPECT_FALSE(cidr::parse(bad).has_value()) << '"' << bad << '"';
  }
  EXPECT_FALSE(cidr::parse(std::string_view("10.0.0.0\0/8", 11)).has_value());
  EXPECT_FALSE(cidr::parse(std::string(100, '1')).has_value());
}

TEST(cidr, contains) {
  const cidr v4 = net("172.16.0.0/12");
  EXPECT_TRUE(v4.contains(ep("172.16.0.0")));
  EXPECT_TRUE(v4.contains(ep("172.31.255.255")));
  EXPECT_FALSE(v4.contains(ep("172.32.0.0")));
  EXPECT_FALSE(v4.contains(ep("172.15.255.255")));
  EXPECT_FALSE(v4.contains(ep("::ffff:172.16.0.1")));  // literal: families differ

  const cidr all4 = net("0.0.0.0/0");
  EXPECT_TRUE(all4.contains(ep("255.255.255.255")));
  EXPECT_FALSE(all4.contains(ep("::")));

  const cidr v6 = net("2001:db8::/33");
  EXPECT_TRUE(v6.contains(ep("2001:db8:7fff::1")));
  EXPECT_FALSE(v6.contains(ep("2001:db8:8000::1")));
  EXPECT_FALSE(v6.contains(ep("0.0.0.0")));

  const cidr host = net("2606:4700::1111");
  EXPECT_TRUE(host.contains(ep("2606:4700::1111", 1)));
  EXPECT_FALSE(host.contains(ep("2606:4700::1112")));
}

}  // namespace
}  // namespace anyturn::auth
