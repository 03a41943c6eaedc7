// Start-up planning: the shared state from the config, threads, the
// descriptor budget and limit, risky peer allowances.
#include <anyturn/app/startup.hpp>

#include <anyturn/app/reload.hpp>
#include <anyturn/app/side.hpp>

#include <anyturn/auth/credentials.hpp>
#include <anyturn/auth/nonce.hpp>
#include <anyturn/auth/peer_policy.hpp>
#include <anyturn/relay/port_pool.hpp>

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <utility>
#include <stdexcept>
#include <thread>

#include <sys/resource.h>
#include <unistd.h>

namespace anyturn::app {

std::shared_ptr<turn::shared_state> make_shared_state(const config::server_config& cfg) {
  auto s = std::make_shared<turn::shared_state>();
  // Tenant index 0 is the default tenant (auth.*), k+1 is cfg.tenants[k].
  auto credentials = std::make_shared<auth::credential_store>(cfg.auth.realm, tenant_credentials(cfg));
  credentials->set_probe_secret(cfg.auth.probe_secret);  // GET /probe's own credential
  s->credentials = std::move(credentials);
  // app::provision_secrets fills auth.nonce_keys from the state directory
  // before this; a caller that skips it (tests) gets a per-process key.
  std::vector<std::vector<std::uint8_t>> keys;
  for (const auto& k : cfg.auth.nonce_keys) keys.emplace_back(k.begin(), k.end());
  if (keys.empty()) keys.push_back(auth::random_key(32));
  s->nonces = std::make_shared<const auth::nonce_service>(
      std::move(keys), cfg.lifetimes.nonce, cfg.auth.offer_sha256, cfg.auth.nonce_max_skew);
  s->peers = std::make_shared<const auth::peer_policy>(cfg.peers.allow, cfg.peers.deny);
  for (const auto& ip : cfg.relay.ips) {
    turn::shared_state::relay_address r;
    r.ip = ip;
    r.ip.port = 0;
    r.ports = std::make_shared<relay::port_pool>(cfg.relay.port_min, cfg.relay.port_max);
    s->relays.push_back(std::move(r));
  }
  // relay.external_ips (1:1 NAT): XOR-RELAYED-ADDRESS carries PUBLIC for
  // the relay address PRIVATE (validated: one of `relays`, same family).
  for (const auto& e : config::resolve_external_ips(cfg.relay)) {
    s->external_ips.push_back({*e.private_ip, e.public_ip});
  }
  if (s->external_ips.size() != cfg.relay.external_ips.size()) {
    throw std::runtime_error("relay.external_ips: an entry maps no relay address (run validate())");
  }
  // The fleet: Allocates on an anycast address are redirected to the
  // unicast address of their family.
  for (auto ip : cfg.fleet.anycast_ips) {
    ip.port = 0;
    s->anycast_ips.push_back(ip);
  }
  for (auto ip : cfg.fleet.unicast_ips) {
    ip.port = 0;
    s->unicast_ips.push_back(ip);
  }
  s->alternate_domain = cfg.fleet.alternate_domain;
  s->enforce_expiry = cfg.auth.enforce_expiry;
  s->tcp_relay = cfg.relay.tcp;
  s->own = own_addresses_of(cfg, config::host_interface_addresses(), *s->peers, s->relays,
                            fleet_addresses(cfg));
  s->allocation_lifetime_default = cfg.lifetimes.allocation_default;
  s->allocation_lifetime_max = cfg.lifetimes.allocation_max;
  s->permission_lifetime = cfg.lifetimes.permission;
  s->channel_lifetime = cfg.lifetimes.channel;
  s->software = cfg.software;
  s->max_allocations = cfg.max_allocations_per_worker;
  s->unauthenticated_per_source = {static_cast<double>(cfg.unauthenticated_per_source.rate),
                                   cfg.unauthenticated_per_source.burst};
  s->auth_failures_per_source = {cfg.auth_failures.per_source_per_minute / 60.0,
                                 cfg.auth_failures.per_source_burst};
  s->auth_failures_per_user = {cfg.auth_failures.per_user_per_minute / 60.0,
                               cfg.auth_failures.per_user_burst};
  s->tenants = tenant_policies(cfg);
  s->allocation_limits = allocation_limits(cfg.allocation_limits);
  bool tenant_limits = false;
  bool per_user_limits = cfg.max_allocations_per_user > 0;
  for (const auto& t : s->tenants) {
    tenant_limits = tenant_limits || t.max_allocations > 0;
    per_user_limits = per_user_limits || t.max_allocations_per_user > 0;
  }
  // Room for the tenants a config reload may add (their indices follow).
  if (tenant_limits)
    s->tenant_usage = std::make_shared<turn::tenant_quota>(s->tenants.size() + reload_tenant_spare);
  // A tenant's own per-user limit needs the table even when the global one is 0.
  if (per_user_limits)
    s->user_quotas = std::make_shared<turn::user_quota>(cfg.max_allocations_per_user);
  return s;
}

std::vector<stun::endpoint> fleet_addresses(const config::server_config& cfg) {
  std::vector<stun::endpoint> out;
  for (const auto& e : cfg.relay.external_ips) out.push_back(e.public_ip);
  out.insert(out.end(), cfg.fleet.anycast_ips.begin(), cfg.fleet.anycast_ips.end());
  out.insert(out.end(), cfg.fleet.unicast_ips.begin(), cfg.fleet.unicast_ips.end());
  for (auto& e : out) e.port = 0;
  return out;
}

std::string node_id_of(const config::fleet_config& fleet) {
  if (!fleet.node_id.empty()) return fleet.node_id;
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "anyturn";
  // The id's alphabet ([A-Za-z0-9._-], at most 64): a host name fits it;
  // anything else becomes '_'.
  std::string id(name);
  if (id.size() > config::max_node_id_bytes) id.resize(config::max_node_id_bytes);
  for (char& c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) c = '_';
  }
  return id;
}

std::shared_ptr<const relay::own_addresses> own_addresses_of(
    const config::server_config& cfg, const std::vector<config::interface_address>& host,
    const auth::peer_policy& peers, const std::vector<turn::shared_state::relay_address>& relays,
    const std::vector<stun::endpoint>& external) {
  const auto opened = [&](const stun::endpoint& ip) {
    return peers.check(ip) == auth::peer_verdict::allowed_explicitly;
  };
  std::vector<stun::endpoint> ips;
  const auto add = [&](const stun::endpoint& e) {
    if (e.ip != std::array<std::uint8_t, 16>{}) {
      if (!opened(e)) ips.push_back(e);
      return;
    }
    for (const auto& a : host) {
      if ((e.family == stun::address_family::ipv6 || a.address.family == e.family) && !opened(a.address))
        ips.push_back(a.address);
    }
  };
  for (const auto& e : cfg.listen) add(e);
  for (const auto& e : cfg.tls.listen) add(e);
  for (const auto& e : cfg.dtls.listen) add(e);
  if (cfg.http.enabled) add(cfg.http.listen);
  if (cfg.stun.other_ip) add(*cfg.stun.other_ip);  // RFC 5780's extra sockets
  for (const auto& e : external) add(e);
  std::vector<relay::own_addresses::relay_range> ranges;
  for (const auto& r : relays) {
    if (!opened(r.ip)) ranges.push_back({r.ip, r.ports});
  }
  return std::make_shared<const relay::own_addresses>(std::move(ips), std::move(ranges));
}

unsigned resolve_threads(unsigned configured) {
  if (configured != 0) return configured;
  return std::max(1u, std::thread::hardware_concurrency());
}

std::uint64_t required_descriptors(const config::server_config& cfg, unsigned threads) {
  std::uint64_t relay_ports = 0;
  if (cfg.relay.port_max >= cfg.relay.port_min) {
    relay_ports = std::uint64_t{cfg.relay.port_max} - cfg.relay.port_min + 1;
  }
  // Per worker: its UDP, TCP and TLS listeners plus epoll, eventfd, timerfd
  // and a spare; then one per stream connection.
  const std::uint64_t listeners =
      cfg.listen.size() * (cfg.streams.tcp ? 2 : 1) + cfg.tls.listen.size() + cfg.dtls.listen.size();
  const std::uint64_t per_worker = listeners + 4;
  const bool streams = cfg.streams.tcp || !cfg.tls.listen.empty() || !cfg.dtls.listen.empty();
  const std::uint64_t connections = streams ? cfg.streams.max_connections : 0;
  return relay_ports * cfg.relay.ips.size() + per_worker * threads + connections + 64;
}

namespace {

std::uint64_t nr_open() {
  std::ifstream in("/proc/sys/fs/nr_open");
  std::uint64_t value = 0;
  if (in >> value && value > 0) return value;
  return 1u << 20;
}

}  // namespace

fd_limit raise_fd_limit(std::uint64_t needed) {
  fd_limit r;
  r.needed = needed;
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return r;
  r.before = rl.rlim_cur;
  r.after = rl.rlim_cur;
  r.hard = rl.rlim_max == RLIM_INFINITY ? nr_open() : rl.rlim_max;
  if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= r.hard) return r;
  rlimit raised = rl;
  raised.rlim_cur = r.hard;
  if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) r.after = r.hard;
  return r;
}

std::vector<std::string> risky_peer_allowances(const config::peer_config& peers) {
  struct probe {
    const char* address;
    const char* what;
  };
  static constexpr probe probes[] = {
      {"127.0.0.1", "loopback"},
      {"10.0.0.1", "private (RFC 1918)"},
      {"172.16.0.1", "private (RFC 1918)"},
      {"192.168.0.1", "private (RFC 1918)"},
      {"100.64.0.1", "carrier-grade NAT"},
      {"169.254.169.254", "link-local, cloud metadata"},
      {"0.0.0.0", "unspecified"},
      {"::1", "IPv6 loopback"},
      {"fd00::1", "IPv6 unique-local"},
      {"fe80::1", "IPv6 link-local"},
      {"fd00:ec2::254", "cloud metadata (IPv6)"},
      {"::ffff:127.0.0.1", "IPv4-mapped loopback"},
  };
  const auth::peer_policy defaults({}, {});
  std::vector<std::string> out;
  for (const auto& c : peers.allow) {
    std::vector<std::string> opened;
    for (const auto& p : probes) {
      auto ep = stun::endpoint::parse(p.address, true);
      if (ep && c.contains(*ep) && !auth::is_allowed(defaults.check(*ep))) {
        opened.push_back(fmt::format("{} ({})", p.what, p.address));
      }
    }
    // The range's own base address, e.g. 192.0.2.0/24 (documentation).
    stun::endpoint base;
    base.family = c.family;
    base.ip = c.ip;
    if (opened.empty() && !auth::is_allowed(defaults.check(base))) {
      opened.push_back(fmt::format("a special-purpose range ({})", base.ip_string()));
    }
    if (!opened.empty()) {
      out.push_back(fmt::format("peers.allow {} lets clients relay into {}", c.to_string(),
                                fmt::join(opened, ", ")));
    }
  }
  return out;
}

namespace {

// "a-b,c,d-e" (ip_local_reserved_ports); malformed parts are skipped.
std::vector<std::pair<unsigned, unsigned>> parse_port_list(const std::string& text) {
  std::vector<std::pair<unsigned, unsigned>> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find(',', pos);
    if (end == std::string::npos) end = text.size();
    const std::string part = text.substr(pos, end - pos);
    pos = end + 1;
    unsigned a = 0;
    unsigned b = 0;
    char dash = 0;
    std::istringstream in(part);
    if (!(in >> a)) continue;
    if (in >> dash) {
      if (dash != '-' || !(in >> b)) continue;
    } else {
      b = a;
    }
    if (a <= b && b <= 65535) out.emplace_back(a, b);
  }
  return out;
}

}  // namespace

std::optional<std::string> relay_range_overlap_warning(std::uint16_t low, std::uint16_t high,
                                                        const std::string& ephemeral_path,
                                                        const std::string& reserved_path) {
  std::ifstream eph(ephemeral_path);
  unsigned eph_low = 0;
  unsigned eph_high = 0;
  if (!(eph >> eph_low >> eph_high) || eph_low > eph_high) return std::nullopt;
  const unsigned lo = std::max<unsigned>(low, eph_low);
  const unsigned hi = std::min<unsigned>(high, eph_high);
  if (lo > hi) return std::nullopt;
  std::vector<std::pair<unsigned, unsigned>> reserved;
  if (std::ifstream res(reserved_path); res) {
    std::string text;
    std::getline(res, text);
    reserved = parse_port_list(text);
  }
  unsigned exposed = 0;
  for (unsigned p = lo; p <= hi; ++p) {
    const bool is_reserved = std::any_of(reserved.begin(), reserved.end(),
                                         [p](const auto& r) { return p >= r.first && p <= r.second; });
    if (!is_reserved) ++exposed;
  }
  if (exposed == 0) return std::nullopt;
  return fmt::format(
      "relay.ports {}-{} overlap the kernel's ephemeral port range {}-{} "
      "(net.ipv4.ip_local_port_range) by {} ports: outgoing connections on this host can take "
      "relay ports, and the kernel then refuses them to anyturn (counted in "
      "anyturn_relay_port_refused_total; Allocates get 508 when too many are taken). Reserve them "
      "with `sysctl -w net.ipv4.ip_local_reserved_ports={}-{}` (and in /etc/sysctl.d), or move "
      "relay.ports or the ephemeral range apart",
      low, high, eph_low, eph_high, exposed, lo, hi);
}

}  // namespace anyturn::app
