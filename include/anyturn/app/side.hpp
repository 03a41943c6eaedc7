// anyturn::app — wiring of the side module: what the validated config means
// for the credential store, the TURN core's tenant table and the HTTP
// server, and offline credential minting. (The metrics collectors live in
// metrics/: turn_metrics, net_metrics.)
//
// Tenant indices are the same everywhere: 0 is the default tenant (id "",
// from auth.users / auth.secrets / auth.api_keys and the flags), k+1 is
// config.tenants[k]. The credential store resolves a username to that
// index, the core counts and limits by it, the metrics label it with the id
// ("default" for index 0), and the credentials API mints usernames that
// resolve back to it.
#pragma once

#include <anyturn/auth/credentials.hpp>
#include <anyturn/config/cli.hpp>
#include <anyturn/config/config.hpp>
#include <anyturn/http/server.hpp>
#include <anyturn/turn/worker_core.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace anyturn::app {

// Credentials per tenant, index = auth::tenant_index.
std::vector<auth::tenant_credentials> tenant_credentials(const config::server_config& cfg);
// Quotas and limits per tenant, index = auth::tenant_index. The default
// tenant's total is limits.max_allocations and limits.max_allocations_per_user
// applies to it; each tenant's limits.allocation is the global one with the
// tenant's keys replaced.
std::vector<turn::tenant_policy> tenant_policies(const config::server_config& cfg);
// limits.allocation as the relay core copies it into each allocation.
relay::allocation_limits allocation_limits(const config::allocation_limits_config& l);
// Tenant ids by index ("" for the default tenant): the metrics' tenant label.
std::vector<std::string> tenant_ids(const config::server_config& cfg);

// The URLs the credentials API hands out: http.urls when configured; else
// derived from the bound listeners (a wildcard listener is advertised under
// the relay address of its family): stun: and turn:?transport=udp for each
// listener, turn:?transport=tcp when TCP is on, turns:?transport=tcp for each
// TLS listener. `derived` tells which happened.
struct ice_urls_result {
  http::ice_urls urls;
  bool derived = false;
};
ice_urls_result ice_urls_for(const config::server_config& cfg,
                             std::span<const stun::endpoint> listeners,
                             std::span<const stun::endpoint> tls_listeners);

// The HTTP server's config (tenants with API keys, TTLs, TLS files, address);
// `ready` and `registry` are left for the caller.
http::server_config http_server_config(const config::server_config& cfg, http::ice_urls urls);

// GET /probe: http.probe_* and this node's bound listeners (`listeners`
// serve UDP, and TCP when streams.tcp is on; `tls_listeners` TLS), the
// credential it mints for itself from cfg.auth.probe_secret (60 s), and
// probe::run.
http::probe_settings probe_settings_for(const config::server_config& cfg,
                                        std::span<const stun::endpoint> listeners,
                                        std::span<const stun::endpoint> tls_listeners);
// A fresh internal probe secret (64 hex digits from the OpenSSL CSPRNG).
std::string new_probe_secret();

// ---- anyturn credentials ----
struct minted_credentials {
  std::string username;
  std::string password;
  std::uint32_t ttl = 0;
  std::int64_t expires_at = 0;  // unix seconds
};
// username "<now+ttl>[:<tenant>]:<user>" (or "<now+ttl>"), password
// base64(HMAC-SHA1(secret, username)).
minted_credentials mint_credentials(const config::credentials_options& o, std::int64_t now);
// "username: ...\npassword: ...\nttl: ...\nexpires: <RFC 3339>\n", or with
// `json` one line {"username":...,"password":...,"ttl":...,"expiresAt":...}.
std::string format_credentials(const minted_credentials& c, bool json);

}  // namespace anyturn::app
