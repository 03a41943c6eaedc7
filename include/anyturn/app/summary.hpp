// anyturn::app — per-worker counters summed for the shutdown summary.
#pragma once

#include <anyturn/net/counters.hpp>
#include <anyturn/relay/counters.hpp>

#include <cstdint>
#include <span>
#include <string>

namespace anyturn::app {

// A plain snapshot of relay::worker_counters (same X-macro list).
struct counter_totals {
#define ANYTURN_TOTAL_FIELD(name, help) std::uint64_t name = 0;
  ANYTURN_WORKER_COUNTERS(ANYTURN_TOTAL_FIELD)
#undef ANYTURN_TOTAL_FIELD
  std::uint64_t active_allocations = 0;
};

// Adds one worker's counters (relaxed loads; safe while it runs).
void accumulate(counter_totals& into, const relay::worker_counters& from);

// A plain snapshot of net::net_counters (same X-macro list).
struct net_totals {
#define ANYTURN_NET_TOTAL_FIELD(name, help) std::uint64_t name = 0;
  ANYTURN_NET_COUNTERS(ANYTURN_NET_TOTAL_FIELD)
#undef ANYTURN_NET_TOTAL_FIELD
  std::uint64_t relay_sockets_open = 0;
  std::uint64_t connections_open = 0;
};
void accumulate(net_totals& into, const net::net_counters& from);

// "connections 12 accepted (refused: 0 total limit, 3 per-address limit), TLS handshakes 4 ok /
// 1 failed / 0 timed out, closed: 2 idle, 1 framing, 0 too large; write queue full: 7 messages /
// 9000 bytes dropped": the stream part of the shutdown summary.
std::string stream_summary_line(const net_totals& t);

// "allocations created 3 (expired 1, deleted 1, closed 1), client->peer 20 packets / 3200 bytes,
// peer->client ...": the one line logged at shutdown.
std::string summary_line(const counter_totals& t);

}  // namespace anyturn::app
