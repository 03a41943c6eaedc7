#include <anyturn/app/drain.hpp>

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace anyturn::app {
namespace {

using verdict = drain_controller::verdict;

TEST(drain, not_draining_never_ends_the_process) {
  auto signals = std::make_shared<turn::fleet_signals>();
  drain_controller d(signals, 10);
  EXPECT_EQ(d.on_tick(1'000'000, 0), verdict::keep_running);
  EXPECT_FALSE(d.draining());
  EXPECT_EQ(d.elapsed_ms(5'000), 0);
}

TEST(drain, start_sets_the_shared_flag_the_workers_read) {
  auto signals = std::make_shared<turn::fleet_signals>();
  drain_controller d(signals, 10);
  EXPECT_TRUE(d.start(1'000));
  EXPECT_TRUE(signals->draining());
  EXPECT_FALSE(d.start(2'000)) << "a second start is not a new drain";
  EXPECT_EQ(d.elapsed_ms(4'000), 3'000) << "the first start's clock runs on";
}

TEST(drain, ends_when_the_last_allocation_is_gone) {
  auto signals = std::make_shared<turn::fleet_signals>();
  drain_controller d(signals, 10);
  d.start(1'000);
  EXPECT_EQ(d.on_tick(1'250, 3), verdict::keep_running);
  EXPECT_EQ(d.on_tick(1'500, 1), verdict::keep_running);
  EXPECT_EQ(d.on_tick(1'750, 0), verdict::done);
}

TEST(drain, ends_at_the_timeout_with_allocations_left) {
  auto signals = std::make_shared<turn::fleet_signals>();
  drain_controller d(signals, 10);
  d.start(1'000);
  EXPECT_EQ(d.on_tick(10'999, 5), verdict::keep_running);
  EXPECT_EQ(d.on_tick(11'000, 5), verdict::timed_out);
}

TEST(drain, undrain_cancels_and_a_new_drain_starts_its_own_clock) {
  auto signals = std::make_shared<turn::fleet_signals>();
  drain_controller d(signals, 10);
  d.start(1'000);
  EXPECT_TRUE(d.stop());
  EXPECT_FALSE(signals->draining());
  EXPECT_FALSE(d.stop()) << "nothing to undrain";
  EXPECT_EQ(d.on_tick(20'000, 0), verdict::keep_running) << "an undrained node keeps running";
  d.start(30'000);
  EXPECT_EQ(d.on_tick(39'999, 2), verdict::keep_running);
  EXPECT_EQ(d.on_tick(40'000, 2), verdict::timed_out);
}

TEST(drain, concurrent_starts_make_exactly_one_drain) {
  auto signals = std::make_shared<turn::fleet_signals>();
  drain_controller d(signals, 10);
  std::atomic<int> started{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      if (d.start(1'000)) started.fetch_add(1);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(started.load(), 1);
  EXPECT_TRUE(d.draining());
}

}  // namespace
}  // namespace anyturn::app
