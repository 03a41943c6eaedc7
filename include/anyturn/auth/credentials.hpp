// anyturn::auth — long-term credentials (RFC 8489 §9.2) for static users and
// TURN REST shared secrets (draft-uberti-behave-turn-rest).
//
// Everything here is a pure function of configuration, the request and an
// injected "now" (unix seconds); nothing reads a clock or touches I/O.
#pragma once

#include <anyturn/stun/message.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace anyturn::auth {

using md5_key = std::array<std::uint8_t, 16>;
using sha256_key = std::array<std::uint8_t, 32>;

// MD5(user ":" realm ":" password) and SHA-256(user ":" realm ":" password).
// These and rest_password() throw std::runtime_error only if OpenSSL fails.
md5_key derive_md5_key(std::string_view user, std::string_view realm, std::string_view password);
sha256_key derive_sha256_key(std::string_view user, std::string_view realm, std::string_view password);

// base64(HMAC-SHA1(secret, username)): the REST password for `username`.
std::string rest_password(std::string_view secret, std::string_view username);
// "<now+ttl>:<user>" (or "<now+ttl>" when user is empty).
std::string rest_username(std::int64_t now, std::int64_t ttl, std::string_view user);

// The custom identifier a REST username carries: the credentials API mints
// "<expiry>:<tenant>:<id>~<custom>" (or "<expiry>:<id>~<custom>") when the
// request names a customIdentifier ([A-Za-z0-9._-], 1..64 bytes). Returns
// the text after the last '~' when it is a valid identifier, else "".
std::string_view custom_identifier_of(std::string_view username);
inline constexpr std::size_t max_custom_identifier_bytes = 64;

// The user part of the credentials a node mints for probing its own
// listeners (GET /probe): "<expiry>:anyturn-probe", signed with the node's
// internal probe secret (drawn at start-up, never in the config, never
// logged). Only that secret signs it: the REST secrets do not.
inline constexpr std::string_view probe_user = "anyturn-probe";
// Whether `username` has the reserved form "<expiry>:anyturn-probe".
bool is_probe_username(std::string_view username) noexcept;

// Length of rest_password(): base64 of a 20-byte SHA-1 MAC, with padding.
inline constexpr std::size_t rest_password_size = 28;

// One candidate key for a request. A REST username maps to one candidate per
// configured secret, so several may come back; the caller tries each.
struct key_candidate {
  md5_key md5{};
  std::optional<sha256_key> sha256;  // absent when only an MD5 key was configured
};
inline constexpr std::size_t max_candidates = 8;  // secrets tried per request, at most

struct static_user {
  std::string name;
  std::optional<std::string> password;  // one of these two is set
  std::optional<md5_key> key;           // MD5(user:realm:password), from config
};

// Tenants: each customer of a TURN service has its own static users and REST
// secrets. Index 0 is the default tenant (what flags and a single-tenant
// config define); its id may be empty.
using tenant_index = std::uint16_t;
inline constexpr tenant_index default_tenant = 0;

struct tenant_credentials {
  std::string id;
  std::vector<static_user> users;
  std::vector<std::string> secrets;  // REST shared secrets, several for rotation
};

enum class lookup_status {
  ok,
  unknown_user,   // neither a static user nor a REST username
  expired,        // REST username whose timestamp is in the past
  malformed,      // REST-shaped username that does not parse
};

// REST usernames accepted (draft-uberti-behave-turn-rest, as coturn issues them):
//   "<expiry>"              e.g. "1700000000"
//   "<expiry>:<user>"       e.g. "1700000000:alice" (user may contain ':')
//   "<user>:<expiry>"       coturn's alternative order, e.g. "alice:1700000000";
//                           only when the text before the first ':' is not all
//                           digits, so the two orders never overlap.
// Tenant resolution is O(1) and needs no trial of secrets: a static user
// belongs to the tenant that lists it; a REST username whose user part starts
// with "<tenant-id>:" (e.g. "1700000000:acme:alice", which the credentials
// API mints) belongs to that tenant, any other REST username to the default
// tenant.
// <expiry> is 1..18 decimal digits of unix seconds; the credential is valid while
// now <= expiry. A username with a numeric field in one of these places but an
// empty user part or an out-of-range number is `malformed`; anything else that
// is not a static user is `unknown_user`. The password is rest_password(secret,
// whole username) for each configured secret, in configuration order.
class credential_store {
 public:
  // Start-up only; throws std::invalid_argument when a static user has neither
  // or both of password/key, a name repeats, a REST secret is empty, or there
  // are more than max_candidates secrets.
  credential_store(std::string realm, std::vector<static_user> users,
                   std::vector<std::string> rest_secrets);
  // Several tenants; tenants[0] is the default tenant. Tenant ids must be
  // unique and non-empty (but the default's), and user names unique across
  // all tenants. Throws std::invalid_argument otherwise.
  credential_store(std::string realm, std::vector<tenant_credentials> tenants);

  // Start-up only (before the store is shared): `secret` (not empty) signs
  // the usernames of the reserved form "<expiry>:anyturn-probe", checked
  // against it alone as REST usernames of the default tenant (probe_user).
  void set_probe_secret(std::string secret) { probe_secret_ = std::move(secret); }

  [[nodiscard]] const std::string& realm() const { return realm_; }
  [[nodiscard]] bool has_rest_secrets() const;
  [[nodiscard]] std::size_t tenant_count() const { return tenants_.size(); }
  [[nodiscard]] const std::string& tenant_id(tenant_index t) const { return tenants_.at(t).id; }

  // Static users first; else a username of the form "<unix-expiry>" or
  // "<unix-expiry>:<user>" is checked against every REST secret.
  // Writes up to `out.size()` candidates and sets `count` (0 unless ok).
  // Static users win over a REST username of the same spelling. Never throws
  // and allocates nothing itself (OpenSSL may, for the REST digests); should
  // OpenSSL fail, the REST path reports unknown_user rather than a bad key.
  lookup_status lookup(std::string_view username, std::int64_t now,
                       std::span<key_candidate> out, std::size_t& count) const noexcept;
  // The same, and says which tenant the username belongs to.
  lookup_status lookup(std::string_view username, std::int64_t now, std::span<key_candidate> out,
                       std::size_t& count, tenant_index& tenant) const noexcept;
  // Whether `username` is a static user (whose password a person chose and
  // could be guessed), not a REST username (whose key is a MAC).
  [[nodiscard]] bool is_static_user(std::string_view username) const noexcept;

 private:
  struct user_entry {
    key_candidate key;
    tenant_index tenant = default_tenant;
  };
  struct tenant_entry {
    std::string id;
    std::vector<std::string> secrets;
  };
  struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  std::string realm_;
  std::vector<std::pair<std::string, user_entry>> users_;  // sorted by name
  std::vector<tenant_entry> tenants_;
  std::string probe_secret_;  // empty: the probe form is an ordinary REST username
  std::unordered_map<std::string, tenant_index, string_hash, std::equal_to<>> tenant_by_id_;
};

}  // namespace anyturn::auth
