// anyturn::fleet — the Redis address of fleet.redis / --redis.
//
//   redis://[[user]:password@]host[:port][/db]
//   rediss://...  (TLS; refused by this build: Debian's libhiredis-dev ships
//                  no hiredis_ssl)
//
// host is a name, an IPv4 address or [IPv6]; the port defaults to 6379 and
// the database to 0. user and password may be percent-encoded.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace anyturn::fleet {

struct redis_url {
  bool tls = false;
  std::string host;
  std::uint16_t port = 6379;
  std::string user;      // empty: AUTH with the password only
  std::string password;  // empty: no AUTH
  unsigned db = 0;       // SELECT when not 0

  // "redis://host:port/db" without the credentials, for logs.
  [[nodiscard]] std::string redacted() const;
};

// Parses `text`. On failure returns nullopt and sets `error` to a message
// that names what is wrong (never the password).
std::optional<redis_url> parse_redis_url(std::string_view text, std::string& error);

// Whether this build can talk TLS to Redis (rediss://).
inline constexpr bool tls_supported = false;

}  // namespace anyturn::fleet
