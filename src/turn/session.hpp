// The session record of one allocation: who made it and how long it lives
// (RFC 8656 §2.2). The TURN handlers' record is the relay core's forwarding
// record (relay::allocation) plus this session, in one heap block held by
// the worker's relay::allocation_table; the forwarding path never reads the
// session.
#pragma once

#include <anyturn/auth/credentials.hpp>
#include <anyturn/relay/allocation.hpp>
#include <anyturn/stun/message.hpp>

#include <cstdint>
#include <limits>
#include <string>

namespace anyturn::turn::detail {

// What an allocation counted against the quotas at Allocate: release gives
// back exactly that, whatever a reload changed since.
struct quota_hold {
  std::uint32_t user_limit = 0;  // the per-user limit it was counted under (0: not counted)
  bool tenant = false;           // counted in tenant_usage
};

struct session {
  // 8-byte fields first, then the smaller ones: no padding between them.
  std::string username;
  std::uint64_t reservation_token = 0;  // handed out with EVEN-PORT R=1, 0 = none
  std::int64_t expires_ms = 0;
  std::int64_t started_ms = 0;
  std::int64_t started_unix_ms = 0;
  std::int64_t scheduled_s = -1;  // deadline of its live timer-wheel entry
  bool imminent = false;          // on context::imminent (credential end near)
  // auth.enforce_expiry: the REST credential's expiry (unix seconds; 0:
  // none) and when it comes on the monotonic clock (max: never).
  std::int64_t credential_expiry_s = 0;
  std::int64_t credential_end_ms = std::numeric_limits<std::int64_t>::max();
  std::uint32_t lifetime_s = 0;   // as granted by the last Allocate/Refresh
  std::uint32_t generation = 0;   // tells the slot's timer-wheel entries apart
  stun::transaction_id tid;       // of the Allocate that created it (retransmissions)
  auth::key_candidate key;        // the key the client proved; signs our responses
  quota_hold quota;               // what Allocate counted against the quotas
  bool sha256 = false;            // the client used MESSAGE-INTEGRITY-SHA256
  bool tcp_relay = false;         // REQUESTED-TRANSPORT TCP (RFC 6062): its relay listens for TCP
};

// What turn/ puts in an allocation_table slot: both halves of an allocation.
// The tenant index is the forwarding record's (`tenant`), kept once.
struct record final : relay::allocation {
  session ses;
  [[nodiscard]] auth::tenant_index tenant_index() const {
    return static_cast<auth::tenant_index>(tenant);
  }
};

}  // namespace anyturn::turn::detail
