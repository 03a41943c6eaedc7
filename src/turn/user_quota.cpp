#include <anyturn/turn/user_quota.hpp>

#include <algorithm>

namespace anyturn::turn {

namespace {
bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::uint64_t fnv1a(std::string_view s, std::uint64_t seed) {
  std::uint64_t h = 0xcbf29ce484222325ULL ^ seed;
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h ^ (h >> 29);
}
}  // namespace

user_quota::user_quota(std::uint32_t limit, std::size_t buckets_per_row)
    : limit_(limit), buckets_(std::max<std::size_t>(buckets_per_row, 1)),
      rows_(std::make_unique<std::atomic<std::uint32_t>[]>(2 * buckets_)) {
  for (std::size_t i = 0; i < 2 * buckets_; ++i) rows_[i].store(0, std::memory_order_relaxed);
}

std::size_t user_quota::index(std::string_view user, int row) const {
  const std::uint64_t h = fnv1a(user, row == 0 ? 0 : 0x9E3779B97F4A7C15ULL);
  return static_cast<std::size_t>(row) * buckets_ + static_cast<std::size_t>(h % buckets_);
}

bool user_quota::try_acquire(std::string_view user, std::uint32_t limit) {
  if (limit == 0) return true;
  auto& a = rows_[index(user, 0)];
  auto& b = rows_[index(user, 1)];
  const std::uint32_t na = a.fetch_add(1, std::memory_order_acq_rel) + 1;
  const std::uint32_t nb = b.fetch_add(1, std::memory_order_acq_rel) + 1;
  if (std::min(na, nb) > limit) {
    a.fetch_sub(1, std::memory_order_acq_rel);
    b.fetch_sub(1, std::memory_order_acq_rel);
    return false;
  }
  return true;
}

void user_quota::release(std::string_view user, std::uint32_t limit) {
  if (limit == 0) return;
  rows_[index(user, 0)].fetch_sub(1, std::memory_order_acq_rel);
  rows_[index(user, 1)].fetch_sub(1, std::memory_order_acq_rel);
}

std::uint32_t user_quota::count(std::string_view user) const {
  return std::min(rows_[index(user, 0)].load(std::memory_order_relaxed),
                  rows_[index(user, 1)].load(std::memory_order_relaxed));
}

std::string_view user_quota::key_of(std::string_view username) {
  const auto first = username.find(':');
  if (first == std::string_view::npos) return username;
  if (all_digits(username.substr(0, first))) return username.substr(first + 1);
  const auto last = username.rfind(':');
  if (all_digits(username.substr(last + 1))) return username.substr(0, last);
  return username;
}

tenant_quota::tenant_quota(std::size_t tenants)
    : count_(std::max<std::size_t>(tenants, 1)),
      active_(std::make_unique<std::atomic<std::uint32_t>[]>(count_)) {
  for (std::size_t i = 0; i < count_; ++i) active_[i].store(0, std::memory_order_relaxed);
}

bool tenant_quota::try_acquire(std::size_t tenant, std::uint32_t limit) {
  if (tenant >= count_) return false;
  auto& a = active_[tenant];
  const std::uint32_t n = a.fetch_add(1, std::memory_order_acq_rel) + 1;
  if (limit != 0 && n > limit) {
    a.fetch_sub(1, std::memory_order_acq_rel);
    return false;
  }
  return true;
}

void tenant_quota::release(std::size_t tenant) {
  if (tenant < count_) active_[tenant].fetch_sub(1, std::memory_order_acq_rel);
}

std::uint32_t tenant_quota::active(std::size_t tenant) const {
  return tenant < count_ ? active_[tenant].load(std::memory_order_relaxed) : 0;
}

}  // namespace anyturn::turn
