// anyturn::metrics — the net layer's counters (net::net_counters) in the
// anyturn metric set.
//
// net_metrics() returns a collector for registry::add_collector(). Like
// turn_metrics, it loads every worker's relaxed atomics at scrape time,
// sums them and emits the families below; a scrape never blocks or slows a
// worker. Every ANYTURN_NET_COUNTERS entry maps to exactly one series
// (checked at compile time). The counters come from the Asio-free
// <anyturn/net/counters.hpp>: metrics does not link the net layer.
//
// docs/metrics.md describes each family.
#pragma once

#include <anyturn/metrics/registry.hpp>
#include <anyturn/net/counters.hpp>

#include <span>
#include <string_view>
#include <vector>

namespace anyturn::metrics {

// A collector for every ANYTURN_NET_COUNTERS entry (and the two net gauges)
// of the given workers, summed at scrape time (relaxed loads; never blocks a
// worker). The counters must outlive the collector. See net_counter_mappings.
//
//   anyturn_connections_open                         gauge
//   anyturn_relay_sockets_open                       gauge
//   anyturn_connections_total{result}                counter  accepted, refused_total_limit,
//                                                             refused_per_ip_limit
//   anyturn_accept_errors_total                      counter
//   anyturn_tls_handshakes_total{result}             counter  ok, failed, timeout
//   anyturn_connections_closed_total{reason}         counter  idle_timeout, framing_error,
//                                                             message_too_large, io_error
//   anyturn_dropped_packets_total{reason}            counter  peer_truncated, write_queue_full,
//                                                             handoff_queue_full
//   anyturn_stream_write_dropped_bytes_total         counter
//   anyturn_receive_errors_total                     counter
//   anyturn_worker_wakeups_total{cause}              counter  socket, coalesce_window
//   anyturn_worker_busy_polls_total{result}          counter  hit, miss
//   anyturn_udp_gso_messages_total                   counter
//   anyturn_udp_gso_datagrams_total                  counter
//   anyturn_udp_gro_messages_total                   counter
//   anyturn_udp_gro_datagrams_total                  counter
//   anyturn_worker_handoff_total{direction}          counter  out, in
registry::collector net_metrics(std::vector<const net::net_counters*> workers);

// Where one net counter goes (family as rendered, at most one label).
struct net_counter_mapping {
  std::string_view counter_name;  // the X-macro name
  std::string_view family;
  std::string_view label_name;
  std::string_view label_value;
};
// One entry per ANYTURN_NET_COUNTERS counter, in X-macro order (checked at
// compile time: a counter without a mapping fails the build).
std::span<const net_counter_mapping> net_counter_mappings();

}  // namespace anyturn::metrics
