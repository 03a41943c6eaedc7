// Allocation quotas: the shared counters (user_quota, tenant_quota) and the
// 486 answers and bandwidth limit of src/turn/quota.cpp.
#include <anyturn/turn/quota.hpp>

#include "turn_core_fixture.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace anyturn::turn {
namespace {

TEST(UserQuota, EnforcesTheLimitPerUser) {
  user_quota q(2);
  EXPECT_TRUE(q.try_acquire("alice"));
  EXPECT_TRUE(q.try_acquire("alice"));
  EXPECT_FALSE(q.try_acquire("alice"));
  EXPECT_TRUE(q.try_acquire("bob"));
  q.release("alice");
  EXPECT_TRUE(q.try_acquire("alice"));
  EXPECT_EQ(q.count("alice"), 2u);
  EXPECT_EQ(q.count("bob"), 1u);
}

// The placement the quota used before it took the keyed hash: FNV-1a with
// two fixed seeds, one per row. Anybody can run it offline.
std::size_t unkeyed_bucket(std::string_view s, int row, std::size_t buckets) {
  std::uint64_t h = 0xcbf29ce484222325ULL ^ (row == 0 ? 0 : 0x9E3779B97F4A7C15ULL);
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  h ^= h >> 29;
  return static_cast<std::size_t>(h % buckets);
}

// An attacker who can precompute where names land finds a name sharing both
// of a victim's buckets, holds it at the limit, and the victim gets 486
// without ever allocating. Under the process's secret hash key the
// precomputed name lands elsewhere (both buckets shared by chance: about one
// in four million).
TEST(UserQuota, PrecomputedCollisionsDoNotBlockAnotherUser) {
  constexpr std::size_t buckets = 2048;
  const std::string victim = "victim";
  const std::size_t v0 = unkeyed_bucket(victim, 0, buckets);
  const std::size_t v1 = unkeyed_bucket(victim, 1, buckets);
  std::string attacker;
  for (std::uint64_t i = 0; i < 100'000'000 && attacker.empty(); ++i) {
    const std::string name = "u" + std::to_string(i);
    if (unkeyed_bucket(name, 0, buckets) == v0 && unkeyed_bucket(name, 1, buckets) == v1) attacker = name;
  }
  ASSERT_FALSE(attacker.empty()) << "no colliding name found";
  user_quota q(1, buckets);
  ASSERT_TRUE(q.try_acquire(attacker));
  EXPECT_FALSE(q.try_acquire(attacker)) << "the attacker is held to its own limit";
  EXPECT_TRUE(q.try_acquire(victim)) << "'" << attacker << "' was precomputed to share the victim's "
                                     << "buckets; the quota must not be placed by a public hash";
}

TEST(UserQuota, ZeroMeansNoLimit) {
  user_quota q(0);
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(q.try_acquire("alice"));
}

TEST(UserQuota, RestUsernamesCountByTheirUserPart) {
  EXPECT_EQ(user_quota::key_of("1700000000:alice"), "alice");
  EXPECT_EQ(user_quota::key_of("alice:1700000000"), "alice");
  EXPECT_EQ(user_quota::key_of("1700000000"), "1700000000");
  EXPECT_EQ(user_quota::key_of("alice"), "alice");
  EXPECT_EQ(user_quota::key_of("a:b"), "a:b");
  EXPECT_EQ(user_quota::key_of("1700000000:tenant:user"), "tenant:user");
}

TEST(UserQuota, ConcurrentWorkersNeverExceedTheLimit) {
  user_quota q(100, 64);  // few buckets: collisions only make it stricter
  std::atomic<int> granted{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < 1000; ++i)
        if (q.try_acquire("alice")) granted.fetch_add(1);
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(granted.load(), 100);
}

// Fleet quotas: the lease the fleet thread sets replaces the configured
// limit; use_node_limit restores it (Redis unreachable).
TEST(TenantQuota, FleetLimitReplacesTheConfiguredLimitUntilCleared) {
  tenant_quota q(2);
  EXPECT_EQ(q.fleet_limit(1), tenant_quota::use_node_limit);
  q.set_fleet_limit(1, 2);
  EXPECT_TRUE(q.try_acquire(1, 5));
  EXPECT_TRUE(q.try_acquire(1, 5));
  EXPECT_FALSE(q.try_acquire(1, 5)) << "held to the lease of 2, not the configured 5";
  EXPECT_EQ(q.active(1), 2u);
  EXPECT_EQ(q.fleet_refused(1), 1u) << "demand the fleet thread sees";
  EXPECT_TRUE(q.try_acquire(0, 5)) << "another tenant's lease does not apply";
  q.set_fleet_limit(1, tenant_quota::use_node_limit);
  EXPECT_TRUE(q.try_acquire(1, 5));
  EXPECT_TRUE(q.try_acquire(1, 5));
  EXPECT_TRUE(q.try_acquire(1, 5));
  EXPECT_FALSE(q.try_acquire(1, 5)) << "back to the per-node limit of 5";
  EXPECT_EQ(q.fleet_refused(1), 1u) << "refusals under the per-node limit are not fleet demand";
}

TEST(TenantQuota, ALeaseOfZeroRefusesAndALeaseNeverExceedsTheConfiguredLimit) {
  tenant_quota q(1);
  q.set_fleet_limit(0, 0);
  EXPECT_FALSE(q.try_acquire(0, 5));
  EXPECT_EQ(q.active(0), 0u);
  q.set_fleet_limit(0, 100);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(q.try_acquire(0, 3));
  EXPECT_FALSE(q.try_acquire(0, 3));
}

TEST(TenantQuota, AnUnlimitedTenantIgnoresTheFleetLimit) {
  tenant_quota q(1);
  q.set_fleet_limit(0, 0);
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(q.try_acquire(0, 0));
}

TEST(TenantQuota, ALeaseBelowTheActiveCountRefusesUntilReleased) {
  tenant_quota q(1);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(q.try_acquire(0, 10));
  q.set_fleet_limit(0, 2);
  EXPECT_FALSE(q.try_acquire(0, 10));
  q.release(0);
  q.release(0);
  EXPECT_FALSE(q.try_acquire(0, 10)) << "2 active, lease 2";
  q.release(0);
  EXPECT_TRUE(q.try_acquire(0, 10));
}

TEST(TenantQuota, ConcurrentWorkersNeverExceedTheLeaseWhileItMoves) {
  tenant_quota q(1);
  q.set_fleet_limit(0, 50);
  std::atomic<bool> stop{false};
  std::atomic<std::uint32_t> peak{0};
  std::atomic<std::uint32_t> held{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        if (!q.try_acquire(0, 1000)) continue;
        // active() may briefly count a refused attempt; `held` counts grants.
        const auto a = held.fetch_add(1) + 1;
        auto p = peak.load();
        while (a > p && !peak.compare_exchange_weak(p, a)) {
        }
        held.fetch_sub(1);
        q.release(0);
      }
    });
  std::thread leaser([&] {
    for (int i = 0; i < 2000 && !stop.load(); ++i) q.set_fleet_limit(0, i % 2 ? 50 : 20);
  });
  for (auto& t : ts) t.join();
  stop = true;
  leaser.join();
  EXPECT_LE(peak.load(), 50u);
  EXPECT_EQ(q.active(0), 0u);
}

}  // namespace
}  // namespace anyturn::turn

namespace anyturn::test {
namespace {

TEST_F(WorkerCore, UserQuotaGives486AndFreesWithTheAllocation) {
  options o;
  o.per_user = 2;
  start(o);
  const std::string u1 = auth::rest_username(now_.unix_s, 3600, "carol");
  const std::string p1 = auth::rest_password(rest_secret, u1);
  const std::string u2 = auth::rest_username(now_.unix_s, 7200, "carol");  // fresh credentials
  const std::string p2 = auth::rest_password(rest_secret, u2);
  const auto c1 = client("203.0.113.1:1");
  allocate(c1, u1.c_str(), p1.c_str());
  allocate(client("203.0.113.2:1"), u2.c_str(), p2.c_str());
  const auto c3 = client("203.0.113.3:1");
  learn_nonce(c3);
  auto r = send(c3, build(stun::method::allocate, new_tid(), requested_udp, u2.c_str(), p2.c_str()));
  EXPECT_EQ(error_of(r), 486);
  EXPECT_EQ(counters_.allocations_failed_quota.load(), 1u);
  // Another user is not affected.
  allocate(client("203.0.113.4:1"), "bob", "builder");
  // Freeing one of carol's allocations gives the quota back.
  learn_nonce(c1);
  send(c1, build(stun::method::refresh, new_tid(), [](auto& b) { b.add_u32(attr::lifetime, 0); },
                 u1.c_str(), p1.c_str()));
  allocate(c3, u2.c_str(), p2.c_str());
  EXPECT_EQ(shared_->user_quotas->count("carol"), 2u);
}

TEST_F(WorkerCore, TenantQuotaGives486AndCountsPerTenant) {
  options o;
  o.tenants = true;
  o.acme.id = "acme";
  o.acme.max_allocations = 2;
  start(o);
  const std::string u1 = auth::rest_username(now_.unix_s, 3600, "acme:u1");
  const std::string p1 = auth::rest_password("acme-secret", u1);
  allocate(client("203.0.113.1:1"), u1.c_str(), p1.c_str());
  allocate(client("203.0.113.2:1"), "dave", "dave-pass");  // a static user of acme
  const auto c3 = client("203.0.113.3:1");
  learn_nonce(c3);
  auto r = send(c3, build(stun::method::allocate, new_tid(), requested_udp, u1.c_str(), p1.c_str()));
  EXPECT_EQ(error_of(r), 486);
  // The default tenant is not limited by acme's quota.
  allocate(c3, "alice", "wonderland");
  EXPECT_EQ(shared_->tenant_usage->active(1), 2u);
  EXPECT_EQ(shared_->tenant_usage->active(0), 1u);
  EXPECT_EQ(counters_.tenants[1].allocations_created.load(), 2u);
  EXPECT_EQ(counters_.tenants[1].quota_rejected.load(), 1u);
  EXPECT_EQ(counters_.tenants[1].active[0].load(), 2u);
  EXPECT_EQ(counters_.tenants[0].allocations_created.load(), 1u);
  core_->shutdown(now_);
  EXPECT_EQ(shared_->tenant_usage->active(1), 0u);
  EXPECT_EQ(counters_.tenants[1].active[0].load(), 0u);
}

TEST_F(WorkerCore, TenantBandwidthLimitDropsExcessAndCountsIt) {
  options o;
  o.tenants = true;
  o.acme.id = "acme";
  o.acme.bandwidth_bytes_per_s = 1000;
  start(o);
  const auto c = client();
  allocate(c, "dave", "dave-pass");
  ASSERT_EQ(send(c, build(stun::method::channel_bind, new_tid(),
                          [&](auto& b) {
                            b.add_channel_number(0x4000);
                            b.add_address(attr::xor_peer_address, peer_, true);
                          },
                          "dave", "dave-pass"))
                .cls(),
            message_class::success_response);
  io_.to_peer.clear();
  const auto cd = channel_data(0x4000, std::string(300, 'x'));
  for (int i = 0; i < 5; ++i) core_->on_client_packet(c, cd, now_);
  EXPECT_EQ(io_.to_peer.size(), 3u) << "1000 bytes of burst: three 300-byte packets";
  EXPECT_EQ(counters_.bandwidth_dropped.load(), 2u);
  EXPECT_EQ(counters_.tenants[1].bandwidth_dropped.load(), 2u);
  EXPECT_EQ(counters_.tenants[1].bytes_to_peer.load(), 900u);
  now_.mono_ms += 600;  // refills 600 bytes
  for (int i = 0; i < 3; ++i) core_->on_client_packet(c, cd, now_);
  EXPECT_EQ(io_.to_peer.size(), 5u);
}

}  // namespace
}  // namespace anyturn::test
