// src/config/yaml_loader.cpp: load_yaml and load_file — YAML to server_config,
// every key mapped, every loader error naming its key path.
#include <anyturn/config/config.hpp>

#include <gtest/gtest.h>

#include "config_files.hpp"
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace anyturn::config {
namespace {

// ----------------------------------------------------- the shipped example

TEST(ConfigLoad, ExampleConfigLoadsAndValidates) {
  std::vector<std::string> errors;
  auto cfg = load_file(example_path, errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_TRUE(validate(*cfg, errors)) << dump(errors);
  EXPECT_TRUE(errors.empty());

  ASSERT_EQ(cfg->listen.size(), 1u);
  EXPECT_EQ(cfg->listen[0], ep("0.0.0.0:3478"));
  EXPECT_TRUE(cfg->relay.ips_auto);
  ASSERT_EQ(cfg->relay.ips.size(), 1u);
  EXPECT_TRUE(cfg->relay.ips[0].is_v4());
  EXPECT_EQ(cfg->relay.port_min, 49152);
  EXPECT_EQ(cfg->relay.port_max, 65535);
  EXPECT_EQ(cfg->auth.realm, "anyturn");
  EXPECT_TRUE(cfg->auth.users.empty());         // no usable credential ships
  EXPECT_TRUE(cfg->auth.rest_secrets.empty());  // generated at first start
  EXPECT_EQ(cfg->auth.nonce_max_skew, 60u);
  EXPECT_TRUE(cfg->peers.allow.empty());
  EXPECT_EQ(cfg->log_level, "info");
  // The fleet keys are shown with their defaults: a single node.
  EXPECT_TRUE(cfg->relay.external_ips.empty());
  EXPECT_TRUE(cfg->auth.enforce_expiry);
  EXPECT_TRUE(cfg->http.admin_keys.empty());
  EXPECT_TRUE(cfg->fleet.anycast_ips.empty());
  EXPECT_TRUE(cfg->fleet.redis.empty());
  EXPECT_EQ(cfg->fleet.drain_timeout, 3600u);
}

TEST(ConfigStreams, ExampleServesTlsOn5349WithADevelopmentCertificate) {
  std::vector<std::string> errors;
  auto cfg = load_file(example_path, errors);
  ASSERT_TRUE(cfg) << dump(errors);
  ASSERT_EQ(cfg->tls.listen.size(), 1u);
  EXPECT_EQ(cfg->tls.listen[0], ep("0.0.0.0:5349"));
  EXPECT_TRUE(cfg->tls.cert.empty());
  EXPECT_TRUE(cfg->streams.tcp);
  EXPECT_TRUE(validate(*cfg, errors)) << dump(errors);
  const auto w = warnings(*cfg);
  EXPECT_TRUE(std::any_of(w.begin(), w.end(), [](const std::string& s) {
    return s.find("self-signed") != std::string::npos;
  }));
}

// ----------------------------------------------------------------- mapping

TEST(ConfigLoad, MapsEveryKey) {
  const std::string yaml = R"(
listen: ["192.0.2.10:3478", "[2001:db8::1]:3479"]
relay:
  ips: ["192.0.2.10", "2001:db8::1"]
  ports: "40000-40100"
realm: example.org
auth:
  users:
    - {name: alice, password: alice-pass-9f3}
    - {name: bob, key: "00112233445566778899AABBCCDDEEFF"}
  secrets: ["rest-secret-one-0123", "rest-secret-two-0123"]
  nonce_key: "0123456789abcdef0123"
  nonce_lifetime: 120
  nonce_max_skew: 30
  offer_sha256: false
lifetimes: {allocation_default: 300, allocation_max: 1800, permission: 200, channel: 400}
peers: {allow: ["203.0.113.0/24"], deny: ["198.51.100.0/24", "2001:db8::/32"]}
threads: 4
log_level: debug
software: "my-turn 1.0"
limits: {max_allocations_per_worker: 1000, max_allocations_per_user: 3, udp_socket_buffer: 65536,
         udp_coalesce_us: 300, udp_gso: false, udp_gro: true, udp_busy_poll_us: 0,
         unauthenticated_per_source: {rate: 7, burst: 9},
         auth_failures: {per_source_per_minute: 6, per_source_burst: 4, per_user_per_minute: 30,
                         per_user_burst: 12}}
)";
  std::vector<std::string> errors;
  auto cfg = load_yaml(yaml, errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_TRUE(validate(*cfg, errors)) << dump(errors);

  ASSERT_EQ(cfg->listen.size(), 2u);
  EXPECT_EQ(cfg->listen[0], ep("192.0.2.10:3478"));
  EXPECT_EQ(cfg->listen[1], ep("[2001:db8::1]:3479"));
  ASSERT_EQ(cfg->relay.ips.size(), 2u);
  EXPECT_TRUE(cfg->relay.ips[0].same_ip(ep("192.0.2.10")));
  EXPECT_TRUE(cfg->relay.ips[1].same_ip(ep("[2001:db8::1]")));
  EXPECT_FALSE(cfg->relay.ips_auto);
  EXPECT_EQ(cfg->relay.port_min, 40000);
  EXPECT_EQ(cfg->relay.port_max, 40100);
  EXPECT_EQ(cfg->auth.realm, "example.org");
  EXPECT_EQ(cfg->unauthenticated_per_source.rate, 7u);
  EXPECT_EQ(cfg->unauthenticated_per_source.burst, 9u);
  EXPECT_EQ(cfg->auth_failures.per_source_per_minute, 6u);
  EXPECT_EQ(cfg->auth_failures.per_source_burst, 4u);
  EXPECT_EQ(cfg->auth_failures.per_user_per_minute, 30u);
  EXPECT_EQ(cfg->auth_failures.per_user_burst, 12u);
  ASSERT_EQ(cfg->auth.users.size(), 2u);
  EXPECT_EQ(cfg->auth.users[0].name, "alice");
  EXPECT_EQ(cfg->auth.users[0].password, std::optional<std::string>("alice-pass-9f3"));
  EXPECT_EQ(cfg->auth.nonce_max_skew, 30u);
  EXPECT_FALSE(cfg->auth.users[0].key);
  EXPECT_EQ(cfg->auth.users[1].name, "bob");
  EXPECT_FALSE(cfg->auth.users[1].password);
  ASSERT_TRUE(cfg->auth.users[1].key);
  const auth::md5_key expected_key = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                                      0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};
  EXPECT_EQ(*cfg->auth.users[1].key, expected_key);
  EXPECT_EQ(cfg->auth.rest_secrets, (std::vector<std::string>{"rest-secret-one-0123", "rest-secret-two-0123"}));
  EXPECT_EQ(cfg->auth.nonce_keys, std::vector<std::string>{"0123456789abcdef0123"});
  EXPECT_EQ(cfg->lifetimes.nonce, 120u);
  EXPECT_FALSE(cfg->auth.offer_sha256);
  EXPECT_EQ(cfg->lifetimes.allocation_default, 300u);
  EXPECT_EQ(cfg->lifetimes.allocation_max, 1800u);
  EXPECT_EQ(cfg->lifetimes.permission, 200u);
  EXPECT_EQ(cfg->lifetimes.channel, 400u);
  ASSERT_EQ(cfg->peers.allow.size(), 1u);
  EXPECT_EQ(cfg->peers.allow[0].to_string(), "203.0.113.0/24");
  ASSERT_EQ(cfg->peers.deny.size(), 2u);
  EXPECT_TRUE(cfg->peers.deny[0].contains(ep("198.51.100.7:1")));
  EXPECT_TRUE(cfg->peers.deny[1].contains(ep("[2001:db8::99]:1")));
  EXPECT_EQ(cfg->threads, 4u);
  EXPECT_EQ(cfg->log_level, "debug");
  EXPECT_EQ(cfg->software, "my-turn 1.0");
  EXPECT_EQ(cfg->max_allocations_per_worker, 1000u);
  EXPECT_EQ(cfg->max_allocations_per_user, 3u);
  EXPECT_EQ(cfg->udp_socket_buffer, 65536u);
  EXPECT_EQ(cfg->udp_coalesce_us, 300u);
  EXPECT_FALSE(cfg->udp_gso);
  EXPECT_TRUE(cfg->udp_gro);
  EXPECT_EQ(cfg->udp_busy_poll_us, 0u);
}

TEST(SideConfig, LoadsEveryKey) {
  const std::string yaml = R"(
listen: ["127.0.0.1:3478"]
relay: {ips: ["127.0.0.1"]}
auth:
  secrets: ["default-secret-0123456789"]
  api_keys: ["default-api-key-0123"]
http:
  enabled: true
  listen: "[::1]:9700"
  tls: {cert: /etc/a.pem, key: /etc/a.key}
  max_ttl: 7200
  default_ttl: 600
  urls:
    stun: ["stun:turn.example.com:3478"]
    turn: ["turn:turn.example.com:3478?transport=udp", "turns:turn.example.com:443?transport=tcp"]
tenants:
  - id: acme
    secrets: ["acme-secret-one-0123", "acme-secret-two-0123"]
    api_keys: ["acme-key-0123456789"]
    users: [{name: bob, password: pw}, {name: carol, key: "00112233445566778899aabbccddeeff"}]
    quotas: {max_allocations: 100, max_allocations_per_user: 3, bandwidth: 250000}
  - id: beta
    secrets: ["beta-secret-three-0123"]
usage_log: /var/log/anyturn/usage.jsonl
)";
  std::vector<std::string> errors;
  const auto cfg = load_yaml(yaml, errors);
  ASSERT_TRUE(cfg.has_value()) << dump(errors);
  EXPECT_TRUE(validate(*cfg, errors)) << dump(errors);
  EXPECT_EQ(cfg->auth.api_keys, std::vector<std::string>{"default-api-key-0123"});
  EXPECT_EQ(cfg->http.listen, ep("[::1]:9700"));
  EXPECT_EQ(cfg->http.tls_cert, "/etc/a.pem");
  EXPECT_EQ(cfg->http.tls_key, "/etc/a.key");
  EXPECT_EQ(cfg->http.max_ttl, 7200u);
  EXPECT_EQ(cfg->http.default_ttl, 600u);
  EXPECT_EQ(cfg->http.stun_urls.size(), 1u);
  EXPECT_EQ(cfg->http.turn_urls.size(), 2u);
  ASSERT_EQ(cfg->tenants.size(), 2u);
  const tenant_config& acme = cfg->tenants[0];
  EXPECT_EQ(acme.id, "acme");
  EXPECT_EQ(acme.secrets, (std::vector<std::string>{"acme-secret-one-0123", "acme-secret-two-0123"}));
  EXPECT_EQ(acme.api_keys.size(), 1u);
  ASSERT_EQ(acme.users.size(), 2u);
  EXPECT_EQ(acme.users[0].name, "bob");
  EXPECT_TRUE(acme.users[1].key.has_value());
  EXPECT_EQ(acme.max_allocations, 100u);
  EXPECT_EQ(acme.max_allocations_per_user, 3u);
  EXPECT_EQ(acme.bandwidth, 250000u);
  EXPECT_EQ(cfg->tenants[1].id, "beta");
  EXPECT_EQ(cfg->usage_log, "/var/log/anyturn/usage.jsonl");
}

TEST(ConfigStreams, YamlKeysParse) {
  std::vector<std::string> errors;
  auto cfg = load_yaml(R"(
tls:
  listen: ["127.0.0.1:5349", "[::1]:5349"]
  cert: /etc/anyturn/chain.pem
  key: /etc/anyturn/key.pem
streams:
  tcp: false
  max_connections: 100
  max_connections_per_ip: 5
  tls_handshake_timeout: 3
  idle_timeout: 7
  max_message_size: 4096
  write_queue_size: 65536
  first_message_timeout_s: 4
  unauthenticated_memory: 8388608
state_dir: /var/lib/anyturn
auth:
  users: [{name: a, password: b}]
)",
                       errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_EQ(cfg->tls.listen, (std::vector{ep("127.0.0.1:5349"), ep("[::1]:5349")}));
  EXPECT_EQ(cfg->tls.cert, "/etc/anyturn/chain.pem");
  EXPECT_EQ(cfg->tls.key, "/etc/anyturn/key.pem");
  EXPECT_FALSE(cfg->streams.tcp);
  EXPECT_EQ(cfg->streams.max_connections, 100u);
  EXPECT_EQ(cfg->streams.max_connections_per_ip, 5u);
  EXPECT_EQ(cfg->streams.tls_handshake_timeout, 3u);
  EXPECT_EQ(cfg->streams.idle_timeout, 7u);
  EXPECT_EQ(cfg->streams.max_message_size, 4096u);
  EXPECT_EQ(cfg->streams.first_message_timeout_s, 4u);
  EXPECT_EQ(cfg->streams.unauthenticated_memory, 8388608u);
  EXPECT_EQ(cfg->streams.write_queue_size, 65536u);
  EXPECT_EQ(cfg->state_dir, "/var/lib/anyturn");
}

TEST(ConfigLoad, MissingKeysKeepDefaults) {
  std::vector<std::string> errors;
  auto cfg = load_yaml("realm: other\n", errors);
  ASSERT_TRUE(cfg) << dump(errors);
  const server_config d = defaults();
  EXPECT_EQ(cfg->auth.realm, "other");
  EXPECT_EQ(cfg->listen, d.listen);
  EXPECT_EQ(cfg->relay.port_min, d.relay.port_min);
  EXPECT_EQ(cfg->lifetimes.allocation_max, d.lifetimes.allocation_max);
  EXPECT_EQ(cfg->max_allocations_per_worker, d.max_allocations_per_worker);
  EXPECT_TRUE(cfg->relay.ips_auto);
}

TEST(ConfigLoad, EmptyDocumentIsTheDefaultsWithNoCredential) {
  std::vector<std::string> errors;
  auto cfg = load_yaml("", errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_TRUE(validate(*cfg, errors)) << dump(errors);  // the secret is generated at start
  EXPECT_TRUE(cfg->auth.rest_secrets.empty());
  EXPECT_TRUE(cfg->auth.users.empty());
}

TEST(ConfigLoad, NonceKeysListOrOneKeyButNotBoth) {
  std::vector<std::string> errors;
  auto cfg = load_yaml("auth: {nonce_keys: [new-nonce-key-0123456789, old-nonce-key-0123456789]}\n", errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_EQ(cfg->auth.nonce_keys,
            (std::vector<std::string>{"new-nonce-key-0123456789", "old-nonce-key-0123456789"}));
  EXPECT_FALSE(load_yaml("auth: {nonce_key: a-nonce-key-0123456789, nonce_keys: [b-nonce-key-0123456789]}\n",
                         errors));
  EXPECT_TRUE(has_error(errors, "auth: give either nonce_key (one key) or nonce_keys (a list), not both"))
      << dump(errors);
}

TEST(ConfigLoad, NullSectionsAreEmpty) {
  std::vector<std::string> errors;
  auto cfg = load_yaml("peers:\n  allow:\n  deny:\nlimits:\n", errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_TRUE(cfg->peers.allow.empty());
  EXPECT_TRUE(cfg->peers.deny.empty());
}

// ------------------------------------------------------------------ errors

TEST(ConfigLoad, UnknownKeysAreNamedByPath) {
  const std::string yaml = R"(
relm: x
relay: {prots: "1-2"}
auth:
  users: [{name: a, password: b}, {name: c, passwrd: d}]
lifetimes: {allocation: 10}
)";
  std::vector<std::string> errors;
  EXPECT_FALSE(load_yaml(yaml, errors));
  EXPECT_TRUE(has_error(errors, "relm: unknown key")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "relay.prots: unknown key (expected one of: ips, external_ips, ports, tcp)")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "auth.users[1].passwrd: unknown key")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "lifetimes.allocation: unknown key")) << dump(errors);
  EXPECT_EQ(errors.size(), 4u) << dump(errors);
}

TEST(ConfigLoad, AbuseLimitKeysAreCheckedByPath) {
  const std::string yaml = R"(
limits:
  unauthenticated_per_source: {rate: 1, brust: 2}
  auth_failures: {per_user_per_minute: -1}
)";
  std::vector<std::string> errors;
  EXPECT_FALSE(load_yaml(yaml, errors));
  EXPECT_TRUE(has_error(errors, "limits.unauthenticated_per_source.brust: unknown key (expected one of: rate, burst)"))
      << dump(errors);
  EXPECT_TRUE(has_error(errors, "limits.auth_failures.per_user_per_minute: expected an integer in 0..4294967295, got '-1'"))
      << dump(errors);
}

TEST(ConfigLoad, DuplicateKeyIsAnError) {
  std::vector<std::string> errors;
  EXPECT_FALSE(load_yaml("realm: a\nrealm: b\n", errors));
  EXPECT_TRUE(has_error(errors, "realm: duplicate key")) << dump(errors);
}

TEST(ConfigLoad, TypeErrorsNameKeyAndExpectation) {
  const std::string yaml = R"(
listen: "0.0.0.0:3478"
realm: [a, b]
threads: many
lifetimes: {permission: -1, channel: 1.5, allocation_max: 4294967296}
auth: {offer_sha256: maybe, secrets: {a: b}, nonce_key: ~}
limits: {udp_socket_buffer: "4M", udp_gso: sometimes, udp_gro: 1}
software: {}
relay: []
)";
  std::vector<std::string> errors;
  EXPECT_FALSE(load_yaml(yaml, errors));
  EXPECT_TRUE(has_error(errors, "listen: expected a list of strings or maps {address, proxy_protocol, trusted}, got '0.0.0.0:3478'")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "realm: expected a string, got a list")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "threads: expected an integer in 0..4294967295, got 'many'")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "lifetimes.permission: expected an integer")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "lifetimes.channel: expected an integer")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "lifetimes.allocation_max: expected an integer in 0..4294967295, got '4294967296'")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "auth.offer_sha256: expected true or false, got 'maybe'")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "auth.secrets: expected a list of strings, got a map")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "auth.nonce_key: expected a string, got null")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "limits.udp_socket_buffer: expected an integer")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "limits.udp_gso: expected true or false, got 'sometimes'")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "limits.udp_gro: expected true or false, got '1'")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "software: expected a string, got a map")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "relay: expected a map, got a list")) << dump(errors);
  EXPECT_EQ(errors.size(), 14u) << dump(errors);
}

TEST(ConfigLoad, TopLevelMustBeAMap) {
  std::vector<std::string> errors;
  EXPECT_FALSE(load_yaml("- a\n- b\n", errors));
  EXPECT_TRUE(has_error(errors, "top level: expected a map, got a list")) << dump(errors);
}

TEST(ConfigLoad, BadEndpoints) {
  const std::string yaml = R"(
listen: ["0.0.0.0", "[::1]3478", "host.example:3478", "1.2.3.4:70000"]
relay: {ips: ["1.2.3.4:5", "not-an-ip", "auto", "auto"]}
)";
  std::vector<std::string> errors;
  EXPECT_FALSE(load_yaml(yaml, errors));
  EXPECT_TRUE(has_error(errors, "listen[0]: expected ADDR:PORT (IPv6 as [ADDR]:PORT), got '0.0.0.0'")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "listen[1]: expected ADDR:PORT")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "listen[2]: expected ADDR:PORT")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "listen[3]: expected ADDR:PORT")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "relay.ips[0]: expected 'auto' or an IP address without a port, got '1.2.3.4:5'")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "relay.ips[1]: expected 'auto'")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "relay.ips[3]: 'auto' given twice")) << dump(errors);
  EXPECT_EQ(errors.size(), 7u) << dump(errors);
}

TEST(ConfigLoad, BadCidrs) {
  std::vector<std::string> errors;
  EXPECT_FALSE(load_yaml("peers: {allow: [\"10.0.0.0/8\", \"10.0.0.0/33\"], deny: [\"nope\"]}\n", errors));
  EXPECT_TRUE(has_error(errors, "peers.allow[1]: expected an address or CIDR")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "got '10.0.0.0/33'")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "peers.deny[0]: expected an address or CIDR")) << dump(errors);
  EXPECT_EQ(errors.size(), 2u) << dump(errors);
}

TEST(ConfigLoad, BadPortRanges) {
  for (const char* bad : {"5-1", "0-10", "1-70000", "abc", "100", "-5", "1-2-3", "a-b", " 1-2"}) {
    std::vector<std::string> errors;
    EXPECT_FALSE(load_yaml(std::string("relay: {ports: \"") + bad + "\"}\n", errors)) << bad;
    ASSERT_EQ(errors.size(), 1u) << bad << dump(errors);
    EXPECT_EQ(errors[0], std::string("relay.ports: expected LOW-HIGH with 1 <= LOW <= HIGH <= 65535, got '") +
                             bad + "'");
  }
}

TEST(ConfigLoad, BadUserKeyDoesNotEchoTheKey) {
  std::vector<std::string> errors;
  EXPECT_FALSE(load_yaml("auth: {users: [{name: a, key: \"zz112233445566778899aabbccddeeff\"}, "
                         "{name: b, key: \"0011\"}, {password: x}, \"carol\"]}\n",
                         errors));
  EXPECT_TRUE(has_error(errors, "auth.users[0].key: expected 32 hex characters (MD5 of name:realm:password), got a non-hex character")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "auth.users[1].key: expected 32 hex characters (MD5 of name:realm:password), got 4 characters")) << dump(errors);
  EXPECT_FALSE(has_error(errors, "zz1122")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "auth.users[2]: missing 'name'")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "auth.users[3]: expected a map")) << dump(errors);
  EXPECT_EQ(errors.size(), 4u) << dump(errors);
}

TEST(SideConfig, LoaderErrorsNameTheirPath) {
  const std::string yaml = R"(
http:
  listen: "nowhere"
  urls: {stun: "not a list", web: []}
  colour: blue
tenants:
  - secrets: ["x"]
  - id: b
    quotas: {bandwidth: "2Mbit"}
  - "just a string"
)";
  std::vector<std::string> errors;
  EXPECT_FALSE(load_yaml(yaml, errors));
  EXPECT_TRUE(has_error(errors, "http.listen: expected ADDR:PORT")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "http.urls.stun: expected a list of strings")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "http.urls.web: unknown key")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "http.colour: unknown key")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "tenants[0]: missing 'id'")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "tenants[1].quotas.bandwidth: expected an integer")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "tenants[2]: expected a map")) << dump(errors);
}

TEST(ConfigStreams, YamlErrorsNameTheirKeys) {
  std::vector<std::string> errors;
  EXPECT_FALSE(load_yaml("tls:\n  listn: []\nstreams:\n  tcp: maybe\n  idle_timeout: -1\n", errors));
  EXPECT_TRUE(has_error(errors, "tls.listn: unknown key")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "streams.tcp: expected true or false")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "streams.idle_timeout: expected an integer")) << dump(errors);
}

TEST(ConfigLoad, SyntaxErrorReportsLineAndColumn) {
  std::vector<std::string> errors;
  EXPECT_NO_THROW({ EXPECT_FALSE(load_yaml("realm: a\nlisten: [\"0.0.0.0:3478\"\nthreads: 1\n", errors)); });
  ASSERT_EQ(errors.size(), 1u) << dump(errors);
  EXPECT_TRUE(errors[0].starts_with("yaml: line ")) << errors[0];
  EXPECT_TRUE(has_error(errors, ", column ")) << dump(errors);

  errors.clear();
  EXPECT_FALSE(load_yaml("a: b\n  c: d\n", errors));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_TRUE(errors[0].starts_with("yaml: line 2, column")) << errors[0];
}

TEST(ConfigLoad, NeverThrowsOnGarbage) {
  for (const char* text : {"{{{{", "]", "\t- x", "&a [*a]", "!!binary 1", "key: *undefined",
                           "realm: \"unterminated", "? [a]\n: b\n"}) {
    std::vector<std::string> errors;
    EXPECT_NO_THROW({
      auto cfg = load_yaml(text, errors);
      EXPECT_FALSE(cfg) << text;
    });
    EXPECT_FALSE(errors.empty()) << text;
  }
}

TEST(ConfigLoad, ReportsManyErrorsAtOnce) {
  const std::string yaml = R"(
listen: ["bad"]
relay: {ports: "5-1", ips: ["x"], extra: 1}
threads: -3
peers: {allow: ["1.2.3.4/99"]}
bogus: true
)";
  std::vector<std::string> errors;
  EXPECT_FALSE(load_yaml(yaml, errors));
  EXPECT_TRUE(has_error(errors, "listen[0]:")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "relay.ports: expected LOW-HIGH with 1 <= LOW <= HIGH <= 65535, got '5-1'")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "relay.ips[0]:")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "relay.extra: unknown key")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "threads:")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "peers.allow[0]:")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "bogus: unknown key")) << dump(errors);
  EXPECT_EQ(errors.size(), 7u) << dump(errors);
}

TEST(ConfigLoad, AppendsToExistingErrors) {
  std::vector<std::string> errors = {"earlier"};
  EXPECT_FALSE(load_yaml("nope: 1\n", errors));
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0], "earlier");
}

// ------------------------------------------------------------------- files

TEST(ConfigLoad, MissingFileNamesThePath) {
  std::vector<std::string> errors;
  EXPECT_FALSE(load_file("/nonexistent/anyturn.yaml", errors));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_TRUE(errors[0].starts_with("/nonexistent/anyturn.yaml: cannot open")) << errors[0];
}

TEST(ConfigLoad, LoadFileReadsFromDisk) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("anyturn_config_test_" + std::to_string(::getpid()) + ".yaml");
  {
    std::ofstream out(path);
    out << "realm: from-disk\nauth: {secrets: [from-disk-secret-0123]}\n";
  }
  std::vector<std::string> errors;
  auto cfg = load_file(path.string(), errors);
  std::filesystem::remove(path);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_EQ(cfg->auth.realm, "from-disk");
  EXPECT_TRUE(validate(*cfg, errors)) << dump(errors);
}

TEST(ConfigLoad, AllocationLimitsAndTenantOverrides) {
  const char* yaml = R"(
auth: {secrets: [default-secret-0123456789]}
limits:
  max_allocations: 700
  allocation: {max_peers: 16, max_channels: 8, permissions_per_second: 5, permission_burst: 10,
               packets_per_second: 3000, bytes_per_second: 1000000}
tenants:
  - id: acme
    secrets: [tenant-a-secret-0123456789]
    limits: {allocation: {max_peers: 200, bytes_per_second: 0}}
  - id: beta
    secrets: [tenant-b-secret-0123456789]
)";
  std::vector<std::string> errors;
  const auto cfg = load_yaml(yaml, errors);
  ASSERT_TRUE(cfg.has_value()) << dump(errors);
  EXPECT_TRUE(validate(*cfg, errors)) << dump(errors);
  EXPECT_EQ(cfg->max_allocations, 700u);
  const allocation_limits_config& g = cfg->allocation_limits;
  EXPECT_EQ(g.max_peers, 16u);
  EXPECT_EQ(g.max_channels, 8u);
  EXPECT_EQ(g.permissions_per_second, 5u);
  EXPECT_EQ(g.permission_burst, 10u);
  EXPECT_EQ(g.packets_per_second, 3000u);
  EXPECT_EQ(g.bytes_per_second, 1000000u);
  ASSERT_EQ(cfg->tenants.size(), 2u);
  const auto acme = cfg->tenants[0].allocation_limits.over(g);
  EXPECT_EQ(acme.max_peers, 200u);
  EXPECT_EQ(acme.bytes_per_second, 0u);
  EXPECT_EQ(acme.max_channels, 8u) << "unset keys inherit limits.allocation";
  EXPECT_EQ(acme.packets_per_second, 3000u);
  const auto beta = cfg->tenants[1].allocation_limits.over(g);
  EXPECT_EQ(beta.max_peers, 16u);

  errors.clear();
  EXPECT_FALSE(load_yaml("limits: {allocation: {max_peer: 3}}\ntenants: [{id: x, secrets: [s], "
                         "limits: {allocation: {max_peers: lots}}}]",
                         errors));
  EXPECT_TRUE(has_error(errors, "limits.allocation.max_peer: unknown key")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "tenants[0].limits.allocation.max_peers: expected an integer")) << dump(errors);
}


// ------------------------------------------------------------------ fleet

TEST(FleetConfig, DefaultsAreASingleNode) {
  std::vector<std::string> errors;
  const auto cfg = load_yaml("{}", errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_TRUE(cfg->relay.external_ips.empty());
  EXPECT_TRUE(cfg->fleet.anycast_ips.empty());
  EXPECT_TRUE(cfg->fleet.unicast_ips.empty());
  EXPECT_TRUE(cfg->fleet.alternate_domain.empty());
  EXPECT_TRUE(cfg->fleet.node_id.empty());
  EXPECT_TRUE(cfg->fleet.redis.empty());
  EXPECT_FALSE(cfg->fleet.drain_alternate.has_value());
  EXPECT_EQ(cfg->fleet.drain_timeout, 3600u);
  EXPECT_TRUE(cfg->http.admin_keys.empty());
  EXPECT_TRUE(cfg->auth.enforce_expiry);
}

TEST(FleetConfig, LoadsEveryKey) {
  const std::string yaml = R"(
listen: ["0.0.0.0:3478"]
relay:
  ips: ["10.0.0.7", "fd00::7"]
  external_ips: ["203.0.113.7/10.0.0.7", "2001:db8::7"]
auth:
  users: [{name: alice, password: alice-pass-4bd2}]
  enforce_expiry: false
http:
  admin_keys: ["admin-key-77e1c0d9b8a7f6e5", "admin-key-2-0a9b8c7d6e5f"]
fleet:
  anycast_ips: ["198.51.100.1", "2001:db8:a::1"]
  unicast_ips: ["192.0.2.10", "[2001:db8::10]"]
  alternate_domain: turn-1.example.com
  node_id: eu-1
  redis: "rediss://:a7f3c9e1d2b4@redis.internal:6380/1"
  drain_alternate: "192.0.2.11:3478"
  drain_timeout: 900
)";
  std::vector<std::string> errors;
  const auto cfg = load_yaml(yaml, errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_TRUE(validate(*cfg, errors)) << dump(errors);
  ASSERT_EQ(cfg->relay.external_ips.size(), 2u);
  EXPECT_EQ(cfg->relay.external_ips[0].public_ip, ep("203.0.113.7"));
  EXPECT_EQ(cfg->relay.external_ips[0].private_ip, std::optional(ep("10.0.0.7")));
  EXPECT_EQ(cfg->relay.external_ips[1].public_ip, ep("[2001:db8::7]"));
  EXPECT_FALSE(cfg->relay.external_ips[1].private_ip.has_value());
  EXPECT_FALSE(cfg->auth.enforce_expiry);
  EXPECT_EQ(cfg->http.admin_keys,
            (std::vector<std::string>{"admin-key-77e1c0d9b8a7f6e5", "admin-key-2-0a9b8c7d6e5f"}));
  EXPECT_EQ(cfg->fleet.anycast_ips, (std::vector<stun::endpoint>{ep("198.51.100.1"), ep("[2001:db8:a::1]")}));
  EXPECT_EQ(cfg->fleet.unicast_ips, (std::vector<stun::endpoint>{ep("192.0.2.10"), ep("[2001:db8::10]")}));
  EXPECT_EQ(cfg->fleet.alternate_domain, "turn-1.example.com");
  EXPECT_EQ(cfg->fleet.node_id, "eu-1");
  EXPECT_EQ(cfg->fleet.redis, "rediss://:a7f3c9e1d2b4@redis.internal:6380/1");
  EXPECT_EQ(cfg->fleet.drain_alternate, std::optional(ep("192.0.2.11:3478")));
  EXPECT_EQ(cfg->fleet.drain_timeout, 900u);
}

TEST(FleetConfig, LoaderErrorsNameTheirPath) {
  const std::string yaml = R"(
relay:
  external_ips: ["203.0.113.7/", "203.0.113.8:3478", "a/b/c", ["x"]]
auth:
  enforce_expiry: sometimes
http:
  admin_keys: "one-key-not-a-list"
fleet:
  anycast_ips: ["198.51.100.1:3478"]
  unicast_ips: ["host.example"]
  drain_alternate: "192.0.2.11"
  drain_timeout: "1h"
  region: eu
)";
  std::vector<std::string> errors;
  EXPECT_FALSE(load_yaml(yaml, errors));
  const std::string shape = "expected PUBLIC or PUBLIC/PRIVATE (IP addresses without ports";
  EXPECT_TRUE(has_error(errors, "relay.external_ips[0]: " + shape)) << dump(errors);
  EXPECT_TRUE(has_error(errors, "relay.external_ips[1]: " + shape)) << dump(errors);
  EXPECT_TRUE(has_error(errors, "relay.external_ips[2]: " + shape)) << dump(errors);
  EXPECT_TRUE(has_error(errors, "relay.external_ips[3]: expected a string")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "auth.enforce_expiry: expected true or false, got 'sometimes'")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "http.admin_keys: expected a list of strings")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "fleet.anycast_ips[0]: expected an IP address without a port, got "
                                "'198.51.100.1:3478'")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "fleet.unicast_ips[0]: expected an IP address without a port")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "fleet.drain_alternate: expected ADDR:PORT")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "fleet.drain_timeout: expected an integer")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "fleet.region: unknown key (expected one of: anycast_ips, unicast_ips, "
                                "alternate_domain, node_id, redis, drain_alternate, drain_timeout)"))
      << dump(errors);
  EXPECT_EQ(errors.size(), 11u) << dump(errors);
}

// ----------------------------------------------------- PROXY protocol listeners

TEST(ConfigLoad, ListenEntriesMayBeMapsWithProxyProtocol) {
  std::vector<std::string> errors;
  const auto cfg = load_yaml(R"(
listen:
  - "127.0.0.1:3478"
  - address: "127.0.0.1:3479"
    proxy_protocol: true
    trusted: ["10.0.0.0/8", "2001:db8::/32"]
tls:
  listen:
    - address: "127.0.0.1:5349"
      proxy_protocol: true
      trusted: ["192.0.2.10"]
    - "127.0.0.1:5350"
)", errors);
  ASSERT_TRUE(cfg) << dump(errors);
  ASSERT_EQ(cfg->listen.size(), 2u);
  EXPECT_EQ(cfg->listen[1], ep("127.0.0.1:3479"));
  ASSERT_EQ(cfg->listen_proxy.size(), 2u);
  EXPECT_FALSE(cfg->listen_proxy[0].enabled);
  EXPECT_TRUE(cfg->listen_proxy[1].enabled);
  ASSERT_EQ(cfg->listen_proxy[1].trusted.size(), 2u);
  EXPECT_EQ(cfg->listen_proxy[1].trusted[0].to_string(), "10.0.0.0/8");
  ASSERT_EQ(cfg->tls.listen.size(), 2u);
  ASSERT_EQ(cfg->tls.listen_proxy.size(), 1u);  // trailing plain entries need none
  EXPECT_TRUE(cfg->tls.listen_proxy[0].enabled);
  EXPECT_EQ(cfg->tls.listen_proxy[0].trusted[0].to_string(), "192.0.2.10/32");
  EXPECT_TRUE(validate(*cfg, errors)) << dump(errors);
}

TEST(ConfigLoad, PlainListenHasNoProxyProtocol) {
  std::vector<std::string> errors;
  const auto cfg = load_yaml("listen: [\"127.0.0.1:3478\"]\n", errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_TRUE(cfg->listen_proxy.empty());
}

TEST(ConfigLoad, ListenMapErrorsNameTheirKeyPath) {
  std::vector<std::string> errors;
  const auto cfg = load_yaml(R"(
listen:
  - proxy_protocol: true
  - address: "127.0.0.1:3479"
    proxy_protocol: maybe
    trusted: ["10.0.0.0/33"]
  - address: "127.0.0.1:3480"
    proxy: true
)", errors);
  EXPECT_FALSE(cfg);
  EXPECT_TRUE(has_error(errors, "listen[0].address: missing")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "listen[1].proxy_protocol")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "listen[1].trusted[0]")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "listen[2].proxy: unknown key")) << dump(errors);
}

}  // namespace
}  // namespace anyturn::config

namespace anyturn::config {
namespace {

// log.format (docs/logging.md): text by default, json when set; an unknown
// key under log is an error naming its path.
TEST(LogConfig, FormatLoadsAndDefaultsToText) {
  std::vector<std::string> errors;
  auto cfg = load_yaml("realm: x\n", errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_EQ(cfg->log_format, "text");
  cfg = load_yaml("log:\n  format: json\n", errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_EQ(cfg->log_format, "json");
  EXPECT_FALSE(load_yaml("log:\n  formt: json\n", errors));
  EXPECT_TRUE(has_error(errors, "log.formt: unknown key (expected one of: format)")) << dump(errors);
  errors.clear();
  EXPECT_FALSE(load_yaml("log:\n  format: [json]\n", errors));
  EXPECT_TRUE(has_error(errors, "log.format")) << dump(errors);
}

TEST(LogConfig, ExampleConfigDocumentsTheFormat) {
  std::vector<std::string> errors;
  const auto cfg = load_file(example_path, errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_EQ(cfg->log_format, "text");
}

}  // namespace
}  // namespace anyturn::config

// ----------------------------------------------------- reload.*
namespace anyturn::config {
namespace {

TEST(ReloadConfig, RevokeRemovedDefaultsToTrueAndLoads) {
  std::vector<std::string> errors;
  EXPECT_TRUE(defaults().reload.revoke_removed);
  auto example = load_file(example_path, errors);
  ASSERT_TRUE(example) << dump(errors);
  EXPECT_TRUE(example->reload.revoke_removed);
  auto off = load_yaml("reload:\n  revoke_removed: false\n", errors);
  ASSERT_TRUE(off) << dump(errors);
  EXPECT_FALSE(off->reload.revoke_removed);
}

TEST(ReloadConfig, BadValueAndUnknownKeyNameTheirPath) {
  std::vector<std::string> errors;
  EXPECT_FALSE(load_yaml("reload:\n  revoke_removed: maybe\n", errors));
  EXPECT_TRUE(has_error(errors, "reload.revoke_removed")) << dump(errors);
  errors.clear();
  EXPECT_FALSE(load_yaml("reload:\n  revoke: true\n", errors));
  EXPECT_TRUE(has_error(errors, "reload.revoke")) << dump(errors);
}

}  // namespace
}  // namespace anyturn::config

namespace anyturn::config {
namespace {

TEST(TestPage, LoadsOffByDefaultAndNamesItsPath) {
  std::vector<std::string> errors;
  auto cfg = load_yaml("listen: [\"127.0.0.1:3478\"]\nrelay: {ips: [\"127.0.0.1\"]}\n", errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_FALSE(cfg->http.test_page);
  cfg = load_yaml("listen: [\"127.0.0.1:3478\"]\nrelay: {ips: [\"127.0.0.1\"]}\nhttp: {test_page: true}\n", errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_TRUE(cfg->http.test_page);
  EXPECT_TRUE(validate(*cfg, errors)) << dump(errors);
  errors.clear();
  EXPECT_FALSE(load_yaml("http: {test_page: maybe}\n", errors));
  EXPECT_TRUE(has_error(errors, "http.test_page")) << dump(errors);
  // The shipped example leaves it off.
  errors.clear();
  const auto example = load_file(example_path, errors);
  ASSERT_TRUE(example) << dump(errors);
  EXPECT_FALSE(example->http.test_page);
}

}  // namespace
}  // namespace anyturn::config

namespace anyturn::config {
namespace {

// http.probe_* (GET /probe, docs/probe.md).
TEST(ProbeConfig, LoadsEveryKeyAndDefaults) {
  std::vector<std::string> errors;
  const auto plain = load_yaml("listen: [\"127.0.0.1:3478\"]\n", errors);
  ASSERT_TRUE(plain) << dump(errors);
  EXPECT_EQ(plain->http.probe.max_concurrent, 2u);
  EXPECT_EQ(plain->http.probe.max_count, 50u);
  EXPECT_EQ(plain->http.probe.timeout, 5u);
  EXPECT_TRUE(plain->http.probe.targets.empty());

  const std::string yaml = R"(
listen: ["127.0.0.1:3478"]
auth:
  users: [{name: alice, password: alice-pass-4bd2}]
http:
  probe_max_concurrent: 3
  probe_max_count: 20
  probe_timeout: 8
  probe_ca: /etc/ssl/probe-ca.pem
  probe_targets: ["turn-2.example.com:3478", "[2001:db8::2]:5349"]
  probe_credentials:
    - {target: "turn-2.example.com:3478", username: probe, password: probe-pass-61ac}
    - {target: "[2001:db8::2]:5349", secret: other-rest-secret-0c1d}
)";
  const auto cfg = load_yaml(yaml, errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_TRUE(validate(*cfg, errors)) << dump(errors);
  const http_probe_config& p = cfg->http.probe;
  EXPECT_EQ(p.max_concurrent, 3u);
  EXPECT_EQ(p.max_count, 20u);
  EXPECT_EQ(p.timeout, 8u);
  EXPECT_EQ(p.ca, "/etc/ssl/probe-ca.pem");
  EXPECT_EQ(p.targets, (std::vector<std::string>{"turn-2.example.com:3478", "[2001:db8::2]:5349"}));
  ASSERT_EQ(p.credentials.size(), 2u);
  EXPECT_EQ(p.credentials[0].target, "turn-2.example.com:3478");
  EXPECT_EQ(p.credentials[0].username, "probe");
  EXPECT_EQ(p.credentials[0].password, "probe-pass-61ac");
  EXPECT_EQ(p.credentials[1].secret, "other-rest-secret-0c1d");
}

TEST(ProbeConfig, LoaderErrorsNameTheirPath) {
  const std::string yaml = R"(
http:
  probe_max_count: many
  probe_targets: "one:3478"
  probe_credentials: [{target: "a:1", user: x}, "b:2"]
)";
  std::vector<std::string> errors;
  EXPECT_FALSE(load_yaml(yaml, errors));
  EXPECT_TRUE(has_error(errors, "http.probe_max_count: expected an integer")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "http.probe_targets: expected a list of strings")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "http.probe_credentials[0].user: unknown key")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "http.probe_credentials[1]: expected a map")) << dump(errors);
}

TEST(ConfigDtls, DtlsSectionLoadsAndRejectsWhatItCannotUse) {
  std::vector<std::string> errors;
  auto cfg = load_yaml(R"(
dtls:
  listen: ["127.0.0.1:5350", "[::1]:5350"]
  handshake_timeout: 7
  idle_timeout: 120
)", errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_EQ(cfg->dtls.listen, (std::vector{ep("127.0.0.1:5350"), ep("[::1]:5350")}));
  EXPECT_EQ(cfg->dtls.handshake_timeout, 7u);
  EXPECT_EQ(cfg->dtls.idle_timeout, 120u);
  EXPECT_EQ(defaults().dtls.idle_timeout, 900u);
  EXPECT_TRUE(defaults().dtls.listen.empty());

  errors.clear();
  EXPECT_FALSE(load_yaml("dtls: {listen: [{address: \"127.0.0.1:5350\", proxy_protocol: true, trusted: [10.0.0.0/8]}]}\n",
                         errors));
  EXPECT_TRUE(has_error(errors, "dtls.listen: proxy_protocol is for TCP listeners")) << dump(errors);
  errors.clear();
  EXPECT_FALSE(load_yaml("dtls: {cookie_secret: x}\n", errors));
  EXPECT_TRUE(has_error(errors, "dtls.cookie_secret")) << dump(errors);
}

}  // namespace
}  // namespace anyturn::config
