#include <anyturn/metrics/xdp_metrics.hpp>

#include <utility>

namespace anyturn::metrics {

registry::collector xdp_metrics(std::function<std::optional<xdp::stats>()> read) {
  return [read = std::move(read)](sink& out) {
    const std::optional<xdp::stats> s = read();
    out.gauge("anyturn_xdp_attached",
              "1 while the XDP offload is attached to xdp.interfaces, else 0 (off, or xdp.mode auto "
              "fell back to user space)",
              {}, s ? 1 : 0);
    if (!s) return;
    for (std::size_t d = 0; d < xdp::direction_count; ++d) {
      for (std::size_t a = 0; a < xdp::action_count; ++a) {
        out.counter("anyturn_xdp_packets_total",
                    "Packets of installed channels the XDP program handled, by direction and action "
                    "(tx/redirect: forwarded in the kernel; pass: left to user space; drop: a limit)",
                    {{"direction", xdp::to_string(static_cast<xdp::direction>(d))},
                     {"action", xdp::to_string(static_cast<xdp::action>(a))}},
                    s->packets[d][a]);
      }
    }
    out.gauge("anyturn_xdp_map_entries", "Entries in the XDP program's maps (channels: both directions' maps)",
              {{"map", "channels"}}, s->channel_entries);
    out.gauge("anyturn_xdp_map_entries", "Entries in the XDP program's maps (channels: both directions' maps)",
              {{"map", "allocations"}}, s->allocation_entries);
    for (std::size_t f = 0; f < xdp::fallback_count; ++f) {
      out.counter("anyturn_xdp_fallbacks_total",
                  "Channels or packets left to user space instead of the XDP program, by reason",
                  {{"reason", xdp::to_string(static_cast<xdp::fallback>(f))}}, s->fallbacks[f]);
    }
  };
}

}  // namespace anyturn::metrics
