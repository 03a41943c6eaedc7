// Config hot reload: the restart-only keys, stable tenant indices and the
// next snapshot (see reload.hpp).
#include <anyturn/app/reload.hpp>

#include <anyturn/app/startup.hpp>

#include <algorithm>
#include <utility>

namespace anyturn::app {

namespace {

bool same_external(const std::vector<config::external_ip>& a, const std::vector<config::external_ip>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](const config::external_ip& x, const config::external_ip& y) {
                      return x.public_ip == y.public_ip && x.private_ip == y.private_ip;
                    });
}

// Copies `from` over `to` when they differ, and names the key.
template <typename T>
void keep(const T& from, T& to, const char* key, std::vector<std::string>& ignored) {
  if (!(from == to)) {
    ignored.emplace_back(key);
    to = from;
  }
}

}  // namespace

std::vector<std::string> keep_restart_only(const config::server_config& running,
                                           config::server_config& next) {
  std::vector<std::string> ignored;
  keep(running.listen, next.listen, "listen", ignored);
  // PROXY protocol is set on the listeners when they open.
  keep(running.listen_proxy, next.listen_proxy, "listen[].proxy_protocol", ignored);
  keep(running.relay.ips, next.relay.ips, "relay.ips", ignored);
  next.relay.ips_auto = running.relay.ips_auto;
  if (running.relay.port_min != next.relay.port_min || running.relay.port_max != next.relay.port_max) {
    ignored.emplace_back("relay.ports");
    next.relay.port_min = running.relay.port_min;
    next.relay.port_max = running.relay.port_max;
  }
  if (!same_external(running.relay.external_ips, next.relay.external_ips)) {
    ignored.emplace_back("relay.external_ips");
    next.relay.external_ips = running.relay.external_ips;
  }
  keep(running.threads, next.threads, "threads", ignored);
  keep(running.tls.listen, next.tls.listen, "tls.listen", ignored);
  keep(running.tls.listen_proxy, next.tls.listen_proxy, "tls.listen[].proxy_protocol", ignored);
  keep(running.stun.other_ip, next.stun.other_ip, "stun.other_ip", ignored);
  keep(running.xdp, next.xdp, "xdp", ignored);  // the program is attached at start
  keep(running.relay.tcp, next.relay.tcp, "relay.tcp", ignored);  // its sockets open at start
  keep(running.dtls.listen, next.dtls.listen, "dtls.listen", ignored);
  keep(running.dtls.handshake_timeout, next.dtls.handshake_timeout, "dtls.handshake_timeout", ignored);
  keep(running.dtls.idle_timeout, next.dtls.idle_timeout, "dtls.idle_timeout", ignored);
  keep(running.auth.realm, next.auth.realm, "realm", ignored);
  keep(running.auth.nonce_keys, next.auth.nonce_keys, "auth.nonce_keys", ignored);
  keep(running.auth.nonce_max_skew, next.auth.nonce_max_skew, "auth.nonce_max_skew", ignored);
  keep(running.auth.offer_sha256, next.auth.offer_sha256, "auth.offer_sha256", ignored);
  keep(running.lifetimes.nonce, next.lifetimes.nonce, "lifetimes.nonce", ignored);
  keep(running.state_dir, next.state_dir, "state_dir", ignored);
  keep(running.log_format, next.log_format, "log.format", ignored);
  keep(running.max_allocations_per_worker, next.max_allocations_per_worker,
       "limits.max_allocations_per_worker", ignored);
  keep(running.udp_socket_buffer, next.udp_socket_buffer, "limits.udp_socket_buffer", ignored);
  keep(running.udp_coalesce_us, next.udp_coalesce_us, "limits.udp_coalesce_us", ignored);
  keep(running.udp_gso, next.udp_gso, "limits.udp_gso", ignored);
  keep(running.udp_gro, next.udp_gro, "limits.udp_gro", ignored);
  keep(running.udp_busy_poll_us, next.udp_busy_poll_us, "limits.udp_busy_poll_us", ignored);
  if (running.unauthenticated_per_source.rate != next.unauthenticated_per_source.rate ||
      running.unauthenticated_per_source.burst != next.unauthenticated_per_source.burst) {
    ignored.emplace_back("limits.unauthenticated_per_source");
    next.unauthenticated_per_source = running.unauthenticated_per_source;
  }
  const auto& fa = running.auth_failures;
  const auto& fb = next.auth_failures;
  if (fa.per_source_per_minute != fb.per_source_per_minute || fa.per_source_burst != fb.per_source_burst ||
      fa.per_user_per_minute != fb.per_user_per_minute || fa.per_user_burst != fb.per_user_burst) {
    ignored.emplace_back("limits.auth_failures");
    next.auth_failures = running.auth_failures;
  }
  const auto& sa = running.streams;
  const auto& sb = next.streams;
  if (sa.tcp != sb.tcp || sa.max_connections != sb.max_connections ||
      sa.max_connections_per_ip != sb.max_connections_per_ip ||
      sa.tls_handshake_timeout != sb.tls_handshake_timeout || sa.idle_timeout != sb.idle_timeout ||
      sa.max_message_size != sb.max_message_size || sa.write_queue_size != sb.write_queue_size ||
      sa.first_message_timeout_s != sb.first_message_timeout_s ||
      sa.unauthenticated_memory != sb.unauthenticated_memory) {
    ignored.emplace_back("streams");
    next.streams = running.streams;
  }
  keep(running.http.enabled, next.http.enabled, "http.enabled", ignored);
  keep(running.http.probe, next.http.probe, "http.probe", ignored);
  next.auth.probe_secret = running.auth.probe_secret;  // not a key: drawn once per process
  keep(running.http.listen, next.http.listen, "http.listen", ignored);
  keep(running.http.test_page, next.http.test_page, "http.test_page", ignored);
  if (running.http.tls_cert != next.http.tls_cert || running.http.tls_key != next.http.tls_key) {
    ignored.emplace_back("http.tls_cert");
    next.http.tls_cert = running.http.tls_cert;
    next.http.tls_key = running.http.tls_key;
  }
  if (running.http.stun_urls != next.http.stun_urls || running.http.turn_urls != next.http.turn_urls) {
    ignored.emplace_back("http.urls");
    next.http.stun_urls = running.http.stun_urls;
    next.http.turn_urls = running.http.turn_urls;
  }
  const auto& la = running.fleet;
  const auto& lb = next.fleet;
  if (la.anycast_ips != lb.anycast_ips || la.unicast_ips != lb.unicast_ips ||
      la.alternate_domain != lb.alternate_domain || la.node_id != lb.node_id || la.redis != lb.redis ||
      la.drain_alternate != lb.drain_alternate || la.drain_timeout != lb.drain_timeout) {
    ignored.emplace_back("fleet");
    next.fleet = running.fleet;
  }
  return ignored;
}

bool stabilise_tenants(const config::server_config& running, config::server_config& next,
                       std::size_t capacity, std::string& error) {
  std::vector<config::tenant_config> ordered;
  ordered.reserve(running.tenants.size() + next.tenants.size());
  std::vector<bool> placed(next.tenants.size(), false);
  for (const auto& old : running.tenants) {
    const auto it = std::find_if(next.tenants.begin(), next.tenants.end(),
                                 [&](const config::tenant_config& t) { return t.id == old.id; });
    if (it == next.tenants.end()) {
      config::tenant_config placeholder;  // removed: no credential resolves to it any more
      placeholder.id = old.id;
      ordered.push_back(std::move(placeholder));
    } else {
      placed[static_cast<std::size_t>(it - next.tenants.begin())] = true;
      ordered.push_back(std::move(*it));
    }
  }
  for (std::size_t i = 0; i < next.tenants.size(); ++i) {
    if (!placed[i]) ordered.push_back(std::move(next.tenants[i]));
  }
  if (ordered.size() > capacity) {
    error = "tenants: " + std::to_string(ordered.size()) +
            " tenants (counting the ones removed since start-up) exceed the " +
            std::to_string(capacity) + " this process can hold; restart to add more";
    return false;
  }
  next.tenants = std::move(ordered);
  return true;
}

std::shared_ptr<turn::shared_state> reloaded_state(const turn::shared_state& current,
                                                   const config::server_config& next) {
  std::shared_ptr<turn::shared_state> s = make_shared_state(next);
  // Restart-only, or shared objects that count what is live.
  s->relays = current.relays;
  s->own = current.own;  // the forwarder holds a pointer to it
  s->nonces = current.nonces;
  if (current.user_quotas) s->user_quotas = current.user_quotas;
  if (current.tenant_usage) s->tenant_usage = current.tenant_usage;
  // The global per-user limit may change even when the table stays.
  s->max_allocations_per_user = next.max_allocations_per_user;
  s->fleet = current.fleet;
  s->revocations = current.revocations;
  s->config = current.config;
  s->usage = current.usage;
  s->revoke_removed = next.reload.revoke_removed;
  return s;
}

}  // namespace anyturn::app
