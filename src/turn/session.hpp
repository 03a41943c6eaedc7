// The session record of one allocation: who made it and how long it lives
// (RFC 8656 §2.2). Its forwarding record (relay::allocation) sits in the
// same slot of the worker's relay::allocation_table; this one is the TURN
// handlers' alone and never read on the forwarding path.
#pragma once

#include <anyturn/auth/credentials.hpp>
#include <anyturn/stun/message.hpp>

#include <cstdint>
#include <string>

namespace anyturn::turn::detail {

struct session {
  stun::transaction_id tid;  // of the Allocate that created it (retransmissions)
  std::string username;
  auth::tenant_index tenant = auth::default_tenant;
  auth::key_candidate key;   // the key the client proved; signs our responses
  bool sha256 = false;       // the client used MESSAGE-INTEGRITY-SHA256
  std::uint64_t reservation_token = 0;  // handed out with EVEN-PORT R=1, 0 = none
  std::int64_t expires_ms = 0;
  std::int64_t started_ms = 0;
  std::int64_t started_unix_ms = 0;
  std::uint32_t lifetime_s = 0;  // as granted by the last Allocate/Refresh
  std::uint32_t generation = 0;  // tells the slot's timer-wheel entries apart
  std::int64_t scheduled_s = -1;  // deadline of its live timer-wheel entry
};

}  // namespace anyturn::turn::detail
