// anyturn::config (internal) — parsers for the scalar values that both the
// YAML loader and the command line accept, so a value means the same thing
// and fails with the same words in either place.
#pragma once

#include <anyturn/auth/credentials.hpp>
#include <anyturn/auth/peer_policy.hpp>
#include <anyturn/config/config.hpp>
#include <anyturn/stun/endpoint.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace anyturn::config::detail {

// What each value looks like, for "<path>: expected <...>, got '<text>'".
inline constexpr std::string_view expect_listen = "ADDR:PORT (IPv6 as [ADDR]:PORT)";
inline constexpr std::string_view expect_relay_ip = "'auto' or an IP address without a port";
inline constexpr std::string_view expect_port_range = "LOW-HIGH with 1 <= LOW <= HIGH <= 65535";
inline constexpr std::string_view expect_cidr = "an address or CIDR such as 203.0.113.0/24 or 2001:db8::/32";
inline constexpr std::string_view expect_md5_key = "32 hex characters (MD5 of name:realm:password)";
inline constexpr std::string_view expect_ip = "an IP address without a port";
inline constexpr std::string_view expect_external_ip =
    "PUBLIC or PUBLIC/PRIVATE (IP addresses without ports, e.g. 203.0.113.7/10.0.0.7)";

// "<path>: expected <what>, got '<text>'"
std::string expected(std::string_view path, std::string_view what, std::string_view text);

// Decimal digits only (no sign, no spaces), value <= max.
std::optional<std::uint64_t> parse_uint(std::string_view text, std::uint64_t max);
// "LOW-HIGH" with 1 <= LOW <= HIGH <= 65535.
std::optional<std::pair<std::uint16_t, std::uint16_t>> parse_port_range(std::string_view text);
// A bare IPv4 or IPv6 address ("[::1]" accepted too); the port is 0.
std::optional<stun::endpoint> parse_ip(std::string_view text);
// "ADDR:PORT" / "[ADDR]:PORT".
std::optional<stun::endpoint> parse_listen(std::string_view text);
std::optional<auth::cidr> parse_cidr(std::string_view text);
// "PUBLIC" or "PUBLIC/PRIVATE", each a bare IP address (port 0).
std::optional<external_ip> parse_external_ip(std::string_view text);
// 32 hex characters, either case.
std::optional<auth::md5_key> parse_md5_hex(std::string_view text);

}  // namespace anyturn::config::detail
