// anyturn::metrics — the anyturn metric set, built from the workers' counters.
//
// turn_metrics() returns a collector for registry::add_collector(). At scrape
// time it loads every worker's relaxed atomics (never locks, never writes),
// sums them and emits the families below. Workers are never slowed by a
// scrape. Every counter of ANYTURN_WORKER_COUNTERS maps to exactly one series
// (checked at compile time: adding a counter without a mapping fails the build).
//
//   anyturn_workers                              gauge
//   anyturn_allocations_active{transport}        gauge
//   anyturn_received_packets_total               counter
//   anyturn_requests_total{method}               counter
//   anyturn_indications_total{method}            counter
//   anyturn_retransmits_answered_total           counter
//   anyturn_responses_total{class}               counter
//   anyturn_auth_challenges_total                counter
//   anyturn_auth_failures_total{reason}          counter
//   anyturn_allocations_total{result}            counter
//   anyturn_peer_denied_total                    counter
//   anyturn_relayed_packets_total{direction}     counter
//   anyturn_relayed_bytes_total{direction}       counter
//   anyturn_dropped_packets_total{reason}        counter
//   anyturn_relay_port_refused_total             counter
//   anyturn_allocation_duration_seconds          histogram
//   anyturn_tenant_allocations_active{tenant,transport}   gauge   (options.tenant_ids)
//   anyturn_tenant_allocations_total{tenant,result}       counter
//   anyturn_tenant_dropped_packets_total{tenant,reason}   counter
//   anyturn_tenant_relayed_packets_total{tenant,direction} counter
//   anyturn_tenant_relayed_bytes_total{tenant,direction}  counter
//
// docs/metrics.md describes each one.
#pragma once

#include <anyturn/metrics/registry.hpp>
#include <anyturn/relay/counters.hpp>
#include <anyturn/relay/io.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace anyturn::metrics {

// The X-macro counters as an index, in declaration order.
enum class worker_counter : std::size_t {
#define ANYTURN_COUNTER_ID(name, help) name,
  ANYTURN_WORKER_COUNTERS(ANYTURN_COUNTER_ID)
#undef ANYTURN_COUNTER_ID
};
#define ANYTURN_COUNTER_ONE(name, help) +1
inline constexpr std::size_t worker_counter_count = 0 ANYTURN_WORKER_COUNTERS(ANYTURN_COUNTER_ONE);
#undef ANYTURN_COUNTER_ONE

// Where one worker counter is exposed: family (full name, as rendered) and
// its single label, if any.
struct counter_mapping {
  worker_counter counter;
  std::string_view counter_name;  // the X-macro name, e.g. "auth_stale_nonce"
  std::string_view family;        // e.g. "anyturn_auth_failures_total"
  std::string_view label_name;    // empty: the family has no label
  std::string_view label_value;
};
// One entry per worker counter, in X-macro order.
std::span<const counter_mapping> counter_mappings();

// Active allocations of one worker split by the client's transport, indexed
// by relay::transport (udp, tcp, tls, dtls).
using transport_split = std::array<std::uint64_t, 4>;

#define ANYTURN_COUNTER_ONE(name, help) +1
inline constexpr std::size_t tenant_counter_count = 0 ANYTURN_TENANT_COUNTERS(ANYTURN_COUNTER_ONE);
#undef ANYTURN_COUNTER_ONE

// One tenant's counters summed over the workers (ANYTURN_TENANT_COUNTERS order).
struct tenant_totals {
  std::array<std::uint64_t, tenant_counter_count> values{};
  transport_split active{};
};

// The allocation-duration histogram's bounds, in seconds
// (relay::allocation_duration_bounds_s).
std::vector<double> allocation_duration_bounds();

// Sum of the counters of several workers (relaxed loads).
struct counter_totals {
  counter_totals();
  std::array<std::uint64_t, worker_counter_count> values{};
  transport_split active{};  // anyturn_allocations_active by transport
  std::size_t workers = 0;
  histogram_snapshot duration;    // counts only; the sum is duration_sum_ms
  std::uint64_t duration_sum_ms = 0;
  std::vector<tenant_totals> tenants;  // index = auth::tenant_index
  [[nodiscard]] std::uint64_t operator[](worker_counter c) const {
    return values[static_cast<std::size_t>(c)];
  }
};

struct turn_metrics_options {
  // Added to every series, e.g. {{"tenant", "acme"}}. Label names must be
  // valid and must not clash with the families' own labels; values must come
  // from configuration (bounded), never from clients.
  std::vector<std::pair<std::string, std::string>> const_labels;

  // Splits one worker's active allocations by client transport. The core
  // keeps a single total (worker_counters::active_allocations), so by default
  // all of it is reported under `default_transport`; once the core counts per
  // transport, pass a function that reads those counters.
  std::function<transport_split(const relay::worker_counters&)> active_by_transport;
  relay::transport default_transport = relay::transport::udp;

  // Tenant ids by auth::tenant_index ("" for the default tenant, shown as
  // tenant="default"). Per-tenant series are emitted for these tenants only;
  // empty: none. Ids come from configuration, so the label set is bounded.
  std::vector<std::string> tenant_ids;
};

// Loads and sums every worker's counters. Any thread; never blocks a worker.
counter_totals sum_counters(std::span<const relay::worker_counters* const> workers,
                            const turn_metrics_options& options = {});

// Writes the anyturn families for `totals` into `s`.
void emit_turn_metrics(sink& s, const counter_totals& totals,
                       const turn_metrics_options& options = {});

// A collector doing sum_counters + emit_turn_metrics at each scrape. The
// counters pointed to must outlive the collector (remove it before the
// workers go away). Call it once per label set (e.g. per tenant) to add
// more series to the same families.
registry::collector turn_metrics(std::vector<const relay::worker_counters*> workers,
                                 turn_metrics_options options = {});
registry::collector turn_metrics(std::span<const relay::worker_counters* const> workers,
                                 turn_metrics_options options = {});

}  // namespace anyturn::metrics
