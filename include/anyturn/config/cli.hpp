// anyturn::config — the command line.
//
//   anyturn [--config FILE] [flags...]        run the server
//   anyturn check-config FILE [flags...]     validate and exit
//   anyturn credentials --secret S [--user U] [--ttl T] [--tenant ID] [--json]
//                                            mint TURN REST credentials offline
//   anyturn --help | --version
//
// Flags override the config file; they are a fixed contract (README,
// docs/configuration.md).
#pragma once

#include <anyturn/config/config.hpp>

#include <cstdint>
#include <optional>
#include <string_view>
#include <string>
#include <vector>

namespace anyturn::config {

enum class command { run, check_config, help, version };

// --proxy-protocol and --proxy-trusted CIDR apply to the --listen or
// --tls-listen just before them.
struct cli_listener_proxy {
  bool enabled = false;              // --proxy-protocol
  std::vector<std::string> trusted;  // --proxy-trusted CIDR, repeatable
};

struct cli_options {
  command cmd = command::run;
  std::optional<std::string> config_path;
  std::vector<std::string> listen;       // --listen ADDR:PORT
  std::vector<std::string> relay_ip;     // --relay-ip ADDR
  std::optional<std::string> relay_ports;  // --relay-ports LOW-HIGH
  std::optional<std::string> realm;
  std::vector<std::string> users;        // --user NAME:PASSWORD
  std::vector<std::string> auth_secrets; // --auth-secret SECRET
  std::vector<std::string> allow_peer;   // --allow-peer CIDR
  std::vector<std::string> deny_peer;    // --deny-peer CIDR
  std::optional<std::string> threads;    // --threads N
  std::optional<std::string> log_level;  // --log-level LEVEL
  std::optional<std::string> log_format;  // --log-format text|json
  std::vector<std::string> tls_listen;   // --tls-listen ADDR:PORT
  std::vector<cli_listener_proxy> listen_proxy;      // one per --listen
  std::vector<cli_listener_proxy> tls_listen_proxy;  // one per --tls-listen
  std::optional<std::string> tls_cert;   // --tls-cert FILE
  std::optional<std::string> tls_key;    // --tls-key FILE
  std::vector<std::string> dtls_listen;  // --dtls-listen ADDR:PORT
  std::optional<std::string> http_listen;  // --http-listen ADDR:PORT
  std::vector<std::string> api_keys;     // --api-key KEY (default tenant)
  std::optional<std::string> udp_coalesce_us;  // --udp-coalesce-us N
  std::optional<std::string> max_allocations_per_user;  // --max-allocations-per-user N
  // The fleet (docs/fleet.md); each repeatable flag replaces its list.
  std::vector<std::string> external_ips;     // --external-ip PUBLIC[/PRIVATE]
  std::vector<std::string> anycast_ips;      // --anycast-ip ADDR
  std::vector<std::string> unicast_ips;      // --unicast-ip ADDR
  std::optional<std::string> alternate_domain;  // --alternate-domain NAME
  std::optional<std::string> node_id;        // --node-id ID
  std::optional<std::string> redis;          // --redis URL
  std::optional<std::string> drain_alternate;  // --drain-alternate ADDR:PORT
  std::optional<std::string> drain_timeout;  // --drain-timeout SECONDS
  std::vector<std::string> admin_keys;       // --admin-key KEY
  bool no_enforce_expiry = false;            // --no-enforce-expiry
  bool no_tcp_relay = false;                 // --no-tcp-relay
  bool test_page = false;                    // --test-page
  std::optional<std::string> other_ip;       // --other-ip ADDR
  std::vector<std::string> xdp;              // --xdp IFACE (repeatable)
  std::optional<std::string> xdp_mode;       // --xdp-mode native|generic|auto
};

// `anyturn credentials ...`: offline minting of TURN REST credentials
// (draft-uberti-behave-turn-rest), the same as the credentials API issues.
struct credentials_options {
  std::string secret;       // --secret S (or $ANYTURN_REST_SECRET)
  std::string user;         // --user U; empty: username "<expiry>"
  std::string tenant;       // --tenant ID: username "<expiry>:<ID>:<user>"
  std::uint32_t ttl = 86400;  // --ttl SECONDS
  bool json = false;        // --json
  bool help = false;        // --help
};

// "--name=value" -> ("--name", "value"); any other argument -> (itself, none).
// The one split every anyturn command line uses (the daemon, `credentials`,
// `probe`).
struct flag_parts {
  std::string_view name;
  std::optional<std::string_view> value;
};
flag_parts split_flag(std::string_view arg);

// True when argv names the credentials command (argv[1] == "credentials").
bool is_credentials_command(int argc, const char* const* argv);
// Parses `anyturn credentials` flags (argv[1] is "credentials"). `env_secret`
// is used when --secret is absent. nullopt with `errors` on a problem.
std::optional<credentials_options> parse_credentials_cli(int argc, const char* const* argv,
                                                          const char* env_secret,
                                                          std::vector<std::string>& errors);
std::string credentials_usage();

// Parses argv; appends problems to `errors` (unknown flag, missing value).
std::optional<cli_options> parse_cli(int argc, const char* const* argv, std::vector<std::string>& errors);

// Loads the file (if any) or the defaults, then applies the flags. Every
// problem goes to `errors` at once; nullopt if there was any.
std::optional<server_config> resolve(const cli_options& opts, std::vector<std::string>& errors);

std::string usage();
// "anyturn <version>" for --version.
std::string version();

}  // namespace anyturn::config
