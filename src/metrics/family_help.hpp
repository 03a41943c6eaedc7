// The HELP text of each Prometheus family a collector renders (private to
// metrics/): turn_metrics and net_metrics each keep a table of these and
// check at compile time that every family they map has one.
#pragma once

#include <span>
#include <string_view>

namespace anyturn::metrics::detail {

struct family_help {
  std::string_view family;
  std::string_view help;
};

// The HELP of `family` in `table`, or empty when it has none.
constexpr std::string_view help_in(std::span<const family_help> table, std::string_view family) {
  for (const auto& h : table) {
    if (h.family == family) return h.help;
  }
  return {};
}

}  // namespace anyturn::metrics::detail
