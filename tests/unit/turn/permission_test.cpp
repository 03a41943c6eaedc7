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

}  // namespace
}  // namespace anyturn::test
