// src/app/reload.cpp and server_app::reload: which keys a reload ignores,
// stable tenant indices, what the next snapshot carries over, and a config
// that does not validate changes nothing.
#include <anyturn/app/reload.hpp>

#include <anyturn/app/app.hpp>
#include <anyturn/app/startup.hpp>

#include <gtest/gtest.h>

#include "app_config.hpp"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

namespace anyturn::app {
namespace {

using test::ep;
using test::test_config;

TEST(keep_restart_only, names_and_undoes_every_restart_only_change) {
  const config::server_config running = test_config();
  config::server_config next = running;
  next.listen = {ep("127.0.0.1:3478")};
  next.tls.listen_proxy = {{true, {*auth::cidr::parse("10.0.0.0/8")}}};
  next.relay.port_max = 62199;
  next.threads = 4;
  next.streams.idle_timeout = 99;
  next.http.listen = ep("127.0.0.1:9999");
  next.fleet.drain_timeout = 10;
  next.auth.realm = "other";
  next.stun.other_ip = ep("127.0.0.2:0");
  next.xdp.interfaces = {"eth0"};
  // Reloadable: kept as given.
  next.lifetimes.permission = 120;
  next.peers.deny = {*auth::cidr::parse("198.51.100.0/24")};
  next.log_level = "debug";
  next.usage_log = "/tmp/usage.jsonl";
  next.reload.revoke_removed = false;
  next.max_allocations_per_user = 3;

  const auto ignored = keep_restart_only(running, next);
  EXPECT_EQ(ignored, (std::vector<std::string>{"listen", "relay.ports", "threads",
                                               "tls.listen[].proxy_protocol", "stun.other_ip", "xdp", "realm",
                                               "streams",
                                               "http.listen", "fleet"}));
  EXPECT_EQ(next.listen, running.listen);
  EXPECT_EQ(next.tls.listen_proxy, running.tls.listen_proxy);
  EXPECT_EQ(next.relay.port_max, running.relay.port_max);
  EXPECT_EQ(next.threads, running.threads);
  EXPECT_EQ(next.streams.idle_timeout, running.streams.idle_timeout);
  EXPECT_EQ(next.http.listen, running.http.listen);
  EXPECT_EQ(next.fleet.drain_timeout, running.fleet.drain_timeout);
  EXPECT_EQ(next.auth.realm, running.auth.realm);
  EXPECT_EQ(next.stun.other_ip, running.stun.other_ip);
  EXPECT_EQ(next.xdp, running.xdp);
  EXPECT_EQ(next.lifetimes.permission, 120u);
  EXPECT_EQ(next.peers.deny.size(), 1u);
  EXPECT_EQ(next.log_level, "debug");
  EXPECT_EQ(next.usage_log, "/tmp/usage.jsonl");
  EXPECT_FALSE(next.reload.revoke_removed);
  EXPECT_EQ(next.max_allocations_per_user, 3u);
}

TEST(keep_restart_only, nothing_changed_nothing_ignored) {
  const config::server_config running = test_config();
  config::server_config next = running;
  EXPECT_TRUE(keep_restart_only(running, next).empty());
}

config::tenant_config tenant(const std::string& id) {
  config::tenant_config t;
  t.id = id;
  t.secrets = {id + "-secret-0123456789"};
  return t;
}

TEST(stabilise_tenants, keeps_indices_leaves_placeholders_appends_new_ones) {
  config::server_config running = test_config();
  running.tenants = {tenant("acme"), tenant("globex"), tenant("initech")};
  config::server_config next = running;
  next.tenants = {tenant("umbrella"), tenant("initech"), tenant("acme")};  // globex removed
  std::string error;
  ASSERT_TRUE(stabilise_tenants(running, next, 8, error)) << error;
  ASSERT_EQ(next.tenants.size(), 4u);
  EXPECT_EQ(next.tenants[0].id, "acme");
  EXPECT_EQ(next.tenants[1].id, "globex");
  EXPECT_TRUE(next.tenants[1].secrets.empty()) << "a removed tenant keeps no credential";
  EXPECT_TRUE(next.tenants[1].users.empty());
  EXPECT_TRUE(next.tenants[1].api_keys.empty());
  EXPECT_EQ(next.tenants[2].id, "initech");
  EXPECT_EQ(next.tenants[3].id, "umbrella");
  EXPECT_EQ(next.tenants[3].secrets, tenant("umbrella").secrets);
}

TEST(stabilise_tenants, refuses_more_than_the_capacity) {
  config::server_config running = test_config();
  running.tenants = {tenant("acme")};
  config::server_config next = running;
  next.tenants = {tenant("b1"), tenant("b2")};
  std::string error;
  EXPECT_FALSE(stabilise_tenants(running, next, 2, error));
  EXPECT_NE(error.find("tenants"), std::string::npos) << error;
  EXPECT_EQ(next.tenants.size(), 2u) << "unchanged on failure";
}

TEST(reloaded_state, carries_the_live_objects_over_and_takes_the_new_policy) {
  config::server_config cfg = test_config();
  cfg.max_allocations_per_user = 5;
  auto current = make_shared_state(cfg);
  config::server_config next = cfg;
  next.peers.deny = {*auth::cidr::parse("198.51.100.0/24")};
  next.lifetimes.channel = 100;
  next.max_allocations_per_user = 2;
  next.reload.revoke_removed = false;
  const auto s = reloaded_state(*current, next);
  EXPECT_EQ(s->relays[0].ports, current->relays[0].ports);
  EXPECT_EQ(s->own, current->own);
  EXPECT_EQ(s->nonces, current->nonces);
  EXPECT_EQ(s->user_quotas, current->user_quotas);
  EXPECT_NE(s->peers, current->peers);
  EXPECT_NE(s->credentials, current->credentials);
  EXPECT_EQ(s->channel_lifetime, 100u);
  EXPECT_EQ(s->max_allocations_per_user, std::optional<std::uint32_t>(2));
  EXPECT_FALSE(s->revoke_removed);
}

// server_app::reload against files: a bad file changes nothing, a good one
// moves the generation on and names the ignored keys.
TEST(server_app_reload, bad_config_keeps_the_old_good_one_applies) {
  const std::string path = ::testing::TempDir() + "anyturn-app-reload.yaml";
  const auto write = [&](const std::string& text) { std::ofstream(path) << text; };
  config::server_config cfg = test_config();
  // The file holds what test_config() sets beyond the flags below.
  const std::string base = "state_dir: \"" + cfg.state_dir +
                           "\"\nlimits:\n  udp_socket_buffer: 262144\nauth:\n  nonce_keys: [\"" +
                           cfg.auth.nonce_keys.front() + "\"]\n";
  const auto has = [](const std::vector<std::string>& list, const std::string& needle) {
    return std::any_of(list.begin(), list.end(),
                       [&](const std::string& m) { return m.find(needle) != std::string::npos; });
  };
  write(base + "  users: [{name: u, password: u-password-0123456789}]\n");
  server_app app(cfg);
  config::cli_options source;
  source.config_path = path;
  // What test_config() sets that a file cannot: as flags would.
  // (Port 0 does not validate; a changed listener is restart-only, ignored.)
  source.listen = {"127.0.0.1:3478"};
  source.relay_ip = {"127.0.0.1"};
  source.relay_ports = "62000-62099";
  source.realm = "test";
  source.threads = "2";
  source.http_listen = "127.0.0.1:9641";
  source.allow_peer = {"127.0.0.0/8"};
  app.set_reload_source(source);
  std::string error;
  ASSERT_TRUE(app.start(error)) << error;

  write(base + "  users: [\n");
  auto r = app.reload("test");
  EXPECT_FALSE(r.ok);
  ASSERT_FALSE(r.messages.empty());
  EXPECT_NE(r.messages.front().find("line"), std::string::npos) << r.messages.front();
  EXPECT_EQ(r.generation, 1u);
  write(base + "  users: [{name: u, password: u-password-0123456789}]\nlifetimes:\n  allocation_default: 0\n");
  r = app.reload("test");
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(has(r.messages, "lifetimes.allocation_default")) << ::testing::PrintToString(r.messages);
  EXPECT_EQ(r.generation, 1u);
  const std::string before = app.render_metrics();
  EXPECT_NE(before.find("anyturn_config_reloads_total{result=\"error\"} 2"), std::string::npos) << before;
  EXPECT_NE(before.find("anyturn_config_generation 1"), std::string::npos) << before;

  write(base + "  users: [{name: v, password: v-password-0123456789}]\nstreams:\n  idle_timeout: 77\n");
  r = app.reload("test");
  EXPECT_TRUE(r.ok) << ::testing::PrintToString(r.messages);
  EXPECT_EQ(r.generation, 2u);
  EXPECT_TRUE(has(r.ignored, "streams")) << ::testing::PrintToString(r.ignored);
  EXPECT_FALSE(has(r.ignored, "auth")) << ::testing::PrintToString(r.ignored);
  const std::string after = app.render_metrics();
  EXPECT_NE(after.find("anyturn_config_reloads_total{result=\"ok\"} 1"), std::string::npos) << after;
  EXPECT_NE(after.find("anyturn_config_generation 2"), std::string::npos) << after;
  app.request_stop(0);
  EXPECT_EQ(app.wait(), 0);
  std::filesystem::remove(path);
}

// A reload reaches every worker at once (server_app posts
// worker_core::on_published), not on its next 250 ms tick: what the XDP
// fast path's 100 ms contract needs. Five reloads each switch within 100 ms;
// a worker's tick alone would meet that by chance about 1% of the time.
TEST(server_app_reload, workers_switch_at_once_not_on_their_tick) {
  const std::string path = ::testing::TempDir() + "anyturn-app-reload-poke.yaml";
  const auto write = [&](const std::string& text) { std::ofstream(path) << text; };
  config::server_config cfg = test_config();
  const std::string base = "state_dir: \"" + cfg.state_dir +
                           "\"\nlimits:\n  udp_socket_buffer: 262144\nauth:\n  nonce_keys: [\"" +
                           cfg.auth.nonce_keys.front() + "\"]\n";
  write(base + "peers:\n  deny: [\"198.51.100.0/24\"]\n");
  server_app app(cfg);
  config::cli_options source;
  source.config_path = path;
  source.listen = {"127.0.0.1:3478"};
  source.relay_ip = {"127.0.0.1"};
  source.relay_ports = "62000-62099";
  source.realm = "test";
  source.threads = "2";
  source.http_listen = "127.0.0.1:9641";
  source.allow_peer = {"127.0.0.0/8"};
  app.set_reload_source(source);
  std::string error;
  ASSERT_TRUE(app.start(error)) << error;
  for (int i = 0; i < 5; ++i) {
    write(base + "peers:\n  deny: [\"198.51.100." + std::to_string(i) + "/32\"]\n");
    const auto r = app.reload("test");
    ASSERT_TRUE(r.ok) << ::testing::PrintToString(r.messages);
    const std::string want = "anyturn_config_generation_switched " + std::to_string(r.generation) + "\n";
    const auto start = std::chrono::steady_clock::now();
    while (app.render_metrics().find(want) == std::string::npos &&
           std::chrono::steady_clock::now() - start < std::chrono::milliseconds(100)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    EXPECT_NE(app.render_metrics().find(want), std::string::npos)
        << "reload " << i << ": the workers did not switch within 100 ms";
  }
  app.request_stop(0);
  EXPECT_EQ(app.wait(), 0);
  std::filesystem::remove(path);
}

TEST(server_app_reload, without_a_config_file_it_refuses) {
  server_app app(test_config());
  std::string error;
  ASSERT_TRUE(app.start(error)) << error;
  const auto r = app.reload("test");
  EXPECT_FALSE(r.ok);
  ASSERT_FALSE(r.messages.empty());
  EXPECT_NE(r.messages.front().find("--config"), std::string::npos);
  app.request_stop(0);
  EXPECT_EQ(app.wait(), 0);
}

}  // namespace
}  // namespace anyturn::app
