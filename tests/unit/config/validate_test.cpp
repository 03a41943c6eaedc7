// src/config/validate.cpp: validate() — the cross-field checks on a complete
// config, every problem at once, each naming its key path.
#include <anyturn/config/config.hpp>

#include <gtest/gtest.h>

#include "config_files.hpp"

#include <optional>
#include <string>
#include <vector>

namespace anyturn::config {
namespace {

auth::static_user user(const std::string& name) {
  auth::static_user u;
  u.name = name;
  u.password = "secret";
  return u;
}

TEST(ConfigValidate, ValidConfigPasses) {
  std::vector<std::string> errors;
  EXPECT_TRUE(validate(valid_config(), errors)) << dump(errors);
  EXPECT_TRUE(errors.empty());
}

// ----------------------------------------------------- listeners and relay

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

// -------------------------------------------------------------------- auth

// A config with no credential validates: an empty auth.secrets means the
// server generates a random one at first start, so it never runs open.
TEST(ConfigValidate, NoCredentialsValidatesForAGeneratedSecret) {
  server_config cfg = valid_config();
  cfg.auth.users.clear();
  std::vector<std::string> errors;
  EXPECT_TRUE(validate(cfg, errors)) << dump(errors);
  // The default tenant's API keys sign with the generated secret.
  cfg.auth.api_keys = {"an-api-key-0123456789"};
  EXPECT_TRUE(validate(cfg, errors)) << dump(errors);
}

// Whatever anybody can read in the docs is refused, wherever a credential
// goes; the error never echoes the value.
TEST(ConfigValidate, PublishedCredentialsAreRefusedEverywhere) {
  server_config cfg = valid_config();
  auth::md5_key documented{};
  for (std::size_t i = 0; i < documented.size(); ++i) {
    documented[i] = static_cast<std::uint8_t>(((2 * i) % 16) << 4 | ((2 * i + 1) % 16));
  }  // 0123456789abcdef0123456789abcdef, the example key of config/anyturn.yaml
  cfg.auth.users = {{"demo", std::string("demo-password"), std::nullopt},
                    {"keyed", std::nullopt, documented},
                    {"fine", std::string("a-private-password"), std::nullopt}};
  cfg.auth.rest_secrets = {"change-me-rest-secret"};
  cfg.auth.api_keys = {"acme-api-key-at-least-16-chars"};
  cfg.auth.nonce_keys = {"default-tenant-secret"};
  tenant_config t;
  t.id = "acme";
  t.secrets = {"acme-rest-secret"};
  t.users = {{"acme-probe", std::string("probe-password"), std::nullopt}};
  cfg.tenants = {t};
  std::vector<std::string> errors;
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "auth.users[0] 'demo': the password is a published example")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "auth.users[1] 'keyed': the key is a published example")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "auth.secrets[0]: a published example")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "auth.api_keys[0]: a published example key")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "auth.nonce_keys[0]: a published example")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "tenants[0].secrets[0]: a published example")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "tenants[0].users[0] 'acme-probe': the password is a published")) << dump(errors);
  EXPECT_EQ(errors.size(), 7u) << dump(errors);
  for (const auto& e : errors) {
    for (const char* value : {"demo-password", "change-me-rest-secret", "acme-rest-secret", "probe-password"}) {
      EXPECT_EQ(e.find(value), std::string::npos) << "value echoed: " << e;
    }
  }
}

TEST(ConfigValidate, Realm) {
  server_config cfg = valid_config();
  cfg.auth.realm.clear();
  std::vector<std::string> errors;
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "realm: must not be empty")) << dump(errors);

  // Capped well below RFC 8489's 763: every 401 carries it to anyone who asks.
  cfg.auth.realm.assign(128, 'r');
  errors.clear();
  EXPECT_TRUE(validate(cfg, errors)) << dump(errors);
  cfg.auth.realm.push_back('r');
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "realm: at most 128 bytes, got 129")) << dump(errors);

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
  const std::string good = "a-rest-secret-0123456789";
  cfg.auth.rest_secrets = {good, "", "15-bytes-secret", std::string(16, 'x'), good, good, good, good, good};
  cfg.auth.nonce_keys = {"too-short"};
  cfg.auth.nonce_max_skew = 3601;
  std::vector<std::string> errors;
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "auth.secrets: at most 8 secrets")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "auth.secrets[1]: at least 16 bytes (use e.g. openssl rand -hex 32), got 0")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "auth.secrets[2]: at least 16 bytes (use e.g. openssl rand -hex 32), got 15")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "auth.nonce_keys[0]: at least 16 bytes")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "auth.nonce_max_skew: at most 3600 seconds, got 3601")) << dump(errors);
  EXPECT_EQ(errors.size(), 5u) << dump(errors);

  cfg.auth.rest_secrets = {good, std::string(16, 'x')};
  cfg.auth.nonce_keys = {"new-nonce-key-0123456789", "old-nonce-key-0123456789"};
  cfg.auth.nonce_max_skew = 3600;
  errors.clear();
  EXPECT_TRUE(validate(cfg, errors)) << dump(errors);
  cfg.auth.nonce_keys.assign(9, "a-nonce-key-0123456789");
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "auth.nonce_keys: at most 8")) << dump(errors);
}

// ----------------------------------------------------------------- tenants

TEST(SideConfig, TenantIdsAreCheckedAndUnique) {
  server_config cfg = valid_config();
  cfg.tenants.resize(5);
  cfg.tenants[0].id = "acme";
  cfg.tenants[1].id = "acme";
  cfg.tenants[2].id = "a:b";
  cfg.tenants[3].id = "default";
  cfg.tenants[4].id = "";
  for (auto& t : cfg.tenants) t.secrets = {"a-tenant-secret-0123"};
  std::vector<std::string> errors;
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "tenants[1].id: 'acme' is already used by tenants[0]")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "tenants[2].id: expected 1..64 characters")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "tenants[3].id: 'default' is reserved")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "tenants[4].id: must not be empty")) << dump(errors);
  EXPECT_EQ(errors.size(), 4u) << dump(errors);
}

TEST(SideConfig, TenantCredentialsKeysAndUsers) {
  server_config cfg = valid_config();
  cfg.auth.api_keys = {"short"};  // no auth.secrets: the generated one signs
  tenant_config a;
  a.id = "a";
  a.users = {user("alice"), user("zed")};  // alice is also a default-tenant user
  a.api_keys = {"shared-key-0123456789"};
  a.secrets = {"", "x", "x", "x", "x", "x", "x", "x", "x"};  // 9 secrets, each too short
  tenant_config b;
  b.id = "b";
  b.api_keys = {"shared-key-0123456789", "has a space in it!!"};
  tenant_config c;
  c.id = "c";  // no credentials at all
  cfg.tenants = {a, b, c};
  std::vector<std::string> errors;
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "auth.api_keys[0]: at least 16 characters")) << dump(errors);
  EXPECT_FALSE(has_error(errors, "auth.api_keys: the credentials API signs")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "tenants[0].users[0] 'alice': duplicate user name (also auth.users[0])"))
      << dump(errors);
  EXPECT_TRUE(has_error(errors, "tenants[0].secrets: at most 8 secrets")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "tenants[0].secrets[0]: at least 16 bytes")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "tenants[0].secrets[8]: at least 16 bytes")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "tenants[1].api_keys[0]: the same key is also tenants[0].api_keys[0]"))
      << dump(errors);
  EXPECT_TRUE(has_error(errors, "tenants[1].api_keys[1]: must not contain spaces")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "tenants[1].api_keys: the credentials API signs")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "tenants[2]: no credentials")) << dump(errors);
  // Keys are never echoed.
  for (const auto& e : errors) EXPECT_EQ(e.find("shared-key"), std::string::npos) << e;
}

TEST(SideConfig, TenantsAloneAreEnoughCredentials) {
  server_config cfg = valid_config();
  cfg.auth.users.clear();
  std::vector<std::string> errors;
  tenant_config t;
  t.id = "only";
  t.secrets = {"a-tenant-secret-0123"};
  cfg.tenants = {t};
  errors.clear();
  EXPECT_TRUE(validate(cfg, errors)) << dump(errors);
}

// --------------------------------------------------- tls, streams and http

TEST(ConfigStreams, ValidationCatchesEveryStreamProblem) {
  server_config cfg = valid_config();
  cfg.listen = {ep("0.0.0.0:3478")};
  cfg.tls.listen = {ep("127.0.0.1:3478"), ep("127.0.0.1:0"), ep("127.0.0.1:0")};
  cfg.tls.cert = "/x.pem";
  cfg.streams.tls_handshake_timeout = 0;
  cfg.streams.idle_timeout = 0;
  cfg.streams.max_message_size = 100;
  cfg.streams.write_queue_size = 10;
  cfg.streams.first_message_timeout_s = 0;
  cfg.streams.unauthenticated_memory = 1000;
  std::vector<std::string> errors;
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "tls.listen[0]: 127.0.0.1:3478 overlaps listen[0]")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "tls.listen[1]: port must not be 0")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "tls.listen[2]: 127.0.0.1:0 is already listed as tls.listen[1]")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "tls.key: must be set together with tls.cert")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "streams.tls_handshake_timeout: must be greater than 0")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "streams.idle_timeout: must be greater than 0")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "streams.max_message_size: expected 548..65552, got 100")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "streams.write_queue_size: at least 8192 bytes")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "streams.first_message_timeout_s: expected 1..3600 seconds, got 0"))
      << dump(errors);
  EXPECT_TRUE(has_error(errors, "streams.unauthenticated_memory: at least 1048576 bytes (or 0: no limit), got 1000"))
      << dump(errors);

  // Without TCP on `listen`, TLS may take the same port.
  server_config ok = valid_config();
  ok.streams.tcp = false;
  ok.listen = {ep("0.0.0.0:3478")};
  ok.tls.listen = {ep("0.0.0.0:3478")};
  ok.streams.unauthenticated_memory = 0;  // no limit
  errors.clear();
  EXPECT_TRUE(validate(ok, errors)) << dump(errors);
}

TEST(ConfigDtls, ValidationCatchesEveryDtlsProblem) {
  server_config cfg = valid_config();
  cfg.listen = {ep("0.0.0.0:3478")};
  cfg.dtls.listen = {ep("127.0.0.1:3478"), ep("127.0.0.1:0"), ep("127.0.0.1:0")};
  cfg.dtls.handshake_timeout = 0;
  cfg.dtls.idle_timeout = 86401;
  std::vector<std::string> errors;
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "dtls.listen[0]: 127.0.0.1:3478 overlaps listen[0] (0.0.0.0:3478), which serves plain UDP"))
      << dump(errors);
  EXPECT_TRUE(has_error(errors, "dtls.listen[1]: port must not be 0")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "dtls.listen[2]: 127.0.0.1:0 is already listed as dtls.listen[1]")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "dtls.handshake_timeout: expected 1..300 seconds, got 0")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "dtls.idle_timeout: expected 1..86400 seconds, got 86401")) << dump(errors);

  // Another port, or the same port in the other family, is fine; DTLS may
  // share a port number with a TLS (TCP) listener.
  server_config ok = valid_config();
  ok.listen = {ep("0.0.0.0:3478")};
  ok.tls.listen = {ep("0.0.0.0:5349")};
  ok.dtls.listen = {ep("0.0.0.0:5349"), ep("[::1]:3478")};
  errors.clear();
  EXPECT_TRUE(validate(ok, errors)) << dump(errors);
}

TEST(SideConfig, HttpChecks) {
  server_config cfg = valid_config();
  cfg.http.listen = ep("0.0.0.0:3478");  // the TURN TCP listener's port
  cfg.http.tls_cert = "/etc/cert.pem";
  cfg.http.max_ttl = 60;
  cfg.http.default_ttl = 3600;
  cfg.http.stun_urls = {"http://x", "stun:ok:3478"};
  cfg.http.turn_urls = {};
  std::vector<std::string> errors;
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "http.listen: 0.0.0.0:3478 overlaps listen[0]")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "http.tls.key: must be set together with http.tls.cert")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "http.default_ttl: expected 1..http.max_ttl (60), got 3600")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "http.urls.stun[0]: expected a stun: or stuns: URL")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "http.urls.turn: required when http.urls.stun is set")) << dump(errors);

  cfg = valid_config();
  cfg.tls.listen = {ep("127.0.0.1:5349")};
  cfg.http.listen = ep("127.0.0.1:5349");
  cfg.http.turn_urls = {"turn:host:3478?transport=udp", "turn:bad url"};
  errors.clear();
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "http.listen: 127.0.0.1:5349 overlaps tls.listen[0]")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "http.urls.turn[1]")) << dump(errors);
  EXPECT_EQ(errors.size(), 2u) << dump(errors);

  // Turned off, its address may be anything.
  cfg = valid_config();
  cfg.http.enabled = false;
  cfg.http.listen = ep("127.0.0.1:3478");
  errors.clear();
  EXPECT_TRUE(validate(cfg, errors)) << dump(errors);
}

// --------------------------------------------------------- everything else

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

TEST(ConfigValidate, ReportsEveryProblemAtOnce) {
  server_config cfg = valid_config();
  cfg.listen.clear();
  cfg.relay.ips.clear();
  cfg.auth.users.clear();
  cfg.auth.realm.clear();
  cfg.lifetimes.permission = 0;
  cfg.threads = 1000;
  cfg.auth.rest_secrets = {"short"};
  std::vector<std::string> errors;
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_EQ(errors.size(), 6u) << dump(errors);
}

TEST(ConfigValidate, AllocationLimitsNameTheirKeyPath) {
  server_config cfg = valid_config();
  cfg.allocation_limits.max_peers = 0;
  cfg.allocation_limits.max_channels = 20000;
  cfg.allocation_limits.permission_burst = 0;
  cfg.allocation_limits.bytes_per_second = 1000;
  std::vector<std::string> errors;
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "limits.allocation.max_peers: expected 1..65536, got 0")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "limits.allocation.max_channels: expected 1..16384")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "limits.allocation.permission_burst: expected 1..65536")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "limits.allocation.bytes_per_second: expected 0 (no limit) or 65536..")) << dump(errors);

  // A tenant's override is checked under its own path, and only for the keys it sets.
  cfg = valid_config();
  tenant_config t;
  t.id = "acme";
  t.secrets = {"acme-secret-0123456789"};
  t.allocation_limits.max_peers = 100000;
  cfg.tenants.push_back(t);
  errors.clear();
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "tenants[0].limits.allocation.max_peers: expected 1..65536, got 100000"))
      << dump(errors);
  EXPECT_EQ(errors.size(), 1u) << dump(errors);

  // 0 turns the rates off; the largest valid values pass.
  cfg = valid_config();
  cfg.allocation_limits = {65536, 16384, 0, 0, 0, 0};
  errors.clear();
  EXPECT_TRUE(validate(cfg, errors)) << dump(errors);
}


namespace anyturn::config {
namespace {

TEST(ConfigValidate, AbuseLimits) {
  server_config cfg = valid_config();
  std::vector<std::string> errors;
  EXPECT_EQ(cfg.unauthenticated_per_source.rate, 20u);
  EXPECT_EQ(cfg.unauthenticated_per_source.burst, 50u);
  EXPECT_TRUE(validate(cfg, errors)) << dump(errors);

  cfg.unauthenticated_per_source = {0, 0};  // off
  cfg.auth_failures = {0, 0, 0, 0};
  EXPECT_TRUE(validate(cfg, errors)) << dump(errors);

  cfg.unauthenticated_per_source = {5, 0};
  cfg.auth_failures = {2'000'000, 1, 10, 0};
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "limits.unauthenticated_per_source.burst: must be at least 1 while "
                                "limits.unauthenticated_per_source.rate is set (a rate of 0 turns the limit off)"))
      << dump(errors);
  EXPECT_TRUE(has_error(errors, "limits.auth_failures.per_source_per_minute: at most 1000000 (0 = off), got 2000000"))
      << dump(errors);
  EXPECT_TRUE(has_error(errors, "limits.auth_failures.per_user_burst: must be at least 1 while "
                                "limits.auth_failures.per_user_per_minute is set (a rate of 0 turns the limit off)"))
      << dump(errors);
}

}  // namespace
}  // namespace anyturn::config

// ------------------------------------------------------------------ fleet

namespace fleet {

external_ip ext(std::string_view pub, std::optional<std::string_view> priv = std::nullopt) {
  external_ip e;
  e.public_ip = ep(pub);
  if (priv) e.private_ip = ep(*priv);
  return e;
}

}  // namespace fleet

TEST(FleetConfig, ExternalIpsThatMapARelayAddressPass) {
  server_config cfg = valid_config();
  cfg.relay.ips = {ep("10.0.0.7"), ep("10.0.0.8"), ep("[fd00::7]")};
  // PUBLIC/PRIVATE for each IPv4 relay; PUBLIC alone for the only IPv6 one.
  cfg.relay.external_ips = {fleet::ext("203.0.113.7", "10.0.0.7"), fleet::ext("203.0.113.8", "10.0.0.8"),
                            fleet::ext("[2001:db8::7]")};
  std::vector<std::string> errors;
  EXPECT_TRUE(validate(cfg, errors)) << dump(errors);

  const auto resolved = resolve_external_ips(cfg.relay);
  ASSERT_EQ(resolved.size(), 3u);
  EXPECT_EQ(*resolved[0].private_ip, ep("10.0.0.7"));
  EXPECT_EQ(*resolved[1].private_ip, ep("10.0.0.8"));
  EXPECT_EQ(resolved[2].public_ip, ep("[2001:db8::7]"));
  EXPECT_EQ(*resolved[2].private_ip, ep("[fd00::7]"));  // the only IPv6 relay address
}

TEST(FleetConfig, EachExternalIpMistakeIsAnErrorNamingItsEntry) {
  server_config cfg = valid_config();
  cfg.relay.ips = {ep("10.0.0.7"), ep("10.0.0.8")};
  cfg.relay.external_ips = {
      fleet::ext("203.0.113.1", "10.0.0.9"),        // [0] PRIVATE not a relay address
      fleet::ext("203.0.113.2", "[fd00::7]"),       // [1] families differ
      fleet::ext("203.0.113.3"),                    // [2] two IPv4 relay addresses: ambiguous
      fleet::ext("[2001:db8::3]"),                  // [3] no IPv6 relay address
      fleet::ext("203.0.113.4", "10.0.0.7"),        // [4] fine
      fleet::ext("203.0.113.4", "10.0.0.8"),        // [5] the same PUBLIC maps a second PRIVATE
      fleet::ext("203.0.113.5", "10.0.0.7"),        // [6] 10.0.0.7 already announced as .4
      fleet::ext("203.0.113.4", "10.0.0.7"),        // [7] a duplicate of [4]
      fleet::ext("0.0.0.0", "10.0.0.8"),            // [8] unspecified PUBLIC
  };
  std::vector<std::string> errors;
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "relay.external_ips[0]: PRIVATE 10.0.0.9 is not one of relay.ips "
                                "(10.0.0.7, 10.0.0.8)")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "relay.external_ips[1]: PUBLIC 203.0.113.2 is IPv4 but PRIVATE fd00::7 "
                                "is IPv6; both must be of one family")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "relay.external_ips[2]: PUBLIC 203.0.113.3 without /PRIVATE needs "
                                "exactly one IPv4 address in relay.ips, found 2 (10.0.0.7, 10.0.0.8); "
                                "write PUBLIC/PRIVATE")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "relay.external_ips[3]: PUBLIC 2001:db8::3 without /PRIVATE needs "
                                "exactly one IPv6 address in relay.ips, found 0 (none)")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "relay.external_ips[5]: PUBLIC 203.0.113.4 already maps 10.0.0.7 "
                                "(relay.external_ips[4]); one public address cannot stand for two "
                                "relay addresses")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "relay.external_ips[6]: relay address 10.0.0.7 is already announced as "
                                "203.0.113.4 (relay.external_ips[4])")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "relay.external_ips[7]: 203.0.113.4/10.0.0.7 is already listed as "
                                "relay.external_ips[4]")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "relay.external_ips[8]: PUBLIC 0.0.0.0 is the unspecified address"))
      << dump(errors);
  EXPECT_EQ(errors.size(), 8u) << dump(errors);
  // resolve_external_ips leaves out the entries that map no relay address
  // ([0] to [3]); the conflicts between the others are validate()'s.
  EXPECT_EQ(resolve_external_ips(cfg.relay).size(), 5u);
}

// relay.ips 'auto' is resolved when the config is read, so the external-ip
// check sees the detected address; an error says so.
TEST(FleetConfig, ExternalIpAfterAutoRelayAddress) {
  std::vector<std::string> errors;
  auto cfg = load_yaml("relay:\n  ips: [auto]\n  external_ips: [\"203.0.113.7\"]\n", errors);
  ASSERT_TRUE(cfg) << dump(errors);
  cfg->auth.users.push_back({"alice", std::string("alice-pass-4bd2"), std::nullopt});
  ASSERT_TRUE(cfg->relay.ips_auto);
  EXPECT_TRUE(validate(*cfg, errors)) << dump(errors);
  const auto resolved = resolve_external_ips(cfg->relay);
  ASSERT_EQ(resolved.size(), 1u);
  EXPECT_EQ(*resolved[0].private_ip, cfg->relay.ips[0]);  // the detected address

  cfg->relay.external_ips = {fleet::ext("203.0.113.7", "10.255.255.254")};
  errors.clear();
  EXPECT_FALSE(validate(*cfg, errors));
  EXPECT_TRUE(has_error(errors, "relay.external_ips[0]: PRIVATE 10.255.255.254 is not one of relay.ips ("))
      << dump(errors);
  EXPECT_TRUE(has_error(errors, "'auto' is resolved at start-up")) << dump(errors);
}

TEST(FleetConfig, AnycastNeedsUnicastOfItsFamilyAndNeverOverlaps) {
  server_config cfg = valid_config();
  cfg.fleet.anycast_ips = {ep("198.51.100.1"), ep("[2001:db8:a::1]")};
  cfg.fleet.unicast_ips = {ep("192.0.2.1")};
  std::vector<std::string> errors;
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "fleet.anycast_ips[1]: 2001:db8:a::1 is IPv6, but fleet.unicast_ips has "
                                "no IPv6 address to redirect Allocates to")) << dump(errors);
  EXPECT_EQ(errors.size(), 1u) << dump(errors);

  cfg.fleet.unicast_ips = {ep("192.0.2.1"), ep("[2001:db8::1]")};
  errors.clear();
  EXPECT_TRUE(validate(cfg, errors)) << dump(errors);

  cfg.fleet.anycast_ips = {ep("198.51.100.1"), ep("198.51.100.1"), ep("0.0.0.0"), ep("192.0.2.1")};
  cfg.fleet.unicast_ips = {ep("192.0.2.1"), ep("192.0.2.9"), ep("[2001:db8::1]")};
  errors.clear();
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "fleet.anycast_ips[1]: 198.51.100.1 is already listed as fleet.anycast_ips[0]"))
      << dump(errors);
  EXPECT_TRUE(has_error(errors, "fleet.anycast_ips[2]: 0.0.0.0 is the unspecified address")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "fleet.unicast_ips[0]: 192.0.2.1 is also fleet.anycast_ips[3]")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "fleet.unicast_ips[1]: a second IPv4 address (fleet.unicast_ips[0] is "
                                "192.0.2.1); at most one per family")) << dump(errors);
  // 192.0.2.1 is valid_config()'s relay address too.
  EXPECT_TRUE(has_error(errors, "fleet.anycast_ips[3]: 192.0.2.1 is also relay.ips[0]")) << dump(errors);
  EXPECT_EQ(errors.size(), 5u) << dump(errors);

  // An anycast address may not be the relay's public address either.
  cfg = valid_config();
  cfg.relay.external_ips = {fleet::ext("203.0.113.7")};
  cfg.fleet.anycast_ips = {ep("203.0.113.7")};
  cfg.fleet.unicast_ips = {ep("203.0.113.8")};
  errors.clear();
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "fleet.anycast_ips[0]: 203.0.113.7 is also the PUBLIC address of "
                                "relay.external_ips[0]")) << dump(errors);
  EXPECT_EQ(errors.size(), 1u) << dump(errors);
}

TEST(FleetConfig, NamesUrlsAndDrainSettings) {
  server_config cfg = valid_config();
  cfg.fleet.alternate_domain = "turn-1.example.com";
  cfg.fleet.node_id = "eu-west-1.node_3";
  cfg.fleet.redis = "rediss://:a7f3c9e1d2b4@redis.internal:6380/1";
  cfg.fleet.drain_alternate = ep("192.0.2.50:3478");
  cfg.fleet.drain_timeout = max_drain_timeout;
  std::vector<std::string> errors;
  EXPECT_TRUE(validate(cfg, errors)) << dump(errors);

  cfg.fleet.alternate_domain = "turn_1.example.com.";
  cfg.fleet.node_id = "node 3";
  cfg.fleet.redis = "redis://:hunter2-secret@redis.internal";  // no port
  cfg.fleet.drain_alternate = ep("0.0.0.0:0");
  cfg.fleet.drain_timeout = 0;
  errors.clear();
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "fleet.alternate_domain: expected a DNS name")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "got 'turn_1.example.com.'")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "fleet.node_id: expected 1..64 characters of A-Z a-z 0-9 . _ -, got 'node 3'"))
      << dump(errors);
  EXPECT_TRUE(has_error(errors, "fleet.redis: expected redis://[[USER]:PASSWORD@]HOST:PORT[/DB] or "
                                "rediss://... (TLS): HOST:PORT is required")) << dump(errors);
  EXPECT_FALSE(has_error(errors, "hunter2")) << "the Redis password was echoed:\n" << dump(errors);
  EXPECT_TRUE(has_error(errors, "fleet.drain_alternate: port must not be 0")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "fleet.drain_alternate: 0.0.0.0 is the unspecified address")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "fleet.drain_timeout: expected 1..604800 seconds, got 0")) << dump(errors);
  EXPECT_EQ(errors.size(), 6u) << dump(errors);

  cfg = valid_config();
  cfg.fleet.node_id = std::string(65, 'n');
  cfg.fleet.alternate_domain = "192.0.2.1";
  cfg.fleet.redis = "redis://:changeme@10.0.0.5:6379";  // a published placeholder
  cfg.fleet.drain_timeout = max_drain_timeout + 1;
  errors.clear();
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "fleet.node_id: expected 1..64")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "fleet.alternate_domain: expected a DNS name")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "fleet.redis: the password is a published example")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "fleet.drain_timeout: expected 1..604800 seconds, got 604801")) << dump(errors);
  EXPECT_EQ(errors.size(), 4u) << dump(errors);
}

TEST(FleetConfig, AdminKeysAreLongUnpublishedAndNoTenantsKey) {
  server_config cfg = valid_config();
  cfg.auth.rest_secrets = {"default-rest-secret-9f8e7d6c"};
  cfg.auth.api_keys = {"default-api-key-1a2b3c4d5e6f"};
  tenant_config t;
  t.id = "acme";
  t.secrets = {"acme-rest-secret-5a6b7c8d9e"};
  t.api_keys = {"acme-api-key-0f1e2d3c4b5a"};
  cfg.tenants = {t};
  cfg.http.admin_keys = {"admin-key-77e1c0d9b8a7f6e5"};
  std::vector<std::string> errors;
  EXPECT_TRUE(validate(cfg, errors)) << dump(errors);

  cfg.http.admin_keys = {"short",
                         "default-api-key-1a2b3c4d5e6f",
                         "acme-api-key-0f1e2d3c4b5a",
                         "acme-rest-secret-5a6b7c8d9e",
                         "acme-api-key-at-least-16-chars",  // published in the docs
                         "admin key with spaces 0123456",
                         "admin-key-77e1c0d9b8a7f6e5",
                         "admin-key-77e1c0d9b8a7f6e5"};
  errors.clear();
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "http.admin_keys[0]: at least 16 characters")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "http.admin_keys[1]: the same key is also auth.api_keys[0]; the admin key "
                                "must be separate from every tenant's credentials")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "http.admin_keys[2]: the same key is also tenants[0].api_keys[0]"))
      << dump(errors);
  EXPECT_TRUE(has_error(errors, "http.admin_keys[3]: the same key is also tenants[0].secrets[0]"))
      << dump(errors);
  EXPECT_TRUE(has_error(errors, "http.admin_keys[4]: a published example key")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "http.admin_keys[5]: must not contain spaces")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "http.admin_keys[7]: the same key is already http.admin_keys[6]"))
      << dump(errors);
  EXPECT_EQ(errors.size(), 7u) << dump(errors);
  for (const auto& e : errors) {
    EXPECT_EQ(e.find("1a2b3c4d"), std::string::npos) << "a key was echoed: " << e;
  }
}

// ----------------------------------------------------- PROXY protocol

TEST(ConfigValidate, ProxyProtocolNeedsTrustedSourcesAndStreams) {
  server_config cfg = valid_config();
  cfg.listen_proxy.resize(1);
  cfg.listen_proxy[0].enabled = true;
  std::vector<std::string> errors;
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "listen[0].trusted: proxy_protocol needs")) << dump(errors);

  cfg.listen_proxy[0].trusted.push_back(*auth::cidr::parse("10.0.0.0/8"));
  errors.clear();
  EXPECT_TRUE(validate(cfg, errors)) << dump(errors);

  // PROXY is for streams: a listen entry with it needs TCP on.
  cfg.streams.tcp = false;
  errors.clear();
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "listen[0].proxy_protocol: needs streams.tcp")) << dump(errors);

  server_config tls = valid_config();
  tls.tls.listen.push_back(ep("127.0.0.1:5349"));
  tls.tls.listen_proxy.resize(1);
  tls.tls.listen_proxy[0].enabled = true;
  errors.clear();
  EXPECT_FALSE(validate(tls, errors));
  EXPECT_TRUE(has_error(errors, "tls.listen[0].trusted")) << dump(errors);

  // Trusted ranges without proxy_protocol are harmless.
  server_config off = valid_config();
  off.listen_proxy.resize(1);
  off.listen_proxy[0].trusted.push_back(*auth::cidr::parse("10.0.0.0/8"));
  errors.clear();
  EXPECT_TRUE(validate(off, errors)) << dump(errors);
}

}  // namespace
}  // namespace anyturn::config

namespace anyturn::config {
namespace {

TEST(LogConfig, FormatIsTextOrJson) {
  server_config cfg = valid_config();
  std::vector<std::string> errors;
  for (const char* ok : {"text", "json"}) {
    cfg.log_format = ok;
    EXPECT_TRUE(validate(cfg, errors)) << ok << dump(errors);
  }
  cfg.log_format = "JSON";
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "log.format: expected text or json, got 'JSON'")) << dump(errors);
  EXPECT_EQ(errors.size(), 1u) << dump(errors);
}

}  // namespace
}  // namespace anyturn::config

namespace anyturn::config {
namespace {

TEST(TestPage, NeedsTheHttpServer) {
  server_config cfg = valid_config();
  cfg.http.test_page = true;
  std::vector<std::string> errors;
  EXPECT_TRUE(validate(cfg, errors)) << dump(errors);
  cfg.http.enabled = false;
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "http.test_page: needs the HTTP server, but http.enabled is false"))
      << dump(errors);
}

}  // namespace
}  // namespace anyturn::config

namespace anyturn::config {
namespace {

TEST(ProbeConfig, ValidationNamesEveryProblem) {
  server_config cfg = valid_config();
  cfg.http.probe.targets = {"turn-2.example.com:3478", "127.0.0.2:3478", "[::1]:5349"};
  cfg.http.probe.credentials = {{"turn-2.example.com:3478", "u", "p", ""},
                                {"[::1]:5349", "", "", "s3cret"}};
  std::vector<std::string> errors;
  EXPECT_TRUE(validate(cfg, errors)) << dump(errors);

  cfg.http.probe.max_concurrent = 0;
  cfg.http.probe.max_count = 1001;
  cfg.http.probe.timeout = 31;
  cfg.http.probe.targets = {"no-port", "::1:3478", "host:0", "host:70000", "bad host:1", "ok:1", "ok:1"};
  cfg.http.probe.credentials = {{"elsewhere:1", "u", "p", ""},
                                {"ok:1", "u", "p", "s"},
                                {"ok:1", "u", "", ""}};
  errors.clear();
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "http.probe_max_concurrent: expected 1..64, got 0")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "http.probe_max_count: expected 1..1000 packets, got 1001")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "http.probe_timeout: expected 1..30 seconds, got 31")) << dump(errors);
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(has_error(errors, "http.probe_targets[" + std::to_string(i) + "]: expected host:port"))
        << i << dump(errors);
  }
  EXPECT_TRUE(has_error(errors, "http.probe_targets[6]: repeats http.probe_targets[5]")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "http.probe_credentials[0].target: 'elsewhere:1' is not one of "
                                "http.probe_targets")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "http.probe_credentials[1]: give either username and password, or secret"))
      << dump(errors);
  EXPECT_TRUE(has_error(errors, "http.probe_credentials[2]: username and password go together"))
      << dump(errors);
  EXPECT_TRUE(has_error(errors, "http.probe_credentials[2].target: already has credentials in "
                                "http.probe_credentials[1]")) << dump(errors);
}

}  // namespace
}  // namespace anyturn::config
