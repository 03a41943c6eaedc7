// xdp.*: the kernel fast path's interfaces, attach mode and map sizes
// (docs/xdp.md). Whether an interface exists and takes the program is
// known only when the app attaches it.
#include "validate_common.hpp"

#include <algorithm>

namespace anyturn::config::detail {

void check_xdp(const xdp_config& xdp, std::vector<std::string>& errors) {
  for (std::size_t i = 0; i < xdp.interfaces.size(); ++i) {
    const std::string& name = xdp.interfaces[i];
    const std::string key = "xdp.interfaces[" + std::to_string(i) + "]";
    const bool bad_char = std::any_of(name.begin(), name.end(), [](char c) {
      return c == '/' || c == ':' || static_cast<unsigned char>(c) <= ' ' || c == 0x7F;
    });
    if (name.empty() || name.size() > max_interface_name || bad_char || name == "." || name == "..") {
      errors.push_back(key + ": expected an interface name of 1.." + std::to_string(max_interface_name) +
                       " characters without '/', ':' or spaces, got '" + name + "'");
      continue;
    }
    if (std::find(xdp.interfaces.begin(), xdp.interfaces.begin() + static_cast<std::ptrdiff_t>(i),
                  name) != xdp.interfaces.begin() + static_cast<std::ptrdiff_t>(i)) {
      errors.push_back(key + ": '" + name + "' is listed twice");
    }
  }
  if (xdp.mode != "native" && xdp.mode != "generic" && xdp.mode != "auto") {
    errors.push_back("xdp.mode: expected native, generic or auto, got '" + xdp.mode + "'");
  }
  const auto size = [&](const char* key, std::uint32_t n) {
    if (n < 1 || n > max_xdp_map_entries) {
      errors.push_back(std::string(key) + ": expected 1.." + std::to_string(max_xdp_map_entries) +
                       " entries, got " + std::to_string(n));
    }
  };
  size("xdp.max_channels", xdp.max_channels);
  size("xdp.max_allocations", xdp.max_allocations);
}

}  // namespace anyturn::config::detail
