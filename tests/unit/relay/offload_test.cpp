// src/relay/offload.cpp on its own: an allocation filled by hand and the
// recording fast path.
#include <anyturn/relay/offload.hpp>

#include "fake_fast_path.hpp"

#include <gtest/gtest.h>

namespace anyturn::relay {
namespace {

stun::endpoint ep(const char* text) { return *stun::endpoint::parse(text); }

class RelayOffload : public ::testing::Test {
 protected:
  RelayOffload() {
    counters_.tenants = std::vector<tenant_counters>(2);
    a_.client.proto = transport::udp;
    a_.client.remote = ep("203.0.113.10:40000");
    a_.client.local = ep("192.0.2.1:3478");
    a_.relays[0] = {7, ep("198.51.100.7:50000"), 0};
    a_.relay_count = 1;
    a_.tenant = 1;
    a_.start_limits({}, now_);
  }
  static constexpr std::int64_t now_ = 1'000'000;
  static constexpr std::int64_t never_ = 1'000'000'000;
  allocation a_;
  test::fake_fast_path fp_;
  worker_counters counters_;
  const stun::endpoint peer_ = ep("93.184.216.34:5000");
};

TEST_F(RelayOffload, OnlyBoundChannelsWithALivePermissionOfARelayedFamilyQualify) {
  a_.bind_channel(0x4000, peer_, now_ + 600'000);
  EXPECT_TRUE(offload::offloadable(a_, now_, never_).empty()) << "no permission";
  a_.permit(peer_, now_ + 300'000);
  auto want = offload::offloadable(a_, now_, never_);
  ASSERT_EQ(want.size(), 1u);
  EXPECT_EQ(want[0].expires_mono_ms, now_ + 300'000);
  EXPECT_EQ(want[0].relay, ep("198.51.100.7:50000"));
  EXPECT_EQ(offload::offloadable(a_, now_, now_ + 10)[0].expires_mono_ms, now_ + 10);
  // An IPv6 peer without an IPv6 relay, an own peer, an expired channel.
  const auto v6 = ep("[2001:db8::9]:5000");
  a_.permit(v6, now_ + 300'000);
  a_.bind_channel(0x4001, v6, now_ + 600'000);
  const auto own = ep("198.51.100.7:50001");
  a_.permit(own, now_ + 300'000);
  a_.bind_channel(0x4002, own, now_ + 600'000, true);
  EXPECT_EQ(offload::offloadable(a_, now_, never_).size(), 1u);
  EXPECT_TRUE(offload::offloadable(a_, now_ + 300'000, never_).empty()) << "permission expired";
  a_.client.local = ep("0.0.0.0:3478");
  EXPECT_TRUE(offload::offloadable(a_, now_, never_).empty()) << "a wildcard the program cannot key by";
  a_.client.local = ep("192.0.2.1:3478");
  a_.client.proto = transport::dtls;
  EXPECT_TRUE(offload::offloadable(a_, now_, never_).empty()) << "not UDP";
}

TEST_F(RelayOffload, SyncAddsLazilyUpdatesOnlyWhatChangedAndRemoves) {
  EXPECT_FALSE(offload::sync(a_, fp_, now_, never_).added);
  EXPECT_TRUE(fp_.calls.empty());
  a_.permit(peer_, now_ + 300'000);
  a_.bind_channel(0x4000, peer_, now_ + 600'000);
  auto r = offload::sync(a_, fp_, now_, never_);
  EXPECT_TRUE(r.added);
  EXPECT_EQ(r.put, 1u);
  EXPECT_EQ(offload::sync(a_, fp_, now_, never_).put, 0u) << "nothing changed: no call";
  EXPECT_EQ(fp_.calls.size(), 2u);
  a_.permit(peer_, now_ + 400'000);
  EXPECT_EQ(offload::sync(a_, fp_, now_, never_).put, 1u);
  EXPECT_EQ(fp_.channel(0x4000)->expires_mono_ms, now_ + 400'000);
  a_.forget_peers_if([&](const stun::endpoint& p) { return p.same_ip(peer_); });
  EXPECT_EQ(offload::sync(a_, fp_, now_, never_).removed, 1u);
  EXPECT_EQ(fp_.channel_count(), 0u);
  EXPECT_EQ(fp_.allocations.size(), 1u) << "the allocation stays until it ends";
  offload::end(a_, fp_);
  EXPECT_TRUE(fp_.allocations.empty());
  EXPECT_EQ(a_.offload.handle, fast_path::no_handle);
}

TEST_F(RelayOffload, FoldReturnsDeltasAndAccountCountsEverywhere) {
  a_.permit(peer_, now_ + 300'000);
  a_.bind_channel(0x4000, peer_, now_ + 600'000);
  offload::sync(a_, fp_, now_, never_);
  fp_.only()->totals.packets_to_peer = 5;
  fp_.only()->totals.bytes_to_peer = 50;
  auto d = offload::fold(a_, fp_);
  EXPECT_EQ(d.packets_to_peer, 5u);
  offload::account(a_, d, counters_, now_);
  EXPECT_TRUE(offload::empty(offload::fold(a_, fp_)));
  fp_.only()->totals.packets_to_client = 7;
  fp_.only()->totals.bytes_to_client = 70;
  d = offload::end(a_, fp_);
  EXPECT_EQ(d.packets_to_peer, 0u);
  EXPECT_EQ(d.packets_to_client, 7u);
  offload::account(a_, d, counters_, now_);
  EXPECT_EQ(a_.packets_to_peer, 5u);
  EXPECT_EQ(a_.bytes_to_client, 70u);
  EXPECT_EQ(counters_.packets_received.load(), 5u);
  EXPECT_EQ(counters_.tenants[1].bytes_to_peer.load(), 50u);
  EXPECT_EQ(counters_.tenants[0].bytes_to_peer.load(), 0u);
}

TEST_F(RelayOffload, ChargeNeverFailsAndEmptiesAtMost) {
  token_bucket b;
  b.start(10, 10, now_);
  b.charge(25, now_);
  EXPECT_FALSE(b.take(1, now_));
  EXPECT_TRUE(b.take(1, now_ + 100));  // refills from zero, not from a debt
  bandwidth_bucket w;
  w.start(1000, now_);
  w.charge(400, now_);
  EXPECT_TRUE(w.take(600, now_));
  EXPECT_FALSE(w.take(1, now_));
}

}  // namespace
}  // namespace anyturn::relay
