// src/turn/offload.cpp: the TURN core keeps the kernel fast path in line
// with its tables after every change, ends an allocation's entries before
// anything else of its end, and folds the fast path's traffic into the
// counters, the usage record and the buckets exactly once.
#include "fake_fast_path.hpp"
#include "turn_core_fixture.hpp"

#include <anyturn/auth/revocations.hpp>
#include <anyturn/turn/config_board.hpp>

namespace anyturn::test {
namespace {

class TurnOffload : public WorkerCore {
 protected:
  void start_offload(const options& o = {}) {
    start(o);
    core_ = std::make_unique<worker_core>(shared_, io_, counters_, 0, &fast_);
    usage_ = std::make_shared<recording_usage>();
    shared_->usage = usage_;
  }
  // Allocate, permission and channel 0x4000 to peer_: the common start.
  void bound(const client_ref& c, std::uint16_t number = 0x4000) {
    allocate(c);
    ASSERT_EQ(bind_channel(c, number, peer_).cls(), message_class::success_response);
  }
  stun::message_view refresh(const client_ref& c, std::uint32_t lifetime) {
    return send(c, build(stun::method::refresh, new_tid(),
                         [&](auto& b) { b.add_u32(attr::lifetime, lifetime); }, "alice", "wonderland"));
  }

  fake_fast_path fast_;
  std::shared_ptr<recording_usage> usage_;
};

TEST_F(TurnOffload, ChannelBindInstallsTheChannelWithItsExpiryAndLimits) {
  start_offload();
  const auto c = client();
  allocate(c);
  EXPECT_TRUE(fast_.allocations.empty()) << "nothing to offload before a channel";
  ASSERT_EQ(permit(c, peer_).cls(), message_class::success_response);
  EXPECT_TRUE(fast_.allocations.empty()) << "a permission alone is not offloaded";
  ASSERT_EQ(bind_channel(c, 0x4000, peer_).cls(), message_class::success_response);
  const relay::fast_channel* ch = fast_.channel(0x4000);
  ASSERT_NE(ch, nullptr);
  EXPECT_EQ(ch->client, c);
  EXPECT_EQ(ch->peer, peer_);
  EXPECT_EQ(ch->relay.ip_string(), "198.51.100.7");
  EXPECT_NE(ch->relay.port, 0);
  EXPECT_FALSE(ch->own_peer);
  // min(channel 600 s, permission 300 s)
  EXPECT_EQ(ch->expires_mono_ms, now_.mono_ms + 300'000);
  const auto& lim = fast_.only()->limits;
  EXPECT_EQ(lim.packets_per_second, relay::allocation_limits{}.packets_per_second);
  EXPECT_EQ(lim.packet_burst, relay::allocation_limits{}.packets_per_second);
  EXPECT_EQ(lim.bytes_per_second, relay::allocation_limits{}.bytes_per_second);
  EXPECT_EQ(lim.bandwidth_bytes_per_second, 0u);
  EXPECT_EQ(fast_.count("add"), 1u);
}

TEST_F(TurnOffload, RefreshesMoveTheExpiry) {
  start_offload();
  const auto c = client();
  bound(c);
  advance(100);
  // CreatePermission refreshes the permission: the entry lives to the
  // channel's end or the new permission's, whichever is first.
  ASSERT_EQ(permit(c, peer_).cls(), message_class::success_response);
  EXPECT_EQ(fast_.channel(0x4000)->expires_mono_ms, now_.mono_ms + 300'000);
  advance(200);
  ASSERT_EQ(bind_channel(c, 0x4000, peer_).cls(), message_class::success_response);
  EXPECT_EQ(fast_.channel(0x4000)->expires_mono_ms, now_.mono_ms + 300'000)
      << "ChannelBind refreshes the permission too";
  // Refresh with a short lifetime: the entry does not outlive the allocation.
  shared_->allocation_lifetime_default = 30;
  ASSERT_EQ(refresh(c, 60).cls(), message_class::success_response);
  EXPECT_EQ(fast_.channel(0x4000)->expires_mono_ms, now_.mono_ms + 60'000);
  EXPECT_EQ(fast_.count("remove_channel"), 0u);
}

TEST_F(TurnOffload, PermissionExpiryRemovesTheChannel) {
  start_offload();
  const auto c = client();
  bound(c);
  ASSERT_NE(fast_.channel(0x4000), nullptr);
  advance(299);
  EXPECT_NE(fast_.channel(0x4000), nullptr);
  advance(3);  // the permission expired: the wheel's check removes the entry
  EXPECT_EQ(fast_.channel(0x4000), nullptr);
  EXPECT_EQ(fast_.count("remove_channel"), 1u);
  EXPECT_EQ(core_->allocation_count(), 1u);
}

TEST_F(TurnOffload, RefreshZeroRemovesBeforeTheAnswer) {
  start_offload();
  const auto c = client();
  bound(c);
  fast_.only()->totals.packets_to_peer = 3;
  fast_.only()->totals.bytes_to_peer = 300;
  io_.to_client.clear();
  std::size_t answers_when_removed = 99;
  fast_.on_remove_allocation = [&] { answers_when_removed = io_.to_client.size(); };
  const std::size_t calls_before = fast_.calls.size();
  core_->on_client_packet(c, build(stun::method::refresh, new_tid(),
                                   [&](auto& b) { b.add_u32(attr::lifetime, 0); }, "alice", "wonderland"),
                          now_);
  ASSERT_EQ(io_.to_client.size(), 1u);
  EXPECT_EQ(answers_when_removed, 0u) << "removed from the fast path before the answer went out";
  EXPECT_TRUE(fast_.allocations.empty());
  ASSERT_EQ(fast_.calls.size(), calls_before + 1);
  EXPECT_EQ(fast_.calls.back().what, "remove_allocation");
  ASSERT_EQ(usage_->rows.size(), 1u);
  EXPECT_EQ(usage_->rows[0].pp, 3u);
  EXPECT_EQ(usage_->rows[0].bp, 300u);
}

TEST_F(TurnOffload, RevocationRemovesAtOnceThroughOnPublished) {
  start_offload();
  auto board = std::make_shared<auth::revocation_board>();
  shared_->revocations = board;
  const auto c = client();
  bound(c);
  core_->on_tick(now_);  // the first look at the board
  auth::revocation rv;
  rv.username = "alice";
  rv.until_unix = now_.unix_s + 3600;
  ASSERT_TRUE(board->add(rv));
  core_->on_published(now_);  // what the app posts: no tick needed
  EXPECT_TRUE(fast_.allocations.empty());
  EXPECT_EQ(core_->allocation_count(), 0u);
  ASSERT_EQ(usage_->rows.size(), 1u);
  EXPECT_EQ(usage_->rows[0].reason, "revoked");
}

TEST_F(TurnOffload, PeerPolicyReloadRemovesTheDeniedPeersChannelAtOnce) {
  start_offload();
  auto board = std::make_shared<turn::config_board>(shared_, 1);
  shared_->config = board;
  const auto c = client();
  bound(c);
  const auto other = ep("93.184.216.99:7000");
  ASSERT_EQ(bind_channel(c, 0x4001, other).cls(), message_class::success_response);
  ASSERT_EQ(fast_.only()->channels.size(), 2u);
  auto next = std::make_shared<shared_state>(*shared_);
  next->peers = std::make_shared<auth::peer_policy>(std::vector<auth::cidr>{},
                                                    std::vector<auth::cidr>{*auth::cidr::parse("93.184.216.34/32")});
  board->publish(next);
  core_->on_published(now_);
  EXPECT_EQ(fast_.channel(0x4000), nullptr) << "the denied peer's channel left the fast path";
  EXPECT_NE(fast_.channel(0x4001), nullptr) << "the other peer's stays";
  EXPECT_EQ(core_->allocation_count(), 1u);
}

TEST_F(TurnOffload, AdminDeleteShutdownAndConnectionCloseRemove) {
  start_offload();
  const auto a = client("203.0.113.10:40000");
  const auto b = client("203.0.113.11:40000");
  bound(a);
  bound(b);
  ASSERT_EQ(fast_.allocations.size(), 2u);
  const auto sessions = core_->list_sessions({}, 0, 100, 100, now_).sessions;
  ASSERT_EQ(sessions.size(), 2u);
  ASSERT_TRUE(core_->end_session(sessions[0].id, now_));
  EXPECT_EQ(fast_.allocations.size(), 1u);
  core_->shutdown(now_);
  EXPECT_TRUE(fast_.allocations.empty());
  EXPECT_EQ(fast_.count("remove_allocation"), 2u);
}

TEST_F(TurnOffload, AllocationExpiryRemoves) {
  start_offload();
  shared_->allocation_lifetime_default = 30;
  const auto c = client();
  bound(c);
  ASSERT_EQ(refresh(c, 30).cls(), message_class::success_response);
  advance(32);
  EXPECT_EQ(core_->allocation_count(), 0u);
  EXPECT_TRUE(fast_.allocations.empty());
}

TEST_F(TurnOffload, DroppingOneFamilyOfADualAllocationRemovesItsChannels) {
  options o;
  o.with_v6 = true;
  start_offload(o);
  const auto c = client();
  learn_nonce(c);
  auto r = send(c, build(stun::method::allocate, new_tid(),
                         [](auto& b) {
                           b.add_requested_transport(17);
                           b.add_address_family(attr::additional_address_family, stun::address_family::ipv6);
                         },
                         "alice", "wonderland"));
  ASSERT_EQ(r.cls(), message_class::success_response) << error_of(r);
  const auto v6peer = ep("[2606:4700::1111]:5000");
  ASSERT_EQ(bind_channel(c, 0x4000, peer_).cls(), message_class::success_response);
  ASSERT_EQ(bind_channel(c, 0x4001, v6peer).cls(), message_class::success_response);
  ASSERT_NE(fast_.channel(0x4001), nullptr);
  EXPECT_EQ(fast_.channel(0x4001)->relay.ip_string(), "2001:db8::7");
  r = send(c, build(stun::method::refresh, new_tid(),
                    [](auto& b) {
                      b.add_u32(attr::lifetime, 0);
                      b.add_address_family(attr::requested_address_family, stun::address_family::ipv6);
                    },
                    "alice", "wonderland"));
  ASSERT_EQ(r.cls(), message_class::success_response) << error_of(r);
  EXPECT_EQ(fast_.channel(0x4001), nullptr) << "the IPv6 side is gone";
  EXPECT_NE(fast_.channel(0x4000), nullptr) << "the IPv4 side stays";
}

TEST_F(TurnOffload, StreamClientsAreNeverOffloaded) {
  start_offload();
  auto c = client();
  c.proto = transport::tcp;
  c.connection = 7;
  bound(c);
  EXPECT_TRUE(fast_.allocations.empty());
  EXPECT_TRUE(fast_.calls.empty());
  core_->on_client_closed(c, now_);
  EXPECT_TRUE(fast_.calls.empty());
}

TEST_F(TurnOffload, OwnAddressPeersAreNotInstalled) {
  options o;
  o.own = {"198.51.100.7:0"};
  start_offload(o);
  const auto c = client();
  const auto relayed_b = [&] {
    const auto other = client("203.0.113.77:40000");
    return allocate(other);
  }();
  allocate(c);
  const auto r = bind_channel(c, 0x4000, relayed_b);
  ASSERT_EQ(r.cls(), message_class::success_response) << error_of(r);
  EXPECT_EQ(fast_.channel_count(), 0u);
  // User space relays it (checking the relay port on every packet).
  io_.to_peer.clear();
  core_->on_client_packet(c, channel_data(0x4000, "own"), now_);
  ASSERT_EQ(io_.to_peer.size(), 1u);
  EXPECT_EQ(io_.to_peer[0].peer, relayed_b);
}

TEST_F(TurnOffload, FullMapLeavesTheChannelToUserSpace) {
  start_offload();
  fast_.max_channels = 0;
  const auto c = client();
  bound(c);
  EXPECT_EQ(fast_.channel_count(), 0u);
  EXPECT_EQ(fast_.count("put"), 1u);
  // The forwarder still relays it.
  io_.to_peer.clear();
  core_->on_client_packet(c, channel_data(0x4000, "abc"), now_);
  ASSERT_EQ(io_.to_peer.size(), 1u);
  EXPECT_EQ(io_.to_peer[0].data, payload_bytes("abc"));
  // Not retried on every tick; tried again when the entry changes.
  advance(1);
  EXPECT_EQ(fast_.count("put"), 1u);
  fast_.max_channels = 10;
  ASSERT_EQ(bind_channel(c, 0x4000, peer_).cls(), message_class::success_response);
  EXPECT_NE(fast_.channel(0x4000), nullptr);
}

TEST_F(TurnOffload, FullAllocationMapLeavesEverythingToUserSpace) {
  start_offload();
  fast_.max_allocations = 0;
  const auto c = client();
  bound(c);
  EXPECT_TRUE(fast_.allocations.empty());
  io_.to_peer.clear();
  core_->on_client_packet(c, channel_data(0x4000, "abc"), now_);
  EXPECT_EQ(io_.to_peer.size(), 1u);
  core_->shutdown(now_);
  EXPECT_EQ(fast_.count("remove_allocation"), 0u);
}

TEST_F(TurnOffload, FoldingCountsTheFastPathsTrafficExactlyOnce) {
  options o;
  o.tenants = true;
  start_offload(o);
  const auto c = client();
  bound(c);
  // User space relays one packet each way.
  core_->on_client_packet(c, channel_data(0x4000, "hello"), now_);
  const relay_id rid = io_.open.begin()->first;
  core_->on_peer_packet(rid, peer_, payload_bytes("hi"), now_);
  const std::uint64_t received_before = counters_.packets_received.load();
  // The program forwarded some more (running totals).
  auto& t = fast_.only()->totals;
  t.packets_to_peer = 10;
  t.bytes_to_peer = 1000;
  t.packets_to_client = 20;
  t.bytes_to_client = 4000;
  t.bandwidth_dropped = 2;
  t.packet_rate_dropped = 3;
  t.byte_rate_dropped = 4;
  advance(1);  // a tick in a new second folds
  EXPECT_EQ(counters_.packets_to_peer.load(), 11u);
  EXPECT_EQ(counters_.bytes_to_peer.load(), 1005u);
  EXPECT_EQ(counters_.packets_to_client.load(), 21u);
  EXPECT_EQ(counters_.bytes_to_client.load(), 4002u);
  EXPECT_EQ(counters_.bandwidth_dropped.load(), 2u);
  EXPECT_EQ(counters_.packet_rate_dropped.load(), 3u);
  EXPECT_EQ(counters_.byte_rate_dropped.load(), 4u);
  EXPECT_EQ(counters_.packets_received.load(), received_before + 10);
  const auto& tenant = counters_.tenants[0];
  EXPECT_EQ(tenant.packets_to_peer.load(), 11u);
  EXPECT_EQ(tenant.bytes_to_client.load(), 4002u);
  EXPECT_EQ(tenant.bandwidth_dropped.load(), 2u);
  // Another tick in the same second reads nothing; the next second folds
  // only what is new.
  const std::size_t reads = fast_.totals_reads;
  now_.mono_ms += 250;
  core_->on_tick(now_);
  EXPECT_EQ(fast_.totals_reads, reads);
  advance(1);
  EXPECT_EQ(counters_.packets_to_peer.load(), 11u) << "folded once";
  t.packets_to_peer = 15;
  t.bytes_to_peer = 1500;
  // The end folds the rest into the usage record.
  ASSERT_EQ(refresh(c, 0).cls(), message_class::success_response);
  EXPECT_EQ(counters_.packets_to_peer.load(), 16u);
  EXPECT_EQ(counters_.bytes_to_peer.load(), 1505u);
  ASSERT_EQ(usage_->rows.size(), 1u);
  EXPECT_EQ(usage_->rows[0].pp, 16u);
  EXPECT_EQ(usage_->rows[0].bp, 1505u);
  EXPECT_EQ(usage_->rows[0].pc, 21u);
  EXPECT_EQ(usage_->rows[0].bc, 4002u);
}

TEST_F(TurnOffload, FoldingChargesTheUserSpaceBuckets) {
  options o;
  o.limits.packets_per_second = 10;
  o.limits.bytes_per_second = 0;
  start_offload(o);
  const auto c = client();
  bound(c);
  // The program forwarded the whole second's budget toward the peer.
  fast_.only()->totals.packets_to_peer = 10;
  fast_.only()->totals.bytes_to_peer = 100;
  now_.mono_ms += 1000;  // within the same tick: the bucket refills to its burst (10) first
  now_.unix_s += 1;
  core_->on_tick(now_);
  const std::uint64_t dropped = counters_.packet_rate_dropped.load();
  io_.to_peer.clear();
  core_->on_client_packet(c, channel_data(0x4000, "x"), now_);
  EXPECT_TRUE(io_.to_peer.empty()) << "the fast path spent the bucket";
  EXPECT_EQ(counters_.packet_rate_dropped.load(), dropped + 1);
  // The other direction's bucket is untouched.
  const relay_id rid = io_.open.begin()->first;
  io_.to_client.clear();
  core_->on_peer_packet(rid, peer_, payload_bytes("y"), now_);
  EXPECT_EQ(io_.to_client.size(), 1u);
}

}  // namespace
}  // namespace anyturn::test
