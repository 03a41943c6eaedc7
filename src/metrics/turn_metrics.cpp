// The anyturn metric set: every worker counter mapped to one series.
#include <anyturn/metrics/turn_metrics.hpp>

#include "family_help.hpp"

#include <algorithm>
#include <atomic>

namespace anyturn::metrics {
namespace {

using wc = worker_counter;

// One row per X-macro counter, in X-macro order (checked below).
constexpr std::array<counter_mapping, worker_counter_count> mappings{{
    {wc::packets_received, "packets_received", "anyturn_received_packets_total", {}, {}},
    {wc::malformed_dropped, "malformed_dropped", "anyturn_dropped_packets_total", "reason", "malformed"},
    {wc::bad_fingerprint_dropped, "bad_fingerprint_dropped", "anyturn_dropped_packets_total", "reason", "bad_fingerprint"},
    {wc::unknown_dropped, "unknown_dropped", "anyturn_dropped_packets_total", "reason", "unknown"},
    {wc::binding_requests, "binding_requests", "anyturn_requests_total", "method", "binding"},
    {wc::allocate_requests, "allocate_requests", "anyturn_requests_total", "method", "allocate"},
    {wc::refresh_requests, "refresh_requests", "anyturn_requests_total", "method", "refresh"},
    {wc::create_permission_requests, "create_permission_requests", "anyturn_requests_total", "method", "create_permission"},
    {wc::channel_bind_requests, "channel_bind_requests", "anyturn_requests_total", "method", "channel_bind"},
    {wc::send_indications, "send_indications", "anyturn_indications_total", "method", "send"},
    {wc::retransmits_answered, "retransmits_answered", "anyturn_retransmits_answered_total", {}, {}},
    {wc::responses_success, "responses_success", "anyturn_responses_total", "class", "success"},
    {wc::responses_error, "responses_error", "anyturn_responses_total", "class", "error"},
    {wc::auth_challenges, "auth_challenges", "anyturn_auth_challenges_total", {}, {}},
    {wc::auth_bad_integrity, "auth_bad_integrity", "anyturn_auth_failures_total", "reason", "bad_integrity"},
    {wc::auth_unknown_user, "auth_unknown_user", "anyturn_auth_failures_total", "reason", "unknown_user"},
    {wc::auth_expired_rest, "auth_expired_rest", "anyturn_auth_failures_total", "reason", "expired"},
    {wc::auth_stale_nonce, "auth_stale_nonce", "anyturn_auth_failures_total", "reason", "stale_nonce"},
    {wc::auth_bad_nonce, "auth_bad_nonce", "anyturn_auth_failures_total", "reason", "bad_nonce"},
    {wc::unauth_rate_dropped, "unauth_rate_dropped", "anyturn_dropped_packets_total", "reason", "unauth_rate"},
    {wc::auth_fail_rate_dropped, "auth_fail_rate_dropped", "anyturn_dropped_packets_total", "reason", "auth_fail_rate"},
    {wc::auth_bad_algorithm, "auth_bad_algorithm", "anyturn_auth_failures_total", "reason", "bad_password_algorithm"},
    {wc::allocations_created, "allocations_created", "anyturn_allocations_total", "result", "created"},
    {wc::allocations_expired, "allocations_expired", "anyturn_allocations_total", "result", "expired"},
    {wc::allocations_deleted, "allocations_deleted", "anyturn_allocations_total", "result", "deleted"},
    {wc::allocations_closed, "allocations_closed", "anyturn_allocations_total", "result", "closed"},
    {wc::allocations_failed_ports, "allocations_failed_ports", "anyturn_allocations_total", "result", "failed_ports"},
    {wc::allocations_failed_quota, "allocations_failed_quota", "anyturn_allocations_total", "result", "failed_quota"},
    {wc::bandwidth_dropped, "bandwidth_dropped", "anyturn_dropped_packets_total", "reason", "bandwidth"},
    {wc::packet_rate_dropped, "packet_rate_dropped", "anyturn_dropped_packets_total", "reason", "packet_rate"},
    {wc::byte_rate_dropped, "byte_rate_dropped", "anyturn_dropped_packets_total", "reason", "byte_rate"},
    {wc::limit_rejected_peers, "limit_rejected_peers", "anyturn_allocation_limit_rejections_total", "reason", "peers"},
    {wc::limit_rejected_channels, "limit_rejected_channels", "anyturn_allocation_limit_rejections_total", "reason", "channels"},
    {wc::limit_rejected_permission_rate, "limit_rejected_permission_rate", "anyturn_allocation_limit_rejections_total", "reason", "permission_rate"},
    {wc::peer_denied, "peer_denied", "anyturn_peer_denied_total", "reason", "policy"},
    {wc::peer_denied_self, "peer_denied_self", "anyturn_peer_denied_total", "reason", "self"},
    {wc::self_peer_dropped, "self_peer_dropped", "anyturn_dropped_packets_total", "reason", "self_peer"},
    {wc::no_permission_dropped, "no_permission_dropped", "anyturn_dropped_packets_total", "reason", "no_permission"},
    {wc::no_allocation_dropped, "no_allocation_dropped", "anyturn_dropped_packets_total", "reason", "no_allocation"},
    {wc::unbound_channel_dropped, "unbound_channel_dropped", "anyturn_dropped_packets_total", "reason", "unbound_channel"},
    {wc::relay_send_failed, "relay_send_failed", "anyturn_dropped_packets_total", "reason", "relay_send_failed"},
    {wc::client_send_failed, "client_send_failed", "anyturn_dropped_packets_total", "reason", "client_send_failed"},
    {wc::packets_to_peer, "packets_to_peer", "anyturn_relayed_packets_total", "direction", "to_peer"},
    {wc::bytes_to_peer, "bytes_to_peer", "anyturn_relayed_bytes_total", "direction", "to_peer"},
    {wc::packets_to_client, "packets_to_client", "anyturn_relayed_packets_total", "direction", "to_client"},
    {wc::bytes_to_client, "bytes_to_client", "anyturn_relayed_bytes_total", "direction", "to_client"},
    {wc::kernel_drops, "kernel_drops", "anyturn_dropped_packets_total", "reason", "kernel"},
    {wc::relay_port_refused, "relay_port_refused", "anyturn_relay_port_refused_total", {}, {}},
    {wc::auth_revoked, "auth_revoked", "anyturn_auth_failures_total", "reason", "revoked"},
    {wc::redirects_anycast, "redirects_anycast", "anyturn_redirects_total", "reason", "anycast"},
    {wc::redirects_drain, "redirects_drain", "anyturn_redirects_total", "reason", "drain"},
    {wc::drain_refused, "drain_refused", "anyturn_drain_refused_total", {}, {}},
    {wc::closed_expired, "closed_expired", "anyturn_allocations_closed_total", "reason", "expired"},
    {wc::closed_deleted, "closed_deleted", "anyturn_allocations_closed_total", "reason", "deleted"},
    {wc::closed_connection, "closed_connection", "anyturn_allocations_closed_total", "reason", "closed"},
    {wc::closed_shutdown, "closed_shutdown", "anyturn_allocations_closed_total", "reason", "shutdown"},
    {wc::closed_credential_expired, "closed_credential_expired", "anyturn_allocations_closed_total", "reason", "credential_expired"},
    {wc::closed_revoked, "closed_revoked", "anyturn_allocations_closed_total", "reason", "revoked"},
    {wc::closed_admin, "closed_admin", "anyturn_allocations_closed_total", "reason", "admin"},
    {wc::closed_reloaded, "closed_reloaded", "anyturn_allocations_closed_total", "reason", "reloaded"},
    {wc::reload_peers_removed, "reload_peers_removed", "anyturn_reload_peers_removed_total", {}, {}},
    {wc::nat_changed, "nat_changed", "anyturn_nat_discovery_total", "result", "changed"},
    {wc::nat_refused, "nat_refused", "anyturn_nat_discovery_total", "result", "refused"},
    {wc::nat_not_binding, "nat_not_binding", "anyturn_nat_discovery_total", "result", "not_binding"},
    {wc::tcp_relay_accepted, "tcp_relay_accepted", "anyturn_tcp_relay_connections_total", "result", "accepted"},
    {wc::tcp_relay_no_permission, "tcp_relay_no_permission", "anyturn_tcp_relay_connections_total", "result", "no_permission"},
    {wc::tcp_relay_connected, "tcp_relay_connected", "anyturn_tcp_relay_connections_total", "result", "connected"},
    {wc::tcp_relay_connect_failed, "tcp_relay_connect_failed", "anyturn_tcp_relay_connections_total", "result", "connect_failed"},
    {wc::tcp_relay_exists, "tcp_relay_exists", "anyturn_tcp_relay_connections_total", "result", "already_exists"},
    {wc::tcp_relay_bound, "tcp_relay_bound", "anyturn_tcp_relay_connections_total", "result", "bound"},
    {wc::tcp_relay_bind_failed, "tcp_relay_bind_failed", "anyturn_tcp_relay_connections_total", "result", "bind_failed"},
    {wc::tcp_relay_timeout, "tcp_relay_timeout", "anyturn_tcp_relay_connections_total", "result", "timeout"},
    {wc::tcp_relay_handed_off, "tcp_relay_handed_off", "anyturn_tcp_relay_connections_total", "result", "handed_off"},
    {wc::tcp_relay_over_limit, "tcp_relay_over_limit", "anyturn_tcp_relay_connections_total", "result", "over_limit"},
}};

constexpr bool mappings_in_order() {
  for (std::size_t i = 0; i < mappings.size(); ++i) {
    if (static_cast<std::size_t>(mappings[i].counter) != i) return false;
  }
  return true;
}
static_assert(mappings_in_order(),
              "every ANYTURN_WORKER_COUNTERS entry needs one mapping row, in X-macro order");

// The name of each counter as the X-macro spells it, to check the table.
constexpr std::array<std::string_view, worker_counter_count> names{{
#define ANYTURN_COUNTER_NAME(name, help) #name,
    ANYTURN_WORKER_COUNTERS(ANYTURN_COUNTER_NAME)
#undef ANYTURN_COUNTER_NAME
}};
constexpr bool mapping_names_match() {
  for (std::size_t i = 0; i < mappings.size(); ++i) {
    if (mappings[i].counter_name != names[i]) return false;
  }
  return true;
}
static_assert(mapping_names_match(), "mapping row names must match the X-macro");

using counter_member = std::atomic<std::uint64_t> relay::worker_counters::*;
constexpr std::array<counter_member, worker_counter_count> members{{
#define ANYTURN_COUNTER_MEMBER(name, help) &relay::worker_counters::name,
    ANYTURN_WORKER_COUNTERS(ANYTURN_COUNTER_MEMBER)
#undef ANYTURN_COUNTER_MEMBER
}};

// Per-tenant counters: same shape, families prefixed anyturn_tenant_.
enum class tc : std::size_t {
#define ANYTURN_TENANT_COUNTER_ID(name, help) name,
  ANYTURN_TENANT_COUNTERS(ANYTURN_TENANT_COUNTER_ID)
#undef ANYTURN_TENANT_COUNTER_ID
  count_
};
struct tenant_mapping {
  tc counter;
  std::string_view family;
  std::string_view label_name;
  std::string_view label_value;
};
constexpr std::array<tenant_mapping, static_cast<std::size_t>(tc::count_)> tenant_mappings{{
    {tc::allocations_created, "anyturn_tenant_allocations_total", "result", "created"},
    {tc::allocations_ended, "anyturn_tenant_allocations_total", "result", "ended"},
    {tc::quota_rejected, "anyturn_tenant_allocations_total", "result", "failed_quota"},
    {tc::bandwidth_dropped, "anyturn_tenant_dropped_packets_total", "reason", "bandwidth"},
    {tc::packet_rate_dropped, "anyturn_tenant_dropped_packets_total", "reason", "packet_rate"},
    {tc::byte_rate_dropped, "anyturn_tenant_dropped_packets_total", "reason", "byte_rate"},
    {tc::limit_rejected_peers, "anyturn_tenant_limit_rejections_total", "reason", "peers"},
    {tc::limit_rejected_channels, "anyturn_tenant_limit_rejections_total", "reason", "channels"},
    {tc::limit_rejected_permission_rate, "anyturn_tenant_limit_rejections_total", "reason", "permission_rate"},
    {tc::packets_to_peer, "anyturn_tenant_relayed_packets_total", "direction", "to_peer"},
    {tc::bytes_to_peer, "anyturn_tenant_relayed_bytes_total", "direction", "to_peer"},
    {tc::packets_to_client, "anyturn_tenant_relayed_packets_total", "direction", "to_client"},
    {tc::bytes_to_client, "anyturn_tenant_relayed_bytes_total", "direction", "to_client"},
}};
constexpr bool tenant_mappings_in_order() {
  for (std::size_t i = 0; i < tenant_mappings.size(); ++i) {
    if (static_cast<std::size_t>(tenant_mappings[i].counter) != i) return false;
  }
  return true;
}
static_assert(tenant_mappings_in_order(),
              "every ANYTURN_TENANT_COUNTERS entry needs one mapping row, in X-macro order");

using tenant_member = std::atomic<std::uint64_t> relay::tenant_counters::*;
constexpr std::array<tenant_member, tenant_mappings.size()> tenant_members{{
#define ANYTURN_TENANT_MEMBER(name, help) &relay::tenant_counters::name,
    ANYTURN_TENANT_COUNTERS(ANYTURN_TENANT_MEMBER)
#undef ANYTURN_TENANT_MEMBER
}};

using detail::family_help;
constexpr family_help helps[] = {
    {"anyturn_received_packets_total", "Datagrams and stream frames received from clients."},
    {"anyturn_dropped_packets_total", "Packets dropped, by reason."},
    {"anyturn_requests_total", "STUN/TURN requests received, by method."},
    {"anyturn_indications_total", "STUN/TURN indications received, by method."},
    {"anyturn_retransmits_answered_total",
     "Retransmitted requests answered from the transaction cache."},
    {"anyturn_responses_total", "STUN/TURN responses sent, by class."},
    {"anyturn_auth_challenges_total",
     "401 challenges to requests that carried no credentials (the normal first step)."},
    {"anyturn_auth_failures_total", "Requests that failed authentication, by reason."},
    {"anyturn_allocations_total", "Allocation outcomes: creations, endings and refusals."},
    {"anyturn_allocations_closed_total",
     "Allocations ended, by reason: expired, deleted, closed (connection), shutdown, "
     "credential_expired, revoked, admin, reloaded (a config reload removed the credential)."},
    {"anyturn_reload_peers_removed_total",
     "Permissions and channels removed because a config reload denied their peer."},
    {"anyturn_nat_discovery_total",
     "RFC 5780 Binding outcomes (stun.other_ip): changed (answered from the CHANGE-REQUEST's "
     "address or port), refused (CHANGE-REQUEST, RESPONSE-PORT or PADDING without an alternate "
     "address, or malformed), "
     "not_binding (another request to an extra address, 400)."},
    {"anyturn_redirects_total",
     "Allocates answered 300 Try Alternate, by reason: anycast (to this node's unicast "
     "address), drain (to another node)."},
    {"anyturn_drain_refused_total",
     "Allocates refused with 508 while draining: no alternate node for the client's family and "
     "transport."},
    {"anyturn_peer_denied_total", "Permissions or channels refused (403), by reason: policy (the peer address policy), self (the server's own address)."},
    {"anyturn_allocation_limit_rejections_total",
     "CreatePermission/ChannelBind refused with 508 by limits.allocation, by reason."},
    {"anyturn_tcp_relay_connections_total",
     "TCP relay (RFC 6062) peer connections, Connect and ConnectionBind outcomes, by result."},
    {"anyturn_relayed_packets_total", "Packets relayed, by direction."},
    {"anyturn_relayed_bytes_total", "Application payload bytes relayed, by direction."},
    {"anyturn_relay_port_refused_total",
     "Relay ports the kernel refused to bind (in use by another socket); each cools down."},
    {"anyturn_tenant_allocations_total",
     "Allocation outcomes per tenant: created, ended (any reason), refused by quota."},
    {"anyturn_tenant_dropped_packets_total", "Packets dropped per tenant, by reason."},
    {"anyturn_tenant_limit_rejections_total",
     "CreatePermission/ChannelBind refused with 508 by limits.allocation per tenant, by reason."},
    {"anyturn_tenant_relayed_packets_total", "Packets relayed per tenant, by direction."},
    {"anyturn_tenant_relayed_bytes_total",
     "Application payload bytes relayed per tenant, by direction."},
};

constexpr std::string_view help_for(std::string_view family) { return detail::help_in(helps, family); }

constexpr bool every_family_has_help() {
  for (const auto& m : mappings) {
    if (help_for(m.family).empty()) return false;
  }
  for (const auto& m : tenant_mappings) {
    if (help_for(m.family).empty()) return false;
  }
  return true;
}
static_assert(every_family_has_help(), "add a HELP text for each family");

constexpr std::array<std::string_view, 4> transport_names{"udp", "tcp", "tls", "dtls"};

}  // namespace

std::span<const counter_mapping> counter_mappings() { return mappings; }

std::vector<double> allocation_duration_bounds() {
  std::vector<double> out;
  for (const auto b : relay::allocation_duration_bounds_s) out.push_back(static_cast<double>(b));
  return out;
}

counter_totals::counter_totals() : duration(allocation_duration_bounds()) {}

counter_totals sum_counters(std::span<const relay::worker_counters* const> workers,
                            const turn_metrics_options& options) {
  counter_totals t;
  for (const relay::worker_counters* w : workers) {
    if (w == nullptr) continue;
    ++t.workers;
    for (std::size_t i = 0; i < members.size(); ++i) {
      t.values[i] += (w->*members[i]).load(std::memory_order_relaxed);
    }
    for (std::size_t i = 0; i < t.duration.counts.size() && i < w->allocation_duration_buckets.size();
         ++i) {
      t.duration.counts[i] += w->allocation_duration_buckets[i].load(std::memory_order_relaxed);
    }
    t.duration_sum_ms += w->allocation_duration_sum_ms.load(std::memory_order_relaxed);
    // The vector is sized before the worker starts and never resized.
    if (t.tenants.size() < w->tenants.size()) t.tenants.resize(w->tenants.size());
    for (std::size_t k = 0; k < w->tenants.size(); ++k) {
      const relay::tenant_counters& src = w->tenants[k];
      tenant_totals& dst = t.tenants[k];
      for (std::size_t i = 0; i < tenant_members.size(); ++i) {
        dst.values[i] += (src.*tenant_members[i]).load(std::memory_order_relaxed);
      }
      for (std::size_t i = 0; i < dst.active.size(); ++i) {
        dst.active[i] += src.active[i].load(std::memory_order_relaxed);
      }
    }
    if (options.active_by_transport) {
      const transport_split split = options.active_by_transport(*w);
      for (std::size_t i = 0; i < split.size(); ++i) t.active[i] += split[i];
    } else {
      const auto idx = static_cast<std::size_t>(options.default_transport);
      if (idx < t.active.size()) {
        t.active[idx] += w->active_allocations.load(std::memory_order_relaxed);
      }
    }
  }
  return t;
}

void emit_turn_metrics(sink& s, const counter_totals& totals, const turn_metrics_options& options) {
  // The options' constant labels, then at most one family label.
  std::vector<label> labels;
  labels.reserve(options.const_labels.size() + 1);
  for (const auto& [name, value] : options.const_labels) labels.push_back({name, value});
  const std::size_t base = labels.size();

  s.gauge("anyturn_workers", "Relay worker threads whose counters are summed here.",
          std::span<const label>(labels), totals.workers);

  for (std::size_t i = 0; i < transport_names.size(); ++i) {
    labels.resize(base);
    labels.push_back({"transport", transport_names[i]});
    s.gauge("anyturn_allocations_active", "Allocations currently active, by client transport.",
            std::span<const label>(labels), totals.active[i]);
  }

  for (const counter_mapping& m : mappings) {
    labels.resize(base);
    if (!m.label_name.empty()) labels.push_back({m.label_name, m.label_value});
    s.counter(m.family, help_for(m.family), std::span<const label>(labels),
              totals.values[static_cast<std::size_t>(m.counter)]);
  }

  labels.resize(base);
  histogram_snapshot duration = totals.duration;
  duration.sum = static_cast<double>(totals.duration_sum_ms) / 1000.0;
  s.histogram("anyturn_allocation_duration_seconds",
              "Lifetime of ended allocations, from creation to end, in seconds.",
              std::span<const label>(labels), duration);

  // Per tenant, for the tenants the options name (index = auth::tenant_index).
  const std::size_t tenants = std::min(options.tenant_ids.size(), totals.tenants.size());
  for (std::size_t k = 0; k < tenants; ++k) {
    const std::string_view id =
        options.tenant_ids[k].empty() ? std::string_view("default") : options.tenant_ids[k];
    const tenant_totals& tt = totals.tenants[k];
    for (std::size_t i = 0; i < transport_names.size(); ++i) {
      labels.resize(base);
      labels.push_back({"tenant", id});
      labels.push_back({"transport", transport_names[i]});
      s.gauge("anyturn_tenant_allocations_active",
              "Allocations currently active per tenant, by client transport.",
              std::span<const label>(labels), tt.active[i]);
    }
    for (const tenant_mapping& m : tenant_mappings) {
      labels.resize(base);
      labels.push_back({"tenant", id});
      labels.push_back({m.label_name, m.label_value});
      s.counter(m.family, help_for(m.family), std::span<const label>(labels),
                tt.values[static_cast<std::size_t>(m.counter)]);
    }
  }
}

registry::collector turn_metrics(std::vector<const relay::worker_counters*> workers,
                                 turn_metrics_options options) {
  return [workers = std::move(workers), options = std::move(options)](sink& s) {
    emit_turn_metrics(s, sum_counters(workers, options), options);
  };
}

registry::collector turn_metrics(std::span<const relay::worker_counters* const> workers,
                                 turn_metrics_options options) {
  return turn_metrics(std::vector<const relay::worker_counters*>(workers.begin(), workers.end()),
                      std::move(options));
}

}  // namespace anyturn::metrics
