#include <anyturn/config/coturn_import.hpp>

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace anyturn::config {
namespace {

using list = std::vector<std::string>;

TEST(coturn_ranges, single_addresses_are_host_prefixes) {
  EXPECT_EQ(coturn_range_to_cidrs("203.0.113.9"), list{"203.0.113.9/32"});
  EXPECT_EQ(coturn_range_to_cidrs("::1"), list{"::1/128"});
  EXPECT_EQ(coturn_range_to_cidrs("[2001:db8::5]"), list{"2001:db8::5/128"});
}

TEST(coturn_ranges, aligned_ranges_are_one_cidr) {
  EXPECT_EQ(coturn_range_to_cidrs("10.0.0.0-10.255.255.255"), list{"10.0.0.0/8"});
  EXPECT_EQ(coturn_range_to_cidrs("172.16.0.0-172.31.255.255"), list{"172.16.0.0/12"});
  EXPECT_EQ(coturn_range_to_cidrs("0.0.0.0-255.255.255.255"), list{"0.0.0.0/0"});
  EXPECT_EQ(coturn_range_to_cidrs("fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), list{"fc00::/7"});
  EXPECT_EQ(coturn_range_to_cidrs("::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), list{"::/0"});
  EXPECT_EQ(coturn_range_to_cidrs("10.1.1.1-10.1.1.1"), list{"10.1.1.1/32"});
}

TEST(coturn_ranges, unaligned_ranges_split_into_the_fewest_blocks) {
  EXPECT_EQ(coturn_range_to_cidrs("10.20.30.40-10.20.30.47"), list{"10.20.30.40/29"});
  EXPECT_EQ(coturn_range_to_cidrs("10.0.0.1-10.0.0.6"),
            (list{"10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/31", "10.0.0.6/32"}));
  EXPECT_EQ(coturn_range_to_cidrs("192.168.0.255-192.168.2.0"),
            (list{"192.168.0.255/32", "192.168.1.0/24", "192.168.2.0/32"}));
  EXPECT_EQ(coturn_range_to_cidrs("255.255.255.254-255.255.255.255"), list{"255.255.255.254/31"});
  EXPECT_EQ(coturn_range_to_cidrs("2001:db8::1-2001:db8::3"), (list{"2001:db8::1/128", "2001:db8::2/127"}));
}

std::uint32_t v4(const std::string& ip) {
  in_addr a{};
  EXPECT_EQ(::inet_pton(AF_INET, ip.c_str(), &a), 1) << ip;
  return ntohl(a.s_addr);
}

// Property: the blocks are aligned, contiguous, start at A and end at B.
TEST(coturn_ranges, blocks_cover_exactly_the_range) {
  const std::vector<std::pair<std::uint32_t, std::uint32_t>> ranges = {
      {1, 1000}, {0x0A000003, 0x0A0100FF}, {0xC0A80001, 0xC0A800FE}, {7, 7}, {0xFFFFFF00, 0xFFFFFFFF}, {0, 0x7FFFFFFF}};
  for (const auto& [lo, hi] : ranges) {
    auto text = [](std::uint32_t x) {
      in_addr a{htonl(x)};
      char buf[INET_ADDRSTRLEN];
      return std::string(::inet_ntop(AF_INET, &a, buf, sizeof buf));
    };
    const auto cidrs = coturn_range_to_cidrs(text(lo) + "-" + text(hi));
    ASSERT_FALSE(cidrs.empty());
    std::uint64_t next = lo;
    for (const auto& c : cidrs) {
      const auto slash = c.find('/');
      const std::uint32_t start = v4(c.substr(0, slash));
      const int len = std::stoi(c.substr(slash + 1));
      const std::uint64_t size = std::uint64_t{1} << (32 - len);
      EXPECT_EQ(start, next) << c;
      EXPECT_EQ(start % size, 0u) << c << " is not aligned";
      next = start + size;
    }
    EXPECT_EQ(next, std::uint64_t{hi} + 1);
    EXPECT_LE(cidrs.size(), 62u);  // at most 2 blocks per bit
  }
}

TEST(coturn_ranges, cidrs_are_normalised) {
  EXPECT_EQ(coturn_range_to_cidrs("10.1.2.3/8"), list{"10.0.0.0/8"});
  EXPECT_EQ(coturn_range_to_cidrs("2001:db8::1/32"), list{"2001:db8::/32"});
}

TEST(coturn_ranges, bad_input_gives_nothing) {
  for (const char* bad : {"", "10.0.0.9-10.0.0.1", "10.0.0.1-::1", "not-an-ip", "10.0.0.0/33", "10.0.0.0/",
                          "1.2.3.4-", "300.1.1.1", "10.0.0.0/x"}) {
    EXPECT_TRUE(coturn_range_to_cidrs(bad).empty()) << bad;
  }
}

}  // namespace
}  // namespace anyturn::config
