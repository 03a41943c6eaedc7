// anyturn::fleet — fleet-wide tenant quotas, leased in small chunks.
//
// With fleet.redis, a tenant's max_allocations counts across the fleet.
// Each node holds a lease of units in the tenant's Redis hash
// anyturn:quota:<tenant> (field: node id, value "<units>:<expiry_ms>"), and
// its workers are held to the lease through turn::tenant_quota's fleet
// limit, so no Allocate waits for Redis.
//
// The script below runs atomically in Redis: it drops the fields whose
// expiry has passed (nodes that died or lost Redis), sums the others, and
// grants min(want, max - others). The caller's field is set to
// max(grant, in_use) with a new expiry, so the other nodes count what this
// node really holds even when it holds more than the fleet allows (after a
// period on per-node limits).
//
// Semantics, for operators (docs/fleet.md):
// * A node keeps `in_use + chunk` units (chunk = max/64, at least 1, at most
//   256), asks for more when fewer than chunk/2 are left (checked every
//   100 ms), and returns the surplus when it refreshes its lease (every
//   heartbeat).
// * A node that gets less than it asked marks the tenant "starved" in the
//   hash (field "!starved" = "<node>:<expiry_ms>", 3 heartbeats). While
//   another node's mark stands, a node without demand of its own (no
//   refusals, headroom not running low) keeps only what it uses, so idle
//   headroom moves to the busy node within about two heartbeats.
// * So the fleet never holds more than max, but a node near the limit can
//   refuse (486) while another node holds unused units: at most `chunk`
//   per other node, for up to about two heartbeats after they are freed.
//   A burst of more than chunk/2 Allocates on one node within ~100 ms may
//   see 486s even when the fleet has room. Size max as the real limit plus
//   a margin of about chunk per node when that matters.
// * Redis unreachable: every node falls back to max per node (the fleet
//   may then hold up to nodes x max). When Redis returns, the leases are
//   taken again from what each node really holds.
#pragma once

#include <cstdint>
#include <string_view>

namespace anyturn::fleet {

// Units a node keeps beyond what it uses: max/64, at least 1, at most 256.
[[nodiscard]] std::uint32_t lease_chunk(std::uint32_t max);
// The lease a node wants while `in_use` units are in use: in_use + chunk, at most max.
[[nodiscard]] std::uint32_t lease_target(std::uint32_t in_use, std::uint32_t max);
// Whether a node holding `lease` with `in_use` in use should ask for more
// now (fewer than chunk/2 units left, rounded up, and the lease below max).
[[nodiscard]] bool lease_runs_low(std::uint32_t in_use, std::uint32_t lease, std::uint32_t max);

// EVAL lease_script 1 anyturn:quota:<tenant> <node> <want> <max> <in_use> <ttl_ms> <need>
// <need> "1": the node has demand (its workers were refused, or its in-use
// units run close to the lease); "0": a routine refresh. Returns the units
// granted (0..want).
extern const std::string_view lease_script;


}  // namespace anyturn::fleet
