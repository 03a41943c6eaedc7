// Fleet quota leases (src/fleet/quota_lease.cpp): the sizing rules, and the
// Lua script run in a real redis-server.
#include <anyturn/fleet/quota_lease.hpp>

#include "redis_server.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>

namespace anyturn::fleet {
namespace {

TEST(quota_lease, ChunkIsASixtyFourthOfTheQuotaWithinOneAnd256) {
  EXPECT_EQ(lease_chunk(1), 1u);
  EXPECT_EQ(lease_chunk(3), 1u);
  EXPECT_EQ(lease_chunk(640), 10u);
  EXPECT_EQ(lease_chunk(1'000'000), 256u);
}

TEST(quota_lease, TargetIsInUsePlusAChunkAtMostTheQuota) {
  EXPECT_EQ(lease_target(0, 3), 1u);
  EXPECT_EQ(lease_target(2, 3), 3u);
  EXPECT_EQ(lease_target(3, 3), 3u);
  EXPECT_EQ(lease_target(100, 640), 110u);
}

TEST(quota_lease, RunsLowBelowHalfAChunkOfHeadroom) {
  EXPECT_TRUE(lease_runs_low(1, 1, 3)) << "all units in use";
  EXPECT_FALSE(lease_runs_low(0, 1, 3));
  EXPECT_FALSE(lease_runs_low(3, 3, 3)) << "the whole quota is held: nothing more to ask";
  EXPECT_FALSE(lease_runs_low(100, 110, 640));
  EXPECT_FALSE(lease_runs_low(105, 110, 640));
  EXPECT_TRUE(lease_runs_low(106, 110, 640));
  EXPECT_TRUE(lease_runs_low(120, 110, 640)) << "over the lease (after a per-node period)";
}

class quota_lease_script : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!itest::redis_server::available()) GTEST_SKIP() << "redis-server is not installed (apt-get install redis-server)";
    ASSERT_TRUE(redis_.start()) << redis_.log();
  }
  // The grant, or -1 on anything but an integer reply.
  long long lease(const std::string& node, unsigned want, unsigned max, unsigned used, unsigned ttl_ms = 10000,
                  bool need = true) {
    const auto r = redis_.command({"EVAL", std::string(lease_script), "1", "anyturn:quota:acme", node,
                                   std::to_string(want), std::to_string(max), std::to_string(used),
                                   std::to_string(ttl_ms), need ? "1" : "0"});
    if (r.empty() || r[0] != ':') return -1;
    return std::stoll(r.substr(1));
  }
  itest::redis_server redis_;
};

TEST_F(quota_lease_script, GrantsNeverExceedTheQuotaAcrossNodes) {
  EXPECT_EQ(lease("a", 2, 3, 0), 2);
  EXPECT_EQ(lease("b", 2, 3, 0), 1) << "a holds 2 of 3";
  EXPECT_EQ(lease("c", 1, 3, 0), 0);
  EXPECT_EQ(lease("a", 1, 3, 0), 1) << "a returns a unit";
  EXPECT_EQ(lease("c", 1, 3, 0), 1);
  EXPECT_NE(redis_.command("HGET anyturn:quota:acme c").find("\r\n1:"), std::string::npos) << "units:expiry_ms";
}

TEST_F(quota_lease_script, ExpiredLeasesOfDeadNodesDoNotCount) {
  EXPECT_EQ(lease("dead", 3, 3, 0, 100), 3);
  EXPECT_EQ(lease("live", 2, 3, 0), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  EXPECT_EQ(lease("live", 2, 3, 0), 2);
  EXPECT_EQ(redis_.command("HEXISTS anyturn:quota:acme dead"), ":0\r\n") << "the dead node's field is dropped";
}

TEST_F(quota_lease_script, ANodeOverItsGrantRecordsWhatItReallyHolds) {
  // After a period on per-node limits, b holds 3 while the fleet allows 3.
  EXPECT_EQ(lease("a", 2, 3, 2), 2);
  EXPECT_EQ(lease("b", 3, 3, 3), 1);
  EXPECT_EQ(lease("a", 2, 3, 2), 0) << "b's real 3 count, so a gets nothing more";
}

TEST_F(quota_lease_script, AStarvedNodeMakesTheOthersGiveUpTheirHeadroom) {
  EXPECT_EQ(lease("a", 1, 3, 0), 1) << "a keeps one unit of headroom, using none";
  EXPECT_EQ(lease("b", 3, 3, 2), 2) << "b is short";
  EXPECT_NE(redis_.command("HGET anyturn:quota:acme !starved").find("\r\nb:"), std::string::npos);
  EXPECT_EQ(lease("a", 1, 3, 0, 10000, false), 0) << "a, without demand, keeps only what it uses while b starves";
  EXPECT_EQ(lease("b", 3, 3, 2), 3);
  EXPECT_EQ(lease("b", 3, 3, 3, 10000, false), 3) << "b's own mark does not limit b";
  EXPECT_EQ(lease("c", 1, 3, 0), 0) << "a node with demand competes for what is free";
  EXPECT_EQ(lease("b", 2, 3, 2, 10000, false), 2);
  EXPECT_EQ(lease("c", 1, 3, 0), 1);
}

TEST_F(quota_lease_script, AMalformedFieldIsDropped) {
  ASSERT_EQ(redis_.command("HSET anyturn:quota:acme junk nonsense"), ":1\r\n");
  ASSERT_EQ(redis_.command("HSET anyturn:quota:acme !starved nonsense"), ":1\r\n");
  EXPECT_EQ(lease("a", 3, 3, 0), 3);
  EXPECT_EQ(redis_.command("HEXISTS anyturn:quota:acme junk"), ":0\r\n");
  EXPECT_EQ(redis_.command("HEXISTS anyturn:quota:acme !starved"), ":0\r\n");
}

}  // namespace
}  // namespace anyturn::fleet
