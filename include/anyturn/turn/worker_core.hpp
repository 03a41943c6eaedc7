// anyturn::turn — the per-worker TURN core (RFC 8656, RFC 6156).
//
// What a worker's net layer calls for every packet: a deterministic function
// of (worker state, message, now). STUN requests go to the TURN handlers
// (src/turn/: authentication, Allocate/Refresh, CreatePermission/
// ChannelBind), which update this worker's relay tables; ChannelData, Send
// indications and peer datagrams go straight to the relay core's forwarding
// decision (relay::forwarder). Both act through the relay::io_port seam
// (reply, forward, open/close relay sockets). It owns every allocation whose
// 5-tuple its worker received; nothing here is touched by another thread,
// so nothing takes a lock.
#pragma once

#include <anyturn/auth/credentials.hpp>
#include <anyturn/auth/nonce.hpp>
#include <anyturn/auth/peer_policy.hpp>
#include <anyturn/auth/revocations.hpp>
#include <anyturn/relay/allocation.hpp>
#include <anyturn/relay/counters.hpp>
#include <anyturn/relay/fast_path.hpp>
#include <anyturn/relay/io.hpp>
#include <anyturn/relay/own_addresses.hpp>
#include <anyturn/relay/port_pool.hpp>
#include <anyturn/stun/message.hpp>
#include <anyturn/turn/config_board.hpp>
#include <anyturn/turn/fleet_signals.hpp>
#include <anyturn/turn/quota.hpp>
#include <anyturn/turn/session_id.hpp>
#include <anyturn/turn/sessions.hpp>
#include <anyturn/turn/usage.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace anyturn::turn {

// A tenant's limits (index = auth::tenant_index). 0 means no limit.
struct tenant_policy {
  std::string id;
  std::uint32_t max_allocations = 0;           // concurrent, all workers: 486
  std::uint32_t max_allocations_per_user = 0;  // 0: the global per-user limit
  std::uint64_t bandwidth_bytes_per_s = 0;     // per allocation, both directions
  relay::allocation_limits allocation;         // limits.allocation with the tenant's keys
};

// A token bucket's parameters: `per_second` tokens a second, at most
// `burst` at once. per_second 0: no limit.
struct rate_limit {
  double per_second = 0;
  std::uint32_t burst = 1;
};

// Immutable, shared by all workers (read-only after start).
struct shared_state {
  std::shared_ptr<const auth::credential_store> credentials;
  std::shared_ptr<const auth::nonce_service> nonces;
  std::shared_ptr<const auth::peer_policy> peers;
  // Relay addresses, each with its own port pool; several of one family add
  // capacity (new allocations rotate over them, skipping full ones). The
  // mutable shared objects, all lock-free or thread-safe, are these pools,
  // the quotas (user_quotas, tenant_usage) and the usage sink.
  struct relay_address {
    stun::endpoint ip;  // port unused
    std::shared_ptr<relay::port_pool> ports;
  };
  std::vector<relay_address> relays;
  // The server's own addresses (relay, listener, HTTP, host interfaces for
  // wildcard listeners; external and anycast addresses belong here too), as
  // peers only on a live allocation's relay port. Null: nothing guarded.
  std::shared_ptr<const relay::own_addresses> own;

  // relay.external_ips: the address XOR-RELAYED-ADDRESS carries for a relay
  // IP (behind 1:1 NAT). A relay IP not listed is announced as it is.
  struct external_mapping {
    stun::endpoint private_ip;  // one of `relays`, port 0
    stun::endpoint public_ip;   // port 0
  };
  std::vector<external_mapping> external_ips;

  // The fleet (docs/fleet.md). An authenticated Allocate that reached one of
  // `anycast_ips` (client_ref::local) gets 300 Try Alternate to the
  // `unicast_ips` address of its family, same port and transport, with
  // ALTERNATE-DOMAIN `alternate_domain` over TLS (when set).
  std::vector<stun::endpoint> anycast_ips;  // port 0
  std::vector<stun::endpoint> unicast_ips;  // port 0, at most one per family
  std::string alternate_domain;
  // Drain state and the node to send new clients to. Null: never draining.
  std::shared_ptr<fleet_signals> fleet;
  // Revoked credentials; each worker polls the generation on its tick.
  // Null: nothing is ever revoked.
  std::shared_ptr<const auth::revocation_board> revocations;
  // Config reloads: the board the app publishes new snapshots on (each
  // worker polls its generation on the tick and switches; a weak pointer,
  // since the board holds the snapshots). Expired: the config never changes.
  std::weak_ptr<config_board> config;
  // reload.revoke_removed: on a switch, an allocation whose credential the
  // new snapshot no longer accepts (user, secret or tenant removed, password
  // changed) ends, reason "reloaded".
  bool revoke_removed = true;
  // auth.enforce_expiry: a REST credential's allocations end at its expiry.
  bool enforce_expiry = true;
  // relay.tcp: TCP relay allocations (RFC 6062) are offered; else 442.
  bool tcp_relay = true;

  std::uint32_t allocation_lifetime_default = 600;
  std::uint32_t allocation_lifetime_max = 3600;
  std::uint32_t permission_lifetime = 300;
  std::uint32_t channel_lifetime = 600;
  std::string software = "anyturn";
  std::uint32_t max_allocations = 200000;  // per worker; beyond: 508
  // limits.allocation, for a tenant index with no policy (`tenants` empty).
  relay::allocation_limits allocation_limits;
  std::shared_ptr<user_quota> user_quotas; // per user across workers; beyond: 486 (may be null)
  // limits.max_allocations_per_user after a reload (the table above keeps
  // its start-up limit); nullopt: user_quotas->limit().
  std::optional<std::uint32_t> max_allocations_per_user;
  // Tenants, index = auth::tenant_index; empty means one default tenant
  // without limits. tenant_usage counts their allocations across workers.
  std::vector<tenant_policy> tenants;
  std::shared_ptr<tenant_quota> tenant_usage;
  std::shared_ptr<usage_sink> usage;       // one record per ended allocation (may be null)
  // Unauthenticated answers (unsigned errors: 401, 438, 400, 420) per source
  // (IPv4 address, IPv6 /64) and worker, over UDP; past it they are dropped.
  rate_limit unauthenticated_per_source{20, 50};
  // Failed authentications per source and, for static users, per username,
  // each per worker; past either, requests are dropped before any check.
  rate_limit auth_failures_per_source{0.2, 10};
  rate_limit auth_failures_per_user{1, 30};
};

class worker_core {
 public:
  // `fast`: this worker's port of the kernel fast path (the XDP offload),
  // which must outlive the core; null: none (user space forwards everything).
  worker_core(std::shared_ptr<const shared_state> shared, relay::io_port& io, relay::worker_counters& counters,
         unsigned worker_index, relay::fast_path* fast = nullptr);
  ~worker_core();
  worker_core(const worker_core&) = delete;
  worker_core& operator=(const worker_core&) = delete;

  // A datagram (UDP) or one framed message (TCP/TLS) from a client.
  void on_client_packet(const relay::client_ref& from, stun::bytes_view data, const relay::now_t& now);
  // A datagram that arrived on relay socket `id` from `peer`.
  void on_peer_packet(relay::relay_id id, const stun::endpoint& peer, stun::bytes_view data,
                      const relay::now_t& now);
  // ---- TCP relay allocations (RFC 6062; tcp_relay.cpp) ----
  // A peer connected to TCP relay `id`. With a live permission for its IP
  // that the peer policy allows, sends ConnectionAttempt with `cid` to the
  // client and returns true; false: the net layer closes it (counted).
  bool on_peer_connection(relay::relay_id id, const stun::endpoint& peer, std::uint32_t cid,
                          const relay::now_t& now);
  // The connect that Connect `cid` started succeeded (the success answer
  // with CONNECTION-ID) or failed (447). False when nobody waits for it any
  // more (the allocation ended): the net layer drops the connection.
  bool on_tcp_connected(std::uint32_t cid, bool ok, const relay::now_t& now);
  // Bytes a data connection of TCP relay `id` relayed: counted in the
  // allocation (usage record) and the relayed-bytes counters.
  void on_tcp_relayed(relay::relay_id id, std::uint64_t to_peer, std::uint64_t to_client);

  // A stream connection closed: its allocation, if any, ends now.
  void on_client_closed(const relay::client_ref& client, const relay::now_t& now);
  // Called at least once a second: expires allocations, permissions,
  // channels, reservations and cached responses.
  void on_tick(const relay::now_t& now);
  // A config reload or a revocation was just published: applies it now
  // instead of on the next tick (the main thread posts this to every
  // worker, so that the fast path stops forwarding for what it ended or
  // denied within 100 ms). Cheap when nothing changed.
  void on_published(const relay::now_t& now);
  // Frees every allocation (clean stop).
  void shutdown(const relay::now_t& now);

  [[nodiscard]] std::size_t allocation_count() const;
  // The snapshot this worker runs on (it changes on a tick after a reload).
  [[nodiscard]] const shared_state& shared() const;
  // Calls `visit` with every allocation of this worker and the user that
  // made it. For invariant checks (tests, the state-machine fuzzer); walks
  // every slot, so never call it on the forwarding path.
  void for_each_allocation(
      const std::function<void(const relay::allocation&, std::string_view user)>& visit) const;

  // ---- the admin API (sessions.cpp); worker thread, never per packet ----
  // One step of a listing: walks at most `max_slots` slots from `from_slot`
  // and returns at most `max_sessions` sessions that match `filter`.
  [[nodiscard]] session_page list_sessions(const session_filter& filter, std::uint32_t from_slot,
                                           std::size_t max_sessions, std::size_t max_slots,
                                           const relay::now_t& now) const;
  // Ends the allocation `id` names (reason "admin"). False: none (another
  // worker's id, a free slot, or a later allocation in that slot).
  bool end_session(const session_id& id, const relay::now_t& now);
  // One step of a bulk end: ends the matching allocations among at most
  // `max_slots` slots from `from_slot` (reason "admin").
  session_page end_sessions(const session_filter& filter, std::uint32_t from_slot,
                            std::size_t max_slots, const relay::now_t& now);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace anyturn::turn
