#include <anyturn/common/count_min.hpp>
#include <anyturn/common/keyed_hash.hpp>

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace anyturn::common {
namespace {

TEST(count_min, counts_up_to_the_limit_and_refuses_beyond) {
  count_min c;
  const std::uint64_t alice = keyed_hash("alice");
  const std::uint64_t bob = keyed_hash("bob");
  EXPECT_TRUE(c.try_acquire(alice, 2));
  EXPECT_TRUE(c.try_acquire(alice, 2));
  EXPECT_FALSE(c.try_acquire(alice, 2));
  EXPECT_EQ(c.count(alice), 2u);  // the refusal counted nothing
  EXPECT_TRUE(c.try_acquire(bob, 2));
  c.release(alice, 2);
  EXPECT_EQ(c.count(alice), 1u);
  EXPECT_TRUE(c.try_acquire(alice, 2));
}

TEST(count_min, a_limit_of_zero_counts_nothing) {
  count_min c;
  const std::uint64_t k = keyed_hash("k");
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(c.try_acquire(k, 0));
  EXPECT_EQ(c.count(k), 0u);
  c.release(k, 0);
  EXPECT_EQ(c.count(k), 0u);
}

TEST(count_min, collisions_only_overcount) {
  // One bucket per row: every key shares both counters.
  count_min c(1);
  EXPECT_TRUE(c.try_acquire(keyed_hash("a"), 1));
  EXPECT_FALSE(c.try_acquire(keyed_hash("b"), 1));
  EXPECT_EQ(c.count(keyed_hash("b")), 1u);
}

TEST(count_min, concurrent_acquirers_never_pass_the_limit) {
  count_min c;
  const std::uint64_t k = keyed_hash("shared");
  constexpr std::uint32_t limit = 100;
  std::atomic<std::uint32_t> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        if (c.try_acquire(k, limit)) admitted.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  // Racing acquirers may refuse one too many, never admit one too many:
  // top up serially, then the total is exactly the limit.
  EXPECT_LE(admitted.load(), limit);
  while (c.try_acquire(k, limit)) admitted.fetch_add(1);
  EXPECT_EQ(admitted.load(), limit);
  EXPECT_EQ(c.count(k), limit);
}

}  // namespace
}  // namespace anyturn::common
