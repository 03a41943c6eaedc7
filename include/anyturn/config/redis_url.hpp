// anyturn::config — the fleet's Redis URL (fleet.redis / --redis):
//
//   redis://[[USER]:PASSWORD@]HOST:PORT[/DB]     plain TCP
//   rediss://[[USER]:PASSWORD@]HOST:PORT[/DB]    TLS
//
// HOST is a DNS name, an IPv4 address or [IPv6]. USER and PASSWORD may be
// percent-encoded (%40 for '@', %2F for '/'). The config keeps the string;
// the validator and the fleet module both parse it with this one function.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace anyturn::config {

struct redis_url {
  bool tls = false;          // rediss://
  std::string username;      // empty: none (AUTH PASSWORD)
  std::string password;      // empty: no AUTH
  std::string host;          // without brackets
  std::uint16_t port = 0;
  std::uint32_t db = 0;      // SELECT DB
};

inline constexpr std::uint32_t max_redis_db = 1u << 20;

// Parses `text`. On failure returns nullopt and, when `why` is not null,
// says what is wrong without repeating the text (it may hold a password).
std::optional<redis_url> parse_redis_url(std::string_view text, std::string* why = nullptr);

// A DNS host name: labels of 1..63 letters, digits and '-' (not first or
// last), separated by '.', at most 253 bytes, no trailing dot, and a last
// label that is not all digits (an IP address is not a name).
bool is_dns_name(std::string_view name);

}  // namespace anyturn::config
