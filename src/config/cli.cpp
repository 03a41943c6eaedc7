// The command line: argv -> cli_options (syntax only), then resolve() merges
// the options over the config file or the defaults and validates the result.
#include <anyturn/config/cli.hpp>

#include "values.hpp"

#include <array>
#include <limits>

#ifndef ANYTURN_VERSION
#define ANYTURN_VERSION "unknown"
#endif

namespace anyturn::config {

namespace {

enum class flag {
  config, listen, relay_ip, relay_ports, realm, user, auth_secret, allow_peer, deny_peer,
  threads, log_level, tls_listen, tls_cert, tls_key, help, version,
};

struct flag_spec {
  std::string_view name;
  flag id;
  bool takes_value;
};

constexpr std::array<flag_spec, 17> flags = {{
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
    {"--tls-listen", flag::tls_listen, true},
    {"--tls-cert", flag::tls_cert, true},
    {"--tls-key", flag::tls_key, true},
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

  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i] != nullptr ? argv[i] : "";
    if (!looks_like_flag(arg)) {
      positionals.emplace_back(arg);
      continue;
    }
    std::string_view name = arg;
    std::optional<std::string_view> value;
    if (const auto eq = arg.find('='); eq != std::string_view::npos && arg.starts_with("--")) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    }
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
      else want_version = true;
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
      case flag::listen: opts.listen.push_back(std::move(v)); break;
      case flag::relay_ip: opts.relay_ip.push_back(std::move(v)); break;
      case flag::relay_ports: opts.relay_ports = std::move(v); break;
      case flag::realm: opts.realm = std::move(v); break;
      case flag::user: opts.users.push_back(std::move(v)); break;
      case flag::auth_secret: opts.auth_secrets.push_back(std::move(v)); break;
      case flag::allow_peer: opts.allow_peer.push_back(std::move(v)); break;
      case flag::deny_peer: opts.deny_peer.push_back(std::move(v)); break;
      case flag::threads: opts.threads = std::move(v); break;
      case flag::log_level: opts.log_level = std::move(v); break;
      case flag::tls_listen: opts.tls_listen.push_back(std::move(v)); break;
      case flag::tls_cert: opts.tls_cert = std::move(v); break;
      case flag::tls_key: opts.tls_key = std::move(v); break;
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
        errors.push_back("unexpected argument '" + p + "' (the only command is check-config)");
      }
    }
  }

  if (errors.size() != before) return std::nullopt;
  return opts;
}

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
  for (const auto& text : opts.users) {  // added to the file's users
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
  for (const auto& secret : opts.auth_secrets) cfg.auth.rest_secrets.push_back(secret);
  for (const auto& text : opts.allow_peer) {
    if (auto c = detail::parse_cidr(text)) cfg.peers.allow.push_back(*c);
    else errors.push_back(expected("--allow-peer", detail::expect_cidr, text));
  }
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
  if (opts.log_level) cfg.log_level = *opts.log_level;
  if (!opts.tls_listen.empty()) {  // replaces the file's list
    std::vector<stun::endpoint> listen;
    for (const auto& text : opts.tls_listen) {
      if (auto ep = detail::parse_listen(text)) listen.push_back(*ep);
      else errors.push_back(expected("--tls-listen", detail::expect_listen, text));
    }
    cfg.tls.listen = std::move(listen);
  }
  if (opts.tls_cert) cfg.tls.cert = *opts.tls_cert;
  if (opts.tls_key) cfg.tls.key = *opts.tls_key;

  // Cross-field checks only make sense on a config that parsed cleanly.
  if (!base || errors.size() != before) return std::nullopt;
  if (!validate(cfg, errors)) return std::nullopt;
  return cfg;
}

std::string usage() {
  return R"(Usage:
  anyturn [--config FILE] [flags]        run the TURN/STUN server
  anyturn check-config FILE [flags]      load FILE, apply the flags, validate, exit
  anyturn --help | --version

Flags override the config file (see docs/configuration.md). Every flag takes
its value as "--flag VALUE" or "--flag=VALUE".
  --config FILE             YAML config file (default: built-in defaults)
  --listen ADDR:PORT        listener, repeatable; IPv6 as [::1]:3478
                            (replaces the file's listen list)
  --relay-ip ADDR           relay address or 'auto', repeatable, at most one
                            per family (replaces the file's relay.ips)
  --relay-ports LOW-HIGH    relay port range, e.g. 49152-65535
  --realm NAME              authentication realm
  --user NAME:PASSWORD      static user, repeatable (added to the file's users;
                            split at the first ':')
  --auth-secret SECRET      TURN REST shared secret, repeatable (added)
  --allow-peer CIDR         allow relaying to CIDR, repeatable (added)
  --deny-peer CIDR          deny relaying to CIDR, repeatable (added)
  --threads N               worker threads, 0 = one per core
  --log-level LEVEL         trace, debug, info, warn, error, critical, off
  --tls-listen ADDR:PORT    TLS listener, repeatable (replaces tls.listen)
  --tls-cert FILE           PEM certificate chain for TLS (replaces tls.cert)
  --tls-key FILE            PEM private key for TLS (replaces tls.key)
  -h, --help                print this help and exit
  --version                 print the version and exit
)";
}

std::string version() { return std::string("anyturn ") + ANYTURN_VERSION; }

}  // namespace anyturn::config
