// anyturn::turn — what the admin API sees of the allocations ("sessions").
//
// Plain values, filled by a worker from its own tables
// (worker_core::list_sessions, on the worker's thread) and read by the HTTP
// thread (GET /admin/sessions, `anyturn ctl sessions`). A listing walks the
// workers in order and each worker's slots in order, a bounded number of
// slots per step, so listing 100,000 sessions never holds a worker for more
// than one page. The cursor (worker, slot) says where the next page starts;
// it is printed as 12 hex digits and is opaque to clients.
#pragma once

#include <anyturn/relay/io.hpp>
#include <anyturn/stun/endpoint.hpp>
#include <anyturn/turn/session_id.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace anyturn::turn {

// Which sessions a listing or a bulk end takes. Unset fields match anything.
struct session_filter {
  // The whole username, or its REST user (auth::rest_user_of: "alice" matches
  // "1700000000:alice" and, in tenant "acme", "1700000000:acme:alice").
  std::optional<std::string> user;
  std::optional<std::string> tenant;            // tenant id; "" is the default tenant
  std::optional<stun::endpoint> client;         // the client's IP; its port too unless 0
  std::optional<relay::transport> transport;

  // Whether a session of `username` in tenant `tenant_id` from `from` matches.
  [[nodiscard]] bool matches(std::string_view username, std::string_view tenant_id,
                             const relay::client_ref& from) const;
};

// Parses "udp", "tcp" or "tls".
std::optional<relay::transport> parse_transport(std::string_view text);

struct session_permission {
  stun::endpoint ip;            // port 0
  std::int64_t expires_in_s = 0;  // <= 0: expired, not yet dropped
};

struct session_channel {
  std::uint16_t number = 0;
  stun::endpoint peer;
  std::int64_t expires_in_s = 0;  // <= 0: cooling down
};

struct session_info {
  session_id id;
  std::string user;    // the username it authenticated with
  std::string tenant;  // tenant id ("" = default)
  relay::transport transport = relay::transport::udp;
  stun::endpoint client;  // the client's address and port
  stun::endpoint server;  // the listener address it reached
  std::vector<stun::endpoint> relayed;  // one per address family
  std::vector<session_permission> permissions;
  std::vector<session_channel> channels;
  std::uint64_t packets_to_peer = 0, bytes_to_peer = 0;
  std::uint64_t packets_to_client = 0, bytes_to_client = 0;
  std::int64_t started_unix_ms = 0;
  std::int64_t age_s = 0;
  std::int64_t expires_in_s = 0;
};

// One worker's answer to one step of a listing or a bulk end.
struct session_page {
  std::vector<session_info> sessions;
  std::size_t ended = 0;          // end_sessions: how many it ended
  std::uint32_t next_slot = 0;    // where this worker's next step starts
  bool end = false;               // every slot of this worker was walked
};

// Where a listing goes on: a worker and a slot in its table.
struct session_cursor {
  unsigned worker = 0;
  std::uint32_t slot = 0;

  [[nodiscard]] std::string str() const;
  // Exactly 12 hex digits (2 for the worker, 10 for the slot); else nullopt.
  static std::optional<session_cursor> parse(std::string_view text);
  friend bool operator==(const session_cursor&, const session_cursor&) = default;
};

// GET /admin/sessions, as the HTTP side asks it.
struct session_query {
  session_filter filter;
  session_cursor from;
  std::size_t limit = 100;
};

struct session_listing {
  std::vector<session_info> sessions;
  std::optional<session_cursor> next;  // unset: nothing more
};

}  // namespace anyturn::turn
