// Cross-field checks on a complete server_config (after the file and the
// flags are merged). Every problem is reported, each naming its key path.
#include <anyturn/config/config.hpp>
#include <anyturn/config/published.hpp>
#include <anyturn/config/redis_url.hpp>

#include "validate_common.hpp"
#include "values.hpp"

#include <algorithm>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace anyturn::config {

using detail::idx;
using detail::is_unspecified;
using detail::overlaps_tcp;

namespace {

// RFC 8489 §14.9 (REALM) and §14.15 (SOFTWARE): fewer than 128 characters,
// which is at most 763 bytes of UTF-8.
// RFC 8489 §14.9 allows 763 characters; every 401 and 438 carries the
// realm to anyone who asks, so a long one only adds to the reflection.
constexpr std::size_t max_realm_bytes = 128;
constexpr std::size_t max_software_bytes = 763;
// RFC 8489 §14.3: USERNAME is fewer than 509 bytes.
constexpr std::size_t max_username_bytes = 508;
constexpr unsigned max_threads = 256;

bool has_control_char(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

constexpr std::size_t max_nonce_keys = 8;

std::string hex(const auth::md5_key& key) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(key.size() * 2);
  for (const std::uint8_t b : key) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 0xf]);
  }
  return out;
}

void check_relay(const relay_config& relay, std::vector<std::string>& errors) {
  if (relay.ips.empty()) {
    errors.push_back("relay.ips: at least one relay address (or 'auto') is required");
  }
  if (relay.ips.size() > max_relay_ips) {
    errors.push_back("relay.ips: at most " + std::to_string(max_relay_ips) + " addresses, got " +
                     std::to_string(relay.ips.size()));
  }
  for (std::size_t i = 0; i < relay.ips.size(); ++i) {
    const auto& ip = relay.ips[i];
    for (std::size_t j = 0; j < i; ++j) {
      if (relay.ips[j].same_ip(ip)) {
        errors.push_back(idx("relay.ips", i) + ": " + ip.ip_string() + " is listed twice");
        break;
      }
    }
    if (is_unspecified(ip)) {
      errors.push_back(idx("relay.ips", i) + ": " + ip.ip_string() +
                       " is the unspecified address; clients must be told a reachable relay "
                       "address (give the host's address, or 'auto')");
    }
  }
  // Built by appending: "'" + std::to_string(...) trips GCC 12's -Wrestrict
  // false positive (operator+(const char*, string&&) inlined in Release).
  std::string range = "'";
  range += std::to_string(relay.port_min);
  range += '-';
  range += std::to_string(relay.port_max);
  range += '\'';
  if (relay.port_min < 1 || relay.port_min > relay.port_max) {
    errors.push_back("relay.ports: expected LOW-HIGH with 1 <= LOW <= HIGH <= 65535, got " + range);
  } else if (relay.port_max - relay.port_min + 1 < 2) {
    errors.push_back("relay.ports: the range needs at least 2 ports, got " + range);
  }
}

const char* family_name(const stun::endpoint& ep) { return ep.is_v4() ? "IPv4" : "IPv6"; }

// "192.0.2.1, 192.0.2.2" (or "none"), plus where 'auto' came from.
std::string relay_ip_list(const relay_config& relay, const stun::endpoint* family) {
  std::string out;
  for (const auto& ip : relay.ips) {
    if (family != nullptr && ip.family != family->family) continue;
    out += (out.empty() ? "" : ", ") + ip.ip_string();
  }
  if (out.empty()) out = "none";
  if (relay.ips_auto) out += "; 'auto' is resolved at start-up, before this check";
  return out;
}

// relay.external_ips: each PUBLIC maps exactly one relay address of its
// family, and each relay address is announced as at most one PUBLIC.
void check_external_ips(const relay_config& relay, std::vector<std::string>& errors) {
  std::vector<std::optional<stun::endpoint>> resolved;
  for (std::size_t i = 0; i < relay.external_ips.size(); ++i) {
    const external_ip& e = relay.external_ips[i];
    const std::string path = idx("relay.external_ips", i);
    const stun::endpoint& pub = e.public_ip;
    std::optional<stun::endpoint> priv;
    if (is_unspecified(pub)) {
      errors.push_back(path + ": PUBLIC " + pub.ip_string() +
                       " is the unspecified address; give the address clients reach the relay at");
    }
    if (e.private_ip) {
      const stun::endpoint& p = *e.private_ip;
      const bool listed = std::any_of(relay.ips.begin(), relay.ips.end(),
                                      [&](const stun::endpoint& r) { return r.same_ip(p); });
      if (p.family != pub.family) {
        errors.push_back(path + ": PUBLIC " + pub.ip_string() + " is " + family_name(pub) +
                         " but PRIVATE " + p.ip_string() + " is " + family_name(p) +
                         "; both must be of one family");
      } else if (!listed) {
        errors.push_back(path + ": PRIVATE " + p.ip_string() + " is not one of relay.ips (" +
                         relay_ip_list(relay, nullptr) + ")");
      } else {
        priv = p;
      }
    } else {
      std::size_t count = 0;
      for (const auto& r : relay.ips) {
        if (r.family == pub.family) {
          ++count;
          priv = r;
        }
      }
      if (count != 1) {
        priv.reset();
        errors.push_back(path + ": PUBLIC " + pub.ip_string() + " without /PRIVATE needs exactly one " +
                         family_name(pub) + " address in relay.ips, found " + std::to_string(count) +
                         " (" + relay_ip_list(relay, &pub) + "); write PUBLIC/PRIVATE");
      }
    }
    if (priv) priv->port = 0;
    const auto before = errors.size();
    for (std::size_t j = 0; priv && j < i; ++j) {
      const external_ip& other = relay.external_ips[j];
      if (!resolved[j]) continue;
      const std::string where = idx("relay.external_ips", j);
      if (other.public_ip.same_ip(pub) && resolved[j]->same_ip(*priv)) {
        errors.push_back(path + ": " + pub.ip_string() + "/" + priv->ip_string() +
                         " is already listed as " + where);
        break;
      }
      if (other.public_ip.same_ip(pub)) {
        errors.push_back(path + ": PUBLIC " + pub.ip_string() + " already maps " +
                         resolved[j]->ip_string() + " (" + where +
                         "); one public address cannot stand for two relay addresses");
        break;
      }
      if (resolved[j]->same_ip(*priv)) {
        errors.push_back(path + ": relay address " + priv->ip_string() + " is already announced as " +
                         other.public_ip.ip_string() + " (" + where +
                         "); XOR-RELAYED-ADDRESS carries one address");
        break;
      }
    }
    // Later entries are compared with the entries that passed.
    if (errors.size() != before || is_unspecified(pub)) priv.reset();
    resolved.push_back(priv);
  }
}

void check_lifetimes(const lifetime_config& lt, std::vector<std::string>& errors) {
  if (lt.allocation_default == 0) {
    errors.push_back("lifetimes.allocation_default: must be greater than 0");
  }
  if (lt.allocation_max == 0) {
    errors.push_back("lifetimes.allocation_max: must be greater than 0");
  }
  if (lt.allocation_default > lt.allocation_max) {
    errors.push_back("lifetimes.allocation_default: " + std::to_string(lt.allocation_default) +
                     " exceeds lifetimes.allocation_max (" + std::to_string(lt.allocation_max) +
                     ")");
  }
  if (lt.permission == 0) errors.push_back("lifetimes.permission: must be greater than 0");
  if (lt.channel == 0) errors.push_back("lifetimes.channel: must be greater than 0");
  if (lt.nonce == 0) errors.push_back("auth.nonce_lifetime: must be greater than 0");
}

// limits.allocation (`set` null) or a tenant's override of it (`set`: the
// keys the tenant gave; only those are reported, under `base`).
void check_allocation_limits(const allocation_limits_config& l, const allocation_limits_override* set,
                             const std::string& base, std::vector<std::string>& errors) {
  const auto report = [&](bool given, const char* key, const std::string& what) {
    if (set == nullptr || given) errors.push_back(base + "." + key + ": " + what);
  };
  if (l.max_peers == 0 || l.max_peers > max_peers_limit) {
    report(set && set->max_peers, "max_peers",
           "expected 1.." + std::to_string(max_peers_limit) + ", got " + std::to_string(l.max_peers));
  }
  if (l.max_channels == 0 || l.max_channels > max_channels_limit) {
    report(set && set->max_channels, "max_channels",
           "expected 1.." + std::to_string(max_channels_limit) + " (the channel numbers), got " +
               std::to_string(l.max_channels));
  }
  if (l.permissions_per_second != 0 && (l.permission_burst == 0 || l.permission_burst > max_peers_limit)) {
    report(set && set->permission_burst, "permission_burst",
           "expected 1.." + std::to_string(max_peers_limit) + " while permissions_per_second is set, got " +
               std::to_string(l.permission_burst));
  }
  if (l.bytes_per_second != 0 && (l.bytes_per_second < min_allocation_bytes_per_second ||
                                  l.bytes_per_second > max_allocation_bytes_per_second)) {
    report(set && set->bytes_per_second, "bytes_per_second",
           "expected 0 (no limit) or " + std::to_string(min_allocation_bytes_per_second) + ".." +
               std::to_string(max_allocation_bytes_per_second) +
               " (one second must hold the largest datagram), got " + std::to_string(l.bytes_per_second));
  }
}

// Static users of one tenant (`path` is "auth.users" or "tenants[i].users");
// `seen` holds every name checked so far, across tenants, with its path.
void check_users(const std::vector<auth::static_user>& users, const std::string& base,
                 std::vector<std::pair<std::string, std::string>>& seen,
                 std::vector<std::string>& errors) {
  for (std::size_t i = 0; i < users.size(); ++i) {
    const auto& u = users[i];
    const std::string path = idx(base, i);
    const std::string who = u.name.empty() ? path : path + " '" + u.name + "'";
    if (u.name.empty()) errors.push_back(path + ".name: must not be empty");
    if (u.name.size() > max_username_bytes) {
      errors.push_back(path + ".name: at most " + std::to_string(max_username_bytes) +
                       " bytes, got " + std::to_string(u.name.size()));
    }
    if (has_control_char(u.name)) errors.push_back(path + ".name: must not contain control characters");
    if (u.password.has_value() == u.key.has_value()) {
      errors.push_back(who + ": exactly one of 'password' or 'key' is required");
    } else if (u.password && u.password->empty()) {
      errors.push_back(who + ": password must not be empty");
    } else if (u.password && is_published_credential(*u.password)) {
      errors.push_back(who + ": the password is a published example (it appears in anyturn's "
                             "documentation or is a common placeholder); choose another");
    } else if (u.key && is_published_credential(hex(*u.key))) {
      errors.push_back(who + ": the key is a published example from anyturn's documentation; "
                             "compute it from your own password");
    }
    if (u.name.empty()) continue;
    bool duplicate = false;
    for (const auto& [name, where] : seen) {
      if (name == u.name) {
        errors.push_back(who + ": duplicate user name (also " + where + ")");
        duplicate = true;
        break;
      }
    }
    if (!duplicate) seen.emplace_back(u.name, path);
  }
}

// A REST secret or nonce key: long enough not to be guessed offline from one
// captured credential, and not a value anybody can read in the docs. Never
// echoed.
void check_secret_value(const std::string& value, const std::string& path,
                        std::vector<std::string>& errors) {
  if (value.size() < min_secret_bytes) {
    errors.push_back(path + ": at least " + std::to_string(min_secret_bytes) +
                     " bytes (use e.g. openssl rand -hex 32), got " + std::to_string(value.size()));
  } else if (is_published_credential(value)) {
    errors.push_back(path + ": a published example or placeholder value (it appears in anyturn's "
                            "documentation); use e.g. openssl rand -hex 32");
  }
}

void check_secrets(const std::vector<std::string>& secrets, const std::string& base,
                   std::vector<std::string>& errors) {
  if (secrets.size() > auth::max_candidates) {
    errors.push_back(base + ": at most " + std::to_string(auth::max_candidates) +
                     " secrets (each is tried per request), got " + std::to_string(secrets.size()));
  }
  for (std::size_t i = 0; i < secrets.size(); ++i) {
    check_secret_value(secrets[i], idx(base, i), errors);
  }
}

// API keys of one tenant; `seen` holds every key checked so far with its
// path (a key must identify exactly one tenant). Keys are never echoed.
// An API or admin bearer key: long enough, printable without spaces, and
// not one the documentation shows.
void check_bearer_key(const std::string& k, const std::string& path, std::vector<std::string>& errors) {
  if (k.size() < min_api_key_bytes) {
    errors.push_back(path + ": at least " + std::to_string(min_api_key_bytes) +
                     " characters (use e.g. openssl rand -hex 32), got " + std::to_string(k.size()));
  }
  const bool bad_char = std::any_of(k.begin(), k.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7f;
  });
  if (bad_char) errors.push_back(path + ": must not contain spaces or control characters");
  if (is_published_credential(k)) {
    errors.push_back(path + ": a published example key (it appears in anyturn's documentation); "
                            "use e.g. openssl rand -hex 32");
  }
}

void check_api_keys(const std::vector<std::string>& keys, const std::string& base,
                    const std::vector<std::string>& secrets, const std::string& secrets_path,
                    std::vector<std::pair<std::string, std::string>>& seen,
                    std::vector<std::string>& errors, bool require_secret = true) {
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const std::string& k = keys[i];
    const std::string path = idx(base, i);
    check_bearer_key(k, path, errors);
    for (const auto& [key, where] : seen) {
      if (key == k) {
        errors.push_back(path + ": the same key is also " + where + "; a key must name one tenant");
        break;
      }
    }
    seen.emplace_back(k, path);
  }
  if (!keys.empty() && secrets.empty() && require_secret) {
    errors.push_back(base + ": the credentials API signs with the tenant's first REST secret, but " +
                     secrets_path + " is empty");
  }
}

bool valid_tenant_id_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

void check_auth(const server_config& cfg, std::vector<std::string>& errors) {
  const auto& auth = cfg.auth;
  if (auth.realm.empty()) errors.push_back("realm: must not be empty");
  if (auth.realm.size() > max_realm_bytes) {
    errors.push_back("realm: at most " + std::to_string(max_realm_bytes) + " bytes, got " +
                     std::to_string(auth.realm.size()));
  }
  if (has_control_char(auth.realm)) errors.push_back("realm: must not contain control characters");
  // No credential at all is fine: an empty auth.secrets gets a random secret
  // generated into the state directory at start-up (app::provision_secrets),
  // so the server is never an open relay and never runs on a published one.
  std::vector<std::pair<std::string, std::string>> user_names;
  std::vector<std::pair<std::string, std::string>> api_keys;
  check_users(auth.users, "auth.users", user_names, errors);
  check_secrets(auth.rest_secrets, "auth.secrets", errors);
  // The default tenant's API signs with the generated secret when none is set.
  check_api_keys(auth.api_keys, "auth.api_keys", auth.rest_secrets, "auth.secrets", api_keys, errors,
                 /*require_secret=*/false);
  if (auth.nonce_keys.size() > max_nonce_keys) {
    errors.push_back("auth.nonce_keys: at most " + std::to_string(max_nonce_keys) +
                     " (the current key and retired ones), got " +
                     std::to_string(auth.nonce_keys.size()));
  }
  for (std::size_t i = 0; i < auth.nonce_keys.size(); ++i) {
    check_secret_value(auth.nonce_keys[i], idx("auth.nonce_keys", i), errors);
  }
  if (auth.nonce_max_skew > max_nonce_skew) {
    errors.push_back("auth.nonce_max_skew: at most " + std::to_string(max_nonce_skew) +
                     " seconds, got " + std::to_string(auth.nonce_max_skew));
  }

  // Tenants: auth::tenant_index 0 is the default tenant, so at most 65535 more.
  if (cfg.tenants.size() > 0xFFFEu) {
    errors.push_back("tenants: at most 65534, got " + std::to_string(cfg.tenants.size()));
  }
  for (std::size_t i = 0; i < cfg.tenants.size(); ++i) {
    const tenant_config& t = cfg.tenants[i];
    const std::string path = idx("tenants", i);
    if (t.id.empty()) {
      errors.push_back(path + ".id: must not be empty (the default tenant is auth.*)");
    } else if (t.id.size() > max_tenant_id_bytes ||
               !std::all_of(t.id.begin(), t.id.end(), valid_tenant_id_char)) {
      // Part of every REST username and a metric label: a ':' would make the
      // username ambiguous, so only a small, safe alphabet is allowed.
      errors.push_back(path + ".id: expected 1.." + std::to_string(max_tenant_id_bytes) +
                       " characters of A-Z a-z 0-9 . _ - (no ':'), got '" + t.id + "'");
    } else if (t.id == "default") {
      errors.push_back(path + ".id: 'default' is reserved (it labels the default tenant's metrics)");
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (!t.id.empty() && cfg.tenants[j].id == t.id) {
        errors.push_back(path + ".id: '" + t.id + "' is already used by " + idx("tenants", j));
        break;
      }
    }
    if (t.users.empty() && t.secrets.empty()) {
      errors.push_back(path + ": no credentials: give users or secrets");
    }
    check_users(t.users, path + ".users", user_names, errors);
    check_secrets(t.secrets, path + ".secrets", errors);
    check_api_keys(t.api_keys, path + ".api_keys", t.secrets, path + ".secrets", api_keys, errors);
    check_allocation_limits(t.allocation_limits.over(cfg.allocation_limits), &t.allocation_limits,
                            path + ".limits.allocation", errors);
  }
}

bool valid_url(std::string_view url, std::initializer_list<std::string_view> schemes) {
  bool scheme_ok = false;
  for (auto s : schemes) {
    if (url.starts_with(s) && url.size() > s.size()) scheme_ok = true;
  }
  if (!scheme_ok) return false;
  return std::none_of(url.begin(), url.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7f || c == '"' || c == '\\';
  });
}

void check_http(const server_config& cfg, std::vector<std::string>& errors) {
  const http_config& h = cfg.http;
  if (h.listen.port == 0) errors.push_back("http.listen: port must not be 0");
  if (h.enabled && h.listen.port != 0) {
    for (std::size_t j = 0; j < cfg.listen.size(); ++j) {
      if (cfg.streams.tcp && overlaps_tcp(h.listen, cfg.listen[j])) {
        errors.push_back("http.listen: " + h.listen.to_string() + " overlaps " + idx("listen", j) +
                         " (" + cfg.listen[j].to_string() + "), which also serves TCP");
        break;
      }
    }
    for (std::size_t j = 0; j < cfg.tls.listen.size(); ++j) {
      if (overlaps_tcp(h.listen, cfg.tls.listen[j])) {
        errors.push_back("http.listen: " + h.listen.to_string() + " overlaps " +
                         idx("tls.listen", j) + " (" + cfg.tls.listen[j].to_string() + ")");
        break;
      }
    }
  }
  if (h.tls_cert.empty() != h.tls_key.empty()) {
    errors.push_back(h.tls_cert.empty() ? "http.tls.cert: must be set together with http.tls.key"
                                        : "http.tls.key: must be set together with http.tls.cert");
  }
  if (h.max_ttl == 0) errors.push_back("http.max_ttl: must be greater than 0");
  if (h.default_ttl == 0 || h.default_ttl > h.max_ttl) {
    errors.push_back("http.default_ttl: expected 1..http.max_ttl (" + std::to_string(h.max_ttl) +
                     "), got " + std::to_string(h.default_ttl));
  }
  for (std::size_t i = 0; i < h.stun_urls.size(); ++i) {
    if (!valid_url(h.stun_urls[i], {"stun:", "stuns:"})) {
      errors.push_back(detail::expected(idx("http.urls.stun", i),
                                        "a stun: or stuns: URL without spaces or quotes",
                                        h.stun_urls[i]));
    }
  }
  for (std::size_t i = 0; i < h.turn_urls.size(); ++i) {
    if (!valid_url(h.turn_urls[i], {"turn:", "turns:"})) {
      errors.push_back(detail::expected(idx("http.urls.turn", i),
                                        "a turn: or turns: URL without spaces or quotes",
                                        h.turn_urls[i]));
    }
  }
  if (h.test_page && !h.enabled) {
    errors.push_back("http.test_page: needs the HTTP server, but http.enabled is false");
  }
  if (!h.stun_urls.empty() && h.turn_urls.empty()) {
    // Both empty: derived at start-up. Only STUN URLs would hand clients
    // credentials without a TURN server to use them on.
    errors.push_back("http.urls.turn: required when http.urls.stun is set (leave both empty to "
                     "derive them from the listeners)");
  }
}

bool valid_node_id_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

// A list of bare addresses: no unspecified address, no duplicate.
void check_ip_list(const std::vector<stun::endpoint>& ips, const std::string& base,
                   std::vector<std::string>& errors) {
  for (std::size_t i = 0; i < ips.size(); ++i) {
    if (is_unspecified(ips[i])) {
      errors.push_back(idx(base, i) + ": " + ips[i].ip_string() + " is the unspecified address");
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (ips[j].same_ip(ips[i])) {
        errors.push_back(idx(base, i) + ": " + ips[i].ip_string() + " is already listed as " +
                         idx(base, j));
        break;
      }
    }
  }
}

void check_fleet(const server_config& cfg, std::vector<std::string>& errors) {
  const fleet_config& f = cfg.fleet;
  check_ip_list(f.anycast_ips, "fleet.anycast_ips", errors);
  check_ip_list(f.unicast_ips, "fleet.unicast_ips", errors);
  for (std::size_t i = 0; i < f.unicast_ips.size(); ++i) {
    const auto& u = f.unicast_ips[i];
    for (std::size_t j = 0; j < i; ++j) {
      if (f.unicast_ips[j].family == u.family && !f.unicast_ips[j].same_ip(u)) {
        errors.push_back(idx("fleet.unicast_ips", i) + ": a second " + family_name(u) + " address (" +
                         idx("fleet.unicast_ips", j) + " is " + f.unicast_ips[j].ip_string() +
                         "); at most one per family, the redirect's one target");
        break;
      }
    }
    for (std::size_t j = 0; j < f.anycast_ips.size(); ++j) {
      if (f.anycast_ips[j].same_ip(u)) {
        errors.push_back(idx("fleet.unicast_ips", i) + ": " + u.ip_string() + " is also " +
                         idx("fleet.anycast_ips", j) +
                         "; an address is either shared by the fleet or this node's own");
        break;
      }
    }
  }
  for (std::size_t i = 0; i < f.anycast_ips.size(); ++i) {
    const auto& a = f.anycast_ips[i];
    const std::string path = idx("fleet.anycast_ips", i);
    const bool has_unicast = std::any_of(f.unicast_ips.begin(), f.unicast_ips.end(),
                                         [&](const stun::endpoint& u) { return u.family == a.family; });
    if (!has_unicast) {
      errors.push_back(path + ": " + a.ip_string() + " is " + family_name(a) +
                       ", but fleet.unicast_ips has no " + family_name(a) +
                       " address to redirect Allocates to (--unicast-ip)");
    }
    for (std::size_t j = 0; j < cfg.relay.ips.size(); ++j) {
      if (cfg.relay.ips[j].same_ip(a)) {
        errors.push_back(path + ": " + a.ip_string() + " is also " + idx("relay.ips", j) +
                         "; a relay address must be this node's own (peers answer to it)");
        break;
      }
    }
    for (std::size_t j = 0; j < cfg.relay.external_ips.size(); ++j) {
      if (cfg.relay.external_ips[j].public_ip.same_ip(a)) {
        errors.push_back(path + ": " + a.ip_string() + " is also the PUBLIC address of " +
                         idx("relay.external_ips", j) +
                         "; a relay address must be this node's own (peers answer to it)");
        break;
      }
    }
  }
  if (!f.alternate_domain.empty() && !is_dns_name(f.alternate_domain)) {
    errors.push_back(detail::expected(
        "fleet.alternate_domain",
        "a DNS name (labels of letters, digits and '-' joined by '.', at most 253 bytes, no "
        "trailing dot, not an IP address)",
        f.alternate_domain));
  }
  if (!f.node_id.empty() && (f.node_id.size() > max_node_id_bytes ||
                             !std::all_of(f.node_id.begin(), f.node_id.end(), valid_node_id_char))) {
    errors.push_back(detail::expected("fleet.node_id",
                                      "1.." + std::to_string(max_node_id_bytes) +
                                          " characters of A-Z a-z 0-9 . _ -",
                                      f.node_id));
  }
  if (!f.redis.empty()) {
    std::string why;
    const auto url = parse_redis_url(f.redis, &why);
    if (!url) {
      // Never echoed: the URL may hold a password.
      errors.push_back("fleet.redis: expected redis://[[USER]:PASSWORD@]HOST:PORT[/DB] or "
                       "rediss://... (TLS): " + why);
    } else if (!url->password.empty() && is_published_credential(url->password)) {
      errors.push_back("fleet.redis: the password is a published example or placeholder value (it "
                       "appears in anyturn's documentation); use e.g. openssl rand -hex 32");
    }
  }
  if (f.drain_alternate) {
    const auto& d = *f.drain_alternate;
    if (d.port == 0) errors.push_back("fleet.drain_alternate: port must not be 0");
    if (is_unspecified(d)) {
      errors.push_back("fleet.drain_alternate: " + d.ip_string() +
                       " is the unspecified address; give another node's address");
    }
  }
  if (f.drain_timeout == 0 || f.drain_timeout > max_drain_timeout) {
    errors.push_back("fleet.drain_timeout: expected 1.." + std::to_string(max_drain_timeout) +
                     " seconds, got " + std::to_string(f.drain_timeout));
  }
}

// "host:port" (IPv6 literal in brackets), the form of http.probe_targets.
bool valid_probe_target(std::string_view t) {
  std::string_view host;
  std::string_view port;
  if (t.starts_with('[')) {
    const auto close = t.find(']');
    if (close == std::string_view::npos || close + 1 >= t.size() || t[close + 1] != ':') return false;
    host = t.substr(1, close - 1);
    port = t.substr(close + 2);
    if (host.find(':') == std::string_view::npos) return false;
  } else {
    const auto colon = t.rfind(':');
    if (colon == std::string_view::npos) return false;
    host = t.substr(0, colon);
    port = t.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return false;  // IPv6 needs brackets
  }
  if (host.empty() || host.size() > 253) return false;
  for (const char c : host) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '-' || c == ':' || c == '_';
    if (!ok) return false;
  }
  if (port.empty() || port.size() > 5) return false;
  unsigned value = 0;
  for (const char c : port) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  return value >= 1 && value <= 65535;
}

// http.probe_*: GET /probe's limits, its extra targets and their credentials.
void check_probe(const http_probe_config& p, std::vector<std::string>& errors) {
  if (p.max_concurrent < 1 || p.max_concurrent > max_probe_concurrent) {
    errors.push_back("http.probe_max_concurrent: expected 1.." + std::to_string(max_probe_concurrent) +
                     ", got " + std::to_string(p.max_concurrent));
  }
  if (p.max_count < 1 || p.max_count > max_probe_count) {
    errors.push_back("http.probe_max_count: expected 1.." + std::to_string(max_probe_count) +
                     " packets, got " + std::to_string(p.max_count));
  }
  if (p.timeout < 1 || p.timeout > max_probe_timeout) {
    errors.push_back("http.probe_timeout: expected 1.." + std::to_string(max_probe_timeout) +
                     " seconds, got " + std::to_string(p.timeout));
  }
  if (has_control_char(p.ca)) errors.push_back("http.probe_ca: must not contain control characters");
  for (std::size_t i = 0; i < p.targets.size(); ++i) {
    if (!valid_probe_target(p.targets[i])) {
      errors.push_back(detail::expected(idx("http.probe_targets", i),
                                        "host:port (a name or an IP; IPv6 in brackets)", p.targets[i]));
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (p.targets[j] == p.targets[i]) {
        errors.push_back(idx("http.probe_targets", i) + ": repeats " + idx("http.probe_targets", j));
        break;
      }
    }
  }
  for (std::size_t i = 0; i < p.credentials.size(); ++i) {
    const probe_credential& c = p.credentials[i];
    const std::string path = idx("http.probe_credentials", i);
    if (std::find(p.targets.begin(), p.targets.end(), c.target) == p.targets.end()) {
      errors.push_back(path + ".target: '" + c.target + "' is not one of http.probe_targets");
    }
    const bool user = !c.username.empty() || !c.password.empty();
    if (user == !c.secret.empty()) {
      errors.push_back(path + ": give either username and password, or secret");
    } else if (user && (c.username.empty() || c.password.empty())) {
      errors.push_back(path + ": username and password go together");
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (p.credentials[j].target == c.target) {
        errors.push_back(path + ".target: already has credentials in " + idx("http.probe_credentials", j));
        break;
      }
    }
  }
}

// http.admin_keys: bearer keys of /admin/*. Long, not published, and none is
// also a credentials-API key or a REST secret, so a tenant cannot drain the
// node. Never echoed.
void check_admin_keys(const server_config& cfg, std::vector<std::string>& errors) {
  std::vector<std::pair<const std::string*, std::string>> others;
  for (std::size_t i = 0; i < cfg.auth.api_keys.size(); ++i)
    others.emplace_back(&cfg.auth.api_keys[i], idx("auth.api_keys", i));
  for (std::size_t i = 0; i < cfg.auth.rest_secrets.size(); ++i)
    others.emplace_back(&cfg.auth.rest_secrets[i], idx("auth.secrets", i));
  for (std::size_t t = 0; t < cfg.tenants.size(); ++t) {
    const std::string base = idx("tenants", t);
    for (std::size_t i = 0; i < cfg.tenants[t].api_keys.size(); ++i)
      others.emplace_back(&cfg.tenants[t].api_keys[i], idx(base + ".api_keys", i));
    for (std::size_t i = 0; i < cfg.tenants[t].secrets.size(); ++i)
      others.emplace_back(&cfg.tenants[t].secrets[i], idx(base + ".secrets", i));
  }
  const auto& keys = cfg.http.admin_keys;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const std::string& k = keys[i];
    const std::string path = idx("http.admin_keys", i);
    check_bearer_key(k, path, errors);
    for (std::size_t j = 0; j < i; ++j) {
      if (keys[j] == k) {
        errors.push_back(path + ": the same key is already " + idx("http.admin_keys", j));
        break;
      }
    }
    for (const auto& [other, where] : others) {
      if (*other == k) {
        errors.push_back(path + ": the same key is also " + where +
                         "; the admin key must be separate from every tenant's credentials");
        break;
      }
    }
  }
}

// A token bucket's rate (0 = off) and burst (at least 1 while it is on).
void check_bucket(const std::string& rate_key, std::uint32_t rate, const std::string& burst_key,
                  std::uint32_t burst, std::vector<std::string>& errors) {
  if (rate > max_limit_rate) {
    errors.push_back(rate_key + ": at most " + std::to_string(max_limit_rate) + " (0 = off), got " +
                     std::to_string(rate));
  }
  if (rate > 0 && burst == 0) {
    errors.push_back(burst_key + ": must be at least 1 while " + rate_key +
                     " is set (a rate of 0 turns the limit off)");
  }
  if (burst > max_limit_burst) {
    errors.push_back(burst_key + ": at most " + std::to_string(max_limit_burst) + ", got " +
                     std::to_string(burst));
  }
}

void check_abuse_limits(const server_config& cfg, std::vector<std::string>& errors) {
  const auto& u = cfg.unauthenticated_per_source;
  check_bucket("limits.unauthenticated_per_source.rate", u.rate,
               "limits.unauthenticated_per_source.burst", u.burst, errors);
  const auto& f = cfg.auth_failures;
  check_bucket("limits.auth_failures.per_source_per_minute", f.per_source_per_minute,
               "limits.auth_failures.per_source_burst", f.per_source_burst, errors);
  check_bucket("limits.auth_failures.per_user_per_minute", f.per_user_per_minute,
               "limits.auth_failures.per_user_burst", f.per_user_burst, errors);
}

}  // namespace

std::vector<external_ip> resolve_external_ips(const relay_config& relay) {
  std::vector<external_ip> out;
  for (const external_ip& e : relay.external_ips) {
    external_ip r;
    r.public_ip = e.public_ip;
    r.public_ip.port = 0;
    std::size_t count = 0;
    for (const auto& ip : relay.ips) {
      if (ip.family != e.public_ip.family) continue;
      if (e.private_ip ? ip.same_ip(*e.private_ip) : true) {
        ++count;
        r.private_ip = ip;
        r.private_ip->port = 0;
      }
    }
    if (count == 1) out.push_back(std::move(r));
  }
  return out;
}

bool validate(const server_config& cfg, std::vector<std::string>& errors) {
  using namespace detail;  // the listener checks (validate_listeners.cpp)
  const auto before = errors.size();
  check_listen(cfg, errors);
  check_relay(cfg.relay, errors);
  check_external_ips(cfg.relay, errors);
  check_lifetimes(cfg.lifetimes, errors);
  check_tls(cfg, errors);
  check_dtls(cfg, errors);
  check_proxy_protocol(cfg.listen_proxy, cfg.listen.size(), "listen", cfg.streams.tcp, errors);
  check_proxy_protocol(cfg.tls.listen_proxy, cfg.tls.listen.size(), "tls.listen", true, errors);
  check_streams(cfg.streams, errors);
  check_auth(cfg, errors);
  check_http(cfg, errors);
  check_admin_keys(cfg, errors);
  check_probe(cfg.http.probe, errors);
  check_fleet(cfg, errors);
  check_other_ip(cfg, errors);
  check_xdp(cfg.xdp, errors);
  if (has_control_char(cfg.usage_log)) {
    errors.push_back("usage_log: must not contain control characters");
  }
  if (cfg.threads > max_threads) {
    errors.push_back("threads: at most " + std::to_string(max_threads) + " (0 = one per core), got " +
                     std::to_string(cfg.threads));
  }
  if (!is_known_log_level(cfg.log_level)) {
    errors.push_back("log_level: expected one of trace, debug, info, warn, error, critical, off, got '" +
                     cfg.log_level + "'");
  }
  if (cfg.log_format != "text" && cfg.log_format != "json") {
    errors.push_back("log.format: expected text or json, got '" + cfg.log_format + "'");
  }
  if (cfg.software.size() > max_software_bytes) {
    errors.push_back("software: at most " + std::to_string(max_software_bytes) + " bytes, got " +
                     std::to_string(cfg.software.size()));
  }
  if (cfg.max_allocations_per_worker == 0) {
    errors.push_back("limits.max_allocations_per_worker: must be greater than 0");
  }
  check_allocation_limits(cfg.allocation_limits, nullptr, "limits.allocation", errors);
  if (cfg.udp_busy_poll_us > max_udp_busy_poll_us) {
    errors.push_back("limits.udp_busy_poll_us: at most " + std::to_string(max_udp_busy_poll_us) +
                     " microseconds (0 = off), got " + std::to_string(cfg.udp_busy_poll_us));
  }
  check_abuse_limits(cfg, errors);
  if (cfg.udp_coalesce_us > max_udp_coalesce_us) {
    errors.push_back("limits.udp_coalesce_us: at most " + std::to_string(max_udp_coalesce_us) +
                     " microseconds (0 = off), got " + std::to_string(cfg.udp_coalesce_us));
  }
  return errors.size() == before;
}

}  // namespace anyturn::config
