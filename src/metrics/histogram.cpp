#include <anyturn/metrics/histogram.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

namespace anyturn::metrics {
namespace {

void check_bounds(const std::vector<double>& bounds, bool allow_empty) {
  if (bounds.empty() && !allow_empty) throw std::invalid_argument("histogram: no buckets");
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i])) throw std::invalid_argument("histogram: bucket bound not finite");
    if (i > 0 && !(bounds[i - 1] < bounds[i])) {
      throw std::invalid_argument("histogram: bucket bounds not strictly ascending");
    }
  }
}

// Index of the first bound >= v; bounds.size() for the +Inf bucket.
std::size_t bucket_index(std::span<const double> bounds, double v) {
  return static_cast<std::size_t>(std::lower_bound(bounds.begin(), bounds.end(), v) - bounds.begin());
}

}  // namespace

histogram_snapshot::histogram_snapshot(std::vector<double> bounds)
    : upper_bounds(std::move(bounds)) {
  check_bounds(upper_bounds, /*allow_empty=*/true);
  counts.assign(upper_bounds.size() + 1, 0);
}

std::uint64_t histogram_snapshot::count() const {
  return std::accumulate(counts.begin(), counts.end(), std::uint64_t{0});
}

bool histogram_snapshot::merge(const histogram_cell& cell) {
  const auto bounds = cell.upper_bounds();
  if (!std::equal(bounds.begin(), bounds.end(), upper_bounds.begin(), upper_bounds.end()) ||
      counts.size() != upper_bounds.size() + 1) {
    return false;
  }
  for (std::size_t i = 0; i < counts.size(); ++i) counts[i] += cell.bucket(i);
  sum += cell.sum();
  return true;
}

void histogram_snapshot::observe(double v) {
  if (std::isnan(v) || counts.size() != upper_bounds.size() + 1) return;
  ++counts[bucket_index(upper_bounds, v)];
  sum += v;
}

histogram_cell::histogram_cell(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)),
      buckets_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1)) {
  check_bounds(bounds_, /*allow_empty=*/false);
}

void histogram_cell::observe(double v) noexcept {
  if (std::isnan(v)) return;
  auto& b = buckets_[bucket_index(bounds_, v)];
  // Single writer: plain load+store, no locked read-modify-write.
  b.store(b.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  sum_.store(sum_.load(std::memory_order_relaxed) + v, std::memory_order_relaxed);
}

std::vector<double> linear_buckets(double start, double width, std::size_t count) {
  if (count == 0 || !(width > 0)) throw std::invalid_argument("linear_buckets: bad arguments");
  std::vector<double> out(count);
  for (std::size_t i = 0; i < count; ++i) out[i] = start + width * static_cast<double>(i);
  check_bounds(out, false);
  return out;
}

std::vector<double> exponential_buckets(double start, double factor, std::size_t count) {
  if (count == 0 || !(start > 0) || !(factor > 1)) {
    throw std::invalid_argument("exponential_buckets: bad arguments");
  }
  std::vector<double> out(count);
  double v = start;
  for (std::size_t i = 0; i < count; ++i, v *= factor) out[i] = v;
  check_bounds(out, false);
  return out;
}

}  // namespace anyturn::metrics
