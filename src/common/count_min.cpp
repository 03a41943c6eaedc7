#include <anyturn/common/count_min.hpp>

#include <algorithm>

namespace anyturn::common {

count_min::count_min(std::size_t buckets_per_row)
    : buckets_(std::max<std::size_t>(buckets_per_row, 1)),
      rows_(std::make_unique<std::atomic<std::uint32_t>[]>(2 * buckets_)) {
  for (std::size_t i = 0; i < 2 * buckets_; ++i) rows_[i].store(0, std::memory_order_relaxed);
}

bool count_min::try_acquire(std::uint64_t hash, std::uint32_t limit) {
  if (limit == 0) return true;
  auto& a = rows_[index(hash, 0)];
  auto& b = rows_[index(hash, 1)];
  const std::uint32_t na = a.fetch_add(1, std::memory_order_acq_rel) + 1;
  const std::uint32_t nb = b.fetch_add(1, std::memory_order_acq_rel) + 1;
  if (std::min(na, nb) > limit) {
    a.fetch_sub(1, std::memory_order_acq_rel);
    b.fetch_sub(1, std::memory_order_acq_rel);
    return false;
  }
  return true;
}

void count_min::release(std::uint64_t hash, std::uint32_t limit) {
  if (limit == 0) return;
  rows_[index(hash, 0)].fetch_sub(1, std::memory_order_acq_rel);
  rows_[index(hash, 1)].fetch_sub(1, std::memory_order_acq_rel);
}

std::uint32_t count_min::count(std::uint64_t hash) const {
  return std::min(rows_[index(hash, 0)].load(std::memory_order_relaxed),
                  rows_[index(hash, 1)].load(std::memory_order_relaxed));
}

}  // namespace anyturn::common
