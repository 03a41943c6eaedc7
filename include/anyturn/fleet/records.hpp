// anyturn::fleet — what the fleet keeps in Redis, and how it is read.
//
// Keys (all under "anyturn:"):
//   anyturn:node:<id>        a node_record as JSON, PX 3 heartbeats
//   anyturn:nodes            SET of node ids (members whose key is gone are dropped)
//   anyturn:revoked:<tenant>:<kind>:<name>   a revocation as JSON, EXAT until
//                            (<tenant> "default" for the default tenant,
//                            <kind> "username" or "user")
//   anyturn:quota:<tenant>   HASH node id -> "<units>:<expiry_ms>" (quota_lease.hpp)
// Channels:
//   anyturn:revocations      a revocation as JSON, published after the SET
//   anyturn:command:<id>, anyturn:command:all   "drain" / "undrain"
//
// Pure functions: no I/O, no clock. Everything parsed here came over the
// network, so every parser bounds its input and refuses what it does not
// understand (the caller counts it).
#pragma once

#include <anyturn/auth/revocations.hpp>
#include <anyturn/turn/fleet_signals.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace anyturn::fleet {

inline constexpr std::string_view nodes_set_key = "anyturn:nodes";
inline constexpr std::string_view revocation_prefix = "anyturn:revoked:";
inline constexpr std::string_view revocation_channel = "anyturn:revocations";
inline constexpr std::string_view command_all_channel = "anyturn:command:all";
inline constexpr std::size_t max_record_bytes = 4096;  // a longer value is refused

std::string node_key(std::string_view node_id);
std::string command_channel(std::string_view node_id);
std::string quota_key(std::string_view tenant_id);  // "" = the default tenant
std::string revocation_key(const auth::revocation& r);

// One node of the directory, as it announces itself.
struct node_record {
  std::string id;
  turn::alternate_node address;  // unicast addresses and client ports
  std::uint64_t allocations = 0;
  double load = 0;  // what the node's `load` hook says; lower is preferred
  bool draining = false;
  std::int64_t updated_ms = 0;  // the node's wall clock, for operators

  friend bool operator==(const node_record&, const node_record&) = default;
};

std::string to_json(const node_record& n);
std::optional<node_record> node_from_json(std::string_view text);

std::string to_json(const auth::revocation& r);
std::optional<auth::revocation> revocation_from_json(std::string_view text);

// The node new clients should go to: the least-loaded one (then fewest
// allocations, then smallest id) that is not `self_id`, not draining and
// offers at least one address and port. nullopt when there is none.
std::optional<turn::alternate_node> choose_drain_target(std::span<const node_record> nodes,
                                                        std::string_view self_id);

}  // namespace anyturn::fleet
