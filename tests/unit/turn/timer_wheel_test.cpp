#include "../../../src/turn/timer_wheel.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace anyturn::turn::detail {
namespace {

std::vector<std::uint32_t> fire_until(timer_wheel& w, std::int64_t now_s) {
  std::vector<std::uint32_t> fired;
  w.advance(now_s, [&](const timer_wheel::entry& e) { fired.push_back(e.slot); });
  return fired;
}

TEST(TimerWheel, FiresEntriesWhenTheirSecondHasPassed) {
  timer_wheel w;
  w.schedule(100, 1, 0);
  w.schedule(105, 2, 0);
  EXPECT_TRUE(fire_until(w, 99).empty());
  EXPECT_EQ(fire_until(w, 100), std::vector<std::uint32_t>{1});
  EXPECT_TRUE(fire_until(w, 104).empty());
  EXPECT_EQ(fire_until(w, 200), std::vector<std::uint32_t>{2});
}

TEST(TimerWheel, EntriesScheduledBeforeTheFirstTickStillFire) {
  timer_wheel w;
  w.schedule(1300, 1, 0);
  w.schedule(1600, 2, 0);
  EXPECT_EQ(fire_until(w, 1700), (std::vector<std::uint32_t>{1, 2}));
}

TEST(TimerWheel, EntriesBeyondOneLapWaitForTheirLap) {
  timer_wheel w;
  w.schedule(10, 1, 0);
  w.schedule(10 + timer_wheel::span_s, 2, 0);  // same slot, next lap
  EXPECT_EQ(fire_until(w, 10), std::vector<std::uint32_t>{1});
  EXPECT_TRUE(fire_until(w, 10 + timer_wheel::span_s - 1).empty());
  EXPECT_EQ(fire_until(w, 10 + timer_wheel::span_s), std::vector<std::uint32_t>{2});
}

TEST(TimerWheel, AStallLongerThanTheWheelFiresEverythingDue) {
  timer_wheel w;
  for (std::uint32_t i = 0; i < 100; ++i) w.schedule(1000 + i * 50, i, 0);
  EXPECT_EQ(fire_until(w, 1000 + 3 * timer_wheel::span_s).size(), 100u);
}

TEST(TimerWheel, PastDeadlinesFireOnTheNextTick) {
  timer_wheel w;
  w.schedule(50, 1, 0);
  EXPECT_EQ(fire_until(w, 60).size(), 1u);
  w.schedule(10, 2, 0);  // already past
  EXPECT_EQ(fire_until(w, 61), std::vector<std::uint32_t>{2});
}

// Bursts of deadlines in different seconds (a mass of allocations made in
// one second, then another) must not leave each slot at its burst's size:
// after they fired, the wheel holds about what it held before.
TEST(TimerWheel, BurstsGiveTheirCapacityBack) {
  timer_wheel w;
  w.schedule(1, 0, 0);
  fire_until(w, 1);
  const std::size_t idle = w.capacity();
  constexpr std::uint32_t burst = 50'000;
  for (std::int64_t second = 10; second < 16; ++second) {
    for (std::uint32_t i = 0; i < burst; ++i) w.schedule(second, i, 0);
    EXPECT_EQ(fire_until(w, second).size(), burst);
  }
  EXPECT_LE(w.capacity(), idle + 2 * timer_wheel::keep_capacity) << "idle " << idle;
}

}  // namespace
}  // namespace anyturn::turn::detail
