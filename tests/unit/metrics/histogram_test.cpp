#include <anyturn/metrics/histogram.hpp>

#include <gtest/gtest.h>

#include <limits>
#include <stdexcept>
#include <thread>

namespace anyturn::metrics {
namespace {

TEST(histogram_cell, counts_each_value_in_first_bucket_whose_bound_is_not_below_it) {
  histogram_cell cell({1, 2, 4});
  for (double v : {0.0, 1.0, 1.5, 2.0, 3.0, 4.0, 4.5, -7.0}) cell.observe(v);
  cell.observe(std::numeric_limits<double>::quiet_NaN());  // ignored
  EXPECT_EQ(cell.bucket(0), 3u);  // 0, 1, -7
  EXPECT_EQ(cell.bucket(1), 2u);  // 1.5, 2
  EXPECT_EQ(cell.bucket(2), 2u);  // 3, 4
  EXPECT_EQ(cell.bucket(3), 1u);  // 4.5 -> +Inf
  EXPECT_DOUBLE_EQ(cell.sum(), 0 + 1 + 1.5 + 2 + 3 + 4 + 4.5 - 7);
}

TEST(histogram_cell, rejects_bad_bounds) {
  EXPECT_THROW(histogram_cell({}), std::invalid_argument);
  EXPECT_THROW(histogram_cell({1, 1}), std::invalid_argument);
  EXPECT_THROW(histogram_cell({2, 1}), std::invalid_argument);
  EXPECT_THROW(histogram_cell({1, std::numeric_limits<double>::infinity()}), std::invalid_argument);
}

TEST(histogram_snapshot, merges_cells_of_several_workers) {
  const std::vector<double> bounds{0.001, 0.01, 0.1};
  histogram_cell a(bounds), b(bounds);
  a.observe(0.0005);
  a.observe(0.05);
  b.observe(0.005);
  b.observe(0.5);
  b.observe(0.05);
  histogram_snapshot merged(bounds);
  ASSERT_TRUE(merged.merge(a));
  ASSERT_TRUE(merged.merge(b));
  EXPECT_EQ(merged.counts, (std::vector<std::uint64_t>{1, 1, 2, 1}));
  EXPECT_EQ(merged.count(), 5u);
  EXPECT_DOUBLE_EQ(merged.sum, 0.0005 + 0.05 + 0.005 + 0.5 + 0.05);
}

TEST(histogram_snapshot, refuses_a_cell_with_other_bounds) {
  histogram_cell other({1, 2});
  other.observe(1);
  histogram_snapshot snap({1, 3});
  EXPECT_FALSE(snap.merge(other));
  EXPECT_EQ(snap.count(), 0u);
}

TEST(histogram_cell, reader_thread_sees_consistent_monotonic_counts) {
  histogram_cell cell({10, 100});
  constexpr int n = 200000;
  std::thread writer([&] {
    for (int i = 0; i < n; ++i) cell.observe(i % 150);
  });
  std::uint64_t last = 0;
  while (last < static_cast<std::uint64_t>(n)) {
    histogram_snapshot snap({10, 100});
    ASSERT_TRUE(snap.merge(cell));
    ASSERT_GE(snap.count(), last);  // never goes backwards
    last = snap.count();
  }
  writer.join();
  histogram_snapshot snap({10, 100});
  snap.merge(cell);
  EXPECT_EQ(snap.count(), static_cast<std::uint64_t>(n));
}

TEST(buckets, linear_and_exponential) {
  EXPECT_EQ(linear_buckets(1, 2, 3), (std::vector<double>{1, 3, 5}));
  EXPECT_EQ(exponential_buckets(0.001, 10, 3).size(), 3u);
  EXPECT_DOUBLE_EQ(exponential_buckets(0.001, 10, 3)[2], 0.1);
  EXPECT_THROW(linear_buckets(0, 0, 3), std::invalid_argument);
  EXPECT_THROW(exponential_buckets(0, 2, 3), std::invalid_argument);
  EXPECT_THROW(exponential_buckets(1, 1, 3), std::invalid_argument);
}

}  // namespace
}  // namespace anyturn::metrics
