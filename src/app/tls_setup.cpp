#include <anyturn/app/tls_setup.hpp>

#include <anyturn/app/state_dir.hpp>

#include <algorithm>

#include <unistd.h>

namespace anyturn::app {

namespace fs = std::filesystem;

namespace {

constexpr auto development_validity = std::chrono::hours{24 * 365};
constexpr auto renew_before = std::chrono::seconds{30 * 24 * 3600};

bool is_unspecified(const stun::endpoint& ep) {
  return std::all_of(ep.ip.begin(), ep.ip.begin() + static_cast<std::ptrdiff_t>(ep.ip_size()),
                     [](std::uint8_t b) { return b == 0; });
}

bool is_link_local_v6(const stun::endpoint& ep) {
  return !ep.is_v4() && ep.ip[0] == 0xFE && (ep.ip[1] & 0xC0) == 0x80;
}

void add_ip(std::vector<stun::endpoint>& ips, stun::endpoint ep) {
  ep.port = 0;
  if (is_unspecified(ep)) return;
  if (std::none_of(ips.begin(), ips.end(), [&](const stun::endpoint& e) { return e == ep; })) {
    ips.push_back(ep);
  }
}


}  // namespace

certificate_names development_certificate_names(const config::server_config& cfg) {
  certificate_names names;
  add_ip(names.ips, stun::endpoint::v4(0x7F000001u, 0));
  std::array<std::uint8_t, 16> v6_loopback{};
  v6_loopback[15] = 1;
  add_ip(names.ips, stun::endpoint::v6(v6_loopback, 0));
  bool wildcard = false;
  auto consider = [&](const stun::endpoint& ep) {
    if (is_unspecified(ep)) wildcard = true;
    else add_ip(names.ips, ep);
  };
  for (const auto& ep : cfg.listen) consider(ep);
  for (const auto& ep : cfg.tls.listen) consider(ep);
  for (const auto& ep : cfg.dtls.listen) consider(ep);
  for (const auto& ep : cfg.relay.ips) add_ip(names.ips, ep);
  if (wildcard) {
    for (const auto& a : config::host_interface_addresses()) {
      if (a.up && !is_link_local_v6(a.address)) add_ip(names.ips, a.address);
    }
  }
  names.dns.emplace_back("localhost");
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) == 0 && host[0] != '\0' &&
      std::string_view(host) != "localhost") {
    names.dns.emplace_back(host);
  }
  return names;
}

tls_material load_tls_material(const config::server_config& cfg, const fs::path& state_dir,
                               std::string& error) {
  tls_material m;
  if (!cfg.tls.cert.empty()) {
    m.cert_path = cfg.tls.cert;
    m.key_path = cfg.tls.key;
    m.context = net::make_server_tls_context(cfg.tls.cert, cfg.tls.key, error);
    return m;
  }

  m.development = true;
  m.cert_path = (state_dir / "dev-cert.pem").string();
  m.key_path = (state_dir / "dev-key.pem").string();
  const certificate_names names = development_certificate_names(cfg);

  std::string cert;
  std::string key;
  if (read_text(m.cert_path, cert) && read_text(m.key_path, key)) {
    std::string why;
    if (net::certificate_covers(cert, names.ips, names.dns, renew_before, why)) {
      m.context = net::make_server_tls_context_from_pem(cert, key, why);
      if (m.context) return m;
    }
    m.note = "the existing one " + why;
  } else {
    m.note = "none existed";
  }

  if (!ensure_state_dir(state_dir, "state_dir in the config, or tls.cert and tls.key", error)) {
    return m;
  }
  auto pem = net::make_self_signed(names.ips, names.dns, development_validity, error);
  if (!pem) return m;
  if (!write_private(m.key_path, pem->private_key, 0600, error) ||
      !write_private(m.cert_path, pem->certificate, 0644, error)) {
    return m;
  }
  m.context = net::make_server_tls_context_from_pem(pem->certificate, pem->private_key, error);
  m.generated = m.context != nullptr;
  return m;
}

}  // namespace anyturn::app
