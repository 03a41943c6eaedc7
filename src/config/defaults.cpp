// The built-in defaults (the one place they live), relay address
// auto-detection, and non-fatal warnings about a config.
#include <anyturn/config/config.hpp>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <array>
#include <cstring>

namespace anyturn::config {

namespace {

constexpr std::array<std::string_view, 7> log_level_names = {"trace", "debug", "info", "warn",
                                                             "error", "critical", "off"};

bool is_loopback_v4(const stun::endpoint& ep) { return ep.is_v4() && ep.ip[0] == 127; }

bool is_unspecified(const stun::endpoint& ep) {
  for (std::size_t i = 0; i < ep.ip_size(); ++i) {
    if (ep.ip[i] != 0) return false;
  }
  return true;
}

// Some listener (UDP/TCP or TLS) receives on `ip`: bound to it, or to the
// wildcard of its family (an IPv6 wildcard also takes IPv4, dual-stack).
bool listened_on(const server_config& cfg, const stun::endpoint& ip) {
  const auto covers = [&](const stun::endpoint& l) {
    if (l.same_ip(ip)) return true;
    return is_unspecified(l) && (l.family == ip.family || !l.is_v4());
  };
  for (const auto& l : cfg.listen) {
    if (covers(l)) return true;
  }
  for (const auto& l : cfg.tls.listen) {
    if (covers(l)) return true;
  }
  for (const auto& l : cfg.dtls.listen) {
    if (covers(l)) return true;
  }
  return false;
}

}  // namespace

server_config defaults() {
  // Every member of server_config carries its default initialiser in
  // config.hpp; what cannot be a constant initialiser is set here.
  server_config cfg;
  cfg.listen.push_back(stun::endpoint::v4(INADDR_ANY, 3478));
  cfg.relay.ips.push_back(auto_relay_ip());
  cfg.relay.ips_auto = true;
  return cfg;
}

bool is_known_log_level(std::string_view level) {
  for (auto name : log_level_names) {
    if (name == level) return true;
  }
  return false;
}

std::vector<interface_address> host_interface_addresses() {
  std::vector<interface_address> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (const ifaddrs* ifa = list; ifa != nullptr; ifa = ifa->ifa_next) {
    if (ifa->ifa_addr == nullptr) continue;
    interface_address entry;
    entry.name = ifa->ifa_name != nullptr ? ifa->ifa_name : "";
    entry.up = (ifa->ifa_flags & IFF_UP) != 0;
    entry.loopback = (ifa->ifa_flags & IFF_LOOPBACK) != 0;
    if (ifa->ifa_addr->sa_family == AF_INET) {
      sockaddr_in sin{};
      std::memcpy(&sin, ifa->ifa_addr, sizeof sin);
      entry.address = stun::endpoint::v4(ntohl(sin.sin_addr.s_addr), 0);
    } else if (ifa->ifa_addr->sa_family == AF_INET6) {
      sockaddr_in6 sin6{};
      std::memcpy(&sin6, ifa->ifa_addr, sizeof sin6);
      std::array<std::uint8_t, 16> bytes{};
      std::memcpy(bytes.data(), sin6.sin6_addr.s6_addr, bytes.size());
      entry.address = stun::endpoint::v6(bytes, 0);
    } else {
      continue;  // AF_PACKET and friends
    }
    out.push_back(std::move(entry));
  }
  freeifaddrs(list);
  return out;
}

std::optional<stun::endpoint> pick_relay_ipv4(const std::vector<interface_address>& addrs) {
  for (const auto& a : addrs) {
    if (!a.up || a.loopback || !a.address.is_v4()) continue;
    const auto ip = a.address.v4_host_order();
    if (ip == 0) continue;                            // 0.0.0.0
    if ((ip >> 24) == 127) continue;                  // 127/8 on a non-loopback device
    if ((ip >> 16) == ((169u << 8) | 254u)) continue;  // 169.254/16 link-local
    stun::endpoint ep = a.address;
    ep.port = 0;
    return ep;
  }
  return std::nullopt;
}

stun::endpoint auto_relay_ip() {
  if (auto ep = pick_relay_ipv4(host_interface_addresses())) return *ep;
  return stun::endpoint::v4(INADDR_LOOPBACK, 0);
}

std::vector<std::string> warnings(const server_config& cfg) {
  std::vector<std::string> out;
  if (cfg.relay.ips_auto) {
    for (const auto& ip : cfg.relay.ips) {
      if (is_loopback_v4(ip)) {
        out.push_back("relay.ips: 'auto' found no up, non-loopback IPv4 address; relaying on " +
                      ip.ip_string() + ", which only local clients can reach");
      }
    }
  }
  if (cfg.auth.nonce_keys.empty()) {
    out.push_back(
        "auth.nonce_keys is empty: nonces use a key generated into the state directory, which "
        "other nodes of an anycast fleet do not have: they answer this node's nonces with 401");
  }
  if (cfg.auth.rest_secrets.empty()) {
    out.push_back(
        "auth.secrets is empty: the server uses a random REST secret generated into the state "
        "directory (rest-secret) at its first start; mint credentials from that file or the "
        "credentials API");
  }
  if ((!cfg.tls.listen.empty() || !cfg.dtls.listen.empty()) && cfg.tls.cert.empty()) {
    out.push_back(
        "tls.cert is not set: TLS (and DTLS) uses a self-signed certificate generated in the state directory, "
        "which browsers and other clients do not trust; for development only");
  }
  bool api_keys = !cfg.auth.api_keys.empty();
  for (const auto& t : cfg.tenants) api_keys = api_keys || !t.api_keys.empty();
  const bool bearer_keys = api_keys || !cfg.http.admin_keys.empty();
  if (api_keys && !cfg.http.enabled) {
    out.push_back("API keys are configured but http.enabled is false: the credentials API is off");
  }
  if (bearer_keys && cfg.http.enabled && cfg.http.tls_cert.empty() &&
      !(cfg.http.listen.is_v4() ? is_loopback_v4(cfg.http.listen)
                                : cfg.http.listen.ip_string() == "::1")) {
    out.push_back("http.listen " + cfg.http.listen.to_string() +
                  " is not a loopback address and http.tls is not set: API keys and the "
                  "credentials the API issues travel in clear text");
  }
  const fleet_config& f = cfg.fleet;
  for (const auto& a : f.anycast_ips) {
    if (!listened_on(cfg, a)) {
      out.push_back("fleet.anycast_ips: no listener (listen, tls.listen) receives on " +
                    a.ip_string() + ", so nothing arrives there to redirect");
    }
  }
  for (const auto& u : f.unicast_ips) {
    if (!listened_on(cfg, u)) {
      out.push_back("fleet.unicast_ips: no listener (listen, tls.listen) receives on " +
                    u.ip_string() + ": clients redirected there find no server");
    }
  }
  if (!f.alternate_domain.empty() && (f.anycast_ips.empty() || cfg.tls.listen.empty())) {
    out.push_back("fleet.alternate_domain is set but never sent: ALTERNATE-DOMAIN goes with the "
                  "redirect of a TLS Allocate that reached an anycast address, and " +
                  std::string(f.anycast_ips.empty() ? "fleet.anycast_ips" : "tls.listen") +
                  " is empty");
  }
  if (f.alternate_domain.empty() && !f.anycast_ips.empty() && !cfg.tls.listen.empty()) {
    out.push_back("fleet.alternate_domain is not set: TLS clients redirected from the anycast "
                  "address to this node's unicast address get no name to check its certificate "
                  "against (RFC 8489 §14.16), and may refuse it");
  }
  if (cfg.http.test_page && cfg.http.enabled && cfg.http.admin_keys.empty() && !api_keys) {
    out.push_back("http.test_page is on but neither http.admin_keys nor an API key is set: "
                  "nobody can get credentials for the /test page");
  }
  if (!cfg.http.admin_keys.empty() && !cfg.http.enabled) {
    out.push_back("http.admin_keys are configured but http.enabled is false: /admin/* is off");
  }
  for (const auto& c : cfg.peers.allow) {
    out.push_back("peers.allow: clients may relay to " + c.to_string() +
                  " even where the built-in policy refuses it");
  }
  return out;
}

}  // namespace anyturn::config
