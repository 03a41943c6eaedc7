#include <anyturn/app/summary.hpp>

#include <spdlog/fmt/fmt.h>

namespace anyturn::app {

void accumulate(counter_totals& into, const relay::worker_counters& from) {
#define ANYTURN_ADD_FIELD(name, help) into.name += from.name.load(std::memory_order_relaxed);
  ANYTURN_WORKER_COUNTERS(ANYTURN_ADD_FIELD)
#undef ANYTURN_ADD_FIELD
  into.active_allocations += from.active_allocations.load(std::memory_order_relaxed);
}

void accumulate(net_totals& into, const net::net_counters& from) {
#define ANYTURN_ADD_NET_FIELD(name, help) into.name += from.name.load(std::memory_order_relaxed);
  ANYTURN_NET_COUNTERS(ANYTURN_ADD_NET_FIELD)
#undef ANYTURN_ADD_NET_FIELD
  into.relay_sockets_open += from.relay_sockets_open.load(std::memory_order_relaxed);
  into.connections_open += from.connections_open.load(std::memory_order_relaxed);
}

std::string stream_summary_line(const net_totals& t) {
  return fmt::format(
      "connections {} accepted (refused: {} total limit, {} per-address limit), TLS handshakes {} "
      "ok / {} failed / {} timed out, closed: {} idle, {} framing, {} too large, {} without a "
      "first message, {} unauthenticated memory; write queue full: {} messages / {} bytes dropped",
      t.connections_accepted, t.connections_refused_total, t.connections_refused_per_ip,
      t.tls_handshakes, t.tls_handshake_failures, t.tls_handshake_timeouts, t.idle_timeouts,
      t.stream_framing_errors, t.stream_too_large, t.first_message_timeouts,
      t.unauth_memory_closes, t.stream_write_dropped,
      t.stream_write_dropped_bytes);
}

std::string summary_line(const counter_totals& t) {
  return fmt::format(
      "allocations created {} (expired {}, deleted {}, closed {}; refused: {} no port, {} quota), "
      "client->peer {} packets / {} bytes, peer->client {} packets / {} bytes, "
      "client packets {} ({} malformed), responses {} ok / {} error, kernel drops {}",
      t.allocations_created, t.allocations_expired, t.allocations_deleted, t.allocations_closed,
      t.allocations_failed_ports, t.allocations_failed_quota, t.packets_to_peer, t.bytes_to_peer,
      t.packets_to_client, t.bytes_to_client, t.packets_received, t.malformed_dropped,
      t.responses_success, t.responses_error, t.kernel_drops);
}

}  // namespace anyturn::app
