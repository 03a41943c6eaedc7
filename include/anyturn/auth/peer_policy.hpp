// anyturn::auth — which peers a client may reach through the relay.
//
// Secure by default: loopback, unspecified, RFC 1918, CGNAT, link-local,
// unique-local, multicast, broadcast and the IETF special-purpose ranges are
// refused, also when wrapped in IPv4-mapped, IPv4-compatible, 6to4 or NAT64
// form. An operator's allow list overrides every deny; an operator's deny
// list adds to the defaults.
//
// check() order: operator allow (literal address) -> operator deny (literal)
// -> for IPv6 forms wrapping an IPv4 address (::ffff:0:0/96 mapped, ::/96
// compatible except :: and ::1, ::ffff:0:0:0/96 translated, 64:ff9b::/96 NAT64,
// 2002::/16 6to4) the same two lists on the embedded IPv4 -> built-in denies
// (on the embedded IPv4 for wrapped forms, else on the literal) -> allowed.
// A 6to4 or NAT64 address wrapping a public IPv4 address is allowed.
#pragma once

#include <anyturn/stun/endpoint.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace anyturn::auth {

struct cidr {
  stun::address_family family = stun::address_family::ipv4;
  std::array<std::uint8_t, 16> ip{};
  std::uint8_t prefix = 0;

  // "10.0.0.0/8", "fc00::/7", or a bare address (full-length prefix).
  // Host bits below the prefix are cleared ("10.1.2.3/8" -> 10.0.0.0/8).
  static std::optional<cidr> parse(std::string_view text);
  // Literal match: an IPv4 CIDR never matches an IPv6 endpoint (peer_policy
  // handles wrapped forms).
  [[nodiscard]] bool contains(const stun::endpoint& ep) const;
  [[nodiscard]] std::string to_string() const;  // "10.0.0.0/8", "fc00::/7"

  friend bool operator==(const cidr&, const cidr&) = default;
};

enum class peer_verdict {
  allowed,
  allowed_explicitly,  // matched an operator allow CIDR
  denied_default,      // a built-in special-purpose range
  denied_operator,     // matched an operator deny CIDR
};

constexpr bool is_allowed(peer_verdict v) {
  return v == peer_verdict::allowed || v == peer_verdict::allowed_explicitly;
}

class peer_policy {
 public:
  peer_policy(std::vector<cidr> allow, std::vector<cidr> deny);
  // Allocation-free; runs on every CreatePermission, ChannelBind and Send.
  [[nodiscard]] peer_verdict check(const stun::endpoint& peer) const noexcept;

 private:
  std::vector<cidr> allow_;
  std::vector<cidr> deny_;
};

}  // namespace anyturn::auth
