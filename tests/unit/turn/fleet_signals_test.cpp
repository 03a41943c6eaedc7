// The drain flag and the seqlock'd drain target: src/turn/fleet_signals.cpp.
#include <anyturn/turn/fleet_signals.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

namespace anyturn::turn {
namespace {

stun::endpoint ip(const char* text) { return *stun::endpoint::parse(text, true); }

TEST(FleetSignals, StartsNotDrainingWithoutTarget) {
  fleet_signals f;
  EXPECT_FALSE(f.draining());
  EXPECT_FALSE(f.drain_target().has_value());
}

TEST(FleetSignals, DrainingFlagReturnsThePreviousState) {
  fleet_signals f;
  EXPECT_FALSE(f.set_draining(true));
  EXPECT_TRUE(f.draining());
  EXPECT_TRUE(f.set_draining(true));
  EXPECT_TRUE(f.set_draining(false));
  EXPECT_FALSE(f.draining());
}

TEST(FleetSignals, TargetRoundTripsEveryField) {
  fleet_signals f;
  alternate_node n;
  n.v4 = ip("198.51.100.20");
  n.v6 = ip("2001:db8::20");
  n.udp_port = 3478;
  n.tcp_port = 3479;
  n.tls_port = 5349;
  f.set_drain_target(n);
  const auto got = f.drain_target();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, n);

  alternate_node only_v6;
  only_v6.v6 = ip("2001:db8::21");
  only_v6.tls_port = 443;
  f.set_drain_target(only_v6);
  EXPECT_EQ(f.drain_target(), only_v6);

  f.set_drain_target(std::nullopt);
  EXPECT_FALSE(f.drain_target().has_value());
}

TEST(FleetSignals, AddressOfTheWrongFamilyIsNotKept) {
  fleet_signals f;
  alternate_node n;
  n.v4 = ip("2001:db8::1");  // a v6 address in the v4 field
  n.v6 = ip("192.0.2.1");
  n.udp_port = 1;
  f.set_drain_target(n);
  const auto got = f.drain_target();
  ASSERT_TRUE(got.has_value());
  EXPECT_FALSE(got->v4.has_value());
  EXPECT_FALSE(got->v6.has_value());
  EXPECT_EQ(got->udp_port, 1);
}

// Readers on several threads while two writers alternate between two
// targets: every read is one of the targets written, whole (never a mix of
// two), or none. Only atomics are touched, so ThreadSanitizer stays quiet.
TEST(FleetSignals, ConcurrentReadersNeverSeeATornTarget) {
  fleet_signals f;
  alternate_node a;
  a.v4 = ip("10.0.0.1");
  a.v6 = ip("fd00::1");
  a.udp_port = 1111;
  a.tcp_port = 1112;
  a.tls_port = 1113;
  alternate_node b;
  b.v4 = ip("10.255.255.254");
  b.v6 = ip("fd00:ffff:ffff:ffff:ffff:ffff:ffff:fffe");
  b.udp_port = 2221;
  b.tcp_port = 2222;
  b.tls_port = 2223;

  f.set_drain_target(a);
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> torn{0}, reads{0}, seen_a{0}, seen_b{0};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  std::vector<std::thread> threads;
  // Writers run until the readers are done (at most 5 s), so every read
  // races a write.
  for (int w = 0; w < 2; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; !stop.load(std::memory_order_relaxed) &&
                      (i % 1024 != 0 || std::chrono::steady_clock::now() < deadline);
           ++i) {
        if (i % 7 == 3) {
          f.set_drain_target(std::nullopt);
        } else {
          f.set_drain_target(((i + w) % 2 == 0) ? a : b);
        }
      }
    });
  }
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&] {
      // At least 4096 reads each, however late the thread starts on a
      // loaded machine; then until 300,000 or the deadline.
      for (int i = 0; i < 300000 && (i < 4096 || i % 1024 != 0 ||
                                     std::chrono::steady_clock::now() < deadline);
           ++i) {
        const auto t = f.drain_target();
        reads.fetch_add(1);
        if (!t) continue;
        if (*t == a) {
          seen_a.fetch_add(1);
        } else if (*t == b) {
          seen_b.fetch_add(1);
        } else {
          torn.fetch_add(1);
        }
      }
    });
  }
  for (std::size_t i = 2; i < threads.size(); ++i) threads[i].join();
  stop.store(true);
  threads[0].join();
  threads[1].join();
  EXPECT_EQ(torn.load(), 0u);
  EXPECT_GT(reads.load(), 0u);
  EXPECT_GT(seen_a.load() + seen_b.load(), 0u);
}

}  // namespace
}  // namespace anyturn::turn
