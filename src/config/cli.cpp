// The command line: argv -> cli_options (syntax only), then resolve() merges
// the options over the config file or the defaults and validates the result.
#include <anyturn/config/cli.hpp>

#include "values.hpp"

#include <algorithm>
#include <array>
#include <fstream>
#include <limits>

#ifndef ANYTURN_VERSION
#define ANYTURN_VERSION "unknown"
#endif

namespace anyturn::config {

flag_parts split_flag(std::string_view arg) {
  const auto eq = arg.find('=');
  if (eq == std::string_view::npos || !arg.starts_with("--")) return {arg, std::nullopt};
  return {arg.substr(0, eq), arg.substr(eq + 1)};
}

namespace {

enum class flag {
  config, listen, relay_ip, relay_ports, realm, user, auth_secret, allow_peer, deny_peer,
  threads, log_level, tls_listen, tls_cert, tls_key, http_listen, api_key, udp_coalesce_us,
  max_allocations_per_user, external_ip, anycast_ip, unicast_ip, alternate_domain, node_id, redis,
  drain_alternate, drain_timeout, admin_key, no_enforce_expiry, proxy_protocol, proxy_trusted, help,
  version, log_format, test_page, other_ip, dtls_listen, no_tcp_relay, xdp, xdp_mode,
};

struct flag_spec {
  std::string_view name;
  flag id;
  bool takes_value;
};

constexpr std::array<flag_spec, 40> flags = {{
    {"--config", flag::config, true},
    {"--listen", flag::listen, true},
    {"--relay-ip", flag::relay_ip, true},
    {"--relay-ports", flag::relay_ports, true},
    {"--realm", flag::realm, true},
    {"--user", flag::user, true},
    {"--auth-secret", flag::auth_secret, true},
    {"--allow-peer", flag::allow_peer, true},
    {"--deny-peer", flag::deny_peer, true},
    {"--threads", flag::threads, true},
    {"--log-level", flag::log_level, true},
    {"--log-format", flag::log_format, true},
    {"--tls-listen", flag::tls_listen, true},
    {"--tls-cert", flag::tls_cert, true},
    {"--tls-key", flag::tls_key, true},
    {"--dtls-listen", flag::dtls_listen, true},
    {"--http-listen", flag::http_listen, true},
    {"--api-key", flag::api_key, true},
    {"--udp-coalesce-us", flag::udp_coalesce_us, true},
    {"--max-allocations-per-user", flag::max_allocations_per_user, true},
    {"--external-ip", flag::external_ip, true},
    {"--anycast-ip", flag::anycast_ip, true},
    {"--unicast-ip", flag::unicast_ip, true},
    {"--alternate-domain", flag::alternate_domain, true},
    {"--node-id", flag::node_id, true},
    {"--redis", flag::redis, true},
    {"--drain-alternate", flag::drain_alternate, true},
    {"--drain-timeout", flag::drain_timeout, true},
    {"--admin-key", flag::admin_key, true},
    {"--other-ip", flag::other_ip, true},
    {"--xdp", flag::xdp, true},
    {"--xdp-mode", flag::xdp_mode, true},
    {"--no-enforce-expiry", flag::no_enforce_expiry, false},
    {"--no-tcp-relay", flag::no_tcp_relay, false},
    {"--test-page", flag::test_page, false},
    {"--proxy-protocol", flag::proxy_protocol, false},
    {"--proxy-trusted", flag::proxy_trusted, true},
    {"--help", flag::help, false},
    {"-h", flag::help, false},
    {"--version", flag::version, false},
}};

const flag_spec* find_flag(std::string_view name) {
  for (const auto& f : flags) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

bool looks_like_flag(std::string_view arg) { return arg.size() > 1 && arg.front() == '-'; }

}  // namespace

std::optional<cli_options> parse_cli(int argc, const char* const* argv,
                                     std::vector<std::string>& errors) {
  const auto before = errors.size();
  cli_options opts;
  bool help = false;
  bool want_version = false;
  std::vector<std::string> positionals;
  // The listener --proxy-protocol and --proxy-trusted apply to: the last
  // --listen (or --tls-listen) so far.
  cli_listener_proxy* last_listener = nullptr;
  auto proxy_target = [&](std::string_view name) {
    if (last_listener == nullptr) {
      errors.push_back(std::string(name) +
                       ": applies to the --listen or --tls-listen before it; give that first");
    }
    return last_listener;
  };

  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i] != nullptr ? argv[i] : "";
    if (!looks_like_flag(arg)) {
      positionals.emplace_back(arg);
      continue;
    }
    auto [name, value] = split_flag(arg);
    const flag_spec* spec = find_flag(name);
    if (spec == nullptr) {
      errors.push_back("unknown flag '" + std::string(name) + "' (see --help)");
      continue;
    }
    if (!spec->takes_value) {
      if (value) {
        errors.push_back(std::string(name) + ": takes no value");
        continue;
      }
      if (spec->id == flag::help) help = true;
      else if (spec->id == flag::version) want_version = true;
      else if (spec->id == flag::proxy_protocol) {
        if (auto* l = proxy_target(name)) l->enabled = true;
      } else if (spec->id == flag::test_page) {
        opts.test_page = true;
      } else if (spec->id == flag::no_tcp_relay) {
        opts.no_tcp_relay = true;
      } else opts.no_enforce_expiry = true;
      continue;
    }
    if (!value) {
      // "--flag value"; a following "--..." is another flag, not a value
      // (use --flag=--value for a value that starts with "--").
      if (i + 1 < argc && argv[i + 1] != nullptr && !std::string_view(argv[i + 1]).starts_with("--")) {
        value = argv[++i];
      } else {
        errors.push_back(std::string(name) + ": missing value");
        continue;
      }
    }
    std::string v(*value);
    switch (spec->id) {
      case flag::config:
        if (opts.config_path) errors.push_back("--config: given more than once");
        else opts.config_path = std::move(v);
        break;
      case flag::listen:
        opts.listen.push_back(std::move(v));
        last_listener = &opts.listen_proxy.emplace_back();
        break;
      case flag::relay_ip: opts.relay_ip.push_back(std::move(v)); break;
      case flag::relay_ports: opts.relay_ports = std::move(v); break;
      case flag::realm: opts.realm = std::move(v); break;
      case flag::user: opts.users.push_back(std::move(v)); break;
      case flag::auth_secret: opts.auth_secrets.push_back(std::move(v)); break;
      case flag::allow_peer: opts.allow_peer.push_back(std::move(v)); break;
      case flag::deny_peer: opts.deny_peer.push_back(std::move(v)); break;
      case flag::threads: opts.threads = std::move(v); break;
      case flag::log_level: opts.log_level = std::move(v); break;
      case flag::log_format: opts.log_format = std::move(v); break;
      case flag::tls_listen:
        opts.tls_listen.push_back(std::move(v));
        last_listener = &opts.tls_listen_proxy.emplace_back();
        break;
      case flag::proxy_trusted:
        if (auto* l = proxy_target(name)) l->trusted.push_back(std::move(v));
        break;
      case flag::tls_cert: opts.tls_cert = std::move(v); break;
      case flag::tls_key: opts.tls_key = std::move(v); break;
      case flag::dtls_listen:
        opts.dtls_listen.push_back(std::move(v));
        last_listener = nullptr;  // no PROXY protocol on DTLS
        break;
      case flag::http_listen: opts.http_listen = std::move(v); break;
      case flag::api_key: opts.api_keys.push_back(std::move(v)); break;
      case flag::udp_coalesce_us: opts.udp_coalesce_us = std::move(v); break;
      case flag::max_allocations_per_user: opts.max_allocations_per_user = std::move(v); break;
      case flag::external_ip: opts.external_ips.push_back(std::move(v)); break;
      case flag::anycast_ip: opts.anycast_ips.push_back(std::move(v)); break;
      case flag::unicast_ip: opts.unicast_ips.push_back(std::move(v)); break;
      case flag::alternate_domain: opts.alternate_domain = std::move(v); break;
      case flag::node_id: opts.node_id = std::move(v); break;
      case flag::redis: opts.redis = std::move(v); break;
      case flag::drain_alternate: opts.drain_alternate = std::move(v); break;
      case flag::drain_timeout: opts.drain_timeout = std::move(v); break;
      case flag::admin_key: opts.admin_keys.push_back(std::move(v)); break;
      case flag::other_ip: opts.other_ip = std::move(v); break;
      case flag::xdp: opts.xdp.push_back(std::move(v)); break;
      case flag::xdp_mode: opts.xdp_mode = std::move(v); break;
      case flag::no_enforce_expiry:
      case flag::no_tcp_relay:
      case flag::test_page:
      case flag::proxy_protocol:
      case flag::help:
      case flag::version: break;  // no value; handled above
    }
  }

  // --help and --version answer whatever else is on the line.
  if (help || want_version) {
    errors.resize(before);
    cli_options out;
    out.cmd = help ? command::help : command::version;
    return out;
  }

  if (!positionals.empty()) {
    if (positionals.front() == "check-config") {
      opts.cmd = command::check_config;
      if (positionals.size() < 2) {
        errors.push_back("check-config: missing FILE (usage: anyturn check-config FILE [flags])");
      } else if (opts.config_path) {
        errors.push_back("check-config: give the file once, as its argument, not with --config");
      } else {
        opts.config_path = positionals[1];
      }
      for (std::size_t i = 2; i < positionals.size(); ++i) {
        errors.push_back("unexpected argument '" + positionals[i] + "'");
      }
    } else {
      for (const auto& p : positionals) {
        errors.push_back("unexpected argument '" + p +
                         "' (the commands are check-config, credentials, ctl and probe)");
      }
    }
  }

  if (errors.size() != before) return std::nullopt;
  return opts;
}

namespace {

// --proxy-protocol / --proxy-trusted of each --listen (or --tls-listen).
std::vector<proxy_protocol_config> proxy_settings(const std::vector<cli_listener_proxy>& given,
                                                  std::vector<std::string>& errors) {
  std::vector<proxy_protocol_config> out;
  for (const auto& g : given) {
    proxy_protocol_config pp;
    pp.enabled = g.enabled;
    for (const auto& text : g.trusted) {
      if (auto c = detail::parse_cidr(text)) pp.trusted.push_back(*c);
      else errors.push_back(detail::expected("--proxy-trusted", detail::expect_cidr, text));
    }
    out.push_back(std::move(pp));
  }
  return out;
}

}  // namespace

std::optional<server_config> resolve(const cli_options& opts, std::vector<std::string>& errors) {
  using detail::expected;
  const auto before = errors.size();

  std::optional<server_config> base = opts.config_path ? load_file(*opts.config_path, errors)
                                                       : std::optional<server_config>(defaults());
  // Flags are still checked when the file failed, so every error shows at once.
  server_config cfg = base ? std::move(*base) : server_config{};

  if (!opts.listen.empty()) {  // replaces the file's list
    std::vector<stun::endpoint> listen;
    for (const auto& text : opts.listen) {
      if (auto ep = detail::parse_listen(text)) listen.push_back(*ep);
      else errors.push_back(expected("--listen", detail::expect_listen, text));
    }
    cfg.listen = std::move(listen);
    cfg.listen_proxy = proxy_settings(opts.listen_proxy, errors);
  }
  if (!opts.relay_ip.empty()) {  // replaces the file's list
    std::vector<stun::endpoint> ips;
    bool any_auto = false;
    for (const auto& text : opts.relay_ip) {
      if (text == "auto") {
        if (any_auto) {
          errors.push_back("--relay-ip: 'auto' given twice");
          continue;
        }
        any_auto = true;
        ips.push_back(auto_relay_ip());
      } else if (auto ip = detail::parse_ip(text)) {
        ips.push_back(*ip);
      } else {
        errors.push_back(expected("--relay-ip", detail::expect_relay_ip, text));
      }
    }
    cfg.relay.ips = std::move(ips);
    cfg.relay.ips_auto = any_auto;
  }
  if (opts.relay_ports) {
    if (auto range = detail::parse_port_range(*opts.relay_ports)) {
      cfg.relay.port_min = range->first;
      cfg.relay.port_max = range->second;
    } else {
      errors.push_back(expected("--relay-ports", detail::expect_port_range, *opts.relay_ports));
    }
  }
  if (opts.realm) cfg.auth.realm = *opts.realm;
  // Every repeatable flag replaces its list in the file, as --listen does: a
  // flag states the whole value, so what runs is what the command line says.
  if (!opts.users.empty()) cfg.auth.users.clear();
  for (const auto& text : opts.users) {
    const auto colon = text.find(':');
    if (colon == std::string::npos || colon == 0) {
      // No colon means no password: nothing secret to leak by echoing it.
      errors.push_back(colon == 0 ? std::string("--user: expected NAME:PASSWORD with a non-empty NAME")
                                  : expected("--user", "NAME:PASSWORD", text));
      continue;
    }
    auth::static_user user;
    user.name = text.substr(0, colon);
    user.password = text.substr(colon + 1);
    cfg.auth.users.push_back(std::move(user));
  }
  if (!opts.auth_secrets.empty()) cfg.auth.rest_secrets = opts.auth_secrets;
  if (!opts.allow_peer.empty()) cfg.peers.allow.clear();
  for (const auto& text : opts.allow_peer) {
    if (auto c = detail::parse_cidr(text)) cfg.peers.allow.push_back(*c);
    else errors.push_back(expected("--allow-peer", detail::expect_cidr, text));
  }
  if (!opts.deny_peer.empty()) cfg.peers.deny.clear();
  for (const auto& text : opts.deny_peer) {
    if (auto c = detail::parse_cidr(text)) cfg.peers.deny.push_back(*c);
    else errors.push_back(expected("--deny-peer", detail::expect_cidr, text));
  }
  if (opts.threads) {
    if (auto n = detail::parse_uint(*opts.threads, std::numeric_limits<unsigned>::max())) {
      cfg.threads = static_cast<unsigned>(*n);
    } else {
      errors.push_back(expected("--threads", "a non-negative integer (0 = one per core)", *opts.threads));
    }
  }
  if (opts.udp_coalesce_us) {
    // Range-checked by validate(), like the key.
    if (auto n = detail::parse_uint(*opts.udp_coalesce_us, std::numeric_limits<std::uint32_t>::max())) {
      cfg.udp_coalesce_us = static_cast<std::uint32_t>(*n);
    } else {
      errors.push_back(expected("--udp-coalesce-us", "a non-negative integer (microseconds, 0 = off)",
                                *opts.udp_coalesce_us));
    }
  }
  if (opts.max_allocations_per_user) {
    if (auto n = detail::parse_uint(*opts.max_allocations_per_user,
                                    std::numeric_limits<std::uint32_t>::max())) {
      cfg.max_allocations_per_user = static_cast<std::uint32_t>(*n);
    } else {
      errors.push_back(expected("--max-allocations-per-user", "a non-negative integer (0 = no limit)",
                                *opts.max_allocations_per_user));
    }
  }
  if (opts.log_level) cfg.log_level = *opts.log_level;
  if (opts.log_format) cfg.log_format = *opts.log_format;
  if (!opts.tls_listen.empty()) {  // replaces the file's list
    std::vector<stun::endpoint> listen;
    for (const auto& text : opts.tls_listen) {
      if (auto ep = detail::parse_listen(text)) listen.push_back(*ep);
      else errors.push_back(expected("--tls-listen", detail::expect_listen, text));
    }
    cfg.tls.listen = std::move(listen);
    cfg.tls.listen_proxy = proxy_settings(opts.tls_listen_proxy, errors);
  }
  if (opts.tls_cert) cfg.tls.cert = *opts.tls_cert;
  if (opts.tls_key) cfg.tls.key = *opts.tls_key;
  if (!opts.dtls_listen.empty()) {  // replaces the file's list
    std::vector<stun::endpoint> listen;
    for (const auto& text : opts.dtls_listen) {
      if (auto ep = detail::parse_listen(text)) listen.push_back(*ep);
      else errors.push_back(expected("--dtls-listen", detail::expect_listen, text));
    }
    cfg.dtls.listen = std::move(listen);
  }
  if (opts.http_listen) {
    if (auto ep = detail::parse_listen(*opts.http_listen)) {
      cfg.http.listen = *ep;
      cfg.http.enabled = true;
    } else {
      errors.push_back(expected("--http-listen", detail::expect_listen, *opts.http_listen));
    }
  }
  // The default tenant's keys; never echoed.
  if (!opts.api_keys.empty()) cfg.auth.api_keys = opts.api_keys;
  if (opts.no_enforce_expiry) cfg.auth.enforce_expiry = false;
  if (opts.no_tcp_relay) cfg.relay.tcp = false;

  // The fleet. Checked against relay.ips by validate(), after --relay-ip.
  if (!opts.external_ips.empty()) {
    std::vector<external_ip> parsed;
    for (const auto& text : opts.external_ips) {
      if (auto e = detail::parse_external_ip(text)) parsed.push_back(*e);
      else errors.push_back(expected("--external-ip", detail::expect_external_ip, text));
    }
    cfg.relay.external_ips = std::move(parsed);
  }
  const auto ip_list = [&](const std::vector<std::string>& texts, const char* name,
                           std::vector<stun::endpoint>& out) {
    if (texts.empty()) return;
    std::vector<stun::endpoint> parsed;
    for (const auto& text : texts) {
      if (auto ip = detail::parse_ip(text)) parsed.push_back(*ip);
      else errors.push_back(expected(name, detail::expect_ip, text));
    }
    out = std::move(parsed);
  };
  ip_list(opts.anycast_ips, "--anycast-ip", cfg.fleet.anycast_ips);
  ip_list(opts.unicast_ips, "--unicast-ip", cfg.fleet.unicast_ips);
  if (opts.alternate_domain) cfg.fleet.alternate_domain = *opts.alternate_domain;
  if (opts.node_id) cfg.fleet.node_id = *opts.node_id;
  if (opts.redis) cfg.fleet.redis = *opts.redis;  // may hold a password: never echoed
  if (opts.drain_alternate) {
    if (auto ep = detail::parse_listen(*opts.drain_alternate)) {
      cfg.fleet.drain_alternate = *ep;
    } else {
      errors.push_back(expected("--drain-alternate", detail::expect_listen, *opts.drain_alternate));
    }
  }
  if (opts.drain_timeout) {
    // Range-checked by validate(), like the key.
    if (auto n = detail::parse_uint(*opts.drain_timeout, std::numeric_limits<std::uint32_t>::max())) {
      cfg.fleet.drain_timeout = static_cast<std::uint32_t>(*n);
    } else {
      errors.push_back(expected("--drain-timeout", "seconds, 1.." + std::to_string(max_drain_timeout),
                                *opts.drain_timeout));
    }
  }
  if (!opts.admin_keys.empty()) cfg.http.admin_keys = opts.admin_keys;  // never echoed
  if (opts.test_page) cfg.http.test_page = true;
  if (opts.other_ip) {  // checked against the listeners by validate()
    if (auto ip = detail::parse_ip(*opts.other_ip)) cfg.stun.other_ip = *ip;
    else errors.push_back(expected("--other-ip", detail::expect_ip, *opts.other_ip));
  }
  // Checked by validate() under their keys' names, like the file's values.
  if (!opts.xdp.empty()) cfg.xdp.interfaces = opts.xdp;
  if (opts.xdp_mode) cfg.xdp.mode = *opts.xdp_mode;

  // Cross-field checks only make sense on a config that parsed cleanly.
  if (!base || errors.size() != before) return std::nullopt;
  if (!validate(cfg, errors)) return std::nullopt;
  return cfg;
}

std::string usage() {
  return R"(Usage:
  anyturn [--config FILE] [flags]        run the TURN/STUN server
  anyturn check-config FILE [flags]      load FILE, apply the flags, validate, exit
  anyturn credentials (--secret S | --secret-file F) [--user U] [--ttl T] [--tenant ID] [--json]
                                         print TURN REST credentials (offline)
  anyturn ctl [--url URL] [--key KEY | --key-file F] [--json] COMMAND
                                         the admin API: sessions, disconnect, revoke,
                                         drain, undrain, reload, status (anyturn ctl --help)
  anyturn probe URL... [--user U --password P | --secret S] [--json]
                                         check a STUN/TURN service end to end over
                                         udp, tcp or tls (anyturn probe --help)
  anyturn import-coturn FILE             print the anyturn YAML for a coturn
                                         turnserver.conf (docs/coming-from-coturn.md)
  anyturn --help | --version

Flags override the config file (see docs/configuration.md): a repeatable
flag replaces the file's whole list. Every flag takes its value as
"--flag VALUE" or "--flag=VALUE".
  --config FILE             YAML config file (default: built-in defaults)
  --listen ADDR:PORT        listener, repeatable; IPv6 as [::1]:3478
                            (replaces the file's listen list)
  --relay-ip ADDR           relay address or 'auto', repeatable; several per
                            family add capacity (replaces the file's relay.ips)
  --relay-ports LOW-HIGH    relay port range, e.g. 49152-65535
  --realm NAME              authentication realm
  --user NAME:PASSWORD      static user, repeatable (replaces the file's
                            auth.users; split at the first ':')
  --auth-secret SECRET      TURN REST shared secret, repeatable (replaces
                            auth.secrets; the first signs API credentials)
  --allow-peer CIDR         allow relaying to CIDR, repeatable (replaces
                            peers.allow)
  --deny-peer CIDR          deny relaying to CIDR, repeatable (replaces
                            peers.deny; the built-in denials stay)
  --threads N               worker threads, 0 = one per core
  --log-level LEVEL         trace, debug, info, warn, error, critical, off
  --log-format text|json    log lines as text or one JSON object each (log.format)
  --tls-listen ADDR:PORT    TLS listener, repeatable (replaces tls.listen)
  --proxy-protocol          the --listen or --tls-listen before it takes a PROXY
                            protocol v1/v2 header first on every TCP/TLS connection
                            (UDP is unaffected); needs --proxy-trusted
  --proxy-trusted CIDR      load balancer source range allowed to send that header,
                            repeatable; applies to the --listen/--tls-listen before it
  --tls-cert FILE           PEM certificate chain for TLS (replaces tls.cert)
  --tls-key FILE            PEM private key for TLS (replaces tls.key)
  --dtls-listen ADDR:PORT   DTLS 1.2 listener on UDP, repeatable (replaces
                            dtls.listen; uses the TLS certificate)
  --http-listen ADDR:PORT   metrics/health/credentials-API HTTP server address
                            (replaces http.listen; default 127.0.0.1:9641)
  --api-key KEY             credentials-API bearer key of the default tenant,
                            repeatable, at least 16 characters (replaces
                            auth.api_keys)
  --udp-coalesce-us N       wake-up coalescing window in microseconds, 0..1000
                            (replaces limits.udp_coalesce_us; 0 = off)
  --max-allocations-per-user N
                            concurrent allocations per user on this node
                            (replaces limits.max_allocations_per_user; 0 = no
                            limit)
  --no-enforce-expiry       let allocations made with a TURN REST credential
                            outlive its expiry (auth.enforce_expiry: false)
  --no-tcp-relay            refuse TCP relay allocations (RFC 6062) with 442
                            (relay.tcp: false)
  --admin-key KEY           bearer key of /admin/* (drain, undrain) on the HTTP
                            server, repeatable, at least 16 characters, not a
                            tenant's key (replaces http.admin_keys)
  --test-page               serve the browser self-test page /test and
                            POST /admin/test-link (http.test_page: true)
  --other-ip ADDR           RFC 5780 NAT discovery: a second address of this
                            host; UDP listeners also answer Binding on it and
                            on port+1 of both (stun.other_ip)
  --xdp IFACE               offload established UDP channels to an XDP program
                            on IFACE, repeatable (replaces xdp.interfaces;
                            docs/xdp.md)
  --xdp-mode MODE           native, generic or auto (xdp.mode; default auto:
                            native, else generic, else run without)

Fleet (docs/fleet.md):
  --external-ip PUBLIC[/PRIVATE]
                            behind 1:1 NAT: relay on PRIVATE (one of the relay
                            addresses), announce PUBLIC in XOR-RELAYED-ADDRESS;
                            without /PRIVATE, the only relay address of PUBLIC's
                            family; repeatable (replaces relay.external_ips)
  --anycast-ip ADDR         an address the whole fleet shares: authenticated
                            Allocates to it are redirected (300) to this node's
                            unicast address; repeatable (replaces
                            fleet.anycast_ips)
  --unicast-ip ADDR         this node's own address, one per family, repeatable
                            (replaces fleet.unicast_ips)
  --alternate-domain NAME   DNS name on this node's certificate, sent as
                            ALTERNATE-DOMAIN with a redirect over TLS
  --node-id ID              this node's id in the fleet (default: hostname)
  --redis URL               fleet state: redis://[:PASSWORD@]HOST:PORT[/DB], or
                            rediss:// for TLS
  --drain-alternate ADDR:PORT
                            where a draining node redirects new Allocates when
                            the fleet directory offers no node
  --drain-timeout SECONDS   longest a drain waits for the last allocation
                            (default 3600)
  -h, --help                print this help and exit
  --version                 print the version and exit
)";
}

bool is_credentials_command(int argc, const char* const* argv) {
  return argc >= 2 && argv[1] != nullptr && std::string_view(argv[1]) == "credentials";
}

std::optional<credentials_options> parse_credentials_cli(int argc, const char* const* argv,
                                                          const char* env_secret,
                                                          std::vector<std::string>& errors) {
  const auto before = errors.size();
  credentials_options opts;
  bool have_secret = false;
  for (int i = 2; i < argc; ++i) {
    const std::string_view arg = argv[i] != nullptr ? argv[i] : "";
    auto [name, value] = split_flag(arg);
    if (name == "--help" || name == "-h") {
      opts.help = true;
      continue;
    }
    if (name == "--json") {
      if (value) errors.push_back("--json: takes no value");
      opts.json = true;
      continue;
    }
    if (name != "--secret" && name != "--secret-file" && name != "--user" && name != "--ttl" &&
        name != "--tenant") {
      errors.push_back(looks_like_flag(arg)
                           ? "credentials: unknown flag '" + std::string(name) + "'"
                           : "credentials: unexpected argument '" + std::string(arg) + "'");
      continue;
    }
    if (!value) {
      if (i + 1 < argc && argv[i + 1] != nullptr && !std::string_view(argv[i + 1]).starts_with("--")) {
        value = argv[++i];
      } else {
        errors.push_back(std::string(name) + ": missing value");
        continue;
      }
    }
    if (name == "--secret") {
      opts.secret = std::string(*value);
      have_secret = true;
    } else if (name == "--secret-file") {
      // What the server generates into its state directory when auth.secrets
      // is empty: the first line of the file, without its line ending.
      std::ifstream in{std::string(*value)};
      std::string line;
      if (!in || !std::getline(in, line)) {
        errors.push_back("--secret-file: cannot read '" + std::string(*value) + "'");
        continue;
      }
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
      opts.secret = std::move(line);
      have_secret = true;
    } else if (name == "--user") {
      opts.user = std::string(*value);
    } else if (name == "--tenant") {
      opts.tenant = std::string(*value);
    } else if (auto ttl = detail::parse_uint(*value, 10u * 365 * 86400); ttl && *ttl > 0) {
      opts.ttl = static_cast<std::uint32_t>(*ttl);
    } else {
      errors.push_back(detail::expected("--ttl", "seconds, 1..315360000", *value));
    }
  }
  if (opts.help) {
    errors.resize(before);
    return opts;
  }
  if (!have_secret && env_secret != nullptr && *env_secret != '\0') {
    opts.secret = env_secret;
    have_secret = true;
  }
  if (!have_secret || opts.secret.empty()) {
    errors.push_back(
        "credentials: --secret SECRET, --secret-file FILE (or ANYTURN_REST_SECRET) is required");
  }
  auto bad_part = [](std::string_view s) {
    return s.find(':') != std::string_view::npos ||
           std::any_of(s.begin(), s.end(), [](char c) {
             const auto u = static_cast<unsigned char>(c);
             return u < 0x20 || u == 0x7f;
           });
  };
  if (bad_part(opts.user) || opts.user.size() > 128) {
    errors.push_back("--user: at most 128 bytes, no ':' and no control characters");
  }
  if (bad_part(opts.tenant) || opts.tenant.size() > max_tenant_id_bytes) {
    errors.push_back("--tenant: at most " + std::to_string(max_tenant_id_bytes) +
                     " bytes, no ':' and no control characters");
  }
  if (!opts.tenant.empty() && opts.user.empty()) {
    errors.push_back("--tenant: needs --user (the username is <expiry>:<tenant>:<user>)");
  }
  if (errors.size() != before) return std::nullopt;
  return opts;
}

std::string credentials_usage() {
  return R"(Usage:
  anyturn credentials (--secret SECRET | --secret-file FILE) [--user ID] [--ttl SECONDS]
                      [--tenant ID] [--json]

Prints TURN REST credentials (draft-uberti-behave-turn-rest) signed with
SECRET, the same as the credentials API issues; needs no running server and
no config. The secret may come from $ANYTURN_REST_SECRET or a file instead of
--secret (keeps it out of the process list).
  --secret SECRET   a REST shared secret the server accepts (auth.secrets or a
                    tenant's secrets)
  --secret-file FILE  read the secret from FILE's first line, e.g. the one the
                    server generated: STATE_DIR/rest-secret
  --user ID         end-user id; username "<expiry>:<ID>" (default: "<expiry>")
  --ttl SECONDS     lifetime, default 86400
  --tenant ID       tenant id; username "<expiry>:<tenant>:<ID>" (needs --user)
  --json            print {"username":...,"password":...,"ttl":...,"expiresAt":...}
)";
}

std::string version() { return std::string("anyturn ") + ANYTURN_VERSION; }

}  // namespace anyturn::config
