#include <anyturn/common/log_limiter.hpp>

#include <gtest/gtest.h>

namespace anyturn::common {
namespace {

TEST(log_limiter, lets_a_burst_through_then_counts_the_rest) {
  log_limiter limiter(3, 1000);
  std::uint64_t suppressed = 99;
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(limiter.allow(5000 + i, suppressed));
    EXPECT_EQ(suppressed, 0u);
  }
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(limiter.allow(5100 + i, suppressed));
  // Next window: the first line reports what was swallowed.
  EXPECT_TRUE(limiter.allow(6000, suppressed));
  EXPECT_EQ(suppressed, 10u);
  EXPECT_TRUE(limiter.allow(6001, suppressed));
  EXPECT_EQ(suppressed, 0u);
}

TEST(log_limiter, first_event_at_time_zero_passes) {
  log_limiter limiter(1, 10'000);
  std::uint64_t suppressed = 0;
  EXPECT_TRUE(limiter.allow(0, suppressed));
  EXPECT_FALSE(limiter.allow(9'999, suppressed));
  EXPECT_TRUE(limiter.allow(10'000, suppressed));
  EXPECT_EQ(suppressed, 1u);
}

}  // namespace
}  // namespace anyturn::common
