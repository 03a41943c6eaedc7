#include <anyturn/stun/endpoint.hpp>

#include <anyturn/common/keyed_hash.hpp>

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <iterator>

namespace anyturn::stun {
namespace {

// inet_pton needs a NUL-terminated string; addresses are short, so copy
// into a stack buffer and reject anything that cannot be an address.
bool parse_ip(std::string_view text, int af, void* out) {
  char buf[INET6_ADDRSTRLEN + 1];
  if (text.empty() || text.size() >= sizeof(buf)) return false;
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  return inet_pton(af, buf, out) == 1;
}

std::optional<std::uint16_t> parse_port(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  unsigned value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc{} || ptr != end || value > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

}  // namespace

endpoint endpoint::v4(std::uint32_t ip_host_order, std::uint16_t port) {
  endpoint e;
  e.family = address_family::ipv4;
  e.ip[0] = static_cast<std::uint8_t>(ip_host_order >> 24);
  e.ip[1] = static_cast<std::uint8_t>(ip_host_order >> 16);
  e.ip[2] = static_cast<std::uint8_t>(ip_host_order >> 8);
  e.ip[3] = static_cast<std::uint8_t>(ip_host_order);
  e.port = port;
  return e;
}

endpoint endpoint::v6(const std::array<std::uint8_t, 16>& ip, std::uint16_t port) {
  endpoint e;
  e.family = address_family::ipv6;
  e.ip = ip;
  e.port = port;
  return e;
}

std::optional<endpoint> endpoint::parse(std::string_view text, bool port_optional) {
  endpoint e;
  std::string_view host;
  std::optional<std::string_view> port_text;

  if (!text.empty() && text.front() == '[') {
    // "[v6]" or "[v6]:port"
    const auto close = text.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = text.substr(1, close - 1);
    const auto rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port_text = rest.substr(1);
    }
    e.family = address_family::ipv6;
    if (!parse_ip(host, AF_INET6, e.ip.data())) return std::nullopt;
  } else {
    const auto first = text.find(':');
    const auto last = text.rfind(':');
    if (first != std::string_view::npos && first == last) {
      // "v4:port"
      host = text.substr(0, first);
      port_text = text.substr(first + 1);
      e.family = address_family::ipv4;
      if (!parse_ip(host, AF_INET, e.ip.data())) return std::nullopt;
    } else if (first == std::string_view::npos) {
      // bare "v4"
      e.family = address_family::ipv4;
      if (!parse_ip(text, AF_INET, e.ip.data())) return std::nullopt;
    } else {
      // bare "v6": a port cannot be told apart without brackets
      e.family = address_family::ipv6;
      if (!parse_ip(text, AF_INET6, e.ip.data())) return std::nullopt;
    }
  }

  if (port_text) {
    auto port = parse_port(*port_text);
    if (!port) return std::nullopt;
    e.port = *port;
  } else if (!port_optional) {
    return std::nullopt;
  }
  return e;
}

std::uint32_t endpoint::v4_host_order() const {
  if (!is_v4()) return 0;
  return (static_cast<std::uint32_t>(ip[0]) << 24) | (static_cast<std::uint32_t>(ip[1]) << 16) |
         (static_cast<std::uint32_t>(ip[2]) << 8) | static_cast<std::uint32_t>(ip[3]);
}

std::string endpoint::ip_string() const {
  char buf[INET6_ADDRSTRLEN];
  const int af = is_v4() ? AF_INET : AF_INET6;
  if (inet_ntop(af, ip.data(), buf, sizeof(buf)) == nullptr) return {};
  return buf;
}

std::string endpoint::to_string() const {
  std::string out;
  out.reserve(INET6_ADDRSTRLEN + 8);
  if (is_v4()) {
    out += ip_string();
  } else {
    out += '[';
    out += ip_string();
    out += ']';
  }
  out += ':';
  out += std::to_string(port);
  return out;
}

std::size_t endpoint_hash::operator()(const endpoint& e) const noexcept {
  common::keyed_hasher h;
  h.add(std::uint64_t{static_cast<std::uint8_t>(e.family)} << 16 | e.port);
  h.add_bytes(e.ip.data(), e.ip.size());
  return static_cast<std::size_t>(h.finish());
}

endpoint unmap_v4(const endpoint& ep) noexcept {
  if (ep.is_v4()) return ep;
  static constexpr std::uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (!std::equal(std::begin(prefix), std::end(prefix), ep.ip.begin())) return ep;
  endpoint v4;
  v4.family = address_family::ipv4;
  std::copy_n(ep.ip.begin() + 12, 4, v4.ip.begin());
  v4.port = ep.port;
  return v4;
}

}  // namespace anyturn::stun
