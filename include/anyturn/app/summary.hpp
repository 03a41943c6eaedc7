// anyturn::app — per-worker counters summed for the shutdown summary.
#pragma once

#include <anyturn/turn/counters.hpp>

#include <cstdint>
#include <span>
#include <string>

namespace anyturn::app {

// A plain snapshot of turn::worker_counters (same X-macro list).
struct counter_totals {
#define ANYTURN_TOTAL_FIELD(name, help) std::uint64_t name = 0;
  ANYTURN_WORKER_COUNTERS(ANYTURN_TOTAL_FIELD)
#undef ANYTURN_TOTAL_FIELD
  std::uint64_t active_allocations = 0;
};

// Adds one worker's counters (relaxed loads; safe while it runs).
void accumulate(counter_totals& into, const turn::worker_counters& from);

// "allocations created 3 (expired 1, deleted 1, closed 1), client->peer 20 packets / 3200 bytes,
// peer->client ...": the one line logged at shutdown.
std::string summary_line(const counter_totals& t);

}  // namespace anyturn::app
