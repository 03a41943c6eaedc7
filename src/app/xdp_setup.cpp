#include <anyturn/app/xdp_setup.hpp>

#include <spdlog/spdlog.h>

#include <vector>

namespace anyturn::app {

xdp::options xdp_options_of(const config::xdp_config& c) {
  xdp::options o;
  o.interfaces = c.interfaces;
  o.mode = c.mode == "native"    ? xdp::attach_mode::native
           : c.mode == "generic" ? xdp::attach_mode::generic
                                 : xdp::attach_mode::automatic;
  o.max_channels = c.max_channels;
  o.max_allocations = c.max_allocations;
  return o;
}

std::unique_ptr<xdp::offload> open_xdp(const config::xdp_config& c, std::string& error) {
  if (c.interfaces.empty()) return nullptr;
  const xdp::options o = xdp_options_of(c);
  std::string why;
  std::unique_ptr<xdp::offload> off = xdp::offload::open(o, why);
  if (!off) {
    if (why.empty()) why = "the loader gave no reason";
    if (why.starts_with("xdp: ")) why.erase(0, 5);
    if (o.mode == xdp::attach_mode::automatic) {
      spdlog::warn(
          "xdp: cannot attach the fast path ({}); xdp.mode is auto: relaying in user space only "
          "(anyturn_xdp_attached 0)",
          why);
      return nullptr;
    }
    error = "xdp (xdp.interfaces, xdp.mode " + c.mode + "): " + why;
    return nullptr;
  }
  std::vector<std::string> names;
  for (const auto& i : off->interfaces()) {
    names.push_back(i.name + " (" + xdp::to_string(i.mode) + ", ifindex " + std::to_string(i.ifindex) + ")");
  }
  std::string joined;
  for (const auto& n : names) joined += (joined.empty() ? "" : ", ") + n;
  spdlog::info(
      "xdp: fast path attached to {}: established UDP channels are forwarded in the kernel "
      "(maps: {} channels, {} allocations)",
      joined, c.max_channels, c.max_allocations);
  return off;
}

}  // namespace anyturn::app
