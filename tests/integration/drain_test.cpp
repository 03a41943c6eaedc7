// Drain against the real daemon (docs/fleet.md, "Drain"): SIGUSR1 and
// POST /admin/drain turn /readyz to 503 and send new Allocates elsewhere
// (300 to --drain-alternate, else 508) while existing allocations keep
// relaying, refreshing and creating permissions; the process exits 0 when
// the last allocation ends, or at --drain-timeout; /admin/undrain ends it.
#include "daemon.hpp"
#include "turn_client.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace anyturn::itest {
namespace {

using clock = std::chrono::steady_clock;

const std::string realm = "anyturn.test";
const std::string admin_key = "drain-test-admin-key-0123456789";

template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit) {
  const auto deadline = clock::now() + limit;
  while (clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  return pred();
}

class Drain : public ::testing::Test {
 protected:
  void TearDown() override {
    if (daemon_ && daemon_->running()) {
      const int rc = daemon_->stop();
      EXPECT_EQ(rc, 0) << "anyturn did not exit cleanly on SIGTERM\n" << daemon_->log();
    }
    if (HasFailure() && daemon_) std::cerr << daemon_->log() << '\n';
  }

  [[nodiscard]] ::testing::AssertionResult start(unsigned slot, std::vector<std::string> extra = {}) {
    const port_range ports = relay_ports_for_slot(slot);
    std::vector<std::string> args = {"--relay-ip", "127.0.0.1", "--relay-ports", ports.flag(),
                                     "--realm", realm, "--allow-peer", "127.0.0.1/32",
                                     "--user", "alice:wonderland-secret", "--user", "bob:builder-secret",
                                     "--threads", "2", "--log-level", "debug",
                                     "--admin-key", admin_key};
    args.insert(args.end(), extra.begin(), extra.end());
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

  [[nodiscard]] int readyz() const {
    auto r = http_request(daemon_->http_port(), "GET", "/readyz");
    return r ? r->status : 0;
  }

  [[nodiscard]] std::optional<double> draining_gauge() const {
    auto r = http_request(daemon_->http_port(), "GET", "/metrics");
    if (!r || r->status != 200) return std::nullopt;
    return metric_value(r->body, "anyturn_draining");
  }

  [[nodiscard]] int admin(std::string_view path, const std::string& key = admin_key) const {
    auto r = http_request(daemon_->http_port(), "POST", path, {"Authorization: Bearer " + key});
    return r ? r->status : 0;
  }

  // The daemon has exited by itself within `limit`; its exit code, or
  // nullopt if it is still running.
  std::optional<int> exited_within(std::chrono::milliseconds limit) {
    if (!eventually([&] { return !daemon_->running(); }, limit)) return std::nullopt;
    return daemon_->stop();  // already reaped: returns its exit status
  }

  // One permission, one Send indication to the peer and one datagram back.
  static void relays(turn_client& c, udp_socket& peer, const stun::endpoint& relayed) {
    auto perm = c.create_permission({peer.local()});
    ASSERT_TRUE(perm && perm->is_success()) << describe(perm);
    c.send_indication(peer.local(), to_bytes("to the peer"));
    auto got = peer.recv(response_timeout);
    ASSERT_TRUE(got.has_value()) << "a Send indication did not reach the peer";
    EXPECT_EQ(to_string(got->data), "to the peer");
    peer.send_to(relayed, to_bytes("to the client"));
    auto back = c.recv_data();
    ASSERT_TRUE(back.has_value()) << "the peer's datagram did not reach the client";
    EXPECT_EQ(to_string(back->payload), "to the client");
  }

  std::unique_ptr<daemon> daemon_;
};

stun::endpoint relayed_of(const std::optional<stun_message>& r) {
  EXPECT_TRUE(r && r->is_success()) << describe(r);
  if (!r || !r->is_success()) return {};
  return r->address(stun::attr::xor_relayed_address).value_or(stun::endpoint{});
}

TEST_F(Drain, Sigusr1KeepsOldAllocationsRefusesNewOnesAndExitsWhenTheLastEnds) {
  ASSERT_TRUE(start(230));
  udp_socket peer(v4_loopback());
  auto old_client = client("alice", "wonderland-secret");
  const stun::endpoint relayed = relayed_of(old_client->allocate());
  ASSERT_EQ(readyz(), 200);
  ASSERT_EQ(draining_gauge(), 0.0);

  const auto sent = clock::now();
  ASSERT_TRUE(daemon_->signal(SIGUSR1));
  ASSERT_TRUE(eventually([&] { return readyz() == 503; }, std::chrono::seconds{1}))
      << "/readyz still answers " << readyz() << " 1 s after SIGUSR1";
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - sent);
  std::cout << "[ drain ] /readyz 503 after " << took.count() << " ms\n";
  EXPECT_EQ(draining_gauge(), 1.0);

  // A new client: no fleet directory and no --drain-alternate, so 508.
  auto new_client = client("bob", "builder-secret");
  auto refused = new_client->allocate();
  ASSERT_TRUE(refused.has_value()) << "no answer to a new Allocate during the drain";
  EXPECT_EQ(refused->error_code(), 508) << refused->describe();

  // The old client goes on as before.
  auto refreshed = old_client->refresh(600);
  ASSERT_TRUE(refreshed && refreshed->is_success()) << describe(refreshed);
  relays(*old_client, peer, relayed);
  auto bound = old_client->channel_bind(0x4001, peer.local());
  EXPECT_TRUE(bound && bound->is_success()) << describe(bound);
  ASSERT_TRUE(daemon_->running()) << "the drain must wait for the old allocation";

  // The last allocation ends: the process exits 0 by itself.
  auto deleted = old_client->refresh(0);
  ASSERT_TRUE(deleted && deleted->is_success()) << describe(deleted);
  const auto code = exited_within(std::chrono::seconds{3});
  ASSERT_TRUE(code.has_value()) << "still running 3 s after the last allocation ended\n" << daemon_->log();
  EXPECT_EQ(*code, 0) << daemon_->log();
  EXPECT_NE(daemon_->log().find("drain finished"), std::string::npos) << daemon_->log();
}

TEST_F(Drain, DrainAlternateGetsTheNewAllocates) {
  ASSERT_TRUE(start(231, {"--drain-alternate", "127.0.0.1:3479"}));
  auto keep = client("alice", "wonderland-secret");
  relayed_of(keep->allocate());  // keeps the process up
  ASSERT_TRUE(daemon_->signal(SIGUSR1));
  ASSERT_TRUE(eventually([&] { return draining_gauge() == 1.0; }, std::chrono::seconds{1}));

  auto fresh = client("bob", "builder-secret");
  auto redirected = fresh->allocate();
  ASSERT_TRUE(redirected.has_value());
  ASSERT_EQ(redirected->error_code(), 300) << redirected->describe();
  const auto alternate = redirected->address(stun::attr::alternate_server);
  ASSERT_TRUE(alternate.has_value()) << redirected->describe();
  EXPECT_EQ(alternate->to_string(), "127.0.0.1:3479");
  // The 300 is signed: the client knows it came from the server it authenticated with.
  const auto key = fresh->md5_key();
  ASSERT_TRUE(key.has_value());
  EXPECT_TRUE(redirected->integrity_ok(*key)) << "300 Try Alternate without a valid MESSAGE-INTEGRITY";
}

TEST_F(Drain, AdminDrainAndUndrainOverHttp) {
  ASSERT_TRUE(start(232));
  auto keep = client("alice", "wonderland-secret");
  relayed_of(keep->allocate());

  EXPECT_EQ(admin("/admin/drain", "not-the-admin-key-0123456789"), 401);
  EXPECT_EQ(readyz(), 200) << "a wrong key must not drain";
  ASSERT_EQ(admin("/admin/drain"), 200);
  ASSERT_TRUE(eventually([&] { return readyz() == 503; }, std::chrono::seconds{1}));
  auto during = client("bob", "builder-secret");
  auto refused = during->allocate();
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->error_code(), 508) << refused->describe();

  ASSERT_EQ(admin("/admin/undrain"), 200);
  EXPECT_TRUE(eventually([&] { return readyz() == 200; }, std::chrono::seconds{1}));
  EXPECT_EQ(draining_gauge(), 0.0);
  auto after = client("bob", "builder-secret");
  relayed_of(after->allocate());
  EXPECT_TRUE(daemon_->running());
}

TEST_F(Drain, TimeoutEndsTheProcessAndSaysHowManyAllocationsItCut) {
  ASSERT_TRUE(start(233, {"--drain-timeout", "1"}));
  auto a = client("alice", "wonderland-secret");
  relayed_of(a->allocate());
  auto b = client("bob", "builder-secret");
  relayed_of(b->allocate());
  ASSERT_TRUE(daemon_->signal(SIGUSR1));
  const auto code = exited_within(std::chrono::seconds{4});
  ASSERT_TRUE(code.has_value()) << "a 1 s drain timeout did not end the process\n" << daemon_->log();
  EXPECT_EQ(*code, 0);
  EXPECT_NE(daemon_->log().find("ending the 2 allocations left"), std::string::npos) << daemon_->log();
}

}  // namespace
}  // namespace anyturn::itest
