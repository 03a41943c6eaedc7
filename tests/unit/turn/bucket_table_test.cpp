// Token buckets in a fixed-size table: src/turn/bucket_table.cpp.
#include "../../../src/turn/bucket_table.hpp"

#include <anyturn/common/keyed_hash.hpp>

#include <gtest/gtest.h>

#include <cstdint>

namespace anyturn::turn::detail {
namespace {

stun::endpoint ep(const char* text) { return *stun::endpoint::parse(text); }

// How many of `n` takes at `now_ms` succeed.
int takes(bucket_table& t, std::uint64_t key, int n, std::int64_t now_ms) {
  int got = 0;
  for (int i = 0; i < n; ++i) got += t.try_take(key, now_ms) ? 1 : 0;
  return got;
}

TEST(BucketTable, GivesTheBurstAtOnceThenRefillsAtTheRate) {
  bucket_table t(20, 50, 1024);
  const std::uint64_t key = source_key(ep("203.0.113.1:1"));
  std::int64_t now = 5'000'000;
  EXPECT_EQ(takes(t, key, 1000, now), 50);
  EXPECT_FALSE(t.has_token(key, now));
  now += 49;  // less than one interval (50 ms)
  EXPECT_EQ(takes(t, key, 10, now), 0);
  now += 1;
  EXPECT_EQ(takes(t, key, 10, now), 1);
  now += 1000;  // one second: 20 more
  EXPECT_EQ(takes(t, key, 100, now), 20);
  now += 60'000;  // long idle: full again, but never more than the burst
  EXPECT_EQ(takes(t, key, 1000, now), 50);
}

TEST(BucketTable, NeverGivesOneKeyMoreThanBurstPlusRateTimesTime) {
  bucket_table t(20, 50, 64);
  const std::uint64_t key = source_key(ep("203.0.113.1:1"));
  // Other keys fill the (small) table meanwhile; they can only take tokens away.
  std::int64_t now = 1'000'000;
  int got = 0;
  for (int ms = 0; ms <= 10'000; ++ms, ++now) {
    got += takes(t, key, 1, now);
    t.try_take(source_key(ep(("198.51.100." + std::to_string(ms % 200) + ":9").c_str())), now);
  }
  EXPECT_LE(got, 50 + 20 * 10 + 1);
  EXPECT_GT(got, 0);
}

TEST(BucketTable, KeysAreIndependentUnlessTheyShareBothBuckets) {
  bucket_table t(1, 3, 4096);
  const std::uint64_t a = source_key(ep("203.0.113.1:1"));
  const std::uint64_t b = source_key(ep("203.0.113.2:1"));
  EXPECT_EQ(takes(t, a, 10, 1000), 3);
  EXPECT_EQ(takes(t, b, 10, 1000), 3);
}

TEST(BucketTable, IsBoundedWhateverTheNumberOfKeys) {
  bucket_table t(20, 50, 1000);
  EXPECT_EQ(t.buckets_per_row(), 1024u);
  const std::size_t bytes = t.memory_bytes();
  EXPECT_EQ(bytes, 2u * 1024u * sizeof(std::int64_t));
  for (std::uint32_t i = 0; i < 200'000; ++i) {
    t.try_take(source_key(stun::endpoint::v4(0x0A000000u + i, 1)), 1000 + i / 100);
  }
  EXPECT_EQ(t.memory_bytes(), bytes);
}

TEST(BucketTable, KeysIPv4ByAddressAndIPv6ByTheSlash64) {
  EXPECT_EQ(source_key(ep("203.0.113.1:1")), source_key(ep("203.0.113.1:2")));
  EXPECT_NE(source_key(ep("203.0.113.1:1")), source_key(ep("203.0.113.2:1")));
  // One /64: any interface identifier, any port.
  EXPECT_EQ(source_key(ep("[2001:db8:1:2::1]:1")), source_key(ep("[2001:db8:1:2:ffff:ee:dd:cc]:7")));
  EXPECT_NE(source_key(ep("[2001:db8:1:2::1]:1")), source_key(ep("[2001:db8:1:3::1]:1")));
  // An IPv4 address is not the IPv6 /64 whose first bytes it equals.
  EXPECT_NE(source_key(ep("32.1.13.184:1")), source_key(ep("[2001:db8::]:1")));

  // So a flood from one /64 spending its tokens leaves none for its neighbour...
  bucket_table t(1, 5, 4096);
  EXPECT_EQ(takes(t, source_key(ep("[2001:db8:1:2::1]:1")), 100, 1000), 5);
  EXPECT_EQ(takes(t, source_key(ep("[2001:db8:1:2::99]:5")), 100, 1000), 0);
  // ...but all of another /64's.
  EXPECT_EQ(takes(t, source_key(ep("[2001:db8:1:3::1]:1")), 100, 1000), 5);
}

TEST(BucketTable, HasTokenSpendsNothingAndChargeSpendsEvenWhenEmpty) {
  bucket_table t(1, 2, 16);
  const std::uint64_t k = name_key("alice");
  EXPECT_TRUE(t.has_token(k, 1000));
  EXPECT_TRUE(t.has_token(k, 1000));
  t.charge(k, 1000);
  t.charge(k, 1000);
  EXPECT_FALSE(t.has_token(k, 1000));
  t.charge(k, 1000);  // a third failure pushes the refill one more second out
  EXPECT_FALSE(t.has_token(k, 2000));
  EXPECT_TRUE(t.has_token(k, 3000));
}

TEST(BucketTable, RateZeroIsOffAndHoldsNoMemory) {
  bucket_table t(0, 50, 4096);
  EXPECT_FALSE(t.enabled());
  EXPECT_EQ(t.memory_bytes(), 0u);
  EXPECT_EQ(takes(t, name_key("x"), 10'000, 1000), 10'000);
}

TEST(BucketTable, FractionalRatesRefillSlowly) {
  bucket_table t(0.5, 1, 16);  // 30 a minute
  const std::uint64_t k = name_key("bob");
  EXPECT_EQ(takes(t, k, 5, 10'000), 1);
  EXPECT_EQ(takes(t, k, 5, 11'999), 0);
  EXPECT_EQ(takes(t, k, 5, 12'000), 1);
}

}  // namespace
}  // namespace anyturn::turn::detail
