// anyturn::metrics — the XDP offload's families (docs/metrics.md, docs/xdp.md).
//
// anyturn_xdp_attached (gauge, always), and while an offload is attached:
// anyturn_xdp_packets_total{direction,action}, anyturn_xdp_map_entries{map}
// and anyturn_xdp_fallbacks_total{reason}, every label value present (0
// included). The packets the program forwards are folded into the relay
// counters by the workers (relay/offload.hpp), not here.
#pragma once

#include <anyturn/metrics/registry.hpp>
#include <anyturn/xdp/offload.hpp>

#include <functional>
#include <optional>

namespace anyturn::metrics {

// `read` runs on the scraping thread: the offload's stats
// (xdp::offload::read_stats), or nullopt when no offload is attached.
registry::collector xdp_metrics(std::function<std::optional<xdp::stats>()> read);

}  // namespace anyturn::metrics
