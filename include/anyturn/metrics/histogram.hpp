// anyturn::metrics — fixed-bucket histograms.
//
// `histogram_cell` is written by exactly one thread (a relay worker) with
// relaxed load+store, no lock and no allocation: observe() is safe on the hot
// path. Any other thread may read it at any time; a scrape-time collector
// merges the cells of all workers into a `histogram_snapshot` and passes that
// to sink::histogram(). A reader may see an observation's bucket before its
// sum (never a torn value); the count is derived from the buckets it read, so
// the rendered buckets, +Inf and _count always agree.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace anyturn::metrics {

class histogram_cell;

// Merged, non-atomic histogram data, owned by the scraping thread.
struct histogram_snapshot {
  histogram_snapshot() = default;
  // Throws std::invalid_argument unless bounds are finite and strictly ascending.
  explicit histogram_snapshot(std::vector<double> upper_bounds);

  std::vector<double> upper_bounds;   // finite, ascending; +Inf is implied
  std::vector<std::uint64_t> counts;  // per bucket (not cumulative), upper_bounds.size() + 1
  double sum = 0;

  [[nodiscard]] std::uint64_t count() const;
  // Adds one cell's current values; false (and nothing added) when its
  // bounds differ from ours.
  bool merge(const histogram_cell& cell);
  // Single-threaded observe, for tests and non-worker code.
  void observe(double v);
};

class alignas(64) histogram_cell {
 public:
  // Start-up only (allocates). Throws std::invalid_argument unless bounds are
  // non-empty, finite and strictly ascending.
  explicit histogram_cell(std::vector<double> upper_bounds);
  histogram_cell(const histogram_cell&) = delete;
  histogram_cell& operator=(const histogram_cell&) = delete;

  // Owner thread only. Counts `v` in the first bucket whose bound is >= v
  // (Prometheus "le" semantics); NaN is ignored.
  void observe(double v) noexcept;

  [[nodiscard]] std::span<const double> upper_bounds() const { return bounds_; }
  // Any thread: relaxed loads.
  [[nodiscard]] std::uint64_t bucket(std::size_t i) const {
    return buckets_[i].load(std::memory_order_relaxed);
  }
  [[nodiscard]] double sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // bounds_.size() + 1
  std::atomic<double> sum_{0};
};

// Bucket helpers (start-up only). Throw std::invalid_argument on bad input.
std::vector<double> linear_buckets(double start, double width, std::size_t count);
std::vector<double> exponential_buckets(double start, double factor, std::size_t count);

}  // namespace anyturn::metrics
