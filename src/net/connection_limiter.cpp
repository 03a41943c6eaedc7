#include <anyturn/net/connection_limiter.hpp>

#include <anyturn/common/keyed_hash.hpp>

#include <algorithm>

namespace anyturn::net {

connection_limiter::connection_limiter(std::uint32_t max_total, std::uint32_t max_per_ip,
                                       std::size_t buckets_per_row)
    : max_total_(max_total), max_per_ip_(max_per_ip), per_ip_(buckets_per_row) {}

std::uint64_t connection_limiter::key_of(const stun::endpoint& client) {
  // IPv4: the address; IPv6: its /64 (IPv4-mapped addresses count as IPv4).
  const bool mapped_v4 = !client.is_v4() &&
                         std::all_of(client.ip.begin(), client.ip.begin() + 10,
                                     [](std::uint8_t x) { return x == 0; }) &&
                         client.ip[10] == 0xFF && client.ip[11] == 0xFF;
  common::keyed_hasher h;
  if (client.is_v4() || mapped_v4) {
    h.add(4).add_bytes(client.is_v4() ? client.ip.data() : client.ip.data() + 12, 4);
  } else {
    h.add(6).add_bytes(client.ip.data(), 8);
  }
  return h.finish();
}

connection_limiter::verdict connection_limiter::try_acquire(const stun::endpoint& client) {
  // Increment first, then check: racing acceptors may refuse one too many,
  // never admit one too many.
  const std::uint32_t t = total_.fetch_add(1, std::memory_order_acq_rel) + 1;
  if (max_total_ != 0 && t > max_total_) {
    total_.fetch_sub(1, std::memory_order_acq_rel);
    return verdict::over_total;
  }
  if (!per_ip_.try_acquire(key_of(client), max_per_ip_)) {
    total_.fetch_sub(1, std::memory_order_acq_rel);
    return verdict::over_ip;
  }
  return verdict::accepted;
}

void connection_limiter::release(const stun::endpoint& client) {
  total_.fetch_sub(1, std::memory_order_acq_rel);
  per_ip_.release(key_of(client), max_per_ip_);
}

std::uint32_t connection_limiter::count(const stun::endpoint& client) const {
  return per_ip_.count(key_of(client));
}

bool memory_budget::try_charge(std::uint64_t bytes) {
  const std::uint64_t after = used_.fetch_add(bytes, std::memory_order_acq_rel) + bytes;
  if (limit_ != 0 && after > limit_) {
    used_.fetch_sub(bytes, std::memory_order_acq_rel);
    return false;
  }
  return true;
}

void memory_budget::credit(std::uint64_t bytes) { used_.fetch_sub(bytes, std::memory_order_acq_rel); }

}  // namespace anyturn::net
