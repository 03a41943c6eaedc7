// anyturn::metrics — process metrics (Linux /proc/self) and build info.
//
// Names follow the Prometheus client libraries' process collector, so the
// usual dashboards work unchanged:
//   process_cpu_seconds_total, process_resident_memory_bytes,
//   process_virtual_memory_bytes, process_open_fds, process_max_fds,
//   process_start_time_seconds.
#pragma once

#include <anyturn/metrics/registry.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace anyturn::metrics {

// What /proc/self/stat tells, in base units.
struct proc_stat {
  double cpu_seconds = 0;          // utime + stime
  double start_time_seconds = 0;   // unix seconds
  double virtual_bytes = 0;
  double resident_bytes = 0;
};

// Parses the text of /proc/<pid>/stat. `clock_ticks` is sysconf(_SC_CLK_TCK),
// `boot_time` the "btime" of /proc/stat. nullopt if the text is malformed.
std::optional<proc_stat> parse_proc_stat(std::string_view text, long clock_ticks, long page_size,
                                         double boot_time);
// The "btime" line of /proc/stat; nullopt if absent or malformed.
std::optional<double> parse_boot_time(std::string_view proc_stat_text);

// Reads /proc/self at every scrape. Metrics it cannot read are left out.
registry::collector process_collector();

// The project version this library was built as (CMake's PROJECT_VERSION).
std::string_view anyturn_version();
// e.g. "gcc 12.2.0" or "clang 14.0.6".
std::string compiler_description();

// anyturn_build_info{version="...",compiler="..."} 1
registry::collector build_info_collector(std::string version = std::string(anyturn_version()),
                                         std::string compiler = compiler_description());

}  // namespace anyturn::metrics
