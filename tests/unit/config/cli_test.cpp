// src/config/cli.cpp: parse_cli, resolve (the config file or the defaults,
// then the flags), usage/version and the `anyturn credentials` command line.
#include <anyturn/config/cli.hpp>

#include <gtest/gtest.h>

#include "config_files.hpp"

#include <algorithm>
#include <fstream>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

namespace anyturn::config {
namespace {

std::optional<cli_options> parse(std::initializer_list<const char*> args, std::vector<std::string>& errors) {
  std::vector<const char*> argv = {"anyturn"};
  argv.insert(argv.end(), args.begin(), args.end());
  return parse_cli(static_cast<int>(argv.size()), argv.data(), errors);
}

// ------------------------------------------------------------- parse_cli

TEST(CliParse, NoArgumentsRunsWithDefaults) {
  std::vector<std::string> errors;
  auto o = parse({}, errors);
  ASSERT_TRUE(o) << dump(errors);
  EXPECT_EQ(o->cmd, command::run);
  EXPECT_FALSE(o->config_path);
  EXPECT_TRUE(o->listen.empty());
}

TEST(CliParse, EveryFlagSpaceSeparated) {
  std::vector<std::string> errors;
  auto o = parse({"--config", "/etc/anyturn.yaml", "--listen", "0.0.0.0:3478", "--listen", "[::1]:3478",
                  "--relay-ip", "192.0.2.1", "--relay-ip", "2001:db8::1", "--relay-ports", "40000-40100",
                  "--realm", "example.org", "--user", "alice:pw", "--user", "bob:x:y", "--auth-secret", "s1",
                  "--auth-secret", "s2", "--allow-peer", "10.0.0.0/8", "--deny-peer", "203.0.113.0/24",
                  "--threads", "4", "--log-level", "debug"},
                 errors);
  ASSERT_TRUE(o) << dump(errors);
  EXPECT_EQ(o->cmd, command::run);
  EXPECT_EQ(o->config_path, std::optional<std::string>("/etc/anyturn.yaml"));
  EXPECT_EQ(o->listen, (std::vector<std::string>{"0.0.0.0:3478", "[::1]:3478"}));
  EXPECT_EQ(o->relay_ip, (std::vector<std::string>{"192.0.2.1", "2001:db8::1"}));
  EXPECT_EQ(o->relay_ports, std::optional<std::string>("40000-40100"));
  EXPECT_EQ(o->realm, std::optional<std::string>("example.org"));
  EXPECT_EQ(o->users, (std::vector<std::string>{"alice:pw", "bob:x:y"}));
  EXPECT_EQ(o->auth_secrets, (std::vector<std::string>{"s1", "s2"}));
  EXPECT_EQ(o->allow_peer, (std::vector<std::string>{"10.0.0.0/8"}));
  EXPECT_EQ(o->deny_peer, (std::vector<std::string>{"203.0.113.0/24"}));
  EXPECT_EQ(o->threads, std::optional<std::string>("4"));
  EXPECT_EQ(o->log_level, std::optional<std::string>("debug"));
}

TEST(CliParse, EqualsForm) {
  std::vector<std::string> errors;
  auto o = parse({"--config=/tmp/a.yaml", "--listen=[::1]:3478", "--relay-ports=1000-2000", "--realm=r",
                  "--user=carol:p=q", "--auth-secret=--dashes", "--threads=2", "--log-level=warn",
                  "--realm="},
                 errors);
  ASSERT_TRUE(o) << dump(errors);
  EXPECT_EQ(o->config_path, std::optional<std::string>("/tmp/a.yaml"));
  EXPECT_EQ(o->listen, (std::vector<std::string>{"[::1]:3478"}));
  EXPECT_EQ(o->relay_ports, std::optional<std::string>("1000-2000"));
  EXPECT_EQ(o->users, (std::vector<std::string>{"carol:p=q"}));  // split at the first '=' only
  EXPECT_EQ(o->auth_secrets, (std::vector<std::string>{"--dashes"}));
  EXPECT_EQ(o->threads, std::optional<std::string>("2"));
  EXPECT_EQ(o->log_level, std::optional<std::string>("warn"));
  EXPECT_EQ(o->realm, std::optional<std::string>(""));  // last one wins
}

TEST(CliParse, UnknownFlag) {
  std::vector<std::string> errors;
  EXPECT_FALSE(parse({"--relay-port", "1-2", "-x", "--listen=1.2.3.4:5"}, errors));
  EXPECT_TRUE(has_error(errors, "unknown flag '--relay-port'")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "unknown flag '-x'")) << dump(errors);
  // "1-2" after the unknown flag is then an unexpected positional argument.
  EXPECT_TRUE(has_error(errors, "unexpected argument '1-2'")) << dump(errors);
  EXPECT_EQ(errors.size(), 3u) << dump(errors);
}

TEST(CliParse, UnknownFlagWithEqualsNamesOnlyTheFlag) {
  std::vector<std::string> errors;
  EXPECT_FALSE(parse({"--secret=hunter2"}, errors));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], "unknown flag '--secret' (see --help)");
}

TEST(CliParse, MissingValue) {
  std::vector<std::string> errors;
  EXPECT_FALSE(parse({"--realm", "--threads"}, errors));
  EXPECT_TRUE(has_error(errors, "--realm: missing value")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "--threads: missing value")) << dump(errors);
  EXPECT_EQ(errors.size(), 2u) << dump(errors);
}

TEST(CliParse, ValueThatLooksLikeShortOptionIsAValue) {
  std::vector<std::string> errors;
  auto o = parse({"--auth-secret", "-abc"}, errors);
  ASSERT_TRUE(o) << dump(errors);
  EXPECT_EQ(o->auth_secrets, (std::vector<std::string>{"-abc"}));
}

TEST(CliParse, SwitchesTakeNoValue) {
  std::vector<std::string> errors;
  EXPECT_FALSE(parse({"--version=1"}, errors));
  EXPECT_TRUE(has_error(errors, "--version: takes no value")) << dump(errors);
}

TEST(CliParse, CheckConfig) {
  std::vector<std::string> errors;
  auto o = parse({"check-config", "/etc/anyturn.yaml", "--realm", "r"}, errors);
  ASSERT_TRUE(o) << dump(errors);
  EXPECT_EQ(o->cmd, command::check_config);
  EXPECT_EQ(o->config_path, std::optional<std::string>("/etc/anyturn.yaml"));
  EXPECT_EQ(o->realm, std::optional<std::string>("r"));

  // Flags may come first too.
  o = parse({"--threads=1", "check-config", "f.yaml"}, errors);
  ASSERT_TRUE(o) << dump(errors);
  EXPECT_EQ(o->cmd, command::check_config);
  EXPECT_EQ(o->config_path, std::optional<std::string>("f.yaml"));
}

TEST(CliParse, CheckConfigErrors) {
  std::vector<std::string> errors;
  EXPECT_FALSE(parse({"check-config"}, errors));
  EXPECT_TRUE(has_error(errors, "check-config: missing FILE")) << dump(errors);

  errors.clear();
  EXPECT_FALSE(parse({"check-config", "a.yaml", "--config", "b.yaml"}, errors));
  EXPECT_TRUE(has_error(errors, "check-config: give the file once")) << dump(errors);

  errors.clear();
  EXPECT_FALSE(parse({"check-config", "a.yaml", "b.yaml"}, errors));
  EXPECT_TRUE(has_error(errors, "unexpected argument 'b.yaml'")) << dump(errors);

  errors.clear();
  EXPECT_FALSE(parse({"serve"}, errors));
  EXPECT_TRUE(has_error(errors, "unexpected argument 'serve'")) << dump(errors);

  errors.clear();
  EXPECT_FALSE(parse({"--config", "a", "--config", "b"}, errors));
  EXPECT_TRUE(has_error(errors, "--config: given more than once")) << dump(errors);
}

TEST(CliParse, HelpAndVersionWin) {
  std::vector<std::string> errors;
  auto o = parse({"--bogus", "--help"}, errors);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->cmd, command::help);
  EXPECT_TRUE(errors.empty()) << dump(errors);

  o = parse({"-h"}, errors);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->cmd, command::help);

  o = parse({"--version", "--listen"}, errors);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->cmd, command::version);
  EXPECT_TRUE(errors.empty()) << dump(errors);
}

TEST(CliParse, AppendsToExistingErrors) {
  std::vector<std::string> errors = {"earlier"};
  EXPECT_FALSE(parse({"--nope"}, errors));
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0], "earlier");
  // --help keeps the caller's earlier errors, dropping only its own.
  EXPECT_TRUE(parse({"--nope", "--help"}, errors));
  EXPECT_EQ(errors.size(), 2u);
}

TEST(CliUsage, MentionsEveryFlag) {
  const std::string text = usage();
  for (const char* f : {"--config", "--listen", "--relay-ip", "--relay-ports", "--realm", "--user",
                        "--auth-secret", "--allow-peer", "--deny-peer", "--threads", "--log-level",
                        "--udp-coalesce-us", "--max-allocations-per-user", "--help", "--version",
                        "--external-ip", "--anycast-ip", "--unicast-ip", "--alternate-domain",
                        "--node-id", "--redis", "--drain-alternate", "--drain-timeout", "--admin-key",
                        "--no-enforce-expiry", "check-config"}) {
    EXPECT_NE(text.find(f), std::string::npos) << f;
  }
  EXPECT_TRUE(version().starts_with("anyturn "));
  EXPECT_GT(version().size(), std::string("anyturn ").size());
}

// --------------------------------------------------------------- resolve

// The shipped config holds no credential anybody could use: the server
// generates its REST secret at first start (app::provision_secrets).
TEST(CliResolve, ExampleFileAloneHasNoUsableCredential) {
  std::vector<std::string> errors;
  cli_options o;
  o.config_path = example_path;
  auto cfg = resolve(o, errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_TRUE(cfg->auth.users.empty());
  EXPECT_TRUE(cfg->auth.rest_secrets.empty());
  EXPECT_TRUE(cfg->auth.api_keys.empty());
  EXPECT_TRUE(cfg->auth.nonce_keys.empty());
  EXPECT_TRUE(cfg->tenants.empty());
}

// Every repeatable flag replaces its list in the file (as --listen always
// did), so the command line says exactly which credentials are accepted.
TEST(CliResolve, FlagsReplaceTheFilesValuesAndLists) {
  const std::string file = write_config_file("flags-replace", R"(
listen: ["0.0.0.0:3478"]
relay: {ips: ["192.0.2.9"]}
auth:
  users: [{name: carol, password: carol-pass-77}]
  secrets: ["file-secret-0123456789"]
  api_keys: ["file-api-key-0123456789"]
peers:
  allow: ["192.168.0.0/16"]
  deny: ["198.51.100.0/24"]
lifetimes: {allocation_max: 1800}
)");
  std::vector<std::string> errors;
  const std::string config_flag = "--config=" + file;
  auto o = parse({config_flag.c_str(), "--listen", "127.0.0.1:3479", "--listen=[::1]:3479", "--relay-ip",
                  "192.0.2.1", "--relay-ip=2001:db8::1", "--relay-ports", "50000-50010", "--realm", "example.org",
                  "--user", "bob:pa:ss", "--auth-secret", "flag-secret-0123456789", "--allow-peer", "10.0.0.0/8",
                  "--deny-peer", "203.0.113.0/24", "--api-key", "flag-api-key-0123456789", "--threads", "3",
                  "--log-level", "trace"},
                 errors);
  ASSERT_TRUE(o) << dump(errors);
  auto cfg = resolve(*o, errors);
  ASSERT_TRUE(cfg) << dump(errors);

  EXPECT_EQ(cfg->listen, (std::vector<stun::endpoint>{ep("127.0.0.1:3479"), ep("[::1]:3479")}));
  ASSERT_EQ(cfg->relay.ips.size(), 2u);
  EXPECT_TRUE(cfg->relay.ips[0].same_ip(ep("192.0.2.1")));
  EXPECT_TRUE(cfg->relay.ips[1].same_ip(ep("[2001:db8::1]")));
  EXPECT_FALSE(cfg->relay.ips_auto);
  EXPECT_EQ(cfg->relay.port_min, 50000);
  EXPECT_EQ(cfg->relay.port_max, 50010);
  EXPECT_EQ(cfg->auth.realm, "example.org");
  EXPECT_EQ(cfg->threads, 3u);
  EXPECT_EQ(cfg->log_level, "trace");
  // The lists: the file's entries are gone, the flags' are all there is.
  ASSERT_EQ(cfg->auth.users.size(), 1u);
  EXPECT_EQ(cfg->auth.users[0].name, "bob");
  EXPECT_EQ(cfg->auth.users[0].password, std::optional<std::string>("pa:ss"));  // split at the first ':'
  EXPECT_FALSE(cfg->auth.users[0].key);
  EXPECT_EQ(cfg->auth.rest_secrets, std::vector<std::string>{"flag-secret-0123456789"});
  EXPECT_EQ(cfg->auth.api_keys, std::vector<std::string>{"flag-api-key-0123456789"});
  ASSERT_EQ(cfg->peers.allow.size(), 1u);
  EXPECT_EQ(cfg->peers.allow[0].to_string(), "10.0.0.0/8");
  ASSERT_EQ(cfg->peers.deny.size(), 1u);
  EXPECT_EQ(cfg->peers.deny[0].to_string(), "203.0.113.0/24");
  // untouched by flags
  EXPECT_EQ(cfg->lifetimes.allocation_max, 1800u);
  EXPECT_EQ(cfg->software, "anyturn");

  // Without the flags, the file's lists stand.
  cli_options file_only;
  file_only.config_path = file;
  auto plain = resolve(file_only, errors);
  ASSERT_TRUE(plain) << dump(errors);
  ASSERT_EQ(plain->auth.users.size(), 1u);
  EXPECT_EQ(plain->auth.users[0].name, "carol");
  EXPECT_EQ(plain->auth.rest_secrets, std::vector<std::string>{"file-secret-0123456789"});
  EXPECT_EQ(plain->peers.allow[0].to_string(), "192.168.0.0/16");
}

TEST(CliResolve, DefaultsWithoutConfigFile) {
  std::vector<std::string> errors;
  auto o = parse({"--user", "alice:pw"}, errors);
  ASSERT_TRUE(o) << dump(errors);
  auto cfg = resolve(*o, errors);
  ASSERT_TRUE(cfg) << dump(errors);
  const server_config d = defaults();
  EXPECT_EQ(cfg->listen, d.listen);
  EXPECT_EQ(cfg->relay.ips, d.relay.ips);
  EXPECT_EQ(cfg->auth.realm, "anyturn");
  ASSERT_EQ(cfg->auth.users.size(), 1u);
  EXPECT_EQ(cfg->auth.users[0].name, "alice");
}

TEST(CliResolve, RelayIpAuto) {
  std::vector<std::string> errors;
  auto o = parse({"--auth-secret", "test-rest-secret-0001", "--relay-ip", "auto", "--relay-ip", "2001:db8::1"}, errors);
  ASSERT_TRUE(o) << dump(errors);
  auto cfg = resolve(*o, errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_TRUE(cfg->relay.ips_auto);
  ASSERT_EQ(cfg->relay.ips.size(), 2u);
  EXPECT_EQ(cfg->relay.ips[0], auto_relay_ip());
}

// No credential at all validates: the server then runs on a generated
// secret, never open and never on a published one.
TEST(CliResolve, NoCredentialsLeavesTheSecretToBeGenerated) {
  std::vector<std::string> errors;
  auto cfg = resolve(cli_options{}, errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_TRUE(cfg->auth.rest_secrets.empty());
  EXPECT_TRUE(cfg->auth.users.empty());
}

TEST(CliResolve, PublishedAndShortCredentialsAreRefused) {
  std::vector<std::string> errors;
  auto o = parse({"--user", "demo:demo-password", "--auth-secret", "change-me-rest-secret",
                  "--auth-secret", "short-secret", "--api-key", "replace-with-openssl-rand-hex-32"},
                 errors);
  ASSERT_TRUE(o) << dump(errors);
  EXPECT_FALSE(resolve(*o, errors));
  EXPECT_TRUE(has_error(errors, "auth.users[0] 'demo': the password is a published example")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "auth.secrets[0]: a published example")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "auth.secrets[1]: at least 16 bytes")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "auth.api_keys[0]: a published example key")) << dump(errors);
  for (const auto& e : errors) {
    EXPECT_EQ(e.find("change-me-rest-secret"), std::string::npos) << "secret echoed: " << e;
    EXPECT_EQ(e.find("short-secret"), std::string::npos) << "secret echoed: " << e;
  }
}

TEST(CliResolve, EveryBadFlagValueAtOnce) {
  std::vector<std::string> errors;
  auto o = parse({"--listen", "nowhere", "--relay-ip", "1.2.3.4:5", "--relay-ports", "5-1", "--user", "nocolon",
                  "--user", ":pw", "--allow-peer", "10.0.0.0/40", "--deny-peer", "x", "--threads", "-1",
                  "--auth-secret", "test-rest-secret-0001"},
                 errors);
  ASSERT_TRUE(o) << dump(errors);
  EXPECT_FALSE(resolve(*o, errors));
  EXPECT_TRUE(has_error(errors, "--listen: expected ADDR:PORT (IPv6 as [ADDR]:PORT), got 'nowhere'")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "--relay-ip: expected 'auto' or an IP address without a port, got '1.2.3.4:5'")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "--relay-ports: expected LOW-HIGH with 1 <= LOW <= HIGH <= 65535, got '5-1'")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "--user: expected NAME:PASSWORD, got 'nocolon'")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "--user: expected NAME:PASSWORD with a non-empty NAME")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "--allow-peer: expected an address or CIDR")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "--deny-peer: expected an address or CIDR")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "--threads: expected a non-negative integer")) << dump(errors);
  EXPECT_EQ(errors.size(), 8u) << dump(errors);
}

TEST(CliResolve, UdpCoalesce) {
  std::vector<std::string> errors;
  auto o = parse({"--auth-secret", "test-rest-secret-0001", "--udp-coalesce-us", "250"}, errors);
  ASSERT_TRUE(o) << dump(errors);
  auto cfg = resolve(*o, errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_EQ(cfg->udp_coalesce_us, 250u);
  EXPECT_EQ(defaults().udp_coalesce_us, 0u);  // off unless asked for

  errors.clear();
  o = parse({"--auth-secret", "test-rest-secret-0001", "--udp-coalesce-us=1001"}, errors);
  ASSERT_TRUE(o) << dump(errors);
  EXPECT_FALSE(resolve(*o, errors));
  EXPECT_TRUE(has_error(errors, "limits.udp_coalesce_us: at most 1000 microseconds (0 = off), got 1001"))
      << dump(errors);

  errors.clear();
  o = parse({"--auth-secret", "test-rest-secret-0001", "--udp-coalesce-us", "0.5"}, errors);
  ASSERT_TRUE(o) << dump(errors);
  EXPECT_FALSE(resolve(*o, errors));
  EXPECT_TRUE(has_error(errors, "--udp-coalesce-us: expected a non-negative integer (microseconds, 0 = off), "
                                "got '0.5'"))
      << dump(errors);
  EXPECT_EQ(errors.size(), 1u) << dump(errors);
}

TEST(CliResolve, FileErrorsAndFlagErrorsTogether) {
  std::vector<std::string> errors;
  cli_options o;
  o.config_path = "/nonexistent/anyturn.yaml";
  o.relay_ports = "x";
  EXPECT_FALSE(resolve(o, errors));
  EXPECT_TRUE(has_error(errors, "/nonexistent/anyturn.yaml: cannot open")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "--relay-ports: expected LOW-HIGH")) << dump(errors);
  EXPECT_EQ(errors.size(), 2u) << dump(errors);
}

TEST(CliResolve, ValidationSeesMergedConfig) {
  std::vector<std::string> errors;
  const std::string config_flag = "--config=" + example_path;
  auto o = parse({config_flag.c_str(), "--user", "dup:other-pass-1", "--user", "dup:other-pass-2", "--threads",
                  "300", "--log-level", "loud",
                  "--relay-ip", "192.0.2.1", "--relay-ip", "192.0.2.1"},
                 errors);
  ASSERT_TRUE(o) << dump(errors);
  EXPECT_FALSE(resolve(*o, errors));
  EXPECT_TRUE(has_error(errors, "auth.users[1] 'dup': duplicate user name")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "threads: at most 256")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "log_level: expected one of")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "relay.ips[1]: 192.0.2.1 is listed twice")) << dump(errors);
  EXPECT_EQ(errors.size(), 4u) << dump(errors);
}

TEST(CliResolve, FlagsCanRepairAFileThatFailsValidation) {
  // Flags are merged before validation: the port range from the flag is
  // what validate() sees.
  std::vector<std::string> errors;
  auto o = parse({"--auth-secret", "test-rest-secret-0001", "--relay-ports=10000-10001"}, errors);
  ASSERT_TRUE(o);
  auto cfg = resolve(*o, errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_EQ(cfg->relay.port_min, 10000);
  EXPECT_EQ(cfg->relay.port_max, 10001);
}

// --------------------------------------------- tls, http and api-key flags

std::optional<server_config> resolve_args(std::initializer_list<const char*> args,
                                          std::vector<std::string>& errors) {
  auto opts = parse(args, errors);
  if (!opts) return std::nullopt;
  return resolve(*opts, errors);
}

TEST(ConfigStreams, TlsFlags) {
  const char* argv[] = {"anyturn", "--user", "a:b", "--tls-listen", "127.0.0.1:5349",
                        "--tls-listen=[::1]:5350", "--tls-cert", "c.pem", "--tls-key=k.pem"};
  std::vector<std::string> errors;
  auto opts = parse_cli(9, argv, errors);
  ASSERT_TRUE(opts) << dump(errors);
  EXPECT_EQ(opts->tls_listen, (std::vector<std::string>{"127.0.0.1:5349", "[::1]:5350"}));
  auto cfg = resolve(*opts, errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_EQ(cfg->tls.listen, (std::vector{ep("127.0.0.1:5349"), ep("[::1]:5350")}));
  EXPECT_EQ(cfg->tls.cert, "c.pem");
  EXPECT_EQ(cfg->tls.key, "k.pem");

  const char* bad[] = {"anyturn", "--user", "a:b", "--tls-listen", "nonsense"};
  errors.clear();
  auto bad_opts = parse_cli(5, bad, errors);
  ASSERT_TRUE(bad_opts);
  EXPECT_FALSE(resolve(*bad_opts, errors));
  EXPECT_TRUE(has_error(errors, "--tls-listen: expected ADDR:PORT")) << dump(errors);
  EXPECT_NE(usage().find("--tls-listen ADDR:PORT"), std::string::npos);
}

TEST(ConfigDtls, DtlsListenFlag) {
  std::vector<std::string> errors;
  auto cfg = resolve_args({"--user", "a:b", "--dtls-listen", "127.0.0.1:5349", "--dtls-listen=[::1]:5350"},
                          errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_EQ(cfg->dtls.listen, (std::vector{ep("127.0.0.1:5349"), ep("[::1]:5350")}));

  errors.clear();
  EXPECT_FALSE(resolve_args({"--user", "a:b", "--dtls-listen", "nonsense"}, errors));
  EXPECT_TRUE(has_error(errors, "--dtls-listen: expected ADDR:PORT")) << dump(errors);
  // PROXY protocol is for TCP: it cannot follow a --dtls-listen.
  errors.clear();
  (void)parse({"--dtls-listen", "127.0.0.1:5349", "--proxy-protocol"}, errors);
  EXPECT_TRUE(has_error(errors, "--proxy-protocol")) << dump(errors);
  EXPECT_NE(usage().find("--dtls-listen ADDR:PORT"), std::string::npos);
}

TEST(SideFlags, HttpListenAndApiKeys) {
  std::vector<std::string> errors;
  auto cfg = resolve_args({"--user", "a:b", "--auth-secret", "test-rest-secret-0001", "--http-listen", "127.0.0.1:9999",
                           "--api-key", "first-key-0123456789", "--api-key=second-key-0123456789"},
                          errors);
  ASSERT_TRUE(cfg.has_value()) << dump(errors);
  EXPECT_EQ(cfg->http.listen, ep("127.0.0.1:9999"));
  EXPECT_EQ(cfg->auth.api_keys,
            (std::vector<std::string>{"first-key-0123456789", "second-key-0123456789"}));

  errors.clear();
  EXPECT_FALSE(resolve_args({"--user", "a:b", "--http-listen", "9999", "--api-key", "too-short"}, errors));
  EXPECT_TRUE(has_error(errors, "--http-listen: expected ADDR:PORT")) << dump(errors);
  errors.clear();
  EXPECT_FALSE(resolve_args({"--user", "a:b", "--api-key", "too-short"}, errors));
  EXPECT_TRUE(has_error(errors, "auth.api_keys[0]: at least 16 characters")) << dump(errors);
  EXPECT_EQ(errors.size(), 1u) << dump(errors);  // no secret is fine: the generated one signs
  for (const auto& e : errors) EXPECT_EQ(e.find("too-short"), std::string::npos) << e;
}

// ------------------------------------------------------------- credentials

std::optional<credentials_options> parse_credentials(std::initializer_list<const char*> args,
                                                     const char* env, std::vector<std::string>& errors) {
  std::vector<const char*> argv = {"anyturn", "credentials"};
  argv.insert(argv.end(), args.begin(), args.end());
  EXPECT_TRUE(is_credentials_command(static_cast<int>(argv.size()), argv.data()));
  return parse_credentials_cli(static_cast<int>(argv.size()), argv.data(), env, errors);
}

TEST(SideFlags, CredentialsCommand) {
  std::vector<std::string> errors;
  auto o = parse_credentials({"--secret", "s3cret", "--user", "bob", "--ttl", "600", "--json"}, nullptr, errors);
  ASSERT_TRUE(o.has_value()) << dump(errors);
  EXPECT_EQ(o->secret, "s3cret");
  EXPECT_EQ(o->user, "bob");
  EXPECT_EQ(o->ttl, 600u);
  EXPECT_TRUE(o->json);
  EXPECT_TRUE(o->tenant.empty());

  o = parse_credentials({"--user=bob", "--tenant", "acme"}, "from-env", errors);
  ASSERT_TRUE(o.has_value()) << dump(errors);
  EXPECT_EQ(o->secret, "from-env");
  EXPECT_EQ(o->ttl, 86400u);
  EXPECT_EQ(o->tenant, "acme");

  o = parse_credentials({"--help"}, nullptr, errors);
  ASSERT_TRUE(o.has_value());
  EXPECT_TRUE(o->help);

  EXPECT_FALSE(parse_credentials({"--user", "bob"}, nullptr, errors));
  EXPECT_TRUE(has_error(errors, "--secret SECRET, --secret-file FILE (or ANYTURN_REST_SECRET) is required")) << dump(errors);
  errors.clear();

  // --secret-file reads what the server generated into its state directory.
  const std::string file = ::testing::TempDir() + "anyturn-cli-rest-secret";
  std::ofstream(file) << "0123abcd0123abcd0123abcd0123abcd\n";
  o = parse_credentials({"--secret-file", file.c_str(), "--user", "bob"}, "not-this-one", errors);
  ASSERT_TRUE(o.has_value()) << dump(errors);
  EXPECT_EQ(o->secret, "0123abcd0123abcd0123abcd0123abcd");
  EXPECT_FALSE(parse_credentials({"--secret-file", "/nonexistent/rest-secret"}, nullptr, errors));
  EXPECT_TRUE(has_error(errors, "--secret-file: cannot read '/nonexistent/rest-secret'")) << dump(errors);
  errors.clear();
  EXPECT_FALSE(parse_credentials({"--secret", "s", "--ttl", "0", "--user", "a:b", "--tenant", "t", "--x"},
                                 nullptr, errors));
  EXPECT_TRUE(has_error(errors, "--ttl: expected seconds")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "--user: at most 128 bytes, no ':'")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "credentials: unknown flag '--x'")) << dump(errors);
  errors.clear();
  EXPECT_FALSE(parse_credentials({"--secret", "s", "--tenant", "t"}, nullptr, errors));
  EXPECT_TRUE(has_error(errors, "--tenant: needs --user")) << dump(errors);

  const char* run[] = {"anyturn", "--user", "a:b"};
  EXPECT_FALSE(is_credentials_command(3, run));
}

TEST(CliResolve, MaxAllocationsPerUser) {
  std::vector<std::string> errors;
  auto o = parse({"--auth-secret", "test-rest-secret-0001", "--max-allocations-per-user", "0"}, errors);
  ASSERT_TRUE(o) << dump(errors);
  auto cfg = resolve(*o, errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_EQ(cfg->max_allocations_per_user, 0u);

  errors.clear();
  o = parse({"--auth-secret", "s", "--max-allocations-per-user=many"}, errors);
  ASSERT_TRUE(o) << dump(errors);
  EXPECT_FALSE(resolve(*o, errors));
  EXPECT_TRUE(has_error(errors, "--max-allocations-per-user: expected a non-negative integer (0 = no limit), "
                                "got 'many'"))
      << dump(errors);
}


// ------------------------------------------------------------------ fleet

TEST(FleetFlags, ParseEveryFleetFlag) {
  std::vector<std::string> errors;
  auto o = parse({"--external-ip", "203.0.113.7/10.0.0.7", "--external-ip=2001:db8::7", "--anycast-ip",
                  "198.51.100.1", "--anycast-ip", "2001:db8:a::1", "--unicast-ip", "192.0.2.10",
                  "--alternate-domain", "turn-1.example.com", "--node-id", "eu-1", "--redis",
                  "redis://10.0.0.5:6379/0", "--drain-alternate", "192.0.2.11:3478", "--drain-timeout",
                  "900", "--admin-key", "admin-key-77e1c0d9b8a7f6e5", "--no-enforce-expiry"},
                 errors);
  ASSERT_TRUE(o) << dump(errors);
  EXPECT_EQ(o->external_ips, (std::vector<std::string>{"203.0.113.7/10.0.0.7", "2001:db8::7"}));
  EXPECT_EQ(o->anycast_ips, (std::vector<std::string>{"198.51.100.1", "2001:db8:a::1"}));
  EXPECT_EQ(o->unicast_ips, (std::vector<std::string>{"192.0.2.10"}));
  EXPECT_EQ(o->alternate_domain, std::optional<std::string>("turn-1.example.com"));
  EXPECT_EQ(o->node_id, std::optional<std::string>("eu-1"));
  EXPECT_EQ(o->redis, std::optional<std::string>("redis://10.0.0.5:6379/0"));
  EXPECT_EQ(o->drain_alternate, std::optional<std::string>("192.0.2.11:3478"));
  EXPECT_EQ(o->drain_timeout, std::optional<std::string>("900"));
  EXPECT_EQ(o->admin_keys, (std::vector<std::string>{"admin-key-77e1c0d9b8a7f6e5"}));
  EXPECT_TRUE(o->no_enforce_expiry);

  errors.clear();
  EXPECT_FALSE(parse({"--no-enforce-expiry=yes"}, errors));
  EXPECT_TRUE(has_error(errors, "--no-enforce-expiry: takes no value")) << dump(errors);
}

TEST(FleetFlags, ResolveAppliesThemOverTheFile) {
  const std::string path = write_config_file("fleet-flags", R"(
listen: ["0.0.0.0:3478"]
relay:
  ips: ["127.0.0.1"]
  external_ips: ["198.51.100.99"]
auth:
  users: [{name: alice, password: alice-pass-4bd2}]
http:
  admin_keys: ["file-admin-key-0a1b2c3d4e5f"]
fleet:
  anycast_ips: ["198.51.100.50"]
  unicast_ips: ["192.0.2.50"]
  drain_timeout: 60
)");
  std::vector<std::string> errors;
  auto cfg = resolve_args({"--config", path.c_str(), "--relay-ip", "10.0.0.7", "--relay-ip", "10.0.0.8",
                           "--external-ip", "203.0.113.7/10.0.0.7", "--external-ip", "203.0.113.8/10.0.0.8",
                           "--anycast-ip", "198.51.100.1", "--unicast-ip", "192.0.2.10", "--unicast-ip",
                           "2001:db8::10", "--alternate-domain", "turn-1.example.com", "--node-id", "eu-1",
                           "--redis", "redis://:a7f3c9e1d2b4@127.0.0.1:6379/3", "--drain-alternate",
                           "[2001:db8::11]:3478", "--drain-timeout", "7200", "--admin-key",
                           "flag-admin-key-9f8e7d6c5b4a", "--no-enforce-expiry"},
                          errors);
  ASSERT_TRUE(cfg) << dump(errors);
  // A repeatable flag replaces the file's list, as everywhere.
  ASSERT_EQ(cfg->relay.external_ips.size(), 2u);
  EXPECT_EQ(cfg->relay.external_ips[0].public_ip, ep("203.0.113.7"));
  EXPECT_EQ(cfg->relay.external_ips[1].private_ip, std::optional(ep("10.0.0.8")));
  EXPECT_EQ(cfg->fleet.anycast_ips, std::vector<stun::endpoint>{ep("198.51.100.1")});
  EXPECT_EQ(cfg->fleet.unicast_ips, (std::vector<stun::endpoint>{ep("192.0.2.10"), ep("[2001:db8::10]")}));
  EXPECT_EQ(cfg->fleet.alternate_domain, "turn-1.example.com");
  EXPECT_EQ(cfg->fleet.node_id, "eu-1");
  EXPECT_EQ(cfg->fleet.redis, "redis://:a7f3c9e1d2b4@127.0.0.1:6379/3");
  EXPECT_EQ(cfg->fleet.drain_alternate, std::optional(ep("[2001:db8::11]:3478")));
  EXPECT_EQ(cfg->fleet.drain_timeout, 7200u);
  EXPECT_EQ(cfg->http.admin_keys, std::vector<std::string>{"flag-admin-key-9f8e7d6c5b4a"});
  EXPECT_FALSE(cfg->auth.enforce_expiry);

  // Without the switch the file's (or the default) value stays.
  errors.clear();
  cfg = resolve_args({"--config", path.c_str()}, errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_TRUE(cfg->auth.enforce_expiry);
  EXPECT_EQ(cfg->fleet.drain_timeout, 60u);
}

TEST(FleetFlags, BadValuesNameTheFlagAndValidationNamesTheKey) {
  std::vector<std::string> errors;
  EXPECT_FALSE(resolve_args({"--user", "a:b", "--external-ip", "203.0.113.7/", "--anycast-ip", "vip",
                             "--unicast-ip", "192.0.2.1:3478", "--drain-alternate", "192.0.2.11",
                             "--drain-timeout", "-5"},
                            errors));
  EXPECT_TRUE(has_error(errors, "--external-ip: expected PUBLIC or PUBLIC/PRIVATE")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "got '203.0.113.7/'")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "--anycast-ip: expected an IP address without a port, got 'vip'")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "--unicast-ip: expected an IP address without a port")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "--drain-alternate: expected ADDR:PORT")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "--drain-timeout: expected seconds, 1..604800, got '-5'")) << dump(errors);
  EXPECT_EQ(errors.size(), 5u) << dump(errors);

  // Values of the right shape that do not fit the rest: validate() names the key.
  errors.clear();
  EXPECT_FALSE(resolve_args({"--user", "a:b", "--relay-ip", "127.0.0.1", "--external-ip",
                             "203.0.113.7/10.0.0.7", "--anycast-ip", "198.51.100.1", "--drain-timeout", "0",
                             "--redis", "redis://:pw-not-shown@h", "--admin-key", "x"},
                            errors));
  EXPECT_TRUE(has_error(errors, "relay.external_ips[0]: PRIVATE 10.0.0.7 is not one of relay.ips (127.0.0.1)"))
      << dump(errors);
  EXPECT_TRUE(has_error(errors, "fleet.anycast_ips[0]: 198.51.100.1 is IPv4, but fleet.unicast_ips has no IPv4"))
      << dump(errors);
  EXPECT_TRUE(has_error(errors, "fleet.drain_timeout: expected 1..604800 seconds, got 0")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "fleet.redis: expected redis://")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "http.admin_keys[0]: at least 16 characters")) << dump(errors);
  EXPECT_EQ(errors.size(), 5u) << dump(errors);
  for (const auto& e : errors) EXPECT_EQ(e.find("pw-not-shown"), std::string::npos) << e;
}

// --external-ip PUBLIC with --relay-ip auto maps the detected address.
TEST(FleetFlags, ExternalIpWithAutoRelayAddress) {
  std::vector<std::string> errors;
  auto cfg = resolve_args({"--user", "a:b", "--relay-ip", "auto", "--external-ip", "203.0.113.7"}, errors);
  ASSERT_TRUE(cfg) << dump(errors);
  ASSERT_TRUE(cfg->relay.ips_auto);
  const auto resolved = resolve_external_ips(cfg->relay);
  ASSERT_EQ(resolved.size(), 1u);
  EXPECT_EQ(resolved[0].private_ip, std::optional(cfg->relay.ips[0]));
}

// ------------------------------------------------------------- PROXY protocol

TEST(CliParse, ProxyProtocolAppliesToThePrecedingListener) {
  std::vector<std::string> errors;
  auto o = parse({"--listen", "127.0.0.1:3478", "--listen", "127.0.0.1:3479", "--proxy-protocol",
                  "--proxy-trusted", "10.0.0.0/8", "--proxy-trusted=192.0.2.1", "--tls-listen",
                  "127.0.0.1:5349", "--proxy-protocol", "--proxy-trusted", "10.0.0.0/8"},
                 errors);
  ASSERT_TRUE(o) << dump(errors);
  auto cfg = resolve(*o, errors);
  ASSERT_TRUE(cfg) << dump(errors);
  ASSERT_EQ(cfg->listen_proxy.size(), 2u);
  EXPECT_FALSE(cfg->listen_proxy[0].enabled);
  EXPECT_TRUE(cfg->listen_proxy[1].enabled);
  ASSERT_EQ(cfg->listen_proxy[1].trusted.size(), 2u);
  EXPECT_EQ(cfg->listen_proxy[1].trusted[1].to_string(), "192.0.2.1/32");
  ASSERT_EQ(cfg->tls.listen_proxy.size(), 1u);
  EXPECT_TRUE(cfg->tls.listen_proxy[0].enabled);
}

TEST(CliParse, ProxyProtocolErrors) {
  std::vector<std::string> errors;
  EXPECT_FALSE(parse({"--proxy-protocol", "--listen", "127.0.0.1:3478"}, errors));
  EXPECT_TRUE(has_error(errors, "--proxy-protocol: applies to the --listen")) << dump(errors);

  errors.clear();
  auto o = parse({"--listen", "127.0.0.1:3478", "--proxy-protocol"}, errors);
  ASSERT_TRUE(o) << dump(errors);
  EXPECT_FALSE(resolve(*o, errors));
  EXPECT_TRUE(has_error(errors, "listen[0].trusted: proxy_protocol needs")) << dump(errors);

  errors.clear();
  o = parse({"--listen", "127.0.0.1:3478", "--proxy-protocol", "--proxy-trusted", "nope"}, errors);
  ASSERT_TRUE(o) << dump(errors);
  EXPECT_FALSE(resolve(*o, errors));
  EXPECT_TRUE(has_error(errors, "--proxy-trusted")) << dump(errors);
}

}  // namespace
}  // namespace anyturn::config

namespace anyturn::config {
namespace {

TEST(LogConfig, LogFormatFlagReplacesTheKey) {
  std::vector<std::string> errors;
  const std::string config_flag = "--config=" + example_path;
  auto o = parse({config_flag.c_str(), "--log-format", "json"}, errors);
  ASSERT_TRUE(o) << dump(errors);
  EXPECT_EQ(o->log_format, std::optional<std::string>("json"));
  auto cfg = resolve(*o, errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_EQ(cfg->log_format, "json");

  o = parse({config_flag.c_str(), "--log-format=yaml"}, errors);
  ASSERT_TRUE(o) << dump(errors);
  EXPECT_FALSE(resolve(*o, errors));
  EXPECT_TRUE(has_error(errors, "log.format: expected text or json, got 'yaml'")) << dump(errors);
  EXPECT_NE(usage().find("--log-format text|json"), std::string::npos);
}

}  // namespace
}  // namespace anyturn::config

namespace anyturn::config {
namespace {

TEST(TestPage, FlagTurnsThePageOn) {
  std::vector<std::string> errors;
  auto cfg = resolve_args({"--user", "a:b", "--admin-key", "admin-key-77e1c0d9b8a7f6e5"}, errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_FALSE(cfg->http.test_page);
  cfg = resolve_args({"--user", "a:b", "--admin-key", "admin-key-77e1c0d9b8a7f6e5", "--test-page"}, errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_TRUE(cfg->http.test_page);
  errors.clear();
  EXPECT_FALSE(parse({"--test-page=yes"}, errors));
  EXPECT_TRUE(has_error(errors, "--test-page: takes no value")) << dump(errors);
}

// relay.tcp (RFC 6062 TCP relay allocations): on by default, off in the
// file or with --no-tcp-relay; a non-boolean is an error naming the key.
TEST(CliResolve, RelayTcpFromTheFileAndNoTcpRelay) {
  std::vector<std::string> errors;
  auto cfg = resolve_args({"--auth-secret", "test-rest-secret-0001"}, errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_TRUE(cfg->relay.tcp);
  cfg = resolve_args({"--auth-secret", "test-rest-secret-0001", "--no-tcp-relay"}, errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_FALSE(cfg->relay.tcp);
  const std::string off = write_config_file("relay-tcp-off", "relay:\n  tcp: false\n");
  cfg = resolve_args({"--config", off.c_str(), "--auth-secret", "test-rest-secret-0001"}, errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_FALSE(cfg->relay.tcp);
  const std::string bad = write_config_file("relay-tcp-bad", "relay:\n  tcp: sometimes\n");
  EXPECT_FALSE(resolve_args({"--config", bad.c_str(), "--auth-secret", "test-rest-secret-0001"}, errors));
  EXPECT_TRUE(std::any_of(errors.begin(), errors.end(),
                          [](const std::string& e) { return e.find("relay.tcp") != std::string::npos; }))
      << dump(errors);
  errors.clear();
  EXPECT_FALSE(parse({"--no-tcp-relay=1"}, errors));
  EXPECT_TRUE(has_error(errors, "--no-tcp-relay: takes no value")) << dump(errors);
}

}  // namespace
}  // namespace anyturn::config
