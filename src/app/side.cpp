// Config -> credential store, tenant table, HTTP server config; offline
// credential minting.
#include <anyturn/app/side.hpp>

#include <anyturn/auth/nonce.hpp>
#include <anyturn/http/api.hpp>
#include <anyturn/http/json.hpp>
#include <anyturn/http/probe_route.hpp>

#include <algorithm>
#include <chrono>
#include <optional>
#include <utility>

namespace anyturn::app {

std::vector<auth::tenant_credentials> tenant_credentials(const config::server_config& cfg) {
  std::vector<auth::tenant_credentials> out;
  out.reserve(cfg.tenants.size() + 1);
  out.push_back({"", cfg.auth.users, cfg.auth.rest_secrets});
  for (const auto& t : cfg.tenants) out.push_back({t.id, t.users, t.secrets});
  return out;
}

relay::allocation_limits allocation_limits(const config::allocation_limits_config& l) {
  relay::allocation_limits out;
  out.max_peers = l.max_peers;
  out.max_channels = l.max_channels;
  out.permissions_per_second = l.permissions_per_second;
  out.permission_burst = l.permission_burst;
  out.packets_per_second = l.packets_per_second;
  out.bytes_per_second = l.bytes_per_second;
  return out;
}

std::vector<turn::tenant_policy> tenant_policies(const config::server_config& cfg) {
  std::vector<turn::tenant_policy> out;
  out.reserve(cfg.tenants.size() + 1);
  turn::tenant_policy default_tenant;
  default_tenant.max_allocations = cfg.max_allocations;  // limits.max_allocations
  default_tenant.allocation = allocation_limits(cfg.allocation_limits);
  out.push_back(std::move(default_tenant));
  for (const auto& t : cfg.tenants) {
    turn::tenant_policy p;
    p.id = t.id;
    p.max_allocations = t.max_allocations;
    p.max_allocations_per_user = t.max_allocations_per_user;
    p.bandwidth_bytes_per_s = t.bandwidth;
    p.allocation = allocation_limits(t.allocation_limits.over(cfg.allocation_limits));
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<std::string> tenant_ids(const config::server_config& cfg) {
  std::vector<std::string> out{""};
  for (const auto& t : cfg.tenants) out.push_back(t.id);
  return out;
}

namespace {

bool is_unspecified(const stun::endpoint& ep) {
  return std::all_of(ep.ip.begin(), ep.ip.begin() + static_cast<std::ptrdiff_t>(ep.ip_size()),
                     [](std::uint8_t b) { return b == 0; });
}

// "host:port" for a URL: IPv6 in brackets; a wildcard becomes the relay
// address of its family (none: nothing to advertise).
std::optional<std::string> url_authority(const stun::endpoint& listener,
                                         const std::vector<stun::endpoint>& relays) {
  stun::endpoint host = listener;
  if (is_unspecified(listener)) {
    const auto it = std::find_if(relays.begin(), relays.end(), [&](const stun::endpoint& r) {
      return r.family == listener.family;
    });
    if (it == relays.end()) return std::nullopt;
    host = *it;
  }
  const std::string ip = host.ip_string();
  return (host.is_v4() ? ip : "[" + ip + "]") + ":" + std::to_string(listener.port);
}

void add_unique(std::vector<std::string>& list, std::string url) {
  if (std::find(list.begin(), list.end(), url) == list.end()) list.push_back(std::move(url));
}

}  // namespace

ice_urls_result ice_urls_for(const config::server_config& cfg,
                             std::span<const stun::endpoint> listeners,
                             std::span<const stun::endpoint> tls_listeners) {
  ice_urls_result r;
  if (!cfg.http.stun_urls.empty() || !cfg.http.turn_urls.empty()) {
    r.urls.stun = cfg.http.stun_urls;
    r.urls.turn = cfg.http.turn_urls;
    return r;
  }
  r.derived = true;
  std::vector<std::string> tcp;
  for (const auto& l : listeners) {
    const auto authority = url_authority(l, cfg.relay.ips);
    if (!authority) continue;
    add_unique(r.urls.stun, "stun:" + *authority);
    add_unique(r.urls.turn, "turn:" + *authority + "?transport=udp");
    if (cfg.streams.tcp) add_unique(tcp, "turn:" + *authority + "?transport=tcp");
  }
  for (auto& u : tcp) add_unique(r.urls.turn, std::move(u));
  for (const auto& l : tls_listeners) {
    const auto authority = url_authority(l, cfg.relay.ips);
    if (authority) add_unique(r.urls.turn, "turns:" + *authority + "?transport=tcp");
  }
  return r;
}

http::server_config http_server_config(const config::server_config& cfg, http::ice_urls urls) {
  http::server_config h;
  h.address = cfg.http.listen.ip_string();
  h.port = cfg.http.listen.port;
  if (!cfg.http.tls_cert.empty()) h.tls = http::tls_files{cfg.http.tls_cert, cfg.http.tls_key};
  h.threads = 1;
  h.urls = std::move(urls);
  h.admin_keys = cfg.http.admin_keys;
  h.test_page = cfg.http.test_page;
  if (h.test_page && !cfg.auth.rest_secrets.empty()) h.test_page_secret = cfg.auth.rest_secrets.front();
  auto add = [&](const std::string& id, const std::vector<std::string>& keys,
                 const std::vector<std::string>& secrets) {
    if (keys.empty()) return;  // this tenant does not use the API
    http::api_tenant t;
    t.id = id;
    t.api_keys = keys;
    t.secrets = secrets;
    t.max_ttl = cfg.http.max_ttl;
    t.default_ttl = cfg.http.default_ttl;
    h.tenants.push_back(std::move(t));
  };
  add("", cfg.auth.api_keys, cfg.auth.rest_secrets);
  for (const auto& t : cfg.tenants) add(t.id, t.api_keys, t.secrets);
  return h;
}

// ---- GET /probe ----

http::probe_settings probe_settings_for(const config::server_config& cfg,
                                        std::span<const stun::endpoint> listeners,
                                        std::span<const stun::endpoint> tls_listeners) {
  const config::http_probe_config& p = cfg.http.probe;
  http::probe_settings s;
  s.max_concurrent = p.max_concurrent;
  s.max_count = p.max_count;
  s.timeout = std::chrono::seconds(p.timeout);
  s.ca_file = p.ca;
  s.targets = p.targets;
  for (const auto& c : p.credentials) s.credentials.push_back({c.target, c.username, c.password, c.secret});
  using kind = http::probe_listener::kind;
  for (const auto& l : listeners) {
    s.own.push_back({l.ip_string(), l.port, kind::udp});
    if (cfg.streams.tcp) s.own.push_back({l.ip_string(), l.port, kind::tcp});
  }
  for (const auto& l : tls_listeners) s.own.push_back({l.ip_string(), l.port, kind::tls});
  if (!cfg.auth.probe_secret.empty()) {
    s.self_credentials = [secret = cfg.auth.probe_secret] {
      const std::int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count();
      return probe::rest_credentials(secret, auth::probe_user, http::probe_credential_ttl, now);
    };
  }
  s.run = [](const probe::target& t, const probe::options& o) { return probe::run(t, o); };
  return s;
}

std::string new_probe_secret() {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (const std::uint8_t b : auth::random_key(32)) {
    out += digits[b >> 4];
    out += digits[b & 0xf];
  }
  return out;
}

// ---- anyturn credentials ----

minted_credentials mint_credentials(const config::credentials_options& o, std::int64_t now) {
  minted_credentials c;
  std::string user = o.user;
  if (!o.tenant.empty()) user = o.tenant + ":" + o.user;
  c.ttl = o.ttl;
  c.expires_at = now + o.ttl;
  c.username = auth::rest_username(now, o.ttl, user);
  c.password = auth::rest_password(o.secret, c.username);
  return c;
}

std::string format_credentials(const minted_credentials& c, bool json) {
  std::string out;
  if (json) {
    out = "{\"username\":";
    http::json::append_string(out, c.username);
    out += ",\"password\":";
    http::json::append_string(out, c.password);
    out += ",\"ttl\":" + std::to_string(c.ttl) + ",\"expiresAt\":";
    http::json::append_string(out, http::rfc3339_utc(c.expires_at));
    out += "}\n";
    return out;
  }
  out = "username: " + c.username + "\npassword: " + c.password + "\nttl: " + std::to_string(c.ttl) +
        "\nexpires: " + http::rfc3339_utc(c.expires_at) + "\n";
  return out;
}

}  // namespace anyturn::app
