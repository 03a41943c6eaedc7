// http.*, tenants, auth.api_keys, usage_log, the --http-listen / --api-key
// flags and the `anyturn credentials` command line.
#include <anyturn/config/cli.hpp>
#include <anyturn/config/config.hpp>

#include <gtest/gtest.h>

#include "config_files.hpp"

#include <algorithm>
#include <initializer_list>
#include <string>
#include <vector>

namespace anyturn::config {
namespace {

server_config valid_config() {
  server_config cfg = defaults();
  cfg.listen = {ep("127.0.0.1:3478")};
  cfg.relay.ips = {ep("127.0.0.1")};
  auth::static_user u;
  u.name = "alice";
  u.password = "pw";
  cfg.auth.users = {u};
  return cfg;
}

auth::static_user user(const std::string& name) {
  auth::static_user u;
  u.name = name;
  u.password = "secret";
  return u;
}

TEST(SideConfig, DefaultsServeHttpOnLoopback9641WithoutTenants) {
  const server_config cfg = defaults();
  EXPECT_TRUE(cfg.http.enabled);
  EXPECT_EQ(cfg.http.listen, ep("127.0.0.1:9641"));
  EXPECT_EQ(cfg.http.max_ttl, 86400u);
  EXPECT_EQ(cfg.http.default_ttl, 3600u);
  EXPECT_TRUE(cfg.http.stun_urls.empty());
  EXPECT_TRUE(cfg.tenants.empty());
  EXPECT_TRUE(cfg.usage_log.empty());
  EXPECT_TRUE(cfg.auth.api_keys.empty());
}

TEST(SideConfig, LoadsEveryKey) {
  const std::string yaml = R"(
listen: ["127.0.0.1:3478"]
relay: {ips: ["127.0.0.1"]}
auth:
  secrets: ["default-secret"]
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
    secrets: ["s1", "s2"]
    api_keys: ["acme-key-0123456789"]
    users: [{name: bob, password: pw}, {name: carol, key: "0123456789abcdef0123456789abcdef"}]
    quotas: {max_allocations: 100, max_allocations_per_user: 3, bandwidth: 250000}
  - id: beta
    secrets: ["s3"]
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
  EXPECT_EQ(acme.secrets, (std::vector<std::string>{"s1", "s2"}));
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

TEST(SideConfig, TenantIdsAreCheckedAndUnique) {
  server_config cfg = valid_config();
  cfg.tenants.resize(5);
  cfg.tenants[0].id = "acme";
  cfg.tenants[1].id = "acme";
  cfg.tenants[2].id = "a:b";
  cfg.tenants[3].id = "default";
  cfg.tenants[4].id = "";
  for (auto& t : cfg.tenants) t.secrets = {"s"};
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
  cfg.auth.api_keys = {"short"};  // and no auth.secrets to sign with
  tenant_config a;
  a.id = "a";
  a.users = {user("alice"), user("zed")};  // alice is also a default-tenant user
  a.api_keys = {"shared-key-0123456789"};
  a.secrets = {"", "x", "x", "x", "x", "x", "x", "x", "x"};
  tenant_config b;
  b.id = "b";
  b.api_keys = {"shared-key-0123456789", "has a space in it!!"};
  tenant_config c;
  c.id = "c";  // no credentials at all
  cfg.tenants = {a, b, c};
  std::vector<std::string> errors;
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "auth.api_keys[0]: at least 16 characters")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "auth.api_keys: the credentials API signs with the tenant's first REST "
                                "secret, but auth.secrets is empty"))
      << dump(errors);
  EXPECT_TRUE(has_error(errors, "tenants[0].users[0] 'alice': duplicate user name (also auth.users[0])"))
      << dump(errors);
  EXPECT_TRUE(has_error(errors, "tenants[0].secrets: at most 8 secrets")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "tenants[0].secrets[0]: must not be empty")) << dump(errors);
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
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "auth: no credentials")) << dump(errors);
  tenant_config t;
  t.id = "only";
  t.secrets = {"s"};
  cfg.tenants = {t};
  errors.clear();
  EXPECT_TRUE(validate(cfg, errors)) << dump(errors);
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

TEST(SideConfig, WarnsAboutKeysOverCleartextAndOffApi) {
  server_config cfg = valid_config();
  cfg.auth.rest_secrets = {"s"};
  cfg.auth.api_keys = {"0123456789abcdef"};
  cfg.http.listen = ep("0.0.0.0:9641");
  auto w = warnings(cfg);
  EXPECT_TRUE(std::any_of(w.begin(), w.end(), [](const std::string& s) {
    return s.find("is not a loopback address and http.tls is not set") != std::string::npos;
  }));
  cfg.http.enabled = false;
  w = warnings(cfg);
  EXPECT_TRUE(std::any_of(w.begin(), w.end(), [](const std::string& s) {
    return s.find("the credentials API is off") != std::string::npos;
  }));
}

// ------------------------------------------------------------------ flags

std::optional<server_config> resolve_args(std::initializer_list<const char*> args,
                                          std::vector<std::string>& errors) {
  std::vector<const char*> argv = {"anyturn"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto opts = parse_cli(static_cast<int>(argv.size()), argv.data(), errors);
  if (!opts) return std::nullopt;
  return resolve(*opts, errors);
}

TEST(SideFlags, HttpListenAndApiKeys) {
  std::vector<std::string> errors;
  auto cfg = resolve_args({"--user", "a:b", "--auth-secret", "s", "--http-listen", "127.0.0.1:9999",
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
  EXPECT_TRUE(has_error(errors, "auth.secrets is empty")) << dump(errors);
  for (const auto& e : errors) EXPECT_EQ(e.find("too-short"), std::string::npos) << e;
}

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
  EXPECT_TRUE(has_error(errors, "--secret SECRET (or ANYTURN_REST_SECRET) is required")) << dump(errors);
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

}  // namespace
}  // namespace anyturn::config
