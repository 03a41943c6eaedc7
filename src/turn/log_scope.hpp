// What turn/ logs about one allocation: while an allocation_log_scope lives,
// every log line of this worker thread carries the allocation's session id
// (turn::session_id, the id of the admin API and the usage record), user,
// tenant, client and relayed address (common::log_context; the text format
// appends them, the JSON format has them as fields). Private to turn/.
#pragma once

#include "context.hpp"
#include "session.hpp"

#include <anyturn/common/log_context.hpp>
#include <anyturn/turn/session_id.hpp>

#include <string>
#include <string_view>

namespace anyturn::turn::detail {

// The id of the allocation in `slot` of this worker.
inline session_id session_id_of(const context& ctx, slot_index slot, const session& s) {
  return {static_cast<std::uint8_t>(ctx.worker), slot, s.generation};
}

// The tenant's id for log lines and usage records; "" for the default tenant.
inline std::string_view tenant_name(const context& ctx, auth::tenant_index t) {
  return t < ctx.shared->credentials->tenant_count() ? std::string_view(ctx.shared->credentials->tenant_id(t))
                                                      : std::string_view();
}

class allocation_log_scope {
 public:
  // `a` must outlive the scope. Formats two addresses: only where a line is
  // logged, never on the forwarding path.
  allocation_log_scope(const context& ctx, slot_index slot, const record& a)
      : client_(a.client.remote.to_string()),
        relay_(a.relay_count > 0 ? a.relays[0].address.to_string() : std::string()) {
    scope_.session(session_id_of(ctx, slot, a.ses).packed())
        .user(a.ses.username)
        .tenant(tenant_name(ctx, a.tenant_index()))
        .client(client_)
        .relay(relay_);
  }

 private:
  std::string client_;
  std::string relay_;
  common::log_scope scope_;  // last: set after the strings, restored before they go
};

}  // namespace anyturn::turn::detail
