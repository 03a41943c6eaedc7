// anyturn::relay — the forwarding record of one allocation (RFC 8656 §2.2).
//
// What the relay core needs to move a packet: the client's 5-tuple, the
// relayed transport addresses (relay sockets), the permissions and channel
// bindings, the rate limits and the traffic counts. Who the client is
// (username, key, tenant's name, lifetimes) is the TURN handlers' session
// record: turn/ derives its record from this one and adds the session, so
// both halves share one heap block while the relay core sees only its own.
// Owned by exactly one worker's allocation_table, held by unique_ptr in its
// slot (the virtual destructor frees the whole record).
//
// Permissions and channels are kept sorted (permissions by IP, channels by
// number), so a lookup is a short linear scan while an allocation has a
// handful of entries (the common case) and a binary search past that: the
// cost per packet is O(log n) however many entries limits.allocation
// allows. The vectors grow only when a permission or channel is created,
// never per packet.
#pragma once

#include <anyturn/relay/fast_path.hpp>
#include <anyturn/relay/io.hpp>
#include <anyturn/stun/message.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
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
  bool own_peer = false;        // the peer is this server's address: forward only to a live relay port
};

// Up to this many entries a lookup scans; past it, it bisects (and channels
// keep an index by peer).
inline constexpr std::size_t linear_lookup_max = 8;

struct relay_side {
  relay_id id = no_relay;
  stun::endpoint address;  // relayed transport address
  std::uint8_t pool = 0;   // index into turn::shared_state::relays
};

// What one allocation may hold and send (config limits.allocation, or the
// tenant's override), copied into the allocation at Allocate. The defaults
// are config's.
struct allocation_limits {
  std::uint32_t max_peers = 64;                  // peer IPs with a permission: 508 beyond
  std::uint32_t max_channels = 64;               // channels, bound or cooling down: 508 beyond
  std::uint32_t permissions_per_second = 10;     // new permissions; 0: no limit
  std::uint32_t permission_burst = 32;
  std::uint32_t packets_per_second = 20'000;     // each direction; 0: no limit
  std::uint64_t bytes_per_second = 12'500'000;   // each direction (100 Mbit/s); 0: no limit
};

// A token bucket holding at most one second of traffic, refilled from the
// loop's coarse clock. A rate of 0 means no limit. (The tenant's
// quotas.bandwidth, shared by both directions.)
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
  // Charges `bytes` another path already sent under its own copy of this
  // limit (the kernel fast path): never fails, empties the bucket at most.
  void charge(std::uint64_t bytes, std::int64_t now_ms) {
    if (rate == 0 || bytes == 0) return;
    take(0, now_ms);  // refill to now
    tokens = bytes >= static_cast<std::uint64_t>(tokens) ? 0 : tokens - static_cast<std::int64_t>(bytes);
  }
};

// A token bucket of `rate` tokens a second holding at most `burst`, kept in
// thousandths of a token so that a slow rate on a millisecond clock loses
// nothing to rounding. A rate of 0 means no limit.
struct token_bucket {
  std::int64_t rate = 0;  // tokens per second
  std::int64_t burst_milli = 0;
  std::int64_t milli = 0;
  std::int64_t refilled_ms = 0;

  void start(std::uint64_t per_s, std::uint64_t burst, std::int64_t now_ms) {
    rate = static_cast<std::int64_t>(per_s);
    burst_milli = static_cast<std::int64_t>(burst) * 1000;
    milli = burst_milli;
    refilled_ms = now_ms;
  }
  // Takes `n` tokens, or returns false (and takes none).
  bool take(std::uint64_t n, std::int64_t now_ms) {
    if (rate == 0) return true;
    if (now_ms > refilled_ms) {
      const std::int64_t elapsed = now_ms - refilled_ms;
      // Past the time a refill from empty takes, the bucket is full (and
      // elapsed * rate cannot overflow below it).
      milli = elapsed > burst_milli / rate ? burst_milli
                                           : std::min(burst_milli, milli + elapsed * rate);
      refilled_ms = now_ms;
    }
    const auto need = static_cast<std::int64_t>(n) * 1000;
    if (milli < need) return false;
    milli -= need;
    return true;
  }
  // Charges `n` tokens another path already spent under its own copy of
  // this limit (the kernel fast path): never fails, empties the bucket at most.
  void charge(std::uint64_t n, std::int64_t now_ms) {
    if (rate == 0 || n == 0) return;
    take(0, now_ms);  // refill to now
    const std::uint64_t have = static_cast<std::uint64_t>(milli);
    milli = n >= have / 1000 ? 0 : milli - static_cast<std::int64_t>(n) * 1000;
  }
};

// What the kernel fast path holds of one allocation (relay/offload.hpp keeps
// it): its handle there, the channels it was given (installed, or refused
// and left to user space until they change), and the totals folded so far.
struct offload_state {
  struct entry {
    fast_channel channel;
    bool installed = false;  // put_channel said yes (else user space forwards it)
  };
  fast_path::handle handle = fast_path::no_handle;
  std::vector<entry> channels;  // sorted by channel number
  fast_counts folded;           // the fast path's totals already counted here
};

// Packets and bytes a second in one direction.
struct direction_limit {
  token_bucket packets;
  token_bucket bytes;
};

namespace detail {
// Orders endpoints by family and address only (permissions are per IP).
inline int compare_ip(const stun::endpoint& a, const stun::endpoint& b) {
  if (a.family != b.family) return a.family < b.family ? -1 : 1;
  return std::memcmp(a.ip.data(), b.ip.data(), a.ip.size());
}
// Orders endpoints by family, address and port.
inline bool endpoint_less(const stun::endpoint& a, const stun::endpoint& b) {
  const int c = compare_ip(a, b);
  return c != 0 ? c < 0 : a.port < b.port;
}
}  // namespace detail

struct allocation {
  allocation() = default;
  allocation(const allocation&) = delete;
  allocation& operator=(const allocation&) = delete;
  virtual ~allocation() = default;

  // A channel's place in `channels`, by peer (kept past linear_lookup_max).
  struct peer_index_entry {
    stun::endpoint peer;
    std::uint16_t number = 0;
  };

  client_ref client;
  std::uint32_t tenant = 0;  // index of this worker's tenant_counters block
  // turn::session_id::packed() of this allocation, for the rare lines relay/
  // logs about it (common::log_context); 0: none.
  std::uint64_t log_session = 0;
  std::array<relay_side, 2> relays{};
  std::uint8_t relay_count = 0;
  std::vector<permission> permissions;          // sorted by IP
  std::vector<channel> channels;                // sorted by number
  std::vector<peer_index_entry> channel_peers;  // sorted by peer; empty up to linear_lookup_max
  bandwidth_bucket bandwidth;  // the tenant's per-allocation limit, copied in at Allocate
  // limits.allocation, copied in at Allocate (start_limits).
  std::uint32_t max_peers = allocation_limits{}.max_peers;
  std::uint32_t max_channels = allocation_limits{}.max_channels;
  token_bucket permission_rate;
  direction_limit to_peer_limit, to_client_limit;
  std::uint64_t packets_to_peer = 0, bytes_to_peer = 0;
  std::uint64_t packets_to_client = 0, bytes_to_client = 0;
  offload_state offload;  // the kernel fast path's part (relay/offload.hpp); control path only

  void start_limits(const allocation_limits& l, std::int64_t now_ms) {
    max_peers = l.max_peers;
    max_channels = l.max_channels;
    permission_rate.start(l.permissions_per_second, l.permission_burst, now_ms);
    for (direction_limit* d : {&to_peer_limit, &to_client_limit}) {
      d->packets.start(l.packets_per_second, l.packets_per_second, now_ms);
      d->bytes.start(l.bytes_per_second, l.bytes_per_second, now_ms);
    }
  }

  [[nodiscard]] const relay_side* relay_for(stun::address_family f) const {
    for (std::uint8_t i = 0; i < relay_count; ++i)
      if (relays[i].address.family == f) return &relays[i];
    return nullptr;
  }

  // The permission entry of `peer`'s IP (live or expired but not yet
  // dropped), or null.
  [[nodiscard]] const permission* find_permission(const stun::endpoint& peer) const {
    if (permissions.size() <= linear_lookup_max) {
      for (const auto& p : permissions)
        if (p.ip.family == peer.family && p.ip.ip == peer.ip) return &p;
      return nullptr;
    }
    const auto it = std::lower_bound(
        permissions.begin(), permissions.end(), peer,
        [](const permission& p, const stun::endpoint& k) { return detail::compare_ip(p.ip, k) < 0; });
    if (it != permissions.end() && detail::compare_ip(it->ip, peer) == 0) return &*it;
    return nullptr;
  }
  [[nodiscard]] bool has_permission(const stun::endpoint& peer, std::int64_t now_ms) const {
    const permission* p = find_permission(peer);
    return p != nullptr && p->expires_ms > now_ms;
  }
  [[nodiscard]] const channel* channel_by_number(std::uint16_t n) const {
    if (channels.size() <= linear_lookup_max) {
      for (const auto& c : channels)
        if (c.number == n) return &c;
      return nullptr;
    }
    const auto it = std::lower_bound(channels.begin(), channels.end(), n,
                                     [](const channel& c, std::uint16_t k) { return c.number < k; });
    return it != channels.end() && it->number == n ? &*it : nullptr;
  }
  [[nodiscard]] const channel* channel_by_peer(const stun::endpoint& peer) const {
    if (channel_peers.empty()) {
      for (const auto& c : channels)
        if (c.peer == peer) return &c;
      return nullptr;
    }
    const auto it = std::lower_bound(
        channel_peers.begin(), channel_peers.end(), peer,
        [](const peer_index_entry& e, const stun::endpoint& k) { return detail::endpoint_less(e.peer, k); });
    if (it == channel_peers.end() || it->peer != peer) return nullptr;
    return channel_by_number(it->number);
  }

  // Installs or refreshes the permission for `peer`'s IP (RFC 8656 §9). The
  // caller has checked max_peers and the permission rate.
  void permit(const stun::endpoint& peer, std::int64_t expires_ms) {
    stun::endpoint ip = peer;
    ip.port = 0;
    const auto it = std::lower_bound(
        permissions.begin(), permissions.end(), ip,
        [](const permission& p, const stun::endpoint& k) { return detail::compare_ip(p.ip, k) < 0; });
    if (it != permissions.end() && detail::compare_ip(it->ip, ip) == 0) {
      it->expires_ms = expires_ms;
    } else {
      permissions.insert(it, {ip, expires_ms});
    }
  }
  // Binds `number` to `peer`, or refreshes that binding (RFC 8656 §12). The
  // caller has checked that neither is bound to something else, and
  // max_channels. `own_peer`: the peer is one of this server's addresses.
  void bind_channel(std::uint16_t number, const stun::endpoint& peer, std::int64_t expires_ms,
                    bool own_peer = false) {
    const auto it = std::lower_bound(channels.begin(), channels.end(), number,
                                     [](const channel& c, std::uint16_t k) { return c.number < k; });
    if (it != channels.end() && it->number == number) {
      it->expires_ms = expires_ms;
      return;
    }
    channels.insert(it, {number, peer, expires_ms, own_peer});
    if (!channel_peers.empty()) {
      const auto at = std::lower_bound(
          channel_peers.begin(), channel_peers.end(), peer,
          [](const peer_index_entry& e, const stun::endpoint& k) { return detail::endpoint_less(e.peer, k); });
      channel_peers.insert(at, {peer, number});
    } else if (channels.size() > linear_lookup_max) {
      index_channel_peers();
    }
  }
  [[nodiscard]] std::size_t permission_count() const { return permissions.size(); }
  [[nodiscard]] std::size_t channel_count() const { return channels.size(); }

  // Drops the permissions that have expired (before counting them against
  // max_peers); expire() does the same on the timer.
  void drop_expired_permissions(std::int64_t now_ms) {
    std::erase_if(permissions, [now_ms](const permission& p) { return p.expires_ms <= now_ms; });
  }
  // Drops expired permissions and channels past their cool-down; returns the
  // next time something here changes (a permission or channel expiring, or
  // a cooled-down channel to drop), or `not_before` when nothing is left.
  std::int64_t expire(std::int64_t now_ms, std::int64_t not_before) {
    drop_expired_permissions(now_ms);
    const std::size_t had = channels.size();
    std::erase_if(channels, [now_ms](const channel& c) {
      return c.expires_ms + channel_cooldown_ms <= now_ms;
    });
    if (channels.size() != had) index_channel_peers();
    std::int64_t next = not_before;
    for (const auto& p : permissions) next = std::min(next, p.expires_ms);
    for (const auto& c : channels)
      next = std::min(next, c.expires_ms > now_ms ? c.expires_ms : c.expires_ms + channel_cooldown_ms);
    return next;
  }
  // Removes every permission and channel whose peer `denied(peer)` says no
  // to (a config reload denied its range: at once, no cool-down). Returns
  // how many it removed. For a permission the peer has port 0.
  template <typename Denied>
  std::size_t forget_peers_if(Denied denied) {
    const std::size_t before = permissions.size() + channels.size();
    std::erase_if(permissions, [&](const permission& p) { return denied(p.ip); });
    std::erase_if(channels, [&](const channel& c) { return denied(c.peer); });
    const std::size_t removed = before - permissions.size() - channels.size();
    if (removed > 0) index_channel_peers();
    return removed;
  }
  // Forgets the permissions and channels of family `f` (its relayed address
  // was released, RFC 8656 §8).
  void forget_family(stun::address_family f) {
    std::erase_if(permissions, [f](const permission& p) { return p.ip.family == f; });
    std::erase_if(channels, [f](const channel& c) { return c.peer.family == f; });
    index_channel_peers();
  }

 private:
  // Rebuilds the by-peer index of the channels, or drops it when a scan
  // is enough.
  void index_channel_peers() {
    channel_peers.clear();
    if (channels.size() <= linear_lookup_max) return;
    channel_peers.reserve(channels.size());
    for (const auto& c : channels) channel_peers.push_back({c.peer, c.number});
    std::sort(channel_peers.begin(), channel_peers.end(),
              [](const peer_index_entry& a, const peer_index_entry& b) {
                return detail::endpoint_less(a.peer, b.peer);
              });
  }
};

}  // namespace anyturn::relay
