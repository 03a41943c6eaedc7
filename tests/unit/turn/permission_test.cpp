// CreatePermission (RFC 8656 §10) and ChannelBind (§11): src/turn/permission.cpp.
#include "turn_core_fixture.hpp"

#include <gtest/gtest.h>

namespace anyturn::test {
namespace {

TEST_F(WorkerCore, PermissionsGateTrafficBothWays) {
  start();
  const auto c = client();
  allocate(c);
  const relay_id rid = io_.open.begin()->first;

  // No permission yet: both directions are dropped.
  core_->on_peer_packet(rid, peer_, payload_bytes("hi"), now_);
  EXPECT_EQ(counters_.no_permission_dropped.load(), 1u);

  auto r = permit(c, peer_);
  ASSERT_EQ(r.cls(), message_class::success_response) << error_of(r);

  // Send indication -> peer.
  std::array<std::byte, 256> buf{};
  stun::message_builder b(buf, 0x006, message_class::indication, new_tid());
  b.add_address(attr::xor_peer_address, peer_, true);
  const auto hello = payload_bytes("hello");
  b.add_bytes(attr::data, hello);
  b.add_flag(attr::dont_fragment);
  io_.to_peer.clear();
  core_->on_client_packet(c, *b.finish(), now_);
  ASSERT_EQ(io_.to_peer.size(), 1u);
  EXPECT_EQ(io_.to_peer[0].peer, peer_);
  EXPECT_EQ(io_.to_peer[0].data, hello);
  EXPECT_TRUE(io_.to_peer[0].dont_fragment);

  // Peer -> Data indication (any port of the permitted IP).
  io_.to_client.clear();
  auto other_port = peer_;
  other_port.port = 6000;
  core_->on_peer_packet(rid, other_port, payload_bytes("world"), now_);
  ASSERT_EQ(io_.to_client.size(), 1u);
  auto ind = stun::parse_message(io_.to_client[0].data);
  ASSERT_TRUE(ind);
  EXPECT_EQ(ind->cls(), message_class::indication);
  EXPECT_EQ(ind->method(), 0x007);
  EXPECT_EQ(*stun::decode_address(*ind->find(attr::xor_peer_address), ind->tid(), true), other_port);
  auto data = ind->find(attr::data);
  ASSERT_TRUE(data);
  EXPECT_EQ(bytes(data->value.begin(), data->value.end()), payload_bytes("world"));

  // The permission lapses after 300 s.
  advance(301);
  io_.to_client.clear();
  core_->on_peer_packet(rid, peer_, payload_bytes("late"), now_);
  EXPECT_TRUE(io_.to_client.empty());
}

TEST_F(WorkerCore, PeerPolicyRefusesPrivateAndLoopbackPeers) {
  start();
  const auto c = client();
  allocate(c);
  for (const char* denied : {"127.0.0.1:9", "10.1.2.3:9", "192.168.1.1:9", "0.0.0.0:9", "169.254.0.1:9"}) {
    auto r = permit(c, ep(denied));
    EXPECT_EQ(error_of(r), 403) << denied;
  }
  EXPECT_EQ(counters_.peer_denied.load(), 5u);
  auto r = bind_channel(c, 0x4000, ep("127.0.0.1:9"));
  EXPECT_EQ(error_of(r), 403);
}

TEST_F(WorkerCore, AllowListOpensLoopbackPeers) {
  options o;
  o.allow = {"127.0.0.0/8"};
  start(o);
  const auto c = client();
  allocate(c);
  auto r = permit(c, ep("127.0.0.1:9"));
  EXPECT_EQ(r.cls(), message_class::success_response);
}

TEST_F(WorkerCore, CreatePermissionChecksAddresses) {
  start();
  const auto c = client();
  allocate(c);
  auto r = send(c, build(stun::method::create_permission, new_tid(), nullptr, "alice", "wonderland"));
  EXPECT_EQ(error_of(r), 400);
  r = permit(c, ep("[2606:4700::1111]:5"));
  EXPECT_EQ(error_of(r), 443);
  // One bad address refuses the whole request, and installs nothing.
  r = send(c, build(stun::method::create_permission, new_tid(),
                    [&](auto& b) {
                      b.add_address(attr::xor_peer_address, peer_, true);
                      b.add_address(attr::xor_peer_address, ep("10.0.0.1:1"), true);
                    },
                    "alice", "wonderland"));
  EXPECT_EQ(error_of(r), 403);
  const relay_id rid = io_.open.begin()->first;
  io_.to_client.clear();
  core_->on_peer_packet(rid, peer_, payload_bytes("x"), now_);
  EXPECT_TRUE(io_.to_client.empty());
}

TEST_F(WorkerCore, PermissionRequestWithoutAllocationGets437) {
  start();
  const auto c = client();
  learn_nonce(c);
  auto r = permit(c, peer_);
  EXPECT_EQ(error_of(r), 437);
}

TEST_F(WorkerCore, ChannelsRelayBothWays) {
  start();
  const auto c = client();
  allocate(c);
  const relay_id rid = io_.open.begin()->first;
  for (std::uint16_t number : {std::uint16_t{0x4000}, std::uint16_t{0x7FFF}}) {
    auto peer = peer_;
    peer.port = number == 0x4000 ? 5000 : 5001;
    auto r = bind_channel(c, number, peer);
    ASSERT_EQ(r.cls(), message_class::success_response) << error_of(r);

    io_.to_peer.clear();
    core_->on_client_packet(c, channel_data(number, "abcde"), now_);
    ASSERT_EQ(io_.to_peer.size(), 1u);
    EXPECT_EQ(io_.to_peer[0].peer, peer);
    EXPECT_EQ(io_.to_peer[0].data, payload_bytes("abcde"));

    io_.to_client.clear();
    core_->on_peer_packet(rid, peer, payload_bytes("reply"), now_);
    ASSERT_EQ(io_.to_client.size(), 1u);
    auto cd = stun::parse_channel_data(io_.to_client[0].data);
    ASSERT_TRUE(cd);
    EXPECT_EQ(cd->channel, number);
    EXPECT_EQ(bytes(cd->payload.begin(), cd->payload.end()), payload_bytes("reply"));
  }
  EXPECT_EQ(counters_.packets_to_peer.load(), 2u);
  EXPECT_EQ(counters_.bytes_to_client.load(), 10u);
}

TEST_F(WorkerCore, ChannelBindRules) {
  start();
  const auto c = client();
  allocate(c);
  EXPECT_EQ(error_of(bind_channel(c, 0x3FFF, peer_)), 400);
  EXPECT_EQ(error_of(bind_channel(c, 0x8000, peer_)), 400);
  ASSERT_EQ(bind_channel(c, 0x4001, peer_).cls(), message_class::success_response);
  auto other = peer_;
  other.port = 7000;
  EXPECT_EQ(error_of(bind_channel(c, 0x4001, other)), 400) << "number bound to another peer";
  EXPECT_EQ(error_of(bind_channel(c, 0x4002, peer_)), 400) << "peer bound to another number";
  EXPECT_EQ(bind_channel(c, 0x4001, peer_).cls(), message_class::success_response) << "refresh";
  EXPECT_EQ(error_of(bind_channel(c, 0x4003, ep("[2606:4700::1111]:5"))), 443);
  auto r = send(c, build(stun::method::channel_bind, new_tid(),
                         [](auto& b) { b.add_channel_number(0x4005); }, "alice", "wonderland"));
  EXPECT_EQ(error_of(r), 400);
}

TEST_F(WorkerCore, ExpiredChannelStopsAndItsNumberCoolsDown) {
  start();
  const auto c = client();
  allocate(c);
  ASSERT_EQ(bind_channel(c, 0x4000, peer_).cls(), message_class::success_response);
  // Keep the allocation and permission alive, but not the channel.
  for (int i = 0; i < 3; ++i) {
    advance(250);
    learn_nonce(c);  // nonces go stale after 600 s
    ASSERT_EQ(send(c, build(stun::method::refresh, new_tid(), nullptr, "alice", "wonderland")).cls(),
              message_class::success_response);
    ASSERT_EQ(permit(c, peer_).cls(), message_class::success_response);
  }
  // 750 s: the channel (600 s) has expired.
  io_.to_peer.clear();
  core_->on_client_packet(c, channel_data(0x4000, "x"), now_);
  EXPECT_TRUE(io_.to_peer.empty());
  EXPECT_EQ(counters_.unbound_channel_dropped.load(), 1u);
  auto other = peer_;
  other.port = 9999;
  learn_nonce(c);
  EXPECT_EQ(error_of(bind_channel(c, 0x4000, other)), 400) << "cooling down for 5 minutes";
  EXPECT_EQ(bind_channel(c, 0x4000, peer_).cls(), message_class::success_response)
      << "the same peer may rebind";
}

TEST_F(WorkerCore, ChannelDataOnUnboundChannelIsDropped) {
  start();
  const auto c = client();
  allocate(c);
  core_->on_client_packet(c, channel_data(0x4444, "x"), now_);
  EXPECT_EQ(counters_.unbound_channel_dropped.load(), 1u);
  core_->on_client_packet(client("203.0.113.99:1"), channel_data(0x4444, "x"), now_);
  EXPECT_EQ(counters_.no_allocation_dropped.load(), 1u);
}

// RFC 8489 §14.5: an on-path attacker appends XOR-PEER-ADDRESS attributes
// to a signed CreatePermission. Only the covered peer gets a permission.
TEST_F(WorkerCore, CreatePermissionIgnoresPeersAfterIntegrity) {
  start();
  const auto c = client();
  allocate(c);
  const relay_id rid = io_.open.begin()->first;
  const auto injected = ep("198.18.0.66:4000");
  auto r = send(c, build_with_trailer(
                       stun::method::create_permission, new_tid(),
                       [&](auto& b) { b.add_address(attr::xor_peer_address, peer_, true); },
                       [&](auto& b) {
                         b.add_address(attr::xor_peer_address, injected, true);
                         b.add_address(attr::xor_peer_address, ep("10.0.0.1:1"), true);
                       }));
  ASSERT_EQ(r.cls(), message_class::success_response) << error_of(r);
  EXPECT_EQ(counters_.peer_denied.load(), 0u) << "the denied trailing peer was not even looked at";
  io_.to_client.clear();
  core_->on_peer_packet(rid, peer_, payload_bytes("covered"), now_);
  EXPECT_EQ(io_.to_client.size(), 1u);
  core_->on_peer_packet(rid, injected, payload_bytes("injected"), now_);
  EXPECT_EQ(io_.to_client.size(), 1u) << "no permission for the appended peer";
  EXPECT_EQ(counters_.no_permission_dropped.load(), 1u);

  // Only appended peers: the request names none (400).
  r = send(c, build_with_trailer(stun::method::create_permission, new_tid(), nullptr,
                                 [&](auto& b) { b.add_address(attr::xor_peer_address, injected, true); }));
  EXPECT_EQ(error_of(r), 400);
}

TEST_F(WorkerCore, ChannelBindIgnoresAttributesAfterIntegrity) {
  start();
  const auto c = client();
  allocate(c);
  // CHANNEL-NUMBER only after the integrity: missing (400).
  auto r = send(c, build_with_trailer(
                       stun::method::channel_bind, new_tid(),
                       [&](auto& b) { b.add_address(attr::xor_peer_address, peer_, true); },
                       [](auto& b) { b.add_channel_number(0x4000); }));
  EXPECT_EQ(error_of(r), 400);
  // XOR-PEER-ADDRESS only after the integrity: missing (400).
  const auto injected = ep("198.18.0.66:4000");
  r = send(c, build_with_trailer(stun::method::channel_bind, new_tid(),
                                 [](auto& b) { b.add_channel_number(0x4000); },
                                 [&](auto& b) { b.add_address(attr::xor_peer_address, injected, true); }));
  EXPECT_EQ(error_of(r), 400);
  EXPECT_TRUE(io_.to_peer.empty());
  core_->on_client_packet(c, channel_data(0x4000, "x"), now_);
  EXPECT_TRUE(io_.to_peer.empty()) << "no channel was bound";
  EXPECT_EQ(counters_.unbound_channel_dropped.load(), 1u);
}

// Hole 1.4 of issue 12: one allocation accepted 2,000 distinct peers, one
// per CreatePermission. With the default limits.allocation.max_peers (64),
// the 65th distinct peer IP gets 508 and is counted.
TEST_F(WorkerCore, AllocationRefusesPeersPastMaxPeers) {
  start();
  const auto c = client();
  allocate(c);
  std::size_t accepted = 0;
  int first_refusal = 0;
  for (std::uint32_t i = 0; i < 2000; ++i) {
    now_.mono_ms += 200;  // 5 new permissions a second: under the permission rate
    const auto peer = stun::endpoint::v4(0x5DB80000u + i, 5000);  // 93.184.x.y
    const auto r = permit(c, peer);
    if (r.cls() == message_class::success_response) {
      ++accepted;
    } else {
      first_refusal = error_of(r);
      break;
    }
  }
  EXPECT_EQ(accepted, 64u);
  EXPECT_EQ(first_refusal, 508);
}

TEST_F(WorkerCore, ChannelBindPastMaxChannelsGets508) {
  options o;
  o.limits.max_channels = 3;
  start(o);
  const auto c = client();
  allocate(c);
  for (std::uint16_t i = 0; i < 3; ++i) {
    const auto peer = stun::endpoint::v4(0x5DB80000u + i, 5000);
    ASSERT_EQ(bind_channel(c, static_cast<std::uint16_t>(0x4000 + i), peer).cls(),
              message_class::success_response);
  }
  const auto fourth = stun::endpoint::v4(0x5DB80010u, 5000);
  EXPECT_EQ(error_of(bind_channel(c, 0x4010, fourth)), 508);
  EXPECT_EQ(counters_.limit_rejected_channels.load(), 1u);
  EXPECT_EQ(counters_.tenants[0].limit_rejected_channels.load(), 1u);
  // Refreshing a bound channel is not a new one.
  EXPECT_EQ(bind_channel(c, 0x4001, stun::endpoint::v4(0x5DB80001u, 5000)).cls(),
            message_class::success_response);
  // Nothing was installed for the refused one.
  io_.to_peer.clear();
  core_->on_client_packet(c, channel_data(0x4010, "x"), now_);
  EXPECT_TRUE(io_.to_peer.empty());
}

TEST_F(WorkerCore, ChannelBindToANewPeerCountsAgainstMaxPeers) {
  options o;
  o.limits.max_peers = 2;
  start(o);
  const auto c = client();
  allocate(c);
  ASSERT_EQ(permit(c, stun::endpoint::v4(0x5DB80001u, 1)).cls(), message_class::success_response);
  ASSERT_EQ(permit(c, stun::endpoint::v4(0x5DB80002u, 1)).cls(), message_class::success_response);
  EXPECT_EQ(error_of(bind_channel(c, 0x4000, stun::endpoint::v4(0x5DB80003u, 1))), 508);
  EXPECT_EQ(counters_.limit_rejected_peers.load(), 1u);
  EXPECT_EQ(bind_channel(c, 0x4000, stun::endpoint::v4(0x5DB80002u, 7)).cls(),
            message_class::success_response)
      << "a channel to a peer IP with a permission adds no peer";
}

TEST_F(WorkerCore, MaxPeersCountsPeerIpsAndAllOrNothing) {
  options o;
  o.limits.max_peers = 3;
  start(o);
  const auto c = client();
  allocate(c);
  // Two ports of one IP are one peer; refreshes are free.
  ASSERT_EQ(permit(c, stun::endpoint::v4(0x5DB80001u, 1)).cls(), message_class::success_response);
  ASSERT_EQ(permit(c, stun::endpoint::v4(0x5DB80001u, 2)).cls(), message_class::success_response);
  ASSERT_EQ(permit(c, stun::endpoint::v4(0x5DB80002u, 1)).cls(), message_class::success_response);
  // Two new IPs in one request would make 4: refused, and neither installed.
  const auto two = send(c, build(stun::method::create_permission, new_tid(),
                                 [&](auto& b) {
                                   b.add_address(attr::xor_peer_address, stun::endpoint::v4(0x5DB80003u, 1), true);
                                   b.add_address(attr::xor_peer_address, stun::endpoint::v4(0x5DB80004u, 1), true);
                                 },
                                 "alice", "wonderland"));
  EXPECT_EQ(error_of(two), 508);
  ASSERT_EQ(permit(c, stun::endpoint::v4(0x5DB80003u, 1)).cls(), message_class::success_response);
  EXPECT_EQ(error_of(permit(c, stun::endpoint::v4(0x5DB80004u, 1))), 508);
  EXPECT_EQ(counters_.limit_rejected_peers.load(), 2u);
  // Once permissions expire (300 s) they no longer count.
  advance(301);
  learn_nonce(c);
  EXPECT_EQ(permit(c, stun::endpoint::v4(0x5DB80004u, 1)).cls(), message_class::success_response);
}

TEST_F(WorkerCore, NewPermissionsFasterThanTheRateGet508) {
  options o;
  o.limits.permissions_per_second = 2;
  o.limits.permission_burst = 4;
  start(o);
  const auto c = client();
  allocate(c);
  std::uint32_t ip = 0x5DB80000u;
  for (int i = 0; i < 4; ++i)
    ASSERT_EQ(permit(c, stun::endpoint::v4(++ip, 1)).cls(), message_class::success_response) << i;
  EXPECT_EQ(error_of(permit(c, stun::endpoint::v4(++ip, 1))), 508);
  EXPECT_EQ(counters_.limit_rejected_permission_rate.load(), 1u);
  EXPECT_EQ(counters_.tenants[0].limit_rejected_permission_rate.load(), 1u);
  // A refresh of an existing permission takes no token.
  EXPECT_EQ(permit(c, stun::endpoint::v4(0x5DB80001u, 9)).cls(), message_class::success_response);
  now_.mono_ms += 499;  // not yet one token
  EXPECT_EQ(error_of(permit(c, stun::endpoint::v4(ip, 1))), 508);
  now_.mono_ms += 1;  // 500 ms at 2 a second: one token
  EXPECT_EQ(permit(c, stun::endpoint::v4(ip, 1)).cls(), message_class::success_response);
  EXPECT_EQ(error_of(permit(c, stun::endpoint::v4(++ip, 1))), 508);
  EXPECT_EQ(counters_.limit_rejected_permission_rate.load(), 3u);
  EXPECT_EQ(counters_.limit_rejected_peers.load(), 0u);
}

TEST_F(WorkerCore, ATenantsAllocationLimitsOverrideTheGlobalOnes) {
  options o;
  o.tenants = true;
  o.limits.max_peers = 2;    // the default tenant's
  o.acme.allocation.max_peers = 5;
  start(o);
  const auto alice = client("203.0.113.10:40000");
  allocate(alice);
  const auto dave = client("203.0.113.10:40001");  // nonces are per client IP
  allocate(dave, "dave", "dave-pass");
  std::size_t alice_ok = 0, dave_ok = 0;
  for (std::uint32_t i = 0; i < 8; ++i) {
    const auto peer = stun::endpoint::v4(0x5DB80000u + i, 1);
    if (permit(alice, peer).cls() == message_class::success_response) ++alice_ok;
    if (permit(dave, peer, "dave", "dave-pass").cls() == message_class::success_response) ++dave_ok;
  }
  EXPECT_EQ(alice_ok, 2u);
  EXPECT_EQ(dave_ok, 5u);
  EXPECT_EQ(counters_.tenants[0].limit_rejected_peers.load(), 6u);
  EXPECT_EQ(counters_.tenants[1].limit_rejected_peers.load(), 3u);
}

// With max_peers raised, one allocation holds 10,000 permissions and every
// one of them still relays.
TEST_F(WorkerCore, TenThousandPeersWhenMaxPeersIsRaised) {
  options o;
  o.limits.max_peers = 10'000;
  o.limits.permissions_per_second = 0;
  start(o);
  const auto c = client();
  allocate(c);
  const relay_id rid = io_.open.begin()->first;
  for (std::uint32_t i = 0; i < 10'000; ++i) {
    const auto r = permit(c, stun::endpoint::v4(0x5D000000u + i * 13u, 5000));
    ASSERT_EQ(r.cls(), message_class::success_response) << i << " error " << error_of(r);
  }
  EXPECT_EQ(error_of(permit(c, stun::endpoint::v4(0x5E000000u, 5000))), 508);
  io_.to_client.clear();
  for (std::uint32_t i = 0; i < 10'000; i += 97)
    core_->on_peer_packet(rid, stun::endpoint::v4(0x5D000000u + i * 13u, 5000), payload_bytes("p"), now_);
  EXPECT_EQ(io_.to_client.size(), 104u);
  EXPECT_EQ(counters_.no_permission_dropped.load(), 0u);
}

// Issue 12, hole 1.3: the server's own addresses are peers only on the relay
// port of a live allocation. 192.0.2.1 is the listener the fixture's clients
// talk to; 198.51.100.7 is the relay address (both default-denied ranges:
// an own relay address relays between allocations all the same).
TEST_F(WorkerCore, OwnAddressesArePeersOnlyOnLiveRelayPorts) {
  options o;
  o.own = {"192.0.2.1:3478"};
  start(o);
  const auto c1 = client("203.0.113.1:1000");
  const auto c2 = client("203.0.113.2:2000");
  const auto relay1 = allocate(c1);
  const auto relay2 = allocate(c2);
  ASSERT_NE(relay1.port, relay2.port);
  learn_nonce(c1);  // nonces are per client IP

  // The TURN listener and a port of the relay address that no allocation holds: 403.
  EXPECT_EQ(error_of(bind_channel(c1, 0x4000, ep("192.0.2.1:3478"))), 403);
  EXPECT_EQ(error_of(bind_channel(c1, 0x4001, ep("198.51.100.7:3478"))), 403);
  // A permission for the listener-only address can reach nothing: 403.
  EXPECT_EQ(error_of(permit(c1, ep("192.0.2.1:0"))), 403);
  EXPECT_EQ(counters_.peer_denied_self.load(), 3u);
  EXPECT_EQ(counters_.peer_denied.load(), 0u);

  // Another allocation's relayed address: bound, and relayed both ways.
  ASSERT_EQ(bind_channel(c1, 0x4002, relay2).cls(), message_class::success_response);
  learn_nonce(c2);
  ASSERT_EQ(permit(c2, relay1).cls(), message_class::success_response) << "a relay IP may be permitted";
  learn_nonce(c1);
  io_.to_peer.clear();
  core_->on_client_packet(c1, channel_data(0x4002, "hello"), now_);
  ASSERT_EQ(io_.to_peer.size(), 1u);
  EXPECT_EQ(io_.to_peer[0].peer, relay2);

  // A Send indication under the relay IP's permission: to the live relay
  // port it goes, to the listener port on that IP it is dropped.
  const auto send_to = [&](const stun::endpoint& peer) {
    std::array<std::byte, 256> buf{};
    stun::message_builder b(buf, 0x006, message_class::indication, new_tid());
    b.add_address(attr::xor_peer_address, peer, true);
    b.add_bytes(attr::data, payload_bytes("x"));
    core_->on_client_packet(c1, *b.finish(), now_);
  };
  io_.to_peer.clear();
  send_to(relay2);
  EXPECT_EQ(io_.to_peer.size(), 1u);
  send_to(ep("198.51.100.7:3478"));
  EXPECT_EQ(io_.to_peer.size(), 1u);
  EXPECT_EQ(counters_.self_peer_dropped.load(), 1u);

  // The other allocation ends: its port is no longer a live relay port.
  learn_nonce(c2);
  ASSERT_EQ(send(c2, build(stun::method::refresh, new_tid(), [](auto& b) { b.add_u32(attr::lifetime, 0); },
                           "alice", "wonderland"))
                .cls(),
            message_class::success_response);
  io_.to_peer.clear();
  core_->on_client_packet(c1, channel_data(0x4002, "late"), now_);
  EXPECT_TRUE(io_.to_peer.empty());
  EXPECT_EQ(counters_.self_peer_dropped.load(), 2u);
}

TEST_F(WorkerCore, WithoutOwnAddressesTheRelayIpFollowsThePolicy) {
  start();  // no own-address set: the built-in denies apply as before
  const auto c1 = client("203.0.113.1:1000");
  allocate(c1);
  EXPECT_EQ(error_of(permit(c1, ep("198.51.100.7:0"))), 403);
  EXPECT_EQ(counters_.peer_denied.load(), 1u);
  EXPECT_EQ(counters_.peer_denied_self.load(), 0u);
}

}  // namespace
}  // namespace anyturn::test
