#include <anyturn/net/connection_limiter.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace anyturn::net {
namespace {

stun::endpoint ip(const char* text) { return *stun::endpoint::parse(text, true); }

using verdict = connection_limiter::verdict;

TEST(connection_limiter, limits_each_address) {
  connection_limiter l(0, 2);
  EXPECT_EQ(l.try_acquire(ip("192.0.2.1:1000")), verdict::accepted);
  EXPECT_EQ(l.try_acquire(ip("192.0.2.1:1001")), verdict::accepted);
  EXPECT_EQ(l.try_acquire(ip("192.0.2.1:1002")), verdict::over_ip) << "the port does not matter";
  EXPECT_EQ(l.try_acquire(ip("192.0.2.2:1000")), verdict::accepted) << "another address has its own count";
  EXPECT_EQ(l.count(ip("192.0.2.1")), 2u);
  EXPECT_EQ(l.total(), 3u) << "a refusal counts nothing";
  l.release(ip("192.0.2.1:1000"));
  EXPECT_EQ(l.try_acquire(ip("192.0.2.1:1003")), verdict::accepted);
}

TEST(connection_limiter, limits_the_total) {
  connection_limiter l(3, 0);
  EXPECT_EQ(l.try_acquire(ip("192.0.2.1")), verdict::accepted);
  EXPECT_EQ(l.try_acquire(ip("192.0.2.2")), verdict::accepted);
  EXPECT_EQ(l.try_acquire(ip("192.0.2.3")), verdict::accepted);
  EXPECT_EQ(l.try_acquire(ip("192.0.2.4")), verdict::over_total);
  EXPECT_EQ(l.total(), 3u);
  l.release(ip("192.0.2.2"));
  EXPECT_EQ(l.try_acquire(ip("192.0.2.4")), verdict::accepted);
}

TEST(connection_limiter, zero_means_no_limit) {
  connection_limiter l(0, 0);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(l.try_acquire(ip("192.0.2.1")), verdict::accepted);
  EXPECT_EQ(l.total(), 1000u);
}

TEST(connection_limiter, ipv6_counts_per_64_and_mapped_ipv4_as_ipv4) {
  connection_limiter l(0, 2);
  EXPECT_EQ(l.try_acquire(ip("[2001:db8:1:2::1]:1")), verdict::accepted);
  EXPECT_EQ(l.try_acquire(ip("[2001:db8:1:2:ffff::9]:1")), verdict::accepted);
  EXPECT_EQ(l.try_acquire(ip("[2001:db8:1:2:abcd::7]:1")), verdict::over_ip) << "same /64";
  EXPECT_EQ(l.try_acquire(ip("[2001:db8:1:3::1]:1")), verdict::accepted) << "another /64";
  EXPECT_EQ(l.try_acquire(ip("198.51.100.7:1")), verdict::accepted);
  EXPECT_EQ(l.try_acquire(ip("[::ffff:198.51.100.7]:2")), verdict::accepted);
  EXPECT_EQ(l.try_acquire(ip("198.51.100.7:3")), verdict::over_ip);
}

TEST(connection_limiter, never_exceeds_a_limit_under_contention) {
  connection_limiter l(1000, 50);
  const auto client = ip("203.0.113.9");
  std::atomic<int> held{0};
  std::atomic<int> max_held{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        if (l.try_acquire(client) == verdict::accepted) {
          const int now = held.fetch_add(1) + 1;
          int seen = max_held.load();
          while (now > seen && !max_held.compare_exchange_weak(seen, now)) {
          }
          held.fetch_sub(1);
          l.release(client);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(max_held.load(), 50);
  EXPECT_EQ(l.total(), 0u);
  EXPECT_EQ(l.count(client), 0u);
}

TEST(memory_budget, charges_up_to_the_limit_and_credits_back) {
  memory_budget b(1000);
  EXPECT_TRUE(b.try_charge(600));
  EXPECT_FALSE(b.try_charge(401)) << "would pass the limit";
  EXPECT_EQ(b.used(), 600u) << "a refused charge charges nothing";
  EXPECT_TRUE(b.try_charge(400));
  EXPECT_EQ(b.used(), 1000u);
  b.credit(1000);
  EXPECT_EQ(b.used(), 0u);
  EXPECT_TRUE(b.try_charge(1000));
}

TEST(memory_budget, zero_means_no_limit_but_still_counts) {
  memory_budget b(0);
  EXPECT_TRUE(b.try_charge(std::uint64_t{1} << 40));
  EXPECT_EQ(b.used(), std::uint64_t{1} << 40);
}

TEST(memory_budget, never_exceeds_the_limit_under_contention) {
  memory_budget b(10'000);
  std::atomic<std::uint64_t> held{0};
  std::atomic<std::uint64_t> max_held{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        const std::uint64_t bytes = 100 + static_cast<std::uint64_t>(i % 7) * 300;
        if (b.try_charge(bytes)) {
          const std::uint64_t now = held.fetch_add(bytes) + bytes;
          std::uint64_t seen = max_held.load();
          while (now > seen && !max_held.compare_exchange_weak(seen, now)) {
          }
          held.fetch_sub(bytes);
          b.credit(bytes);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(max_held.load(), 10'000u);
  EXPECT_GT(max_held.load(), 0u);
  EXPECT_EQ(b.used(), 0u);
}

}  // namespace
}  // namespace anyturn::net
