#include <anyturn/net/connection_limiter.hpp>

#include <openssl/rand.h>

#include <algorithm>
#include <chrono>
#include <cstring>

namespace anyturn::net {

namespace {

std::uint64_t mix(std::uint64_t x) {  // splitmix64 finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

std::uint64_t random_key(std::uint64_t fallback) {
  std::uint64_t k = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&k), sizeof k) != 1) {
    // Still distinct per process, only not secret.
    k = fallback ^ static_cast<std::uint64_t>(
                       std::chrono::steady_clock::now().time_since_epoch().count());
  }
  return k;
}

}  // namespace

connection_limiter::connection_limiter(std::uint32_t max_total, std::uint32_t max_per_ip,
                                       std::size_t buckets_per_row)
    : max_total_(max_total),
      max_per_ip_(max_per_ip),
      buckets_(std::max<std::size_t>(buckets_per_row, 1)),
      keys_{random_key(0x9E3779B97F4A7C15ULL), random_key(0xC2B2AE3D27D4EB4FULL)},
      rows_(std::make_unique<std::atomic<std::uint32_t>[]>(2 * buckets_)) {
  for (std::size_t i = 0; i < 2 * buckets_; ++i) rows_[i].store(0, std::memory_order_relaxed);
}

std::size_t connection_limiter::index(const stun::endpoint& client, int row) const {
  // IPv4: the address; IPv6: its /64 (IPv4-mapped addresses count as IPv4).
  std::uint64_t a = 0;
  std::uint64_t b = 0;
  const bool mapped_v4 = !client.is_v4() &&
                         std::all_of(client.ip.begin(), client.ip.begin() + 10,
                                     [](std::uint8_t x) { return x == 0; }) &&
                         client.ip[10] == 0xFF && client.ip[11] == 0xFF;
  if (client.is_v4() || mapped_v4) {
    const std::uint8_t* v4 = client.is_v4() ? client.ip.data() : client.ip.data() + 12;
    a = (std::uint64_t{v4[0]} << 24) | (std::uint64_t{v4[1]} << 16) | (std::uint64_t{v4[2]} << 8) |
        v4[3];
    b = 4;
  } else {
    std::memcpy(&a, client.ip.data(), 8);
    b = 6;
  }
  const std::uint64_t key = keys_[row];
  const std::uint64_t h = mix(mix(a ^ key) ^ (b + key));
  return static_cast<std::size_t>(row) * buckets_ + static_cast<std::size_t>(h % buckets_);
}

connection_limiter::verdict connection_limiter::try_acquire(const stun::endpoint& client) {
  // Increment first, then check: racing acceptors may refuse one too many,
  // never admit one too many.
  const std::uint32_t t = total_.fetch_add(1, std::memory_order_acq_rel) + 1;
  if (max_total_ != 0 && t > max_total_) {
    total_.fetch_sub(1, std::memory_order_acq_rel);
    return verdict::over_total;
  }
  if (max_per_ip_ == 0) return verdict::accepted;
  auto& r0 = rows_[index(client, 0)];
  auto& r1 = rows_[index(client, 1)];
  const std::uint32_t n0 = r0.fetch_add(1, std::memory_order_acq_rel) + 1;
  const std::uint32_t n1 = r1.fetch_add(1, std::memory_order_acq_rel) + 1;
  if (std::min(n0, n1) > max_per_ip_) {
    r0.fetch_sub(1, std::memory_order_acq_rel);
    r1.fetch_sub(1, std::memory_order_acq_rel);
    total_.fetch_sub(1, std::memory_order_acq_rel);
    return verdict::over_ip;
  }
  return verdict::accepted;
}

void connection_limiter::release(const stun::endpoint& client) {
  total_.fetch_sub(1, std::memory_order_acq_rel);
  if (max_per_ip_ == 0) return;
  rows_[index(client, 0)].fetch_sub(1, std::memory_order_acq_rel);
  rows_[index(client, 1)].fetch_sub(1, std::memory_order_acq_rel);
}

std::uint32_t connection_limiter::count(const stun::endpoint& client) const {
  return std::min(rows_[index(client, 0)].load(std::memory_order_relaxed),
                  rows_[index(client, 1)].load(std::memory_order_relaxed));
}

}  // namespace anyturn::net
