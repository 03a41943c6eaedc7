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

// A config that validates: the defaults plus one user.
server_config valid_config() {
  server_config cfg = defaults();
  cfg.relay.ips = {stun::endpoint::v4(0xC0000201, 0)};  // 192.0.2.1
  cfg.relay.ips_auto = false;
  cfg.auth.users.push_back({"alice", std::string("secret"), std::nullopt});
  return cfg;
}

// ---------------------------------------------------------------- loading

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
  ASSERT_EQ(cfg->auth.users.size(), 1u);
  EXPECT_EQ(cfg->auth.users[0].name, "demo");
  EXPECT_EQ(cfg->auth.users[0].password, std::optional<std::string>("demo-password"));
  EXPECT_EQ(cfg->auth.rest_secrets.size(), 1u);
  EXPECT_TRUE(cfg->peers.allow.empty());
  EXPECT_EQ(cfg->log_level, "info");
}

TEST(ConfigLoad, MapsEveryKey) {
  const std::string yaml = R"(
listen: ["192.0.2.10:3478", "[2001:db8::1]:3479"]
relay:
  ips: ["192.0.2.10", "2001:db8::1"]
  ports: "40000-40100"
realm: example.org
auth:
  users:
    - {name: alice, password: secret}
    - {name: bob, key: "00112233445566778899AABBCCDDEEFF"}
  secrets: ["s1", "s2"]
  nonce_key: "0123456789abcdef0123"
  nonce_lifetime: 120
  offer_sha256: false
lifetimes: {allocation_default: 300, allocation_max: 1800, permission: 200, channel: 400}
peers: {allow: ["203.0.113.0/24"], deny: ["198.51.100.0/24", "2001:db8::/32"]}
threads: 4
log_level: debug
software: "my-turn 1.0"
limits: {max_allocations_per_worker: 1000, max_allocations_per_user: 3, udp_socket_buffer: 65536,
         udp_coalesce_us: 300, udp_gso: false, udp_busy_poll_us: 0}
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
  ASSERT_EQ(cfg->auth.users.size(), 2u);
  EXPECT_EQ(cfg->auth.users[0].name, "alice");
  EXPECT_EQ(cfg->auth.users[0].password, std::optional<std::string>("secret"));
  EXPECT_FALSE(cfg->auth.users[0].key);
  EXPECT_EQ(cfg->auth.users[1].name, "bob");
  EXPECT_FALSE(cfg->auth.users[1].password);
  ASSERT_TRUE(cfg->auth.users[1].key);
  const auth::md5_key expected_key = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                                      0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};
  EXPECT_EQ(*cfg->auth.users[1].key, expected_key);
  EXPECT_EQ(cfg->auth.rest_secrets, (std::vector<std::string>{"s1", "s2"}));
  EXPECT_EQ(cfg->auth.nonce_key, "0123456789abcdef0123");
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
  EXPECT_EQ(cfg->udp_busy_poll_us, 0u);
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

TEST(ConfigLoad, EmptyDocumentIsTheDefaultsWhichLackCredentials) {
  std::vector<std::string> errors;
  auto cfg = load_yaml("", errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_FALSE(validate(*cfg, errors));
  EXPECT_TRUE(has_error(errors, "auth: no credentials")) << dump(errors);
  EXPECT_EQ(errors.size(), 1u) << dump(errors);
}

TEST(ConfigLoad, NullSectionsAreEmpty) {
  std::vector<std::string> errors;
  auto cfg = load_yaml("peers:\n  allow:\n  deny:\nlimits:\n", errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_TRUE(cfg->peers.allow.empty());
  EXPECT_TRUE(cfg->peers.deny.empty());
}

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
  EXPECT_TRUE(has_error(errors, "relay.prots: unknown key (expected one of: ips, ports)")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "auth.users[1].passwrd: unknown key")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "lifetimes.allocation: unknown key")) << dump(errors);
  EXPECT_EQ(errors.size(), 4u) << dump(errors);
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
limits: {udp_socket_buffer: "4M", udp_gso: sometimes}
software: {}
relay: []
)";
  std::vector<std::string> errors;
  EXPECT_FALSE(load_yaml(yaml, errors));
  EXPECT_TRUE(has_error(errors, "listen: expected a list of strings, got '0.0.0.0:3478'")) << dump(errors);
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
  EXPECT_TRUE(has_error(errors, "software: expected a string, got a map")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "relay: expected a map, got a list")) << dump(errors);
  EXPECT_EQ(errors.size(), 13u) << dump(errors);
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
    out << "realm: from-disk\nauth: {secrets: [s]}\n";
  }
  std::vector<std::string> errors;
  auto cfg = load_file(path.string(), errors);
  std::filesystem::remove(path);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_EQ(cfg->auth.realm, "from-disk");
  EXPECT_TRUE(validate(*cfg, errors)) << dump(errors);
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

// -------------------------------------------------------------- validate

TEST(ConfigValidate, ValidConfigPasses) {
  std::vector<std::string> errors;
  EXPECT_TRUE(validate(valid_config(), errors)) << dump(errors);
  EXPECT_TRUE(errors.empty());
}

TEST(ConfigValidate, DefaultsNeedOnlyCredentials) {
  server_config cfg = defaults();
  ASSERT_EQ(cfg.listen.size(), 1u);
  EXPECT_EQ(cfg.listen[0], ep("0.0.0.0:3478"));
  ASSERT_EQ(cfg.relay.ips.size(), 1u);
  EXPECT_TRUE(cfg.relay.ips[0].is_v4());
  EXPECT_TRUE(cfg.relay.ips_auto);
  EXPECT_EQ(cfg.auth.realm, "anyturn");
  cfg.auth.rest_secrets.push_back("s");
  std::vector<std::string> errors;
  EXPECT_TRUE(validate(cfg, errors)) << dump(errors);
}

TEST(ConfigValidate, Listeners) {
  server_config cfg = valid_config();
  cfg.listen.clear();
  std::vector<std::string> errors;
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "listen: at least one listener")) << dump(errors);

  cfg.listen = {ep("0.0.0.0:3478"), ep("0.0.0.0:0"), ep("0.0.0.0:3478")};
  errors.clear();
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "listen[1]: port must not be 0")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "listen[2]: 0.0.0.0:3478 is already listed as listen[0]")) << dump(errors);
  EXPECT_EQ(errors.size(), 2u) << dump(errors);
}

TEST(ConfigValidate, RelayAddresses) {
  server_config cfg = valid_config();
  cfg.relay.ips.clear();
  std::vector<std::string> errors;
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "relay.ips: at least one relay address")) << dump(errors);

  // Several addresses per family are fine: each adds a whole port range.
  cfg.relay.ips = {ep("192.0.2.1"), ep("192.0.2.2"), ep("[2001:db8::1]"), ep("[2001:db8::2]")};
  errors.clear();
  EXPECT_TRUE(validate(cfg, errors)) << dump(errors);

  cfg.relay.ips = {ep("192.0.2.1"), ep("192.0.2.1"), ep("[2001:db8::1]"), ep("[::]")};
  errors.clear();
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "relay.ips[1]: 192.0.2.1 is listed twice")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "relay.ips[3]: :: is the unspecified address")) << dump(errors);
  EXPECT_EQ(errors.size(), 2u) << dump(errors);

  cfg.relay.ips = {ep("0.0.0.0"), ep("[2001:db8::1]")};
  errors.clear();
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "relay.ips[0]: 0.0.0.0 is the unspecified address")) << dump(errors);
  EXPECT_EQ(errors.size(), 1u) << dump(errors);
}

TEST(ConfigValidate, PortRange) {
  server_config cfg = valid_config();
  cfg.relay.port_min = 5000;
  cfg.relay.port_max = 5000;
  std::vector<std::string> errors;
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "relay.ports: the range needs at least 2 ports, got '5000-5000'")) << dump(errors);

  cfg.relay.port_min = 6000;
  errors.clear();
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "relay.ports: expected LOW-HIGH with 1 <= LOW <= HIGH <= 65535, got '6000-5000'")) << dump(errors);

  cfg.relay.port_min = 0;
  cfg.relay.port_max = 10;
  errors.clear();
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "relay.ports:")) << dump(errors);

  cfg.relay.port_min = 5000;
  cfg.relay.port_max = 5001;
  errors.clear();
  EXPECT_TRUE(validate(cfg, errors)) << dump(errors);
}

TEST(ConfigValidate, Lifetimes) {
  server_config cfg = valid_config();
  cfg.lifetimes = {.allocation_default = 4000, .allocation_max = 3600, .permission = 0, .channel = 0, .nonce = 0};
  std::vector<std::string> errors;
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "lifetimes.allocation_default: 4000 exceeds lifetimes.allocation_max (3600)")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "lifetimes.permission: must be greater than 0")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "lifetimes.channel: must be greater than 0")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "auth.nonce_lifetime: must be greater than 0")) << dump(errors);
  EXPECT_EQ(errors.size(), 4u) << dump(errors);

  cfg.lifetimes = {.allocation_default = 0, .allocation_max = 0, .permission = 1, .channel = 1, .nonce = 1};
  errors.clear();
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "lifetimes.allocation_default: must be greater than 0")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "lifetimes.allocation_max: must be greater than 0")) << dump(errors);
}

TEST(ConfigValidate, NoCredentialsIsAnError) {
  server_config cfg = valid_config();
  cfg.auth.users.clear();
  std::vector<std::string> errors;
  EXPECT_FALSE(validate(cfg, errors));
  ASSERT_EQ(errors.size(), 1u) << dump(errors);
  EXPECT_TRUE(errors[0].starts_with("auth: no credentials")) << errors[0];

  cfg.auth.rest_secrets = {"only-a-secret"};
  errors.clear();
  EXPECT_TRUE(validate(cfg, errors)) << dump(errors);
}

TEST(ConfigValidate, Realm) {
  server_config cfg = valid_config();
  cfg.auth.realm.clear();
  std::vector<std::string> errors;
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "realm: must not be empty")) << dump(errors);

  cfg.auth.realm.assign(763, 'r');
  errors.clear();
  EXPECT_TRUE(validate(cfg, errors)) << dump(errors);
  cfg.auth.realm.push_back('r');
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "realm: at most 763 bytes, got 764")) << dump(errors);

  cfg.auth.realm = "bad\x01realm";
  errors.clear();
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "realm: must not contain control characters")) << dump(errors);
}

TEST(ConfigValidate, Users) {
  server_config cfg = valid_config();
  auth::md5_key key{};
  cfg.auth.users = {
      {"alice", std::string("pw"), std::nullopt},
      {"both", std::string("pw"), key},
      {"neither", std::nullopt, std::nullopt},
      {"", std::string("pw"), std::nullopt},
      {"alice", std::nullopt, key},
      {"empty", std::string(""), std::nullopt},
      {std::string(509, 'u'), std::string("pw"), std::nullopt},
      {"tab\tuser", std::string("pw"), std::nullopt},
  };
  std::vector<std::string> errors;
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "auth.users[1] 'both': exactly one of 'password' or 'key' is required")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "auth.users[2] 'neither': exactly one of")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "auth.users[3].name: must not be empty")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "auth.users[4] 'alice': duplicate user name (also auth.users[0])")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "auth.users[5] 'empty': password must not be empty")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "auth.users[6].name: at most 508 bytes, got 509")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "auth.users[7].name: must not contain control characters")) << dump(errors);
  EXPECT_EQ(errors.size(), 7u) << dump(errors);
}

TEST(ConfigValidate, Secrets) {
  server_config cfg = valid_config();
  cfg.auth.rest_secrets = {"a", "", "c", "d", "e", "f", "g", "h", "i"};
  cfg.auth.nonce_key = "too-short";
  std::vector<std::string> errors;
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "auth.secrets: at most 8 secrets")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "auth.secrets[1]: must not be empty")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "auth.nonce_key: at least 16 bytes")) << dump(errors);
  EXPECT_EQ(errors.size(), 3u) << dump(errors);
}

TEST(ConfigValidate, ThreadsLogLevelSoftwareLimits) {
  server_config cfg = valid_config();
  cfg.threads = 256;
  cfg.udp_busy_poll_us = 1000;
  cfg.udp_coalesce_us = 1000;
  std::vector<std::string> errors;
  EXPECT_TRUE(validate(cfg, errors)) << dump(errors);

  cfg.threads = 257;
  cfg.log_level = "verbose";
  cfg.software.assign(764, 's');
  cfg.max_allocations_per_worker = 0;
  cfg.udp_busy_poll_us = 1001;
  cfg.udp_coalesce_us = 5000;
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "limits.udp_busy_poll_us: at most 1000 microseconds (0 = off), got 1001")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "limits.udp_coalesce_us: at most 1000 microseconds (0 = off), got 5000")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "threads: at most 256 (0 = one per core), got 257")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "log_level: expected one of trace, debug, info, warn, error, critical, off, got 'verbose'")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "software: at most 763 bytes")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "limits.max_allocations_per_worker: must be greater than 0")) << dump(errors);
  EXPECT_EQ(errors.size(), 6u) << dump(errors);
}

TEST(ConfigValidate, KnownLogLevels) {
  for (const char* level : {"trace", "debug", "info", "warn", "error", "critical", "off"}) {
    EXPECT_TRUE(is_known_log_level(level)) << level;
  }
  for (const char* level : {"", "INFO", "warning", "err", "fatal"}) {
    EXPECT_FALSE(is_known_log_level(level)) << level;
  }
}

TEST(ConfigValidate, ReportsEveryProblemAtOnce) {
  server_config cfg = valid_config();
  cfg.listen.clear();
  cfg.relay.ips.clear();
  cfg.auth.users.clear();
  cfg.auth.realm.clear();
  cfg.lifetimes.permission = 0;
  cfg.threads = 1000;
  std::vector<std::string> errors;
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_EQ(errors.size(), 6u) << dump(errors);
}

// ---------------------------------------------------- relay auto-detection

interface_address iface(std::string name, bool up, bool loopback, std::string_view ip) {
  return {std::move(name), up, loopback, ep(ip)};
}

TEST(ConfigAutoRelay, PicksFirstUpNonLoopbackIpv4) {
  const std::vector<interface_address> addrs = {
      iface("lo", true, true, "127.0.0.1"),
      iface("eth0", true, false, "[2001:db8::5]"),
      iface("eth1", false, false, "192.0.2.9"),       // down
      iface("eth2", true, false, "169.254.10.1"),     // link-local
      iface("eth3", true, false, "0.0.0.0"),
      iface("eth4", true, false, "203.0.113.7"),
      iface("eth5", true, false, "198.51.100.1"),
  };
  auto ip = pick_relay_ipv4(addrs);
  ASSERT_TRUE(ip);
  EXPECT_TRUE(ip->same_ip(ep("203.0.113.7")));
  EXPECT_EQ(ip->port, 0);
}

TEST(ConfigAutoRelay, NoneFound) {
  EXPECT_FALSE(pick_relay_ipv4({}));
  EXPECT_FALSE(pick_relay_ipv4({iface("lo", true, true, "127.0.0.1"),
                                iface("eth0", true, false, "[2001:db8::5]")}));
}

TEST(ConfigAutoRelay, HostDetectionAgreesWithPick) {
  const auto addrs = host_interface_addresses();
  const auto picked = pick_relay_ipv4(addrs);
  const auto ip = auto_relay_ip();
  EXPECT_TRUE(ip.is_v4());
  if (picked) {
    EXPECT_EQ(ip, *picked);
  } else {
    EXPECT_EQ(ip, ep("127.0.0.1"));
  }
}

TEST(ConfigWarnings, LoopbackFallbackNonceKeyAndAllow) {
  server_config cfg = valid_config();
  cfg.relay.ips = {ep("127.0.0.1")};
  cfg.relay.ips_auto = true;
  cfg.peers.allow = {*auth::cidr::parse("10.0.0.0/8")};
  const auto w = warnings(cfg);
  EXPECT_TRUE(has_error(w, "relay.ips: 'auto' found no up, non-loopback IPv4 address")) << dump(w);
  EXPECT_TRUE(has_error(w, "auth.nonce_key is empty")) << dump(w);
  EXPECT_TRUE(has_error(w, "peers.allow: clients may relay to 10.0.0.0/8")) << dump(w);
  EXPECT_EQ(w.size(), 3u) << dump(w);

  cfg.relay.ips_auto = false;
  cfg.peers.allow.clear();
  cfg.auth.nonce_key = "0123456789abcdef";
  EXPECT_TRUE(warnings(cfg).empty()) << dump(warnings(cfg));
}

}  // namespace
}  // namespace anyturn::config
