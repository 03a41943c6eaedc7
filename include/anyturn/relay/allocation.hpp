// anyturn::relay — the forwarding record of one allocation (RFC 8656 §2.2).
//
// What the relay core needs to move a packet: the client's 5-tuple, the
// relayed transport addresses (relay sockets), the permissions and channel
// bindings, the bandwidth bucket and the traffic counts. Who the client is
// (username, key, tenant's name, lifetimes) is the TURN handlers' session
// record: turn/ derives its record from this one and adds the session, so
// both halves share one heap block while the relay core sees only its own.
// Owned by exactly one worker's allocation_table, held by unique_ptr in its
// slot (the virtual destructor frees the whole record).
#pragma once

#include <anyturn/relay/io.hpp>
#include <anyturn/stun/message.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

namespace anyturn::relay {

struct permission {
  stun::endpoint ip;  // port is zero: permissions are per IP (RFC 8656 §9)
  std::int64_t expires_ms = 0;
};

// A channel stays reserved for this long after it expires, so the number and
// the peer are not rebound to something else at once (RFC 8656 §12).
inline constexpr std::int64_t channel_cooldown_ms = 300'000;

struct channel {
  std::uint16_t number = 0;
  stun::endpoint peer;
  std::int64_t expires_ms = 0;  // bound until then, then cooling down
};

struct relay_side {
  relay_id id = no_relay;
  stun::endpoint address;  // relayed transport address
  std::uint8_t pool = 0;   // index into turn::shared_state::relays
};

// A token bucket holding at most one second of traffic, refilled from the
// loop's coarse clock. A rate of 0 means no limit.
struct bandwidth_bucket {
  std::int64_t rate = 0;  // bytes per second
  std::int64_t tokens = 0;
  std::int64_t refilled_ms = 0;

  void start(std::uint64_t bytes_per_s, std::int64_t now_ms) {
    rate = static_cast<std::int64_t>(bytes_per_s);
    tokens = rate;
    refilled_ms = now_ms;
  }
  // Takes `bytes` from the bucket, or returns false (drop the packet).
  bool take(std::size_t bytes, std::int64_t now_ms) {
    if (rate == 0) return true;
    if (now_ms > refilled_ms) {
      tokens = std::min(rate, tokens + (now_ms - refilled_ms) * rate / 1000);
      refilled_ms = now_ms;
    }
    if (tokens < static_cast<std::int64_t>(bytes)) return false;
    tokens -= static_cast<std::int64_t>(bytes);
    return true;
  }
};

struct allocation {
  allocation() = default;
  allocation(const allocation&) = delete;
  allocation& operator=(const allocation&) = delete;
  virtual ~allocation() = default;

  client_ref client;
  std::uint32_t tenant = 0;  // index of this worker's tenant_counters block
  std::array<relay_side, 2> relays{};
  std::uint8_t relay_count = 0;
  std::vector<permission> permissions;
  std::vector<channel> channels;
  bandwidth_bucket bandwidth;  // the tenant's per-allocation limit, copied in at Allocate
  std::uint64_t packets_to_peer = 0, bytes_to_peer = 0;
  std::uint64_t packets_to_client = 0, bytes_to_client = 0;

  [[nodiscard]] const relay_side* relay_for(stun::address_family f) const {
    for (std::uint8_t i = 0; i < relay_count; ++i)
      if (relays[i].address.family == f) return &relays[i];
    return nullptr;
  }
  [[nodiscard]] bool has_permission(const stun::endpoint& peer, std::int64_t now_ms) const {
    for (const auto& p : permissions)
      if (p.ip.family == peer.family && p.ip.ip == peer.ip) return p.expires_ms > now_ms;
    return false;
  }
  [[nodiscard]] const channel* channel_by_number(std::uint16_t n) const {
    for (const auto& c : channels)
      if (c.number == n) return &c;
    return nullptr;
  }
  [[nodiscard]] const channel* channel_by_peer(const stun::endpoint& peer) const {
    for (const auto& c : channels)
      if (c.peer == peer) return &c;
    return nullptr;
  }

  // Installs or refreshes the permission for `peer`'s IP (RFC 8656 §9).
  void permit(const stun::endpoint& peer, std::int64_t expires_ms) {
    stun::endpoint ip = peer;
    ip.port = 0;
    auto it = std::find_if(permissions.begin(), permissions.end(),
                           [&](const permission& p) { return p.ip == ip; });
    if (it != permissions.end()) {
      it->expires_ms = expires_ms;
    } else {
      permissions.push_back({ip, expires_ms});
    }
  }
  // Binds `number` to `peer`, or refreshes that binding (RFC 8656 §12). The
  // caller has checked that neither is bound to something else.
  void bind_channel(std::uint16_t number, const stun::endpoint& peer, std::int64_t expires_ms) {
    auto it = std::find_if(channels.begin(), channels.end(),
                           [&](const channel& c) { return c.number == number; });
    if (it != channels.end()) {
      it->expires_ms = expires_ms;
    } else {
      channels.push_back({number, peer, expires_ms});
    }
  }
  // Drops expired permissions and channels past their cool-down; returns the
  // next time something here changes (a permission or channel expiring, or
  // a cooled-down channel to drop), or `not_before` when nothing is left.
  std::int64_t expire(std::int64_t now_ms, std::int64_t not_before) {
    std::erase_if(permissions, [now_ms](const permission& p) { return p.expires_ms <= now_ms; });
    std::erase_if(channels, [now_ms](const channel& c) {
      return c.expires_ms + channel_cooldown_ms <= now_ms;
    });
    std::int64_t next = not_before;
    for (const auto& p : permissions) next = std::min(next, p.expires_ms);
    for (const auto& c : channels)
      next = std::min(next, c.expires_ms > now_ms ? c.expires_ms : c.expires_ms + channel_cooldown_ms);
    return next;
  }
  // Forgets the permissions and channels of family `f` (its relayed address
  // was released, RFC 8656 §8).
  void forget_family(stun::address_family f) {
    std::erase_if(permissions, [f](const permission& p) { return p.ip.family == f; });
    std::erase_if(channels, [f](const channel& c) { return c.peer.family == f; });
  }
};

}  // namespace anyturn::relay
