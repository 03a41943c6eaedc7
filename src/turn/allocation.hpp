// The state of one allocation (RFC 8656 §2.2): its 5-tuple, credentials,
// relayed transport addresses, permissions and channels. Owned by exactly
// one worker's `server`, held by unique_ptr in its slot table.
#pragma once

#include <anyturn/auth/credentials.hpp>
#include <anyturn/stun/message.hpp>
#include <anyturn/turn/io.hpp>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace anyturn::turn::detail {

struct permission {
  stun::endpoint ip;  // port is zero: permissions are per IP (RFC 8656 §9)
  std::int64_t expires_ms = 0;
};

struct channel {
  std::uint16_t number = 0;
  stun::endpoint peer;
  std::int64_t expires_ms = 0;  // bound until then; kept 5 more minutes so the
                                // number and the peer are not rebound elsewhere (§12)
};

struct relay_side {
  relay_id id = no_relay;
  stun::endpoint address;  // relayed transport address
  std::uint8_t pool = 0;   // index into shared_state::relays
};

struct allocation {
  client_ref client;
  stun::transaction_id tid;  // of the Allocate that created it (retransmissions)
  std::string username;
  auth::tenant_index tenant = auth::default_tenant;
  auth::key_candidate key;   // the key the client proved; signs our responses
  bool sha256 = false;       // the client used MESSAGE-INTEGRITY-SHA256
  std::array<relay_side, 2> relays{};
  std::uint8_t relay_count = 0;
  std::uint64_t reservation_token = 0;  // handed out with EVEN-PORT R=1, 0 = none
  std::int64_t expires_ms = 0;
  std::int64_t started_ms = 0;
  std::int64_t started_unix_ms = 0;
  std::uint32_t lifetime_s = 0;         // as granted by the last Allocate/Refresh
  std::uint32_t generation = 0;
  std::int64_t scheduled_s = -1;        // deadline of its live timer-wheel entry
  std::vector<permission> permissions;
  std::vector<channel> channels;
  std::int64_t bandwidth_tokens = 0;   // token bucket of the tenant's per-allocation limit
  std::int64_t bandwidth_refilled_ms = 0;
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
};

}  // namespace anyturn::turn::detail
