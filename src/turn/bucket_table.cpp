// Token buckets in a fixed-size table (see bucket_table.hpp).
#include "bucket_table.hpp"

#include <anyturn/common/keyed_hash.hpp>

#include <algorithm>
#include <bit>
#include <cmath>

namespace anyturn::turn::detail {

bucket_table::bucket_table(double per_second, std::uint32_t burst, std::size_t buckets_per_row) {
  if (per_second <= 0.0) return;  // no limit: no table either
  interval_us_ = std::max<std::int64_t>(1, std::llround(1e6 / per_second));
  tolerance_us_ = interval_us_ * (std::max<std::uint32_t>(burst, 1) - 1);
  const std::size_t n = std::bit_ceil(std::max<std::size_t>(buckets_per_row, 1));
  mask_ = n - 1;
  tat_.assign(2 * n, 0);  // in the past: every bucket starts full
}

bool bucket_table::has_token(std::uint64_t key, std::int64_t now_ms) const {
  if (!enabled()) return true;
  const std::int64_t now_us = now_ms * 1000;
  return bucket_has_token(index(key, 0), now_us) || bucket_has_token(index(key, 1), now_us);
}

void bucket_table::charge(std::uint64_t key, std::int64_t now_ms) {
  if (!enabled()) return;
  const std::int64_t now_us = now_ms * 1000;
  for (int row = 0; row < 2; ++row) {
    std::int64_t& tat = tat_[index(key, row)];
    tat = std::max(tat, now_us) + interval_us_;
  }
}

bool bucket_table::try_take(std::uint64_t key, std::int64_t now_ms) {
  if (!has_token(key, now_ms)) return false;
  charge(key, now_ms);
  return true;
}

std::uint64_t source_key(const stun::endpoint& source) {
  common::keyed_hasher h;
  h.add(static_cast<std::uint64_t>(source.family));
  h.add_bytes(source.ip.data(), source.is_v4() ? 4 : 8);  // /32 or /64
  return h.finish();
}

std::uint64_t name_key(std::string_view name) {
  return common::keyed_hasher().add(0x6e616d65).add_bytes(name).finish();
}

}  // namespace anyturn::turn::detail
