// anyturn::relay — per-worker counters of the relay core and the TURN handlers.
//
// Each worker owns one `worker_counters` and is its only writer: it bumps
// with relaxed load+store (no read-modify-write, no lock, no shared cache
// line). Readers on other threads (the metrics scrape, the shutdown summary)
// load relaxed and sum across workers.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <vector>

namespace anyturn::relay {

// X(name, help)
#define ANYTURN_WORKER_COUNTERS(X)                                                      \
  X(packets_received, "datagrams/frames received from clients")                         \
  X(malformed_dropped, "client packets dropped as malformed")                           \
  X(bad_fingerprint_dropped, "STUN messages dropped for a bad FINGERPRINT")             \
  X(unknown_dropped, "client packets that were neither STUN nor ChannelData")           \
  X(binding_requests, "Binding requests answered")                                      \
  X(allocate_requests, "Allocate requests")                                             \
  X(refresh_requests, "Refresh requests")                                               \
  X(create_permission_requests, "CreatePermission requests")                            \
  X(channel_bind_requests, "ChannelBind requests")                                      \
  X(send_indications, "Send indications received")                                      \
  X(retransmits_answered, "requests answered from the retransmission cache")           \
  X(responses_success, "success responses sent")                                        \
  X(responses_error, "error responses sent")                                            \
  X(auth_challenges, "401 responses without a prior credential (normal first step)")    \
  X(auth_bad_integrity, "requests with a wrong MESSAGE-INTEGRITY")                      \
  X(auth_unknown_user, "requests for an unknown user")                                  \
  X(auth_expired_rest, "REST credentials whose timestamp had passed")                   \
  X(auth_stale_nonce, "438 Stale Nonce responses")                                      \
  X(auth_bad_nonce, "nonces that failed verification")                                  \
  X(unauth_rate_dropped, "requests dropped unanswered: their source's unauthenticated answers were used up") \
  X(auth_fail_rate_dropped, "requests dropped unchecked: too many failed authentications from their source or for their user") \
  X(auth_bad_algorithm, "400: PASSWORD-ALGORITHM(S) not what the nonce's 401 offered")    \
  X(allocations_created, "allocations created")                                         \
  X(allocations_expired, "allocations ended by expiry")                                 \
  X(allocations_deleted, "allocations ended by Refresh lifetime 0")                     \
  X(allocations_closed, "allocations ended by connection close or shutdown")            \
  X(allocations_failed_ports, "Allocate refused with 508: no relay port or worker full")               \
  X(allocations_failed_quota, "Allocate refused with 486: tenant or user quota reached")  \
  X(bandwidth_dropped, "packets dropped by the per-allocation bandwidth limit")                              \
  X(packet_rate_dropped, "packets dropped by limits.allocation.packets_per_second")     \
  X(byte_rate_dropped, "packets dropped by limits.allocation.bytes_per_second")         \
  X(limit_rejected_peers, "CreatePermission/ChannelBind refused with 508: max_peers")   \
  X(limit_rejected_channels, "ChannelBind refused with 508: max_channels")              \
  X(limit_rejected_permission_rate, "permissions refused with 508: permissions_per_second") \
  X(peer_denied, "permissions or channels refused by the peer policy (403)")           \
  X(peer_denied_self, "permissions or channels refused: the server's own address (403)") \
  X(self_peer_dropped, "Send/ChannelData to an own address that is no live relay port") \
  X(no_permission_dropped, "packets dropped for lack of a permission")                  \
  X(no_allocation_dropped, "ChannelData/Send with no allocation")                       \
  X(unbound_channel_dropped, "ChannelData on an unbound channel")                       \
  X(relay_send_failed, "datagrams the kernel refused on a relay socket")                \
  X(client_send_failed, "datagrams the kernel refused toward a client")                 \
  X(packets_to_peer, "packets relayed client -> peer")                                  \
  X(bytes_to_peer, "payload bytes relayed client -> peer")                              \
  X(packets_to_client, "packets relayed peer -> client")                                \
  X(bytes_to_client, "payload bytes relayed peer -> client")                            \
  X(kernel_drops, "datagrams the kernel dropped on our sockets (SO_RXQ_OVFL)")           \
  X(relay_port_refused, "relay ports the kernel refused to bind (EADDRINUSE); each cools down") \
  X(auth_revoked, "requests refused with 401: the credential was revoked")             \
  X(redirects_anycast, "Allocates on an anycast address answered 300 to this node's unicast address") \
  X(redirects_drain, "Allocates on a draining node answered 300 to another node")       \
  X(drain_refused, "Allocates on a draining node refused with 508: no alternate node")  \
  X(closed_expired, "allocations ended: lifetime ran out")                              \
  X(closed_deleted, "allocations ended: Refresh lifetime 0")                            \
  X(closed_connection, "allocations ended: their TCP/TLS connection closed")            \
  X(closed_shutdown, "allocations ended: the server stopped")                           \
  X(closed_credential_expired, "allocations ended: their REST credential expired (auth.enforce_expiry)") \
  X(closed_revoked, "allocations ended: their credential was revoked")                    \
  X(closed_admin, "allocations ended by the admin API (DELETE /admin/sessions)")         \
  X(closed_reloaded, "allocations ended: a config reload removed their user, secret or tenant") \
  X(reload_peers_removed, "permissions and channels removed: a config reload denied their peer") \
  X(nat_changed, "Binding CHANGE-REQUESTs answered from another address or port (RFC 5780)") \
  X(nat_refused, "Binding RFC 5780 attributes refused: 420 without stun.other_ip, 400 malformed") \
  X(nat_not_binding, "requests other than Binding to an RFC 5780 extra address, answered 400") \
  X(tcp_relay_accepted, "TCP relay: peer connections accepted (ConnectionAttempt sent)")        \
  X(tcp_relay_no_permission, "TCP relay: peer connections or Connects refused: no permission or the peer policy") \
  X(tcp_relay_connected, "TCP relay: Connect requests that connected to the peer")             \
  X(tcp_relay_connect_failed, "TCP relay: Connect requests answered 447 (refused, unreachable, timeout)") \
  X(tcp_relay_exists, "TCP relay: Connect requests answered 446 (connection already exists)")   \
  X(tcp_relay_bound, "TCP relay: ConnectionBind requests that made a data connection")          \
  X(tcp_relay_bind_failed, "TCP relay: ConnectionBind requests refused (unknown or expired id, wrong user, control connection)") \
  X(tcp_relay_timeout, "TCP relay: peer connections closed unbound after 30 s")                 \
  X(tcp_relay_handed_off, "TCP relay: ConnectionBind connections moved to the worker that owns the allocation") \
  X(tcp_relay_over_limit, "TCP relay: peer connections or Connects refused: the relay holds its maximum of connections")

// What one worker counted for one tenant (X(name, help)).
#define ANYTURN_TENANT_COUNTERS(X)                                       \
  X(allocations_created, "allocations created")                          \
  X(allocations_ended, "allocations ended, for any reason")              \
  X(quota_rejected, "Allocate refused with 486")                         \
  X(bandwidth_dropped, "packets dropped by the bandwidth limit")         \
  X(packet_rate_dropped, "packets dropped by the packet rate limit")     \
  X(byte_rate_dropped, "packets dropped by the byte rate limit")         \
  X(limit_rejected_peers, "508: the allocation's max_peers")             \
  X(limit_rejected_channels, "508: the allocation's max_channels")       \
  X(limit_rejected_permission_rate, "508: new permissions too fast")     \
  X(packets_to_peer, "packets relayed client -> peer")                   \
  X(bytes_to_peer, "payload bytes relayed client -> peer")               \
  X(packets_to_client, "packets relayed peer -> client")                 \
  X(bytes_to_client, "payload bytes relayed peer -> client")

struct alignas(64) tenant_counters {
#define ANYTURN_DECLARE_COUNTER(name, help) std::atomic<std::uint64_t> name{0};
  ANYTURN_TENANT_COUNTERS(ANYTURN_DECLARE_COUNTER)
#undef ANYTURN_DECLARE_COUNTER
  std::array<std::atomic<std::uint64_t>, 4> active{};  // gauge, by relay::transport
};

// Upper bounds (seconds) of the allocation-duration histogram buckets; one
// more bucket counts everything longer (+Inf).
inline constexpr std::array<std::int64_t, 8> allocation_duration_bounds_s{1,   10,   60,   300,
                                                                          600, 1800, 3600, 10800};

struct alignas(64) worker_counters {
#define ANYTURN_DECLARE_COUNTER(name, help) std::atomic<std::uint64_t> name{0};
  ANYTURN_WORKER_COUNTERS(ANYTURN_DECLARE_COUNTER)
#undef ANYTURN_DECLARE_COUNTER
  std::atomic<std::uint64_t> active_allocations{0};  // gauge
  // Allocation durations: per-bucket (not cumulative) counts, last is +Inf.
  std::array<std::atomic<std::uint64_t>, allocation_duration_bounds_s.size() + 1>
      allocation_duration_buckets{};
  std::atomic<std::uint64_t> allocation_duration_sum_ms{0};
  // One block per tenant (index = auth::tenant_index). Sized by the worker's
  // core before its thread starts, never resized afterwards.
  std::vector<tenant_counters> tenants;
};

// The block of `tenant` in `c`; an index the worker has no block for counts
// as the default tenant's.
inline tenant_counters& tenant_block(worker_counters& c, std::uint32_t tenant) {
  return c.tenants[tenant < c.tenants.size() ? tenant : 0];
}

// Single-writer increment: no lock prefix on the hot path.
inline void bump(std::atomic<std::uint64_t>& c, std::uint64_t by = 1) {
  c.store(c.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

}  // namespace anyturn::relay
