// anyturn::config (internal) — what validate.cpp and validate_listeners.cpp
// share: small helpers for error paths and addresses, and the listener
// checks that validate() calls.
#pragma once

#include <anyturn/config/config.hpp>

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace anyturn::config::detail {

// 0.0.0.0 or ::
inline bool is_unspecified(const stun::endpoint& ep) {
  return std::all_of(ep.ip.begin(), ep.ip.begin() + static_cast<std::ptrdiff_t>(ep.ip_size()),
                     [](std::uint8_t b) { return b == 0; });
}

// "path[i]", the key path of a list entry in an error.
inline std::string idx(std::string_view path, std::size_t i) {
  return std::string(path) + "[" + std::to_string(i) + "]";
}

// Whether two TCP listeners would take the same port (equal, or either a wildcard).
inline bool overlaps_tcp(const stun::endpoint& a, const stun::endpoint& b) {
  if (a.port != b.port || a.family != b.family) return false;
  return a == b || is_unspecified(a) || is_unspecified(b);
}

// validate_listeners.cpp: listen, tls, dtls, the PROXY protocol entries,
// streams and stun.other_ip (the sockets the workers open for clients).
void check_listen(const server_config& cfg, std::vector<std::string>& errors);
void check_tls(const server_config& cfg, std::vector<std::string>& errors);
void check_dtls(const server_config& cfg, std::vector<std::string>& errors);
void check_proxy_protocol(const std::vector<proxy_protocol_config>& proxy, std::size_t listeners,
                          std::string_view path, bool streams, std::vector<std::string>& errors);
void check_streams(const stream_config& s, std::vector<std::string>& errors);
void check_other_ip(const server_config& cfg, std::vector<std::string>& errors);
// xdp.* (validate_xdp.cpp).
void check_xdp(const xdp_config& xdp, std::vector<std::string>& errors);

}  // namespace anyturn::config::detail
