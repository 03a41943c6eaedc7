#include <anyturn/app/summary.hpp>

#include <spdlog/fmt/fmt.h>

namespace anyturn::app {

void accumulate(counter_totals& into, const turn::worker_counters& from) {
#define ANYTURN_ADD_FIELD(name, help) into.name += from.name.load(std::memory_order_relaxed);
  ANYTURN_WORKER_COUNTERS(ANYTURN_ADD_FIELD)
#undef ANYTURN_ADD_FIELD
  into.active_allocations += from.active_allocations.load(std::memory_order_relaxed);
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
