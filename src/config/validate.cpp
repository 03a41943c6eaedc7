// Cross-field checks on a complete server_config (after the file and the
// flags are merged). Every problem is reported, each naming its key path.
#include <anyturn/config/config.hpp>

#include <algorithm>
#include <string>

namespace anyturn::config {

namespace {

// RFC 8489 §14.9 (REALM) and §14.15 (SOFTWARE): fewer than 128 characters,
// which is at most 763 bytes of UTF-8.
constexpr std::size_t max_realm_bytes = 763;
constexpr std::size_t max_software_bytes = 763;
// RFC 8489 §14.3: USERNAME is fewer than 509 bytes.
constexpr std::size_t max_username_bytes = 508;
constexpr unsigned max_threads = 256;
constexpr std::size_t min_nonce_key_bytes = 16;

bool is_unspecified(const stun::endpoint& ep) {
  return std::all_of(ep.ip.begin(), ep.ip.begin() + static_cast<std::ptrdiff_t>(ep.ip_size()),
                     [](std::uint8_t b) { return b == 0; });
}

bool has_control_char(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

std::string idx(std::string_view path, std::size_t i) {
  return std::string(path) + "[" + std::to_string(i) + "]";
}

void check_listen(const server_config& cfg, std::vector<std::string>& errors) {
  if (cfg.listen.empty()) {
    errors.push_back("listen: at least one listener (ADDR:PORT) is required");
  }
  for (std::size_t i = 0; i < cfg.listen.size(); ++i) {
    const auto& ep = cfg.listen[i];
    if (ep.port == 0) errors.push_back(idx("listen", i) + ": port must not be 0");
    for (std::size_t j = 0; j < i; ++j) {
      if (cfg.listen[j] == ep) {
        errors.push_back(idx("listen", i) + ": " + ep.to_string() + " is already listed as " +
                         idx("listen", j));
        break;
      }
    }
  }
}

void check_tls(const server_config& cfg, std::vector<std::string>& errors) {
  const auto& tls = cfg.tls;
  for (std::size_t i = 0; i < tls.listen.size(); ++i) {
    const auto& ep = tls.listen[i];
    const std::string path = idx("tls.listen", i);
    if (ep.port == 0) errors.push_back(path + ": port must not be 0");
    for (std::size_t j = 0; j < i; ++j) {
      if (tls.listen[j] == ep) {
        errors.push_back(path + ": " + ep.to_string() + " is already listed as " +
                         idx("tls.listen", j));
        break;
      }
    }
    if (!cfg.streams.tcp) continue;
    // TCP on `listen` and TLS on the same TCP port cannot both bind.
    for (std::size_t j = 0; j < cfg.listen.size(); ++j) {
      const auto& l = cfg.listen[j];
      if (l.port != ep.port || l.family != ep.family) continue;
      if (l == ep || is_unspecified(l) || is_unspecified(ep)) {
        errors.push_back(path + ": " + ep.to_string() + " overlaps " + idx("listen", j) + " (" +
                         l.to_string() + "), which also serves TCP; use another port");
        break;
      }
    }
  }
  if (tls.cert.empty() != tls.key.empty()) {
    errors.push_back(tls.cert.empty()
                         ? "tls.cert: must be set together with tls.key"
                         : "tls.key: must be set together with tls.cert");
  }
}

void check_streams(const stream_config& s, std::vector<std::string>& errors) {
  if (s.tls_handshake_timeout == 0) {
    errors.push_back("streams.tls_handshake_timeout: must be greater than 0");
  }
  if (s.idle_timeout == 0) errors.push_back("streams.idle_timeout: must be greater than 0");
  if (s.max_message_size < min_stream_message_size || s.max_message_size > max_stream_message_size) {
    errors.push_back("streams.max_message_size: expected " + std::to_string(min_stream_message_size) +
                     ".." + std::to_string(max_stream_message_size) + ", got " +
                     std::to_string(s.max_message_size));
  }
  if (s.write_queue_size < min_write_queue_size) {
    errors.push_back("streams.write_queue_size: at least " + std::to_string(min_write_queue_size) +
                     " bytes, got " + std::to_string(s.write_queue_size));
  }
}

void check_relay(const relay_config& relay, std::vector<std::string>& errors) {
  if (relay.ips.empty()) {
    errors.push_back("relay.ips: at least one relay address (or 'auto') is required");
  }
  std::size_t v4 = 0;
  std::size_t v6 = 0;
  for (std::size_t i = 0; i < relay.ips.size(); ++i) {
    const auto& ip = relay.ips[i];
    (ip.is_v4() ? v4 : v6) += 1;
    if (is_unspecified(ip)) {
      errors.push_back(idx("relay.ips", i) + ": " + ip.ip_string() +
                       " is the unspecified address; clients must be told a reachable relay "
                       "address (give the host's address, or 'auto')");
    }
  }
  if (v4 > 1) {
    errors.push_back("relay.ips: at most one IPv4 address, got " + std::to_string(v4));
  }
  if (v6 > 1) {
    errors.push_back("relay.ips: at most one IPv6 address, got " + std::to_string(v6));
  }
  const auto range = "'" + std::to_string(relay.port_min) + "-" + std::to_string(relay.port_max) + "'";
  if (relay.port_min < 1 || relay.port_min > relay.port_max) {
    errors.push_back("relay.ports: expected LOW-HIGH with 1 <= LOW <= HIGH <= 65535, got " + range);
  } else if (relay.port_max - relay.port_min + 1 < 2) {
    errors.push_back("relay.ports: the range needs at least 2 ports, got " + range);
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

void check_auth(const auth_config& auth, std::vector<std::string>& errors) {
  if (auth.realm.empty()) errors.push_back("realm: must not be empty");
  if (auth.realm.size() > max_realm_bytes) {
    errors.push_back("realm: at most " + std::to_string(max_realm_bytes) + " bytes, got " +
                     std::to_string(auth.realm.size()));
  }
  if (has_control_char(auth.realm)) errors.push_back("realm: must not contain control characters");
  if (auth.users.empty() && auth.rest_secrets.empty()) {
    errors.push_back(
        "auth: no credentials: configure auth.users or auth.secrets (or --user / --auth-secret); "
        "a TURN server without credentials is an open relay");
  }
  for (std::size_t i = 0; i < auth.users.size(); ++i) {
    const auto& u = auth.users[i];
    const std::string path = idx("auth.users", i);
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
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (!u.name.empty() && auth.users[j].name == u.name) {
        errors.push_back(who + ": duplicate user name (also " + idx("auth.users", j) + ")");
        break;
      }
    }
  }
  if (auth.rest_secrets.size() > auth::max_candidates) {
    errors.push_back("auth.secrets: at most " + std::to_string(auth::max_candidates) +
                     " secrets (each is tried per request), got " +
                     std::to_string(auth.rest_secrets.size()));
  }
  for (std::size_t i = 0; i < auth.rest_secrets.size(); ++i) {
    if (auth.rest_secrets[i].empty()) {
      errors.push_back(idx("auth.secrets", i) + ": must not be empty");
    }
  }
  if (!auth.nonce_key.empty() && auth.nonce_key.size() < min_nonce_key_bytes) {
    errors.push_back("auth.nonce_key: at least " + std::to_string(min_nonce_key_bytes) +
                     " bytes when set (empty means random per process), got " +
                     std::to_string(auth.nonce_key.size()));
  }
}

}  // namespace

bool validate(const server_config& cfg, std::vector<std::string>& errors) {
  const auto before = errors.size();
  check_listen(cfg, errors);
  check_relay(cfg.relay, errors);
  check_lifetimes(cfg.lifetimes, errors);
  check_tls(cfg, errors);
  check_streams(cfg.streams, errors);
  check_auth(cfg.auth, errors);
  if (cfg.threads > max_threads) {
    errors.push_back("threads: at most " + std::to_string(max_threads) + " (0 = one per core), got " +
                     std::to_string(cfg.threads));
  }
  if (!is_known_log_level(cfg.log_level)) {
    errors.push_back("log_level: expected one of trace, debug, info, warn, error, critical, off, got '" +
                     cfg.log_level + "'");
  }
  if (cfg.software.size() > max_software_bytes) {
    errors.push_back("software: at most " + std::to_string(max_software_bytes) + " bytes, got " +
                     std::to_string(cfg.software.size()));
  }
  if (cfg.max_allocations_per_worker == 0) {
    errors.push_back("limits.max_allocations_per_worker: must be greater than 0");
  }
  return errors.size() == before;
}

}  // namespace anyturn::config
