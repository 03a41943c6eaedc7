#include "values.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace anyturn::config::detail {

std::string expected(std::string_view path, std::string_view what, std::string_view text) {
  std::string out;
  out.reserve(path.size() + what.size() + text.size() + 20);
  out.append(path).append(": expected ").append(what).append(", got '").append(text).append("'");
  return out;
}

std::optional<std::uint64_t> parse_uint(std::string_view text, std::uint64_t max) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value > max) return std::nullopt;
  return value;
}

std::optional<std::pair<std::uint16_t, std::uint16_t>> parse_port_range(std::string_view text) {
  const auto dash = text.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  const auto low = parse_uint(text.substr(0, dash), 65535);
  const auto high = parse_uint(text.substr(dash + 1), 65535);
  if (!low || !high || *low < 1 || *low > *high) return std::nullopt;
  return std::pair{static_cast<std::uint16_t>(*low), static_cast<std::uint16_t>(*high)};
}

std::optional<stun::endpoint> parse_ip(std::string_view text) {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
    text = text.substr(1, text.size() - 2);
    if (text.find(':') == std::string_view::npos) return std::nullopt;  // "[1.2.3.4]"
  }
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  char buf[INET6_ADDRSTRLEN] = {};
  std::memcpy(buf, text.data(), text.size());

  in_addr v4{};
  if (inet_pton(AF_INET, buf, &v4) == 1) return stun::endpoint::v4(ntohl(v4.s_addr), 0);
  in6_addr v6{};
  if (inet_pton(AF_INET6, buf, &v6) == 1) {
    std::array<std::uint8_t, 16> bytes{};
    std::memcpy(bytes.data(), v6.s6_addr, bytes.size());
    return stun::endpoint::v6(bytes, 0);
  }
  return std::nullopt;
}

std::optional<stun::endpoint> parse_listen(std::string_view text) {
  return stun::endpoint::parse(text, /*port_optional=*/false);
}

std::optional<external_ip> parse_external_ip(std::string_view text) {
  const auto slash = text.find('/');
  external_ip out;
  auto pub = parse_ip(text.substr(0, slash));
  if (!pub) return std::nullopt;
  out.public_ip = *pub;
  if (slash != std::string_view::npos) {
    auto priv = parse_ip(text.substr(slash + 1));
    if (!priv) return std::nullopt;
    out.private_ip = *priv;
  }
  return out;
}

std::optional<auth::cidr> parse_cidr(std::string_view text) { return auth::cidr::parse(text); }

std::optional<auth::md5_key> parse_md5_hex(std::string_view text) {
  auth::md5_key key{};
  if (text.size() != key.size() * 2) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < key.size(); ++i) {
    const int hi = nibble(text[2 * i]);
    const int lo = nibble(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    key[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return key;
}

}  // namespace anyturn::config::detail
