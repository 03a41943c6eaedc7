// The side-module wiring: config -> credential store / tenant table / HTTP
// server config, derived ICE URLs, credential minting, and the running
// app's HTTP server (/readyz, /metrics). The net counters collector is
// metrics' (tests/unit/metrics/net_metrics_test.cpp).
#include <anyturn/app/app.hpp>
#include <anyturn/app/side.hpp>

#include <anyturn/auth/credentials.hpp>

#include <gtest/gtest.h>

#include "app_config.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

namespace anyturn::app {
namespace {

stun::endpoint ep(const char* text) { return *stun::endpoint::parse(text, true); }

auth::static_user user(const std::string& name) {
  auth::static_user u;
  u.name = name;
  u.password = "pw";
  return u;
}

config::server_config two_tenants() {
  config::server_config cfg;
  cfg.listen = {ep("127.0.0.1:3478")};
  cfg.relay.ips = {ep("127.0.0.1")};
  cfg.auth.realm = "r";
  cfg.auth.users = {user("owner")};
  cfg.auth.rest_secrets = {"default-secret"};
  cfg.auth.api_keys = {"default-key-0123456789"};
  config::tenant_config a;
  a.id = "acme";
  a.users = {user("acme-user")};
  a.secrets = {"acme-new", "acme-old"};
  a.api_keys = {"acme-key-0123456789"};
  a.max_allocations = 10;
  a.max_allocations_per_user = 2;
  a.bandwidth = 5000;
  config::tenant_config b;
  b.id = "beta";  // TURN only, no API keys
  b.secrets = {"beta-secret"};
  cfg.tenants = {a, b};
  cfg.http.max_ttl = 900;
  cfg.http.default_ttl = 300;
  return cfg;
}

TEST(side, tenants_share_one_index_everywhere) {
  const auto cfg = two_tenants();
  const auto creds = tenant_credentials(cfg);
  ASSERT_EQ(creds.size(), 3u);
  EXPECT_EQ(creds[0].id, "");
  EXPECT_EQ(creds[0].users.size(), 1u);
  EXPECT_EQ(creds[1].id, "acme");
  EXPECT_EQ(creds[1].secrets, (std::vector<std::string>{"acme-new", "acme-old"}));
  EXPECT_EQ(creds[2].id, "beta");

  const auto policies = tenant_policies(cfg);
  ASSERT_EQ(policies.size(), 3u);
  EXPECT_EQ(policies[0].max_allocations, 50000u);  // limits.max_allocations
  EXPECT_EQ(policies[1].id, "acme");
  EXPECT_EQ(policies[1].max_allocations, 10u);
  EXPECT_EQ(policies[1].max_allocations_per_user, 2u);
  EXPECT_EQ(policies[1].bandwidth_bytes_per_s, 5000u);
  EXPECT_EQ(tenant_ids(cfg), (std::vector<std::string>{"", "acme", "beta"}));

  // The credential store built from them resolves usernames to those indices.
  const auto s = make_shared_state(cfg);
  ASSERT_EQ(s->tenants.size(), 3u);
  EXPECT_TRUE(s->tenant_usage != nullptr);  // acme has max_allocations
  EXPECT_TRUE(s->user_quotas != nullptr);   // acme has a per-user limit
  std::array<auth::key_candidate, auth::max_candidates> out{};
  std::size_t count = 0;
  auth::tenant_index t = 99;
  EXPECT_EQ(s->credentials->lookup("acme-user", 0, out, count, t), auth::lookup_status::ok);
  EXPECT_EQ(t, 1);
  EXPECT_EQ(s->credentials->lookup("2000000000:beta:x", 0, out, count, t), auth::lookup_status::ok);
  EXPECT_EQ(t, 2);
  EXPECT_EQ(s->credentials->lookup("2000000000:x", 0, out, count, t), auth::lookup_status::ok);
  EXPECT_EQ(t, 0);
}

TEST(side, no_quota_tables_without_limits) {
  auto cfg = two_tenants();
  cfg.tenants[0].max_allocations = 0;
  cfg.tenants[0].max_allocations_per_user = 0;
  cfg.max_allocations = 0;
  cfg.max_allocations_per_user = 0;
  const auto s = make_shared_state(cfg);
  EXPECT_EQ(s->tenant_usage, nullptr);
  EXPECT_EQ(s->user_quotas, nullptr);
}

// Hole 1.7 of issue 12: with the shipped defaults, a user and the default
// tenant each have a finite allocation quota.
TEST(side, default_quotas_are_finite) {
  auto cfg = two_tenants();
  cfg.tenants.clear();
  const auto s = make_shared_state(cfg);
  ASSERT_NE(s->user_quotas, nullptr);
  EXPECT_EQ(s->user_quotas->limit(), 100u);
  ASSERT_NE(s->tenant_usage, nullptr);
  ASSERT_EQ(s->tenants.size(), 1u);
  EXPECT_EQ(s->tenants[0].max_allocations, 50000u);
  // The default tenant's quota is counted: 50,000 fit, the next does not.
  for (int i = 0; i < 50000; ++i) ASSERT_TRUE(s->tenant_usage->try_acquire(0, s->tenants[0].max_allocations));
  EXPECT_FALSE(s->tenant_usage->try_acquire(0, s->tenants[0].max_allocations));
}

TEST(side, allocation_limits_are_the_global_ones_with_the_tenants_keys) {
  auto cfg = two_tenants();
  cfg.allocation_limits.max_peers = 10;
  cfg.allocation_limits.packets_per_second = 500;
  cfg.tenants[0].allocation_limits.max_peers = 200;
  cfg.tenants[0].allocation_limits.bytes_per_second = 0;
  const auto s = make_shared_state(cfg);
  ASSERT_EQ(s->tenants.size(), 3u);
  EXPECT_EQ(s->allocation_limits.max_peers, 10u);
  EXPECT_EQ(s->tenants[0].allocation.max_peers, 10u);
  EXPECT_EQ(s->tenants[0].allocation.packets_per_second, 500u);
  EXPECT_EQ(s->tenants[1].allocation.max_peers, 200u);
  EXPECT_EQ(s->tenants[1].allocation.bytes_per_second, 0u);
  EXPECT_EQ(s->tenants[1].allocation.packets_per_second, 500u);
  EXPECT_EQ(s->tenants[1].allocation.max_channels, 64u);
  EXPECT_EQ(s->tenants[2].allocation.max_peers, 10u);
}

TEST(side, http_config_lists_tenants_with_api_keys) {
  const auto cfg = two_tenants();
  http::ice_urls urls;
  urls.turn = {"turn:x:3478?transport=udp"};
  const auto h = http_server_config(cfg, urls);
  EXPECT_EQ(h.address, "127.0.0.1");
  EXPECT_EQ(h.port, 9641);
  EXPECT_FALSE(h.tls.has_value());
  ASSERT_EQ(h.tenants.size(), 2u);  // default and acme; beta has no keys
  EXPECT_EQ(h.tenants[0].id, "");
  EXPECT_EQ(h.tenants[0].secrets, std::vector<std::string>{"default-secret"});
  EXPECT_EQ(h.tenants[1].id, "acme");
  EXPECT_EQ(h.tenants[1].secrets.front(), "acme-new");
  EXPECT_EQ(h.tenants[1].max_ttl, 900u);
  EXPECT_EQ(h.tenants[1].default_ttl, 300u);
  EXPECT_EQ(h.urls.turn, urls.turn);
  EXPECT_TRUE(http::validate(h).empty());
}

TEST(side, ice_urls_are_derived_from_listeners_unless_configured) {
  config::server_config cfg;
  cfg.relay.ips = {ep("203.0.113.7"), ep("2001:db8::7")};
  const std::vector<stun::endpoint> listeners = {ep("0.0.0.0:3478"), ep("[::]:3478"), ep("192.0.2.1:80")};
  const std::vector<stun::endpoint> tls = {ep("0.0.0.0:5349")};
  auto r = ice_urls_for(cfg, listeners, tls);
  EXPECT_TRUE(r.derived);
  EXPECT_EQ(r.urls.stun, (std::vector<std::string>{"stun:203.0.113.7:3478", "stun:[2001:db8::7]:3478",
                                                   "stun:192.0.2.1:80"}));
  EXPECT_EQ(r.urls.turn, (std::vector<std::string>{
                             "turn:203.0.113.7:3478?transport=udp",
                             "turn:[2001:db8::7]:3478?transport=udp",
                             "turn:192.0.2.1:80?transport=udp",
                             "turn:203.0.113.7:3478?transport=tcp",
                             "turn:[2001:db8::7]:3478?transport=tcp",
                             "turn:192.0.2.1:80?transport=tcp",
                             "turns:203.0.113.7:5349?transport=tcp",
                         }));

  cfg.streams.tcp = false;
  cfg.relay.ips = {ep("203.0.113.7")};  // no IPv6 relay: the [::] listener is not advertised
  r = ice_urls_for(cfg, listeners, {});
  EXPECT_EQ(r.urls.turn, (std::vector<std::string>{"turn:203.0.113.7:3478?transport=udp",
                                                   "turn:192.0.2.1:80?transport=udp"}));

  cfg.http.turn_urls = {"turns:turn.example.com:443?transport=tcp"};
  r = ice_urls_for(cfg, listeners, tls);
  EXPECT_FALSE(r.derived);
  EXPECT_TRUE(r.urls.stun.empty());
  EXPECT_EQ(r.urls.turn, cfg.http.turn_urls);
}

TEST(side, minted_credentials_are_rest_credentials) {
  config::credentials_options o;
  o.secret = "s";
  o.user = "bob";
  o.ttl = 600;
  auto c = mint_credentials(o, 1700000000);
  EXPECT_EQ(c.username, "1700000600:bob");
  EXPECT_EQ(c.password, auth::rest_password("s", "1700000600:bob"));
  EXPECT_EQ(c.expires_at, 1700000600);
  EXPECT_EQ(format_credentials(c, false), "username: 1700000600:bob\npassword: " + c.password +
                                              "\nttl: 600\nexpires: 2023-11-14T22:23:20Z\n");
  EXPECT_EQ(format_credentials(c, true), "{\"username\":\"1700000600:bob\",\"password\":\"" + c.password +
                                             "\",\"ttl\":600,\"expiresAt\":\"2023-11-14T22:23:20Z\"}\n");
  o.tenant = "acme";
  EXPECT_EQ(mint_credentials(o, 1700000000).username, "1700000600:acme:bob");
  o.tenant.clear();
  o.user.clear();
  EXPECT_EQ(mint_credentials(o, 1700000000).username, "1700000600");
}

// A GET to 127.0.0.1:port; the status code, or 0.
int http_status(std::uint16_t port, const char* target, std::string* body = nullptr) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0) {
    ::close(fd);
    return 0;
  }
  const std::string req = std::string("GET ") + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  (void)!::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string raw;
  char buf[8192];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) raw.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  if (raw.size() < 12) return 0;
  if (body != nullptr) {
    const auto end = raw.find("\r\n\r\n");
    *body = end == std::string::npos ? std::string() : raw.substr(end + 4);
  }
  return std::stoi(raw.substr(9, 3));
}

config::server_config app_config() {
  config::server_config cfg;
  cfg.state_dir = test::process_state_dir();
  cfg.listen = {ep("127.0.0.1:0")};
  cfg.relay.ips = {ep("127.0.0.1")};
  cfg.relay.port_min = 62200;
  cfg.relay.port_max = 62299;
  cfg.auth.users = {user("u")};
  cfg.auth.nonce_keys = {"0123456789abcdef0123"};
  cfg.threads = 2;
  cfg.udp_socket_buffer = 256 * 1024;
  cfg.http.listen = ep("127.0.0.1:0");
  return cfg;
}

TEST(side, app_serves_metrics_and_readiness_on_its_own_thread) {
  server_app app(app_config());
  std::string error;
  ASSERT_TRUE(app.start(error)) << error;
  const std::uint16_t port = app.http_port();
  ASSERT_NE(port, 0);
  EXPECT_EQ(http_status(port, "/healthz"), 200);
  EXPECT_EQ(http_status(port, "/readyz"), 200);
  std::string body;
  EXPECT_EQ(http_status(port, "/metrics", &body), 200);
  EXPECT_NE(body.find("anyturn_workers 2\n"), std::string::npos) << body;
  EXPECT_NE(body.find("anyturn_connections_open 0\n"), std::string::npos) << body;
  EXPECT_NE(body.find("process_cpu_seconds_total"), std::string::npos);
  EXPECT_NE(body.find("anyturn_build_info{"), std::string::npos);
  // No API keys: the API answers 401, it does not exist for nobody.
  EXPECT_EQ(http_status(port, "/api/v1/turn-credentials?service=turn"), 401);

  app.request_stop();  // draining from here on
  EXPECT_EQ(http_status(port, "/readyz"), 503);
  EXPECT_EQ(app.wait(), 0);
  EXPECT_EQ(http_status(port, "/healthz"), 0);  // stopped with the app
  EXPECT_EQ(app.render_metrics().find("anyturn_workers"), std::string::npos)
      << "the worker collectors must be gone once the workers stop";
}

TEST(side, http_port_in_use_fails_start_and_leaves_nothing_running) {
  const int holder = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(holder, reinterpret_cast<sockaddr*>(&sin), sizeof sin), 0);
  ASSERT_EQ(::listen(holder, 1), 0);
  socklen_t len = sizeof sin;
  ::getsockname(holder, reinterpret_cast<sockaddr*>(&sin), &len);

  auto cfg = app_config();
  cfg.http.listen.port = ntohs(sin.sin_port);
  server_app app(cfg);
  std::string error;
  EXPECT_FALSE(app.start(error));
  EXPECT_NE(error.find("HTTP server"), std::string::npos) << error;
  EXPECT_EQ(app.wait(), 1);
  ::close(holder);
}

TEST(side, http_can_be_turned_off) {
  auto cfg = app_config();
  cfg.http.enabled = false;
  server_app app(cfg);
  std::string error;
  ASSERT_TRUE(app.start(error)) << error;
  EXPECT_EQ(app.http_port(), 0);
  app.request_stop();
  EXPECT_EQ(app.wait(), 0);
}

}  // namespace
}  // namespace anyturn::app
