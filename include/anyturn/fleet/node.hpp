// anyturn::fleet — this node as a member of a fleet whose state is in Redis
// (fleet.redis / --redis; docs/fleet.md).
//
// One object per process, built by the app when fleet.redis is set. It owns
// the fleet thread (its own io_context; never a worker) and two Redis
// connections (commands, and a subscriber). Every heartbeat it:
//  * announces this node (anyturn:node:<id>, a TTL of 3 heartbeats) and
//    reads the directory, setting fleet_signals::set_drain_target() to the
//    least-loaded healthy node that is not draining and not this one;
//  * refreshes the tenants' quota leases (quota_lease.hpp), which it also
//    tops up every 100 ms when one runs low.
// Revocations published by any node (publish_revocation) reach every
// node's board through Redis within a round trip; the records live in Redis
// until they expire, and a node that (re)connects reads them all. Commands
// ("drain", "undrain" on anyturn:command:<id> or anyturn:command:all) go to
// hooks::command.
//
// Faults: without Redis the node keeps serving. Quotas fall back to per-node
// limits, revocations still apply locally (and are published when Redis is
// back), and the node reconnects with exponential backoff (100 ms doubling
// to options::max_backoff), then re-announces itself and re-reads the
// revocations. The workers notice nothing but the quota limits.
//
// Thread-safety: the constructor, start() and stop() from one thread (the
// main thread); publish_revocation() and collect() from any thread.
#pragma once

#include <anyturn/auth/revocations.hpp>
#include <anyturn/turn/fleet_signals.hpp>
#include <anyturn/turn/quota.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace anyturn::metrics {
class sink;
}

namespace anyturn::fleet {

// A tenant's fleet-wide allocation quota. options::tenants is indexed like
// auth::tenant_index: [0] the default tenant (id ""), [k+1] tenants[k].
struct tenant_limit {
  std::string id;
  std::uint32_t max_allocations = 0;  // 0: no quota, nothing leased
};

struct options {
  std::string redis_url;       // redis://[[user]:password@]host[:port][/db]
  std::string node_id;         // this node's id in the directory (not empty)
  turn::alternate_node self;   // what other nodes redirect to
  std::vector<tenant_limit> tenants;
  std::chrono::milliseconds heartbeat{1000};
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds max_backoff{2000};
  std::chrono::milliseconds quota_check{100};
  // Where a drain sends new clients when the directory offers no node (or
  // Redis is gone): fleet.drain_alternate. nullopt: nowhere (508).
  std::optional<turn::alternate_node> fallback_target;
};

// Called on the fleet thread. Any may be empty.
struct hooks {
  std::function<std::uint64_t()> allocations;  // this node's live allocations
  std::function<double()> load;                // lower is preferred as a target
  std::function<bool()> draining;              // announced in the directory
  // A Redis command asked this node to drain (true) or undrain (false).
  // Empty: the node only sets fleet_signals::set_draining.
  std::function<void(bool drain)> command;
};

// What anyturn_fleet_redis_errors_total{op} counts.
enum class fleet_op : std::uint8_t {
  connect,             // a connection attempt failed (refused, AUTH, SELECT, timeout)
  connection_lost,     // an established connection went away (or stopped answering)
  announce,            // SET/SADD of this node's record
  directory,           // reading the directory
  revocation_publish,  // storing or publishing a revocation
  revocation_read,     // reading the stored revocations at (re)connect
  lease,               // a quota lease request
  bad_record,          // a record, message or command from Redis that did not parse
  count_
};
std::string_view to_string(fleet_op op);

class node {
 public:
  // Throws std::invalid_argument with a clear message on a bad URL, on
  // rediss:// (this build has no TLS to Redis) and on an empty node id.
  node(options opts, hooks h, std::shared_ptr<turn::fleet_signals> signals,
       std::shared_ptr<auth::revocation_board> revocations, std::shared_ptr<turn::tenant_quota> quotas);
  ~node();  // stop()
  node(const node&) = delete;
  node& operator=(const node&) = delete;

  // Starts the fleet thread; it connects in the background (the caller
  // never waits for Redis).
  void start();
  // Stops and joins the fleet thread. This node's directory record is
  // deleted when Redis is reachable; its quota leases expire on their own.
  void stop();

  // Any thread: adds `r` to the local board at once, then stores and
  // publishes it from the fleet thread (or when Redis is back).
  void publish_revocation(const auth::revocation& r);

  // Any thread (the metrics scrape): anyturn_fleet_redis_up,
  // anyturn_fleet_redis_errors_total{op}, anyturn_fleet_revocations_total{source},
  // anyturn_fleet_nodes, anyturn_fleet_reconnects_total,
  // anyturn_fleet_quota_leased{tenant}, anyturn_fleet_quota_per_node{tenant}.
  void collect(metrics::sink& s) const;

  // Status (any thread), for tests and the shutdown summary.
  [[nodiscard]] bool redis_up() const;
  [[nodiscard]] std::uint64_t errors(fleet_op op) const;
  [[nodiscard]] std::uint64_t revocations_received() const;  // from Redis, new to the board
  [[nodiscard]] std::size_t nodes_seen() const;               // healthy nodes, this one included
  // Units leased for tenant `t`; nullopt while the tenant is on its per-node limit.
  [[nodiscard]] std::optional<std::uint32_t> leased(std::size_t t) const;

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

}  // namespace anyturn::fleet
