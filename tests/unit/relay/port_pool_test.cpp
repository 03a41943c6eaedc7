#include <anyturn/relay/port_pool.hpp>

#include <gtest/gtest.h>

#include <atomic>
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

// A port the kernel refused (EADDRINUSE) stays out of the pool for the
// cool-down, while every other port is still handed out.
TEST(PortPool, RefusedPortCoolsDownThenComesBack) {
  port_pool pool(50000, 50099, 60'000);
  const std::int64_t t0 = 5'000'000;
  const auto refused = pool.acquire(0, t0);
  ASSERT_TRUE(refused);
  pool.refuse(*refused, t0);
  EXPECT_EQ(pool.in_use(), 0u);
  EXPECT_EQ(pool.cooling(), 1u);
  std::set<std::uint16_t> seen;
  for (int i = 0; i < 99; ++i) {
    const auto p = pool.acquire(static_cast<std::uint32_t>(i), t0 + i);
    ASSERT_TRUE(p) << "after " << i << " ports";
    EXPECT_NE(*p, *refused) << "a refused port came straight back";
    EXPECT_TRUE(seen.insert(*p).second);
  }
  EXPECT_FALSE(pool.acquire(0, t0 + 1'000)) << "only the cooling port is left";
  EXPECT_FALSE(pool.acquire(7, t0 + 59'000)) << "59 s into a 60 s cool-down";
  EXPECT_EQ(pool.acquire(0, t0 + 60'000), refused) << "the cool-down has ended";
  EXPECT_EQ(pool.cooling(), 0u);
  EXPECT_EQ(pool.in_use(), 100u);
}

TEST(PortPool, ReleaseIsNotACoolDown) {
  port_pool pool(40000, 40000);
  auto p = pool.acquire(0, 1'000);
  ASSERT_TRUE(p);
  pool.release(*p);
  EXPECT_EQ(pool.acquire(0, 1'000), p) << "a port given back normally is reusable at once";
  pool.refuse(*p, 1'000);
  EXPECT_FALSE(pool.acquire(0, 2'000));
}

TEST(PortPool, ZeroCoolDownReleasesAtOnce) {
  port_pool pool(40000, 40000, 0);
  auto p = pool.acquire(0, 1'000);
  ASSERT_TRUE(p);
  pool.refuse(*p, 1'000);
  EXPECT_EQ(pool.cooling(), 0u);
  EXPECT_EQ(pool.acquire(0, 1'000), p);
}

TEST(PortPool, EvenPortSkipsCoolingPorts) {
  port_pool pool(40000, 40003, 10'000);
  std::uint64_t token = 0;
  auto p = pool.acquire_even(0, false, token, 0);
  ASSERT_EQ(p, std::optional<std::uint16_t>(40000));
  pool.refuse(40000, 0);  // 40001 was given back by acquire_even
  for (int i = 0; i < 4; ++i) {
    auto q = pool.acquire_even(static_cast<std::uint32_t>(i), false, token, 5'000);
    ASSERT_EQ(q, std::optional<std::uint16_t>(40002)) << "the only pair without a cooling port";
    pool.release(*q);
  }
  ASSERT_TRUE(pool.acquire_exact(40002));
  EXPECT_FALSE(pool.acquire_even(0, false, token, 9'000));
  EXPECT_EQ(pool.acquire_even(0, false, token, 10'000), std::optional<std::uint16_t>(40000));
}

// Memory does not depend on how many refusals happen: one bit and one
// expiry per port. A million refusals of a 1,000-port range leave at most
// 1,000 ports cooling, and each comes back after its cool-down.
TEST(PortPool, ManyRefusalsStayBoundedByTheRange) {
  port_pool pool(30000, 30999, 60'000);
  std::int64_t now = 0;
  std::uint64_t refusals = 0;
  for (int round = 0; round < 1000; ++round) {
    now += 61'000;  // every earlier refusal has cooled down
    for (int i = 0; i < 1000; ++i) {
      const auto p = pool.acquire(static_cast<std::uint32_t>(i * 31 + round), now);
      ASSERT_TRUE(p) << "round " << round << ", port " << i;
      pool.refuse(*p, now);
      ++refusals;
    }
    ASSERT_FALSE(pool.acquire(0, now)) << "every port is cooling";
    ASSERT_EQ(pool.cooling(), 1000u);
  }
  EXPECT_EQ(refusals, 1'000'000u);
  EXPECT_EQ(pool.in_use(), 0u);
}

// Workers refuse and release concurrently: a port is never held twice and
// a cooling port is never handed out before its time.
TEST(PortPool, ConcurrentRefusalsNeverHandOutAHeldOrCoolingPort) {
  port_pool pool(20000, 20511, 60'000);
  std::vector<std::atomic<int>> holders(512);
  std::atomic<bool> bad{false};
  constexpr int threads = 4;
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      for (std::uint32_t i = 0; i < 20000; ++i) {
        const auto p = pool.acquire(i * 7 + static_cast<std::uint32_t>(t), 1'000);
        if (!p) continue;
        if (holders[*p - 20000].fetch_add(1) != 0) bad = true;
        holders[*p - 20000].fetch_sub(1);
        if (i % 8 == 0) {
          pool.refuse(*p, 1'000);
        } else {
          pool.release(*p);
        }
      }
    });
  }
  for (auto& th : ts) th.join();
  EXPECT_FALSE(bad.load()) << "a port was held by two workers at once";
  EXPECT_EQ(pool.in_use(), 0u);
  EXPECT_EQ(pool.cooling(), 512u) << "every port was refused once and is still cooling";
  EXPECT_FALSE(pool.acquire(0, 30'000));
}

TEST(PortPool, HeldSaysWhichPortsAreClaimed) {
  port_pool pool(50000, 50070);  // spans two bitmap words, with a tail
  EXPECT_FALSE(pool.held(50064));
  ASSERT_TRUE(pool.acquire_exact(50064));
  EXPECT_TRUE(pool.held(50064));
  EXPECT_FALSE(pool.held(50065));
  EXPECT_FALSE(pool.held(50071)) << "past the range (the tail bits are set)";
  EXPECT_FALSE(pool.held(49999));
  pool.release(50064);
  EXPECT_FALSE(pool.held(50064));
}

// Other workers ask held() (the own-address check) while one worker claims
// and releases: each port the owner holds is seen held by the other
// threads before it is released, and nothing is held at the end.
TEST(PortPool, HeldIsReadFromOtherThreadsWhileOneClaimsAndReleases) {
  port_pool pool(30000, 30127);
  constexpr int readers_count = 2;
  std::atomic<int> holding{-1};  // the port the owner holds, or -1
  std::atomic<int> seen{0};      // readers that checked it
  std::atomic<bool> done{false};
  std::atomic<bool> missed{false};
  std::vector<std::thread> readers;
  for (int t = 0; t < readers_count; ++t) {
    readers.emplace_back([&] {
      int last = -1;
      while (!done.load()) {
        const int p = holding.load();
        if (p >= 0 && p != last) {
          if (!pool.held(static_cast<std::uint16_t>(p))) missed = true;
          last = p;
          seen.fetch_add(1);
        }
        for (std::uint16_t q = 30000; q <= 30127; q += 9) (void)pool.held(q);
      }
    });
  }
  int previous = -1;
  for (std::uint32_t i = 0; i < 200; ++i) {
    auto p = pool.acquire(i * 13);
    ASSERT_TRUE(p.has_value());
    if (*p == previous) {  // readers skip a repeat: take another one too
      const auto other = pool.acquire(i * 13 + 1);
      ASSERT_TRUE(other.has_value());
      pool.release(*p);
      p = other;
    }
    seen = 0;
    holding.store(*p);
    while (seen.load() < readers_count) std::this_thread::yield();
    holding.store(-1);
    pool.release(*p);
    previous = *p;
  }
  done = true;
  for (auto& th : readers) th.join();
  EXPECT_FALSE(missed.load()) << "a held port was seen free by another thread";
  for (std::uint16_t q = 30000; q <= 30127; ++q) EXPECT_FALSE(pool.held(q)) << q;
}

}  // namespace
}  // namespace anyturn::relay
