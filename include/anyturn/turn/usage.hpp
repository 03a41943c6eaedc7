// anyturn::turn — usage records: what an operator bills from.
//
// When an allocation ends, its worker hands one record to the configured
// sink (metrics::usage_log writes it as a JSON line). The sink is shared by
// all workers, so implementations must be safe to call from any worker
// thread and must not block for long.
#pragma once

#include <anyturn/stun/endpoint.hpp>
#include <anyturn/relay/io.hpp>
#include <anyturn/turn/session_id.hpp>

#include <cstdint>
#include <optional>
#include <string_view>

namespace anyturn::turn {

struct usage_record {
  // The allocation's id (session_id.hpp), the "session" of its log lines.
  std::optional<session_id> session;
  std::string_view tenant;   // "" for the default tenant
  std::string_view user;     // the username as authenticated
  // The credentials API's customIdentifier carried in a REST username
  // (auth::custom_identifier_of); "" when none.
  std::string_view custom_identifier;
  std::string_view reason;   // expired, deleted, closed, shutdown
  relay::transport proto = relay::transport::udp;
  stun::endpoint client;
  stun::endpoint relay;
  const stun::endpoint* relay6 = nullptr;  // the second relayed address of a dual allocation
  std::int64_t start_unix_ms = 0;
  std::int64_t end_unix_ms = 0;
  std::uint64_t packets_to_peer = 0, bytes_to_peer = 0;
  std::uint64_t packets_to_client = 0, bytes_to_client = 0;
};

class usage_sink {
 public:
  virtual ~usage_sink() = default;
  virtual void record(const usage_record& r) noexcept = 0;
};

}  // namespace anyturn::turn
