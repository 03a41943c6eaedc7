// Config hot reload against the real daemon (docs/configuration.md,
// "Reloading the configuration"): POST /admin/reload and SIGHUP re-read the
// --config file; a new user can allocate at once, a removed user's
// allocation ends, a config that does not validate answers 400 and changes
// nothing, a newly denied peer stops receiving within a second, and the
// restart-only keys are named in the answer.
#include "daemon.hpp"
#include "turn_client.hpp"

#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace anyturn::itest {
namespace {

using clock = std::chrono::steady_clock;

const std::string realm = "anyturn.test";
const std::string admin_key = "reload-test-admin-key-0123456789";

template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit) {
  const auto deadline = clock::now() + limit;
  while (clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  return pred();
}

// A config file: `users` as "name:password", peers.allow as given.
std::string config_text(const std::vector<std::string>& users, const std::vector<std::string>& allow,
                        const std::string& extra = {}) {
  std::string out = "auth:\n  users:\n";
  for (const auto& u : users) {
    const auto colon = u.find(':');
    out += "    - name: " + u.substr(0, colon) + "\n      password: \"" + u.substr(colon + 1) + "\"\n";
  }
  if (users.empty()) out = "auth:\n  users: []\n";
  out += "peers:\n  allow: [";
  for (std::size_t i = 0; i < allow.size(); ++i) out += (i ? ", \"" : "\"") + allow[i] + "\"";
  out += "]\n" + extra;
  return out;
}

class Reload : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = ::testing::TempDir() + "anyturn-reload-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".yaml";
  }
  void TearDown() override {
    if (daemon_ && daemon_->running()) {
      const int rc = daemon_->stop();
      EXPECT_EQ(rc, 0) << "anyturn did not exit cleanly on SIGTERM\n" << daemon_->log();
    }
    if (HasFailure() && daemon_) std::cerr << daemon_->log() << '\n';
    std::filesystem::remove(path_);
  }

  void write(const std::string& text) {
    const std::string tmp = path_ + ".tmp";
    std::ofstream(tmp) << text;
    std::filesystem::rename(tmp, path_);
  }

  [[nodiscard]] ::testing::AssertionResult start(unsigned slot, const std::string& text) {
    write(text);
    const port_range ports = relay_ports_for_slot(slot);
    std::vector<std::string> args = {"--config", path_, "--relay-ip", "127.0.0.1",
                                     "--relay-ports", ports.flag(), "--realm", realm,
                                     "--threads", "2", "--log-level", "debug",
                                     "--admin-key", admin_key};
    daemon_ = std::make_unique<daemon>(daemon::options{false, args});
    if (!daemon_->start()) {
      return ::testing::AssertionFailure() << "daemon did not become ready\n" << daemon_->log();
    }
    return ::testing::AssertionSuccess();
  }

  std::unique_ptr<turn_client> client(const std::string& user, const std::string& password) {
    auto c = std::make_unique<turn_client>(daemon_->address());
    c->set_credentials({user, password});
    return c;
  }

  std::optional<http_response> reload() const {
    return http_request(daemon_->http_port(), "POST", "/admin/reload",
                        {"Authorization: Bearer " + admin_key});
  }

  [[nodiscard]] std::optional<double> metric(const std::string& series) const {
    auto r = http_request(daemon_->http_port(), "GET", "/metrics");
    if (!r || r->status != 200) return std::nullopt;
    return metric_value(r->body, series);
  }

  // Every worker runs on the generation now in force.
  [[nodiscard]] bool switched() const {
    const auto g = metric("anyturn_config_generation");
    return g && metric("anyturn_config_generation_switched") == g;
  }

  std::string path_;
  std::unique_ptr<daemon> daemon_;
};

stun::endpoint relayed_of(const std::optional<stun_message>& r) {
  EXPECT_TRUE(r && r->is_success()) << describe(r);
  if (!r || !r->is_success()) return {};
  return r->address(stun::attr::xor_relayed_address).value_or(stun::endpoint{});
}

// The peer's datagram reaches the client through `relayed`.
bool peer_reaches(turn_client& c, udp_socket& peer, const stun::endpoint& relayed) {
  peer.send_to(relayed, to_bytes("ping"));
  const auto back = c.recv_data(std::chrono::milliseconds{300});
  return back.has_value() && to_string(back->payload) == "ping";
}

TEST_F(Reload, HttpReloadAddsAndRemovesUsers) {
  ASSERT_TRUE(start(240, config_text({"alice:wonderland-secret"}, {"127.0.0.1/32"})));
  EXPECT_EQ(metric("anyturn_config_generation"), 1.0);
  auto carol = client("carol", "carol-password-1234");
  auto refused = carol->allocate();
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->error_code(), 401) << refused->describe();

  udp_socket peer(v4_loopback());
  auto alice = client("alice", "wonderland-secret");
  const stun::endpoint relayed = relayed_of(alice->allocate());
  auto perm = alice->create_permission({peer.local()});
  ASSERT_TRUE(perm && perm->is_success()) << describe(perm);
  ASSERT_TRUE(peer_reaches(*alice, peer, relayed));

  // carol in, alice out.
  write(config_text({"carol:carol-password-1234"}, {"127.0.0.1/32"}));
  const auto r = reload();
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_NE(r->body.find("\"ok\":true"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("\"generation\":2"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("\"ignored\":[]"), std::string::npos) << r->body;
  ASSERT_TRUE(eventually([&] { return switched(); }, std::chrono::seconds{1}));

  auto carol2 = client("carol", "carol-password-1234");
  relayed_of(carol2->allocate());
  EXPECT_EQ(metric("anyturn_allocations_closed_total{reason=\"reloaded\"}"), 1.0);
  EXPECT_FALSE(peer_reaches(*alice, peer, relayed)) << "alice's allocation outlived her removal";
  auto again = alice->refresh(600);
  ASSERT_TRUE(again.has_value());
  EXPECT_TRUE(again->is_error()) << again->describe();
  EXPECT_EQ(metric("anyturn_config_reloads_total{result=\"ok\"}"), 1.0);

  const auto status = http_request(daemon_->http_port(), "GET", "/admin/status",
                                   {"Authorization: Bearer " + admin_key});
  ASSERT_TRUE(status && status->status == 200);
  EXPECT_NE(status->body.find("\"config_generation\":2"), std::string::npos) << status->body;
  EXPECT_NE(status->body.find("\"uptime_s\":"), std::string::npos) << status->body;
  EXPECT_NE(status->body.find("\"version\":"), std::string::npos) << status->body;
}

TEST_F(Reload, BadConfigAnswers400AndKeepsTheOldOne) {
  ASSERT_TRUE(start(241, config_text({"alice:wonderland-secret"}, {"127.0.0.1/32"})));
  udp_socket peer(v4_loopback());
  auto alice = client("alice", "wonderland-secret");
  const stun::endpoint relayed = relayed_of(alice->allocate());
  ASSERT_TRUE(alice->create_permission({peer.local()})->is_success());

  // A YAML syntax error: the answer names the line.
  write("auth:\n  users: [\n    - name: x\n");
  auto r = reload();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_NE(r->body.find("line"), std::string::npos) << r->body;
  // A validation error: the answer names the key.
  write(config_text({"alice:wonderland-secret"}, {"127.0.0.1/32"}, "lifetimes:\n  allocation_max: 0\n"));
  r = reload();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_NE(r->body.find("lifetimes"), std::string::npos) << r->body;

  EXPECT_EQ(metric("anyturn_config_reloads_total{result=\"error\"}"), 2.0);
  EXPECT_EQ(metric("anyturn_config_generation"), 1.0);
  EXPECT_TRUE(peer_reaches(*alice, peer, relayed)) << "a failed reload disturbed an allocation";
  auto alice2 = client("alice", "wonderland-secret");
  relayed_of(alice2->allocate());
  EXPECT_NE(daemon_->log().find("config not reloaded"), std::string::npos);
}

TEST_F(Reload, SighupReloadsAndNewlyDeniedPeerStopsWithinASecond) {
  ASSERT_TRUE(start(242, config_text({"alice:wonderland-secret"}, {"127.0.0.1/32"})));
  udp_socket peer(v4_loopback());
  auto alice = client("alice", "wonderland-secret");
  const stun::endpoint relayed = relayed_of(alice->allocate());
  ASSERT_TRUE(alice->create_permission({peer.local()})->is_success());
  ASSERT_TRUE(alice->channel_bind(0x4001, peer.local())->is_success());
  ASSERT_TRUE(peer_reaches(*alice, peer, relayed));

  // Loopback is no longer allowed (the built-in deny applies again), and a
  // restart-only key changed.
  write(config_text({"alice:wonderland-secret"}, {}, "streams:\n  idle_timeout: 45\n"));
  const auto sent = clock::now();
  ASSERT_TRUE(daemon_->signal(SIGHUP));
  ASSERT_TRUE(eventually([&] { return metric("anyturn_config_generation") == 2.0 && switched(); },
                         std::chrono::seconds{1}))
      << "the workers did not switch within 1 s of SIGHUP";
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - sent);
  std::cout << "[ reload ] every worker switched " << took.count() << " ms after SIGHUP\n";
  EXPECT_LE(took.count(), 1000);
  EXPECT_FALSE(peer_reaches(*alice, peer, relayed)) << "a newly denied peer still reaches the client";
  EXPECT_GE(metric("anyturn_reload_peers_removed_total"), 2.0);  // the permission and the channel
  auto perm = alice->create_permission({peer.local()});
  ASSERT_TRUE(perm.has_value());
  EXPECT_EQ(perm->error_code(), 403) << perm->describe();
  // alice herself stays.
  auto refreshed = alice->refresh(600);
  EXPECT_TRUE(refreshed && refreshed->is_success()) << describe(refreshed);
  EXPECT_NE(daemon_->log().find("'streams' changed but needs a restart"), std::string::npos);
}

TEST_F(Reload, IgnoredKeysAreNamedAndRevokeRemovedFalseKeepsAllocations) {
  ASSERT_TRUE(start(243, config_text({"alice:wonderland-secret"}, {"127.0.0.1/32"},
                                     "reload:\n  revoke_removed: false\n")));
  udp_socket peer(v4_loopback());
  auto alice = client("alice", "wonderland-secret");
  const stun::endpoint relayed = relayed_of(alice->allocate());
  ASSERT_TRUE(alice->create_permission({peer.local()})->is_success());

  write(config_text({"bob:builder-secret-99"}, {"127.0.0.1/32"},
                    "reload:\n  revoke_removed: false\nlimits:\n  udp_busy_poll_us: 5\nstreams:\n  idle_timeout: 45\n"));
  const auto r = reload();
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_NE(r->body.find("\"ignored\":[\"limits.udp_busy_poll_us\",\"streams\"]"), std::string::npos) << r->body;
  ASSERT_TRUE(eventually([&] { return switched(); }, std::chrono::seconds{1}));
  EXPECT_TRUE(peer_reaches(*alice, peer, relayed)) << "revoke_removed: false ended the allocation";
  EXPECT_EQ(metric("anyturn_allocations_closed_total{reason=\"reloaded\"}"), 0.0);
  auto bob = client("bob", "builder-secret-99");
  relayed_of(bob->allocate());
}

}  // namespace
}  // namespace anyturn::itest
