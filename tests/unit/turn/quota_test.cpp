#include <anyturn/turn/quota.hpp>

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace anyturn::turn {
namespace {

TEST(UserQuota, EnforcesTheLimitPerUser) {
  user_quota q(2);
  EXPECT_TRUE(q.try_acquire("alice"));
  EXPECT_TRUE(q.try_acquire("alice"));
  EXPECT_FALSE(q.try_acquire("alice"));
  EXPECT_TRUE(q.try_acquire("bob"));
  q.release("alice");
  EXPECT_TRUE(q.try_acquire("alice"));
  EXPECT_EQ(q.count("alice"), 2u);
  EXPECT_EQ(q.count("bob"), 1u);
}

TEST(UserQuota, ZeroMeansNoLimit) {
  user_quota q(0);
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(q.try_acquire("alice"));
}

TEST(UserQuota, RestUsernamesCountByTheirUserPart) {
  EXPECT_EQ(user_quota::key_of("1700000000:alice"), "alice");
  EXPECT_EQ(user_quota::key_of("alice:1700000000"), "alice");
  EXPECT_EQ(user_quota::key_of("1700000000"), "1700000000");
  EXPECT_EQ(user_quota::key_of("alice"), "alice");
  EXPECT_EQ(user_quota::key_of("a:b"), "a:b");
  EXPECT_EQ(user_quota::key_of("1700000000:tenant:user"), "tenant:user");
}

TEST(UserQuota, ConcurrentWorkersNeverExceedTheLimit) {
  user_quota q(100, 64);  // few buckets: collisions only make it stricter
  std::atomic<int> granted{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < 1000; ++i)
        if (q.try_acquire("alice")) granted.fetch_add(1);
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(granted.load(), 100);
}

}  // namespace
}  // namespace anyturn::turn
