#include <anyturn/relay/port_pool.hpp>

#include <gtest/gtest.h>

#include <set>
#include <thread>
#include <vector>

namespace anyturn::relay {
namespace {

TEST(PortPool, HandsOutEveryPortOnceThenRunsOut) {
  port_pool pool(50000, 50099);
  std::set<std::uint16_t> seen;
  for (int i = 0; i < 100; ++i) {
    auto p = pool.acquire(static_cast<std::uint32_t>(i * 7));
    ASSERT_TRUE(p.has_value());
    EXPECT_GE(*p, 50000);
    EXPECT_LE(*p, 50099);
    EXPECT_TRUE(seen.insert(*p).second) << "port handed out twice: " << *p;
  }
  EXPECT_EQ(pool.in_use(), 100u);
  EXPECT_FALSE(pool.acquire(0).has_value());
  pool.release(50042);
  EXPECT_EQ(pool.acquire(0), std::optional<std::uint16_t>(50042));
}

TEST(PortPool, ReleasedPortIsReusableAtOnce) {
  port_pool pool(40000, 40000);
  auto p = pool.acquire(0);
  ASSERT_TRUE(p);
  EXPECT_FALSE(pool.acquire(0));
  pool.release(*p);
  EXPECT_EQ(pool.acquire(0), p);
}

TEST(PortPool, EvenPortWithReservationTokenRedeemsOnce) {
  port_pool pool(40001, 40010);  // odd low bound: first even port is 40002
  std::uint64_t token = 0;
  auto p = pool.acquire_even(0, true, token);
  ASSERT_TRUE(p);
  EXPECT_EQ(*p % 2, 0);
  ASSERT_NE(token, 0u);
  EXPECT_EQ(pool.in_use(), 2u);
  auto reserved = pool.redeem(token);
  ASSERT_TRUE(reserved);
  EXPECT_EQ(*reserved, *p + 1);
  EXPECT_FALSE(pool.redeem(token)) << "a token redeems once";
  EXPECT_EQ(pool.in_use(), 2u);
}

TEST(PortPool, EvenPortWithoutReserveKeepsSuccessorFree) {
  port_pool pool(40000, 40001);
  std::uint64_t token = 1;
  auto p = pool.acquire_even(0, false, token);
  ASSERT_TRUE(p);
  EXPECT_EQ(*p, 40000);
  EXPECT_EQ(token, 0u);
  EXPECT_EQ(pool.acquire(0), std::optional<std::uint16_t>(40001));
}

TEST(PortPool, CancelledReservationFreesThePort) {
  port_pool pool(40000, 40003);
  std::uint64_t token = 0;
  ASSERT_TRUE(pool.acquire_even(0, true, token));
  pool.cancel(token);
  EXPECT_EQ(pool.in_use(), 1u);
  EXPECT_FALSE(pool.redeem(token));
}

TEST(PortPool, ForgedTokensAreRejected) {
  port_pool pool(40000, 40003);
  std::uint64_t token = 0;
  ASSERT_TRUE(pool.acquire_even(0, true, token));
  EXPECT_FALSE(pool.redeem(token ^ (std::uint64_t{1} << 20)));
  EXPECT_FALSE(pool.redeem(0));
  EXPECT_FALSE(pool.redeem(12345));  // port outside range
  EXPECT_TRUE(pool.redeem(token));
}

TEST(PortPool, EvenPortFailsWhenNoPairIsFree) {
  port_pool pool(40000, 40003);
  ASSERT_TRUE(pool.acquire_exact(40001));
  ASSERT_TRUE(pool.acquire_exact(40003));
  std::uint64_t token = 0;
  EXPECT_FALSE(pool.acquire_even(0, false, token));
  EXPECT_TRUE(pool.acquire(0));  // odd ones are taken, an even single is still there
}

TEST(PortPool, ConcurrentWorkersNeverShareAPort) {
  port_pool pool(30000, 31999);
  constexpr int threads = 4;
  std::vector<std::vector<std::uint16_t>> got(threads);
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      for (std::uint32_t i = 0;; ++i) {
        auto p = pool.acquire(i * 13 + static_cast<std::uint32_t>(t));
        if (!p) break;
        got[static_cast<std::size_t>(t)].push_back(*p);
      }
    });
  }
  for (auto& th : ts) th.join();
  std::set<std::uint16_t> all;
  std::size_t total = 0;
  for (auto& v : got) {
    total += v.size();
    all.insert(v.begin(), v.end());
  }
  EXPECT_EQ(total, 2000u);
  EXPECT_EQ(all.size(), 2000u);
}

}  // namespace
}  // namespace anyturn::relay
