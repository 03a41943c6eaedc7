// fleet::node (src/fleet/node.cpp) against a real redis-server: the
// directory, revocations across nodes, commands, quota leases, and Redis
// going away and coming back.
#include <anyturn/fleet/node.hpp>

#include <anyturn/fleet/records.hpp>
#include <anyturn/metrics/registry.hpp>

#include "redis_server.hpp"

#include <gtest/gtest.h>

#include <signal.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

namespace anyturn::fleet {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

template <typename F>
bool wait_until(F done, std::chrono::milliseconds limit = 3s) {
  const auto deadline = clock::now() + limit;
  while (!done()) {
    if (clock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

stun::endpoint ip(const std::string& s) { return *stun::endpoint::parse(s, true); }

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// One node with its shared objects, as the app would build them.
struct test_node {
  test_node(const std::string& url, const std::string& id, const std::string& addr, double load,
            std::uint32_t acme_max = 0, bool with_command_hook = true) {
    options o;
    o.redis_url = url;
    o.node_id = id;
    o.self.v4 = ip(addr);
    o.self.udp_port = 3478;
    o.self.tls_port = 5349;
    o.tenants = {{"", 0}, {"acme", acme_max}};
    o.heartbeat = 200ms;
    this->load = load;
    hooks h;
    h.allocations = [this] { return static_cast<std::uint64_t>(quotas->active(1)); };
    h.load = [this] { return this->load.load(); };
    h.draining = [this] { return draining.load(); };
    if (with_command_hook)
      h.command = [this](bool drain) { (drain ? drains : undrains).fetch_add(1); };
    n = std::make_unique<node>(o, h, signals, board, quotas);
  }
  [[nodiscard]] bool revoked(const std::string& tenant, const std::string& username) const {
    return board->snapshot()->revoked(tenant, username, unix_now());
  }
  [[nodiscard]] std::string metrics() const {
    metrics::sink s;
    n->collect(s);
    return s.text();
  }

  std::shared_ptr<turn::fleet_signals> signals = std::make_shared<turn::fleet_signals>();
  std::shared_ptr<auth::revocation_board> board = std::make_shared<auth::revocation_board>();
  std::shared_ptr<turn::tenant_quota> quotas = std::make_shared<turn::tenant_quota>(2);
  std::atomic<double> load{0};
  std::atomic<bool> draining{false};
  std::atomic<int> drains{0}, undrains{0};
  std::unique_ptr<node> n;
};

class FleetNode : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!itest::redis_server::available()) GTEST_SKIP() << "redis-server is not installed (apt-get install redis-server)";
    ASSERT_TRUE(redis_.start()) << redis_.log();
  }
  std::unique_ptr<test_node> make(const std::string& id, const std::string& addr, double load,
                                  std::uint32_t acme_max = 0, bool with_command_hook = true) {
    auto t = std::make_unique<test_node>(redis_.url(), id, addr, load, acme_max, with_command_hook);
    t->n->start();
    return t;
  }
  itest::redis_server redis_;
};

TEST(FleetNodeOptions, BadUrlsAreStartUpErrors) {
  auto make = [](std::string url, std::string id = "n1") {
    options o;
    o.redis_url = std::move(url);
    o.node_id = std::move(id);
    return node(o, {}, nullptr, nullptr, nullptr);
  };
  try {
    make("rediss://cache:6380");
    FAIL() << "rediss:// must be refused";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("TLS to Redis) is not supported by this build"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(make("http://x"), std::invalid_argument);
  EXPECT_THROW(make("redis://h:0"), std::invalid_argument);
  EXPECT_THROW(make("redis://h", ""), std::invalid_argument);
}

TEST_F(FleetNode, DirectoryRegistersWithATtlAndPicksTheLeastLoadedServingNode) {
  auto a = make("a", "192.0.2.1", 0.5);
  auto b = make("b", "192.0.2.2", 0.2);
  auto c = make("c", "192.0.2.3", 0.1);
  c->draining = true;
  ASSERT_TRUE(wait_until([&] { return a->n->nodes_seen() == 3 && b->n->nodes_seen() == 3; }));
  ASSERT_TRUE(wait_until([&] {
    auto t = a->signals->drain_target();
    return t && t->v4 == ip("192.0.2.2");
  })) << "a sends to b: c is less loaded but draining";
  EXPECT_EQ(a->signals->drain_target()->udp_port, 3478);
  EXPECT_EQ(a->signals->drain_target()->tls_port, 5349);
  ASSERT_TRUE(wait_until([&] {
    auto t = b->signals->drain_target();
    return t && t->v4 == ip("192.0.2.1");
  }));
  // The record carries a TTL of about three heartbeats.
  const auto pttl = redis_.command("PTTL anyturn:node:a");
  ASSERT_EQ(pttl[0], ':') << pttl;
  const auto ms = std::stoll(pttl.substr(1));
  EXPECT_GT(ms, 0);
  EXPECT_LE(ms, 600);
  EXPECT_NE(redis_.command("GET anyturn:node:a").find(R"("draining":false)"), std::string::npos);

  // c stops draining and is now the least loaded.
  c->draining = false;
  ASSERT_TRUE(wait_until([&] {
    auto t = a->signals->drain_target();
    return t && t->v4 == ip("192.0.2.3");
  }));

  // A node that stops leaves the directory.
  b->n->stop();
  c->n->stop();
  ASSERT_TRUE(wait_until([&] { return !a->signals->drain_target() && a->n->nodes_seen() == 1; }));
  EXPECT_EQ(redis_.command("EXISTS anyturn:node:b"), ":0\r\n");
}

TEST_F(FleetNode, ADeadNodeDropsOutWhenItsRecordExpires) {
  auto a = make("a", "192.0.2.1", 0.5);
  node_record ghost;
  ghost.id = "ghost";
  ghost.address.v4 = ip("192.0.2.9");
  ghost.address.udp_port = 3478;
  ASSERT_EQ(redis_.command({"SET", "anyturn:node:ghost", to_json(ghost), "PX", "500"}), "+OK\r\n");
  ASSERT_EQ(redis_.command("SADD anyturn:nodes ghost"), ":1\r\n");
  ASSERT_TRUE(wait_until([&] {
    auto t = a->signals->drain_target();
    return t && t->v4 == ip("192.0.2.9");
  }));
  // No heartbeat refreshes the ghost: after its TTL it is gone everywhere.
  ASSERT_TRUE(wait_until([&] { return !a->signals->drain_target(); }, 2s));
  EXPECT_TRUE(wait_until([&] { return redis_.command("SISMEMBER anyturn:nodes ghost") == ":0\r\n"; }));
  EXPECT_EQ(a->n->nodes_seen(), 1u);
}

TEST_F(FleetNode, ARevocationReachesAnotherNodeWithinOneSecond) {
  auto a = make("a", "192.0.2.1", 0);
  auto b = make("b", "192.0.2.2", 0);
  ASSERT_TRUE(wait_until([&] { return a->n->redis_up() && b->n->redis_up(); }));
  const auto until = unix_now() + 600;
  const std::string username = std::to_string(until) + ":acme:alice";
  const auto t0 = clock::now();
  a->n->publish_revocation({"acme", username, "", until});
  EXPECT_TRUE(a->revoked("acme", username)) << "the local board at once";
  ASSERT_TRUE(wait_until([&] { return b->revoked("acme", username); }, 1s)) << "b within 1 s";
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - t0);
  RecordProperty("revocation_ms", static_cast<int>(took.count()));
  EXPECT_FALSE(b->revoked("acme", std::to_string(until) + ":acme:bob"));
  // Stored until the credential's expiry.
  const auto ttl = redis_.command("TTL anyturn:revoked:acme:username:" + username);
  ASSERT_EQ(ttl[0], ':') << ttl;
  EXPECT_GT(std::stoll(ttl.substr(1)), 590);
  EXPECT_LE(std::stoll(ttl.substr(1)), 600);
  // A user-wide revocation too.
  a->n->publish_revocation({"acme", "", "carol", until});
  ASSERT_TRUE(wait_until([&] { return b->revoked("acme", std::to_string(until - 5) + ":acme:carol"); }, 1s));
  EXPECT_EQ(b->n->revocations_received(), 2u);
  const auto text = a->metrics();
  EXPECT_NE(text.find(R"(anyturn_fleet_revocations_total{source="local"} 2)"), std::string::npos) << text;
  EXPECT_NE(b->metrics().find(R"(anyturn_fleet_revocations_total{source="redis"} 2)"), std::string::npos);
}

TEST_F(FleetNode, ANodeThatStartsLaterReadsTheStoredRevocations) {
  auto a = make("a", "192.0.2.1", 0);
  ASSERT_TRUE(wait_until([&] { return a->n->redis_up(); }));
  const auto until = unix_now() + 600;
  a->n->publish_revocation({"", "", "mallory", until});
  ASSERT_TRUE(wait_until([&] { return redis_.command("EXISTS anyturn:revoked:default:user:mallory") == ":1\r\n"; }));
  auto b = make("b", "192.0.2.2", 0);
  EXPECT_TRUE(wait_until([&] { return b->revoked("", std::to_string(until) + ":mallory"); }));
}

// The node was cut off while the revocation was published (it was never
// PUBLISHed to it): reconnecting, it reads the stored record.
TEST_F(FleetNode, ReconnectRereadsARevocationStoredWhileCutOff) {
  auto a = make("a", "192.0.2.1", 0);
  ASSERT_TRUE(wait_until([&] { return a->n->redis_up(); }));
  const auto port = redis_.port();
  redis_.kill();
  ASSERT_TRUE(wait_until([&] { return !a->n->redis_up(); }));
  EXPECT_GE(a->n->errors(fleet_op::connection_lost), 1u);
  EXPECT_NE(a->metrics().find("anyturn_fleet_redis_up 0"), std::string::npos);
  ASSERT_TRUE(wait_until([&] { return a->n->errors(fleet_op::connect) >= 1; }, 5s))
      << "no connection attempt while the server was down";

  // Meanwhile another node revoked a credential: it sits in Redis' data,
  // which the restarted server loads.
  const auto until = unix_now() + 600;
  const std::string username = std::to_string(until) + ":eve";
  {
    itest::redis_server other;
    ASSERT_TRUE(other.start()) << other.log();
    const auth::revocation r{"", username, "", until};
    ASSERT_EQ(other.command({"SET", revocation_key(r), to_json(r), "EXAT", std::to_string(until)}), "+OK\r\n");
    const auto saved = other.save();
    ASSERT_FALSE(saved.empty()) << other.log();
    const auto rdb = std::filesystem::temp_directory_path() / ("anyturn-fleet-" + std::to_string(::getpid()) + ".rdb");
    std::filesystem::copy_file(saved, rdb, std::filesystem::copy_options::overwrite_existing);
    // Checked before the server is back: the node may reconnect at once.
    EXPECT_FALSE(a->revoked("", username));
    ASSERT_TRUE(redis_.start(port, rdb.string())) << redis_.log();
    std::filesystem::remove(rdb);
  }
  ASSERT_TRUE(wait_until([&] { return a->revoked("", username); }, 5s)) << "re-read after reconnecting";
  EXPECT_TRUE(a->n->redis_up());
  // Re-announced.
  EXPECT_TRUE(wait_until([&] { return redis_.command("EXISTS anyturn:node:a") == ":1\r\n"; }));
  EXPECT_NE(a->metrics().find("anyturn_fleet_redis_up 1"), std::string::npos);
}

TEST_F(FleetNode, ARevocationMadeWithoutRedisAppliesLocallyAndIsPublishedWhenBack) {
  auto a = make("a", "192.0.2.1", 0);
  ASSERT_TRUE(wait_until([&] { return a->n->redis_up(); }));
  const auto port = redis_.port();
  redis_.kill();
  ASSERT_TRUE(wait_until([&] { return !a->n->redis_up(); }));
  const auto until = unix_now() + 600;
  const std::string username = std::to_string(until) + ":trudy";
  a->n->publish_revocation({"", username, "", until});
  EXPECT_TRUE(a->revoked("", username));
  ASSERT_TRUE(redis_.start(port)) << redis_.log();
  auto b = make("b", "192.0.2.2", 0);
  EXPECT_TRUE(wait_until([&] { return b->revoked("", username); }, 5s));
  EXPECT_EQ(redis_.command("EXISTS anyturn:revoked:default:username:" + username), ":1\r\n");
}

TEST_F(FleetNode, RedisCommandsDrainAndUndrain) {
  auto a = make("a", "192.0.2.1", 0);
  auto b = make("b", "192.0.2.2", 0, 0, /*with_command_hook=*/false);
  ASSERT_TRUE(wait_until([&] { return a->n->redis_up() && b->n->redis_up(); }));
  ASSERT_EQ(redis_.command("PUBLISH anyturn:command:a drain"), ":1\r\n");
  ASSERT_TRUE(wait_until([&] { return a->drains == 1; }));
  EXPECT_FALSE(b->signals->draining()) << "addressed to a only";
  ASSERT_EQ(redis_.command("PUBLISH anyturn:command:all undrain"), ":2\r\n");
  ASSERT_TRUE(wait_until([&] { return a->undrains == 1; }));
  ASSERT_EQ(redis_.command("PUBLISH anyturn:command:b drain"), ":1\r\n");
  ASSERT_TRUE(wait_until([&] { return b->signals->draining(); })) << "without a hook, the signal itself";
  ASSERT_EQ(redis_.command("PUBLISH anyturn:command:a reboot"), ":1\r\n");
  ASSERT_TRUE(wait_until([&] { return a->n->errors(fleet_op::bad_record) == 1; }));
  EXPECT_EQ(a->drains, 1);
  // A malformed revocation is counted and ignored.
  ASSERT_EQ(redis_.command("PUBLISH anyturn:revocations {bad"), ":2\r\n");
  ASSERT_TRUE(wait_until([&] { return b->n->errors(fleet_op::bad_record) == 1; }));
  EXPECT_EQ(b->board->snapshot()->size(), 0u);
}

TEST_F(FleetNode, QuotaLeasesHoldAFleetLimitAcrossTwoNodesAndFallBackWithoutRedis) {
  auto a = make("a", "192.0.2.1", 0, 3);
  auto b = make("b", "192.0.2.2", 0, 3);
  ASSERT_TRUE(wait_until([&] { return a->n->leased(1) && b->n->leased(1); }));
  EXPECT_EQ(a->n->leased(0), std::nullopt) << "the default tenant has no quota here";
  // Both nodes keep trying to allocate for acme (limit 3 per node, 3 in the fleet).
  int max_total = 0;
  const auto deadline = clock::now() + 2s;
  while (clock::now() < deadline) {
    a->quotas->try_acquire(1, 3);
    b->quotas->try_acquire(1, 3);
    max_total = std::max<int>(max_total, static_cast<int>(a->quotas->active(1) + b->quotas->active(1)));
    if (max_total == 3 && a->quotas->active(1) > 0 && b->quotas->active(1) > 0) break;
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(max_total, 3) << "together never more than 3, and 3 are reachable";
  std::this_thread::sleep_for(500ms);
  for (int i = 0; i < 10; ++i) {
    a->quotas->try_acquire(1, 3);
    b->quotas->try_acquire(1, 3);
  }
  EXPECT_EQ(a->quotas->active(1) + b->quotas->active(1), 3u);
  // a frees its allocations: b gets the units within about a heartbeat.
  while (a->quotas->active(1) > 0) a->quotas->release(1);
  ASSERT_TRUE(wait_until([&] {
    b->quotas->try_acquire(1, 3);
    return b->quotas->active(1) == 3;
  })) << "b: " << b->quotas->active(1);
  EXPECT_FALSE(a->quotas->try_acquire(1, 3));
  EXPECT_NE(a->metrics().find(R"(anyturn_fleet_quota_per_node{tenant="acme"} 0)"), std::string::npos);

  // Redis goes away: per-node limits, so a may now hold 3 of its own.
  redis_.kill();
  ASSERT_TRUE(wait_until([&] { return !a->n->leased(1) && !b->n->leased(1); }));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(a->quotas->try_acquire(1, 3));
  EXPECT_FALSE(a->quotas->try_acquire(1, 3));
  EXPECT_NE(a->metrics().find(R"(anyturn_fleet_quota_per_node{tenant="acme"} 1)"), std::string::npos);
}

// A Redis that keeps the socket open but stops answering (SIGSTOP) is lost
// too, after 3 heartbeats (at least 3 s); quotas fall back meanwhile.
TEST_F(FleetNode, AStalledRedisIsDetectedAndQuotasFallBack) {
  auto a = make("a", "192.0.2.1", 0, 3);
  ASSERT_TRUE(wait_until([&] { return a->n->leased(1).has_value(); }));
  ASSERT_EQ(::kill(redis_.pid(), SIGSTOP), 0);
  const auto t0 = clock::now();
  const bool detected = wait_until([&] { return !a->n->redis_up(); }, 6s);
  const auto took = clock::now() - t0;
  ::kill(redis_.pid(), SIGCONT);
  ASSERT_TRUE(detected);
  EXPECT_GE(took, 2500ms);
  EXPECT_FALSE(a->n->leased(1));
  EXPECT_GE(a->n->errors(fleet_op::connection_lost), 1u);
  EXPECT_TRUE(wait_until([&] { return a->n->redis_up() && a->n->leased(1).has_value(); }, 5s));
}

TEST_F(FleetNode, StartsWithoutRedisAndConnectsWhenItAppears) {
  const auto port = redis_.port();
  redis_.kill();
  auto a = make("a", "192.0.2.1", 0, 3);
  ASSERT_TRUE(wait_until([&] { return a->n->errors(fleet_op::connect) >= 2; }));
  EXPECT_FALSE(a->n->redis_up());
  EXPECT_FALSE(a->n->leased(1));
  EXPECT_TRUE(a->quotas->try_acquire(1, 3)) << "serving on per-node limits";
  ASSERT_TRUE(redis_.start(port)) << redis_.log();
  ASSERT_TRUE(wait_until([&] { return a->n->redis_up(); }, 4s)) << "backoff is capped at 2 s";
  EXPECT_TRUE(wait_until([&] { return a->n->leased(1).has_value(); }));
  // The directory is read once a second, apart from the lease: wait for it.
  EXPECT_TRUE(wait_until([&] { return a->metrics().find("anyturn_fleet_nodes 1") != std::string::npos; }));
  const auto text = a->metrics();
  for (const char* series :
       {"anyturn_fleet_redis_up 1", R"(anyturn_fleet_redis_errors_total{op="connect"})", "anyturn_fleet_nodes 1",
        R"(anyturn_fleet_quota_leased{tenant="acme"})", "anyturn_fleet_reconnects_total"})
    EXPECT_NE(text.find(series), std::string::npos) << series << "\n" << text;
}

}  // namespace
}  // namespace anyturn::fleet
