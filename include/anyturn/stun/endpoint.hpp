// anyturn::stun — transport addresses as STUN carries them.
//
// `endpoint` is a plain value type (IPv4 or IPv6 address plus port) with no
// dependency on sockets or Asio. The net layer converts it to and from
// sockaddr; the TURN core hashes it to key its tables.
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace anyturn::stun {

enum class address_family : std::uint8_t { ipv4 = 0x01, ipv6 = 0x02 };

struct endpoint {
  address_family family = address_family::ipv4;
  // IPv4 uses the first 4 bytes (network order); the rest stay zero.
  std::array<std::uint8_t, 16> ip{};
  std::uint16_t port = 0;  // host order

  static endpoint v4(std::uint32_t ip_host_order, std::uint16_t port);
  static endpoint v6(const std::array<std::uint8_t, 16>& ip, std::uint16_t port);
  // Parses "1.2.3.4:5", "[::1]:5", or without the port when `port_optional`.
  static std::optional<endpoint> parse(std::string_view text, bool port_optional = false);

  [[nodiscard]] bool is_v4() const { return family == address_family::ipv4; }
  [[nodiscard]] std::size_t ip_size() const { return is_v4() ? 4 : 16; }
  [[nodiscard]] std::uint32_t v4_host_order() const;
  [[nodiscard]] bool same_ip(const endpoint& other) const {
    return family == other.family && ip == other.ip;
  }
  // "1.2.3.4:5" or "[::1]:5"
  [[nodiscard]] std::string to_string() const;
  [[nodiscard]] std::string ip_string() const;

  friend bool operator==(const endpoint&, const endpoint&) = default;
  friend auto operator<=>(const endpoint&, const endpoint&) = default;
};

// The process's keyed hash (common::keyed_hasher) of an endpoint.
// ::ffff:a.b.c.d -> a.b.c.d (same port); anything else unchanged.
endpoint unmap_v4(const endpoint& ep) noexcept;

struct endpoint_hash {
  std::size_t operator()(const endpoint& e) const noexcept;
};

}  // namespace anyturn::stun
