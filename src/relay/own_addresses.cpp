#include <anyturn/relay/own_addresses.hpp>

#include <algorithm>

namespace anyturn::relay {
namespace {

// The address as compared: port 0, and an IPv4-mapped IPv6 address
// (::ffff:a.b.c.d) as the IPv4 address it wraps.
stun::endpoint key_of(const stun::endpoint& e) noexcept {
  stun::endpoint k = stun::unmap_v4(e);
  k.port = 0;
  return k;
}

}  // namespace

own_addresses::own_addresses(std::vector<stun::endpoint> ips, std::vector<relay_range> relays)
    : relays_(std::move(relays)) {
  for (const auto& r : relays_) ips.push_back(r.ip);
  for (auto& r : relays_) r.ip = key_of(r.ip);
  ips_.reserve(ips.size());
  for (const auto& ip : ips) ips_.push_back(key_of(ip));
  std::sort(ips_.begin(), ips_.end());
  ips_.erase(std::unique(ips_.begin(), ips_.end()), ips_.end());
}

bool own_addresses::contains(const stun::endpoint& peer) const noexcept {
  return std::binary_search(ips_.begin(), ips_.end(), key_of(peer));
}

bool own_addresses::is_relay_port(const stun::endpoint& peer) const noexcept {
  const auto k = key_of(peer);
  for (const auto& r : relays_) {
    if (r.ip == k && r.ports && r.ports->held(peer.port)) return true;
  }
  return false;
}

bool own_addresses::is_relay_ip(const stun::endpoint& peer) const noexcept {
  const auto k = key_of(peer);
  return std::any_of(relays_.begin(), relays_.end(), [&](const relay_range& r) { return r.ip == k; });
}

}  // namespace anyturn::relay
