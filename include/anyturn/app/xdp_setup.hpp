// anyturn::app — starting the kernel fast path (docs/xdp.md).
//
// With xdp.interfaces set, the app opens one xdp::offload before the
// workers start and gives each worker its own port. If the program cannot
// be attached, xdp.mode native or generic fails the start with the
// loader's reason; auto logs it and runs in user space only.
#pragma once

#include <anyturn/config/config.hpp>
#include <anyturn/xdp/offload.hpp>

#include <memory>
#include <string>

namespace anyturn::app {

// xdp.* as the loader takes it (validate() has checked the mode).
xdp::options xdp_options_of(const config::xdp_config& c);

// Opens the offload for `c` (xdp.interfaces not empty) and logs the
// interfaces and modes it attached to. Null: none. A failure in native or
// generic mode also sets `error` (the start fails); in auto mode it is
// logged as a warning and `error` stays empty.
std::unique_ptr<xdp::offload> open_xdp(const config::xdp_config& c, std::string& error);

}  // namespace anyturn::app
