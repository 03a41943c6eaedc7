// YAML -> server_config. Type checks only (cross-field rules are in
// validate.cpp). Every problem is reported with its key path, all at once,
// and nothing is thrown to the caller.
#include <anyturn/config/config.hpp>

#include "values.hpp"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace anyturn::config {

namespace {

using detail::expected;

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null: return "null";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a map";
    case YAML::NodeType::Scalar: return "'" + node.Scalar() + "'";
    default: return "nothing";
  }
}

std::string join(std::string_view parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  std::string out(parent);
  out.append(".").append(key);
  return out;
}

std::string index(std::string_view parent, std::size_t i) {
  return std::string(parent) + "[" + std::to_string(i) + "]";
}

class loader {
 public:
  explicit loader(std::vector<std::string>& errors) : errors_(errors) {}

  [[nodiscard]] std::size_t error_count() const { return count_; }

  void root(const YAML::Node& doc, server_config& cfg) {
    for_each_key(doc, "", {"listen", "relay", "realm", "auth", "lifetimes", "peers", "threads",
                           "log_level", "software", "limits", "tls", "dtls", "streams", "state_dir", "http",
                           "fleet", "tenants", "usage_log", "log", "reload", "stun", "xdp"},
                 [&](const std::string& key, const YAML::Node& v, const std::string& path) {
                   if (key == "listen") listen(v, path, cfg.listen, cfg.listen_proxy);
                   else if (key == "relay") relay(v, path, cfg.relay);
                   else if (key == "realm") string(v, path, cfg.auth.realm);
                   else if (key == "auth") auth(v, path, cfg.auth, cfg.lifetimes);
                   else if (key == "lifetimes") lifetimes(v, path, cfg.lifetimes);
                   else if (key == "peers") peers(v, path, cfg.peers);
                   else if (key == "threads") uint(v, path, cfg.threads);
                   else if (key == "log_level") string(v, path, cfg.log_level);
                   else if (key == "software") string(v, path, cfg.software);
                   else if (key == "limits") limits(v, path, cfg);
                   else if (key == "tls") tls(v, path, cfg.tls);
                   else if (key == "dtls") dtls(v, path, cfg.dtls);
                   else if (key == "streams") streams(v, path, cfg.streams);
                   else if (key == "state_dir") string(v, path, cfg.state_dir);
                   else if (key == "http") http(v, path, cfg.http);
                   else if (key == "fleet") fleet(v, path, cfg.fleet);
                   else if (key == "tenants") tenants(v, path, cfg.tenants);
                   else if (key == "usage_log") string(v, path, cfg.usage_log);
                   else if (key == "log") log(v, path, cfg);
                   else if (key == "reload") reload(v, path, cfg.reload);
                   else if (key == "stun") stun_section(v, path, cfg.stun);
                   else if (key == "xdp") xdp(v, path, cfg.xdp);
                 });
  }

  // xdp: {interfaces: [IFACE...], mode, max_channels, max_allocations}
  // (validate() checks the names, the mode and the sizes).
  void xdp(const YAML::Node& node, const std::string& path, xdp_config& out) {
    for_each_key(node, path, {"interfaces", "mode", "max_channels", "max_allocations"},
                 [&](const std::string& key, const YAML::Node& v, const std::string& child) {
                   if (key == "interfaces") strings(v, child, out.interfaces);
                   else if (key == "mode") string(v, child, out.mode);
                   else if (key == "max_channels") uint(v, child, out.max_channels);
                   else if (key == "max_allocations") uint(v, child, out.max_allocations);
                 });
  }

  // stun: {other_ip: ADDR} (RFC 5780; validate() checks it against `listen`).
  void stun_section(const YAML::Node& node, const std::string& path, stun_config& out) {
    for_each_key(node, path, {"other_ip"},
                 [&](const std::string&, const YAML::Node& v, const std::string& child) {
                   std::string text;
                   string(v, child, text);
                   if (text.empty()) return;
                   if (auto ip = detail::parse_ip(text)) out.other_ip = *ip;
                   else error(expected(child, detail::expect_ip, text));
                 });
  }

  void reload(const YAML::Node& node, const std::string& path, reload_config& out) {
    for_each_key(node, path, {"revoke_removed"},
                 [&](const std::string&, const YAML::Node& v, const std::string& child) {
                   boolean(v, child, out.revoke_removed);
                 });
  }

 private:
  // log: {format: text|json} (validate() checks the value).
  void log(const YAML::Node& node, const std::string& path, server_config& cfg) {
    for_each_key(node, path, {"format"},
                 [&](const std::string& key, const YAML::Node& v, const std::string& p) {
                   if (key == "format") string(v, p, cfg.log_format);
                 });
  }

  void error(std::string message) {
    errors_.push_back(std::move(message));
    ++count_;
  }

  // Walks a mapping (null counts as an empty one), reporting unknown,
  // duplicate and non-string keys by path, and calls `fn` for the rest.
  template <typename Fn>
  void for_each_key(const YAML::Node& node, const std::string& path,
                    std::initializer_list<std::string_view> allowed, Fn&& fn) {
    if (node.IsNull()) return;
    if (!node.IsMap()) {
      error((path.empty() ? std::string("top level") : path) + ": expected a map, got " +
            describe(node));
      return;
    }
    std::set<std::string> seen;
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (!it->first.IsScalar()) {
        error((path.empty() ? std::string("top level") : path) + ": keys must be strings, got " +
              describe(it->first));
        continue;
      }
      const std::string key = it->first.Scalar();
      const std::string child = join(path, key);
      bool known = false;
      for (auto a : allowed) known = known || a == key;
      if (!known) {
        std::string msg = child + ": unknown key (expected one of: ";
        bool first = true;
        for (auto a : allowed) {
          msg.append(first ? "" : ", ").append(a);
          first = false;
        }
        error(msg + ")");
        continue;
      }
      if (!seen.insert(key).second) {
        error(child + ": duplicate key");
        continue;
      }
      fn(key, it->second, child);
    }
  }

  // ---- scalars ----
  bool scalar(const YAML::Node& node, const std::string& path, std::string_view what,
              std::string& out) {
    if (!node.IsScalar()) {
      error(path + ": expected " + std::string(what) + ", got " + describe(node));
      return false;
    }
    out = node.Scalar();
    return true;
  }

  void string(const YAML::Node& node, const std::string& path, std::string& out) {
    std::string text;
    if (scalar(node, path, "a string", text)) out = std::move(text);
  }

  void optional_string(const YAML::Node& node, const std::string& path,
                       std::optional<std::string>& out) {
    std::string text;
    if (scalar(node, path, "a string", text)) out = std::move(text);
  }

  template <typename T>
  void uint(const YAML::Node& node, const std::string& path, T& out) {
    constexpr auto max = std::numeric_limits<T>::max();
    const std::string what = "an integer in 0.." + std::to_string(max);
    std::string text;
    if (!scalar(node, path, what, text)) return;
    if (auto v = detail::parse_uint(text, max)) {
      out = static_cast<T>(*v);
    } else {
      error(expected(path, what, text));
    }
  }

  void boolean(const YAML::Node& node, const std::string& path, bool& out) {
    std::string text;
    if (!scalar(node, path, "true or false", text)) return;
    std::string lower;
    for (char c : text) lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    if (lower == "true" || lower == "yes" || lower == "on") out = true;
    else if (lower == "false" || lower == "no" || lower == "off") out = false;
    else error(expected(path, "true or false", text));
  }

  // A list (null counts as empty) whose items are strings; `item` gets each
  // one with its path.
  template <typename Fn>
  void string_list(const YAML::Node& node, const std::string& path, Fn&& item) {
    if (node.IsNull()) return;
    if (!node.IsSequence()) {
      error(path + ": expected a list of strings, got " + describe(node));
      return;
    }
    for (std::size_t i = 0; i < node.size(); ++i) {
      std::string text;
      const std::string child = index(path, i);
      if (scalar(node[i], child, "a string", text)) item(text, child);
    }
  }

  // ---- sections ----
  // A list of "ADDR:PORT" strings or maps {address, proxy_protocol, trusted}
  // (PROXY protocol on that entry's stream listener).
  void listen(const YAML::Node& node, const std::string& path, std::vector<stun::endpoint>& out,
              std::vector<proxy_protocol_config>& proxy) {
    std::vector<stun::endpoint> parsed;
    std::vector<proxy_protocol_config> parsed_proxy;
    if (!node.IsNull() && !node.IsSequence()) {
      error(path + ": expected a list of strings or maps {address, proxy_protocol, trusted}, got " +
            describe(node));
      return;
    }
    for (std::size_t i = 0; i < (node.IsNull() ? 0 : node.size()); ++i) {
      const std::string child = index(path, i);
      const YAML::Node item = node[i];
      std::string text;
      proxy_protocol_config pp;
      bool have_address = false;
      if (item.IsMap()) {
        for_each_key(item, child, {"address", "proxy_protocol", "trusted"},
                     [&](const std::string& key, const YAML::Node& v, const std::string& sub) {
                       if (key == "address") {
                         if (!scalar(v, sub, detail::expect_listen, text)) return;
                         have_address = true;
                         if (!detail::parse_listen(text)) error(expected(sub, detail::expect_listen, text));
                       } else if (key == "proxy_protocol") {
                         boolean(v, sub, pp.enabled);
                       } else {
                         cidrs(v, sub, pp.trusted);
                       }
                     });
        if (!have_address) {
          error(child + ".address: missing (a listen entry written as a map needs its address)");
          continue;
        }
      } else if (!scalar(item, child, "ADDR:PORT or a map {address, proxy_protocol, trusted}", text)) {
        continue;
      }
      auto ep = detail::parse_listen(text);
      if (!ep) {
        if (!item.IsMap()) error(expected(child, detail::expect_listen, text));
        continue;
      }
      parsed.push_back(*ep);
      parsed_proxy.push_back(std::move(pp));
    }
    // Keep the proxy list only as long as its last enabled entry.
    while (!parsed_proxy.empty() && !parsed_proxy.back().enabled && parsed_proxy.back().trusted.empty()) {
      parsed_proxy.pop_back();
    }
    out = std::move(parsed);
    proxy = std::move(parsed_proxy);
  }

  void relay(const YAML::Node& node, const std::string& path, relay_config& out) {
    for_each_key(node, path, {"ips", "external_ips", "ports", "tcp"},
                 [&](const std::string& key, const YAML::Node& v, const std::string& child) {
                   if (key == "ips") {
                     relay_ips(v, child, out);
                   } else if (key == "tcp") {
                     boolean(v, child, out.tcp);
                   } else if (key == "external_ips") {
                     external_ips(v, child, out.external_ips);
                   } else {
                     std::string text;
                     if (!scalar(v, child, detail::expect_port_range, text)) return;
                     if (auto range = detail::parse_port_range(text)) {
                       out.port_min = range->first;
                       out.port_max = range->second;
                     } else {
                       error(expected(child, detail::expect_port_range, text));
                     }
                   }
                 });
  }

  void relay_ips(const YAML::Node& node, const std::string& path, relay_config& out) {
    std::vector<stun::endpoint> ips;
    bool any_auto = false;
    string_list(node, path, [&](const std::string& text, const std::string& child) {
      if (text == "auto") {
        if (any_auto) {
          error(child + ": 'auto' given twice");
          return;
        }
        any_auto = true;
        ips.push_back(auto_relay_ip());
      } else if (auto ip = detail::parse_ip(text)) {
        ips.push_back(*ip);
      } else {
        error(expected(child, detail::expect_relay_ip, text));
      }
    });
    out.ips = std::move(ips);
    out.ips_auto = any_auto;
  }

  // relay.external_ips: "PUBLIC" or "PUBLIC/PRIVATE" (checked against
  // relay.ips by validate(), after 'auto' is resolved).
  void external_ips(const YAML::Node& node, const std::string& path, std::vector<external_ip>& out) {
    std::vector<external_ip> parsed;
    string_list(node, path, [&](const std::string& text, const std::string& child) {
      if (auto e = detail::parse_external_ip(text)) parsed.push_back(*e);
      else error(expected(child, detail::expect_external_ip, text));
    });
    out = std::move(parsed);
  }

  // A list of bare IP addresses (fleet.anycast_ips, fleet.unicast_ips).
  void ips(const YAML::Node& node, const std::string& path, std::vector<stun::endpoint>& out) {
    std::vector<stun::endpoint> parsed;
    string_list(node, path, [&](const std::string& text, const std::string& child) {
      if (auto ip = detail::parse_ip(text)) parsed.push_back(*ip);
      else error(expected(child, detail::expect_ip, text));
    });
    out = std::move(parsed);
  }

  void fleet(const YAML::Node& node, const std::string& path, fleet_config& out) {
    for_each_key(node, path,
                 {"anycast_ips", "unicast_ips", "alternate_domain", "node_id", "redis",
                  "drain_alternate", "drain_timeout"},
                 [&](const std::string& key, const YAML::Node& v, const std::string& child) {
                   if (key == "anycast_ips") {
                     ips(v, child, out.anycast_ips);
                   } else if (key == "unicast_ips") {
                     ips(v, child, out.unicast_ips);
                   } else if (key == "alternate_domain") {
                     string(v, child, out.alternate_domain);
                   } else if (key == "node_id") {
                     string(v, child, out.node_id);
                   } else if (key == "redis") {
                     // May hold a password: say what is wrong, never echo it (validate()).
                     string(v, child, out.redis);
                   } else if (key == "drain_alternate") {
                     if (v.IsNull()) {
                       out.drain_alternate.reset();
                       return;
                     }
                     std::string text;
                     if (!scalar(v, child, detail::expect_listen, text)) return;
                     if (auto ep = detail::parse_listen(text)) out.drain_alternate = *ep;
                     else error(expected(child, detail::expect_listen, text));
                   } else {
                     uint(v, child, out.drain_timeout);
                   }
                 });
  }

  void auth(const YAML::Node& node, const std::string& path, auth_config& out,
            lifetime_config& lifetimes) {
    bool one_key = false;
    bool key_list = false;
    for_each_key(node, path,
                 {"users", "secrets", "api_keys", "nonce_key", "nonce_keys", "nonce_lifetime",
                  "nonce_max_skew", "offer_sha256", "enforce_expiry"},
                 [&](const std::string& key, const YAML::Node& v, const std::string& child) {
                   if (key == "users") {
                     users(v, child, out.users);
                   } else if (key == "secrets") {
                     strings(v, child, out.rest_secrets);
                   } else if (key == "api_keys") {
                     strings(v, child, out.api_keys);
                   } else if (key == "nonce_key") {  // one key: the short spelling
                     std::string text;
                     string(v, child, text);
                     out.nonce_keys.clear();
                     if (!text.empty()) out.nonce_keys.push_back(std::move(text));
                     one_key = true;
                   } else if (key == "nonce_keys") {
                     strings(v, child, out.nonce_keys);
                     key_list = true;
                   } else if (key == "nonce_lifetime") {
                     uint(v, child, lifetimes.nonce);
                   } else if (key == "nonce_max_skew") {
                     uint(v, child, out.nonce_max_skew);
                   } else if (key == "offer_sha256") {
                     boolean(v, child, out.offer_sha256);
                   } else if (key == "enforce_expiry") {
                     boolean(v, child, out.enforce_expiry);
                   }
                 });
    if (one_key && key_list) {
      error(path + ": give either nonce_key (one key) or nonce_keys (a list), not both");
    }
  }

  // A list of strings, replacing `out`.
  void strings(const YAML::Node& node, const std::string& path, std::vector<std::string>& out) {
    std::vector<std::string> parsed;
    string_list(node, path, [&](const std::string& text, const std::string&) { parsed.push_back(text); });
    out = std::move(parsed);
  }

  void http(const YAML::Node& node, const std::string& path, http_config& out) {
    for_each_key(node, path,
                 {"enabled", "listen", "tls", "max_ttl", "default_ttl", "urls", "admin_keys",
                  "test_page", "probe_max_concurrent", "probe_max_count", "probe_timeout", "probe_ca",
                  "probe_targets", "probe_credentials"},
                 [&](const std::string& key, const YAML::Node& v, const std::string& child) {
                   if (key == "enabled") {
                     boolean(v, child, out.enabled);
                   } else if (key == "listen") {
                     std::string text;
                     if (!scalar(v, child, detail::expect_listen, text)) return;
                     if (auto ep = detail::parse_listen(text)) out.listen = *ep;
                     else error(expected(child, detail::expect_listen, text));
                   } else if (key == "tls") {
                     for_each_key(v, child, {"cert", "key"},
                                  [&](const std::string& k, const YAML::Node& tv, const std::string& p) {
                                    string(tv, p, k == "cert" ? out.tls_cert : out.tls_key);
                                  });
                   } else if (key == "max_ttl") {
                     uint(v, child, out.max_ttl);
                   } else if (key == "default_ttl") {
                     uint(v, child, out.default_ttl);
                   } else if (key == "admin_keys") {
                     strings(v, child, out.admin_keys);
                   } else if (key == "test_page") {
                     boolean(v, child, out.test_page);
                   } else if (key.starts_with("probe_")) {
                     probe(key, v, child, out.probe);
                   } else {
                     for_each_key(v, child, {"stun", "turn"},
                                  [&](const std::string& k, const YAML::Node& uv, const std::string& p) {
                                    strings(uv, p, k == "stun" ? out.stun_urls : out.turn_urls);
                                  });
                   }
                 });
  }

  // http.probe_* (GET /probe).
  void probe(const std::string& key, const YAML::Node& v, const std::string& path,
             http_probe_config& out) {
    if (key == "probe_max_concurrent") {
      uint(v, path, out.max_concurrent);
    } else if (key == "probe_max_count") {
      uint(v, path, out.max_count);
    } else if (key == "probe_timeout") {
      uint(v, path, out.timeout);
    } else if (key == "probe_ca") {
      string(v, path, out.ca);
    } else if (key == "probe_targets") {
      strings(v, path, out.targets);
    } else {
      list_of_maps(v, path, "{target, username, password} or {target, secret} maps",
                   "target and username, password (or secret)", out.credentials,
                   [&](const YAML::Node& entry, const std::string& child) {
                     probe_credential c;
                     for_each_key(entry, child, {"target", "username", "password", "secret"},
                                  [&](const std::string& k, const YAML::Node& cv, const std::string& p) {
                                    string(cv, p,
                                           k == "target"     ? c.target
                                           : k == "username" ? c.username
                                           : k == "password" ? c.password
                                                             : c.secret);
                                  });
                     return c;
                   });
    }
  }

  // A list whose entries are maps: null clears `out`; each map entry is
  // parsed by `parse(entry, child_path)`, and a non-map entry is an error.
  template <typename T, typename Parse>
  void list_of_maps(const YAML::Node& node, const std::string& path, std::string_view list_shape,
                    std::string_view entry_shape, std::vector<T>& out, Parse parse) {
    std::vector<T> parsed;
    if (node.IsNull()) {
      out.clear();
      return;
    }
    if (!node.IsSequence()) {
      error(path + ": expected a list of " + std::string(list_shape) + ", got " + describe(node));
      return;
    }
    for (std::size_t i = 0; i < node.size(); ++i) {
      const std::string child = index(path, i);
      const YAML::Node entry = node[i];
      if (!entry.IsMap()) {
        error(child + ": expected a map with " + std::string(entry_shape) + ", got " +
              describe(entry));
        continue;
      }
      parsed.push_back(parse(entry, child));
    }
    out = std::move(parsed);
  }

  void tenants(const YAML::Node& node, const std::string& path, std::vector<tenant_config>& out) {
    list_of_maps(node, path, "tenant maps ({id, secrets, api_keys, users, quotas, limits})",
                 "id, secrets, api_keys, users, quotas, limits", out,
                 [&](const YAML::Node& entry, const std::string& child) {
      tenant_config t;
      bool has_id = false;
      for_each_key(entry, child, {"id", "secrets", "api_keys", "users", "quotas", "limits"},
                   [&](const std::string& key, const YAML::Node& v, const std::string& kpath) {
                     if (key == "id") {
                       has_id = true;
                       string(v, kpath, t.id);
                     } else if (key == "secrets") {
                       strings(v, kpath, t.secrets);
                     } else if (key == "api_keys") {
                       strings(v, kpath, t.api_keys);
                     } else if (key == "users") {
                       users(v, kpath, t.users);
                     } else if (key == "quotas") {
                       quotas(v, kpath, t);
                     } else {
                       tenant_limits(v, kpath, t.allocation_limits);
                     }
                   });
      if (!has_id) error(child + ": missing 'id'");
      return t;
    });
  }

  void quotas(const YAML::Node& node, const std::string& path, tenant_config& out) {
    for_each_key(node, path, {"max_allocations", "max_allocations_per_user", "bandwidth"},
                 [&](const std::string& key, const YAML::Node& v, const std::string& child) {
                   if (key == "max_allocations") uint(v, child, out.max_allocations);
                   else if (key == "max_allocations_per_user") uint(v, child, out.max_allocations_per_user);
                   else uint(v, child, out.bandwidth);
                 });
  }

  // tenants[].limits: only `allocation` for now.
  void tenant_limits(const YAML::Node& node, const std::string& path,
                     allocation_limits_override& out) {
    for_each_key(node, path, {"allocation"},
                 [&](const std::string&, const YAML::Node& v, const std::string& child) {
                   allocation_limits(v, child, out);
                 });
  }

  // limits.allocation and tenants[].limits.allocation: the keys present.
  void allocation_limits(const YAML::Node& node, const std::string& path,
                         allocation_limits_override& out) {
    for_each_key(node, path,
                 {"max_peers", "max_channels", "permissions_per_second", "permission_burst",
                  "packets_per_second", "bytes_per_second"},
                 [&](const std::string& key, const YAML::Node& v, const std::string& child) {
                   if (key == "bytes_per_second") {
                     std::uint64_t value = 0;
                     uint(v, child, value);
                     out.bytes_per_second = value;
                     return;
                   }
                   std::uint32_t value = 0;
                   uint(v, child, value);
                   if (key == "max_peers") out.max_peers = value;
                   else if (key == "max_channels") out.max_channels = value;
                   else if (key == "permissions_per_second") out.permissions_per_second = value;
                   else if (key == "permission_burst") out.permission_burst = value;
                   else out.packets_per_second = value;
                 });
  }

  void users(const YAML::Node& node, const std::string& path, std::vector<auth::static_user>& out) {
    list_of_maps(node, path, "{name, password} or {name, key} maps", "name and password (or key)",
                 out, [&](const YAML::Node& entry, const std::string& child) {
      auth::static_user user;
      bool has_name = false;
      for_each_key(entry, child, {"name", "password", "key"},
                   [&](const std::string& key, const YAML::Node& v, const std::string& kpath) {
                     if (key == "name") {
                       has_name = true;
                       string(v, kpath, user.name);
                     } else if (key == "password") {
                       optional_string(v, kpath, user.password);
                     } else {
                       std::string text;
                       if (!scalar(v, kpath, detail::expect_md5_key, text)) return;
                       // The key is a credential: say what is wrong, never echo it.
                       if (auto k = detail::parse_md5_hex(text)) user.key = *k;
                       else error(kpath + ": expected " + std::string(detail::expect_md5_key) +
                                  (text.size() == 32 ? std::string(", got a non-hex character")
                                                     : ", got " + std::to_string(text.size()) +
                                                           " characters"));
                     }
                   });
      if (!has_name) error(child + ": missing 'name'");
      return user;
    });
  }

  void lifetimes(const YAML::Node& node, const std::string& path, lifetime_config& out) {
    for_each_key(node, path, {"allocation_default", "allocation_max", "permission", "channel"},
                 [&](const std::string& key, const YAML::Node& v, const std::string& child) {
                   if (key == "allocation_default") uint(v, child, out.allocation_default);
                   else if (key == "allocation_max") uint(v, child, out.allocation_max);
                   else if (key == "permission") uint(v, child, out.permission);
                   else if (key == "channel") uint(v, child, out.channel);
                 });
  }

  void cidrs(const YAML::Node& node, const std::string& path, std::vector<auth::cidr>& out) {
    std::vector<auth::cidr> parsed;
    string_list(node, path, [&](const std::string& text, const std::string& child) {
      if (auto c = detail::parse_cidr(text)) parsed.push_back(*c);
      else error(expected(child, detail::expect_cidr, text));
    });
    out = std::move(parsed);
  }

  void peers(const YAML::Node& node, const std::string& path, peer_config& out) {
    for_each_key(node, path, {"allow", "deny"},
                 [&](const std::string& key, const YAML::Node& v, const std::string& child) {
                   cidrs(v, child, key == "allow" ? out.allow : out.deny);
                 });
  }

  void limits(const YAML::Node& node, const std::string& path, server_config& out) {
    for_each_key(node, path,
                 {"max_allocations_per_worker", "max_allocations_per_user", "max_allocations",
                  "allocation", "udp_socket_buffer", "udp_coalesce_us", "udp_gso", "udp_gro",
                  "udp_busy_poll_us", "unauthenticated_per_source", "auth_failures"},
                 [&](const std::string& key, const YAML::Node& v, const std::string& child) {
                   if (key == "max_allocations_per_worker") uint(v, child, out.max_allocations_per_worker);
                   else if (key == "max_allocations") uint(v, child, out.max_allocations);
                   else if (key == "allocation") {
                     allocation_limits_override set;
                     allocation_limits(v, child, set);
                     out.allocation_limits = set.over(out.allocation_limits);
                   }
                   else if (key == "max_allocations_per_user") uint(v, child, out.max_allocations_per_user);
                   else if (key == "udp_socket_buffer") uint(v, child, out.udp_socket_buffer);
                   else if (key == "udp_coalesce_us") uint(v, child, out.udp_coalesce_us);
                   else if (key == "udp_gso") boolean(v, child, out.udp_gso);
                   else if (key == "udp_gro") boolean(v, child, out.udp_gro);
                   else if (key == "unauthenticated_per_source") unauthenticated(v, child, out.unauthenticated_per_source);
                   else if (key == "auth_failures") auth_failures(v, child, out.auth_failures);
                   else uint(v, child, out.udp_busy_poll_us);
                 });
  }

  void unauthenticated(const YAML::Node& node, const std::string& path, unauthenticated_limit& out) {
    for_each_key(node, path, {"rate", "burst"},
                 [&](const std::string& key, const YAML::Node& v, const std::string& child) {
                   uint(v, child, key == "rate" ? out.rate : out.burst);
                 });
  }

  void auth_failures(const YAML::Node& node, const std::string& path, auth_failure_limit& out) {
    for_each_key(node, path,
                 {"per_source_per_minute", "per_source_burst", "per_user_per_minute", "per_user_burst"},
                 [&](const std::string& key, const YAML::Node& v, const std::string& child) {
                   if (key == "per_source_per_minute") uint(v, child, out.per_source_per_minute);
                   else if (key == "per_source_burst") uint(v, child, out.per_source_burst);
                   else if (key == "per_user_per_minute") uint(v, child, out.per_user_per_minute);
                   else uint(v, child, out.per_user_burst);
                 });
  }

  void tls(const YAML::Node& node, const std::string& path, tls_config& out) {
    for_each_key(node, path, {"listen", "cert", "key"},
                 [&](const std::string& key, const YAML::Node& v, const std::string& child) {
                   if (key == "listen") listen(v, child, out.listen, out.listen_proxy);
                   else if (key == "cert") string(v, child, out.cert);
                   else string(v, child, out.key);
                 });
  }

  void dtls(const YAML::Node& node, const std::string& path, dtls_config& out) {
    for_each_key(node, path, {"listen", "handshake_timeout", "idle_timeout"},
                 [&](const std::string& key, const YAML::Node& v, const std::string& child) {
                   if (key == "listen") {
                     std::vector<proxy_protocol_config> proxy;
                     listen(v, child, out.listen, proxy);
                     if (!proxy.empty()) error(child + ": proxy_protocol is for TCP listeners; DTLS takes addresses only");
                   } else if (key == "handshake_timeout") {
                     uint(v, child, out.handshake_timeout);
                   } else {
                     uint(v, child, out.idle_timeout);
                   }
                 });
  }

  void streams(const YAML::Node& node, const std::string& path, stream_config& out) {
    for_each_key(node, path,
                 {"tcp", "max_connections", "max_connections_per_ip", "tls_handshake_timeout",
                  "idle_timeout", "max_message_size", "write_queue_size", "first_message_timeout_s",
                  "unauthenticated_memory"},
                 [&](const std::string& key, const YAML::Node& v, const std::string& child) {
                   if (key == "tcp") boolean(v, child, out.tcp);
                   else if (key == "max_connections") uint(v, child, out.max_connections);
                   else if (key == "max_connections_per_ip") uint(v, child, out.max_connections_per_ip);
                   else if (key == "tls_handshake_timeout") uint(v, child, out.tls_handshake_timeout);
                   else if (key == "idle_timeout") uint(v, child, out.idle_timeout);
                   else if (key == "max_message_size") uint(v, child, out.max_message_size);
                   else if (key == "first_message_timeout_s") uint(v, child, out.first_message_timeout_s);
                   else if (key == "unauthenticated_memory") uint(v, child, out.unauthenticated_memory);
                   else uint(v, child, out.write_queue_size);
                 });
  }

  std::vector<std::string>& errors_;
  std::size_t count_ = 0;
};

}  // namespace

std::optional<server_config> load_yaml(const std::string& yaml_text,
                                       std::vector<std::string>& errors) {
  try {
    const YAML::Node doc = YAML::Load(yaml_text);
    server_config cfg = defaults();
    loader l(errors);
    l.root(doc, cfg);
    if (l.error_count() != 0) return std::nullopt;
    return cfg;
  } catch (const YAML::Exception& e) {
    std::string msg = "yaml";
    if (!e.mark.is_null()) {
      msg += ": line " + std::to_string(e.mark.line + 1) + ", column " +
             std::to_string(e.mark.column + 1);
    }
    errors.push_back(msg + ": " + e.msg);
  } catch (const std::exception& e) {
    errors.push_back(std::string("yaml: ") + e.what());
  }
  return std::nullopt;
}

std::optional<server_config> load_file(const std::string& path, std::vector<std::string>& errors) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    errors.push_back(path + ": cannot open: " + std::strerror(errno));
    return std::nullopt;
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    errors.push_back(path + ": cannot read: " + std::strerror(errno));
    return std::nullopt;
  }
  return load_yaml(text.str(), errors);
}

}  // namespace anyturn::config
