// TCP relay allocations (RFC 6062) in the TURN core: src/turn/tcp_relay.cpp
// and the transport check of src/turn/allocate.cpp, against the recording
// io_port (tests/support/fake_io.hpp).
#include "turn_core_fixture.hpp"

#include <gtest/gtest.h>

namespace anyturn::test {
namespace {

client_ref stream(std::uint64_t connection, const char* remote = "203.0.113.10:40000") {
  client_ref c;
  c.proto = transport::tcp;
  c.connection = connection;
  c.remote = ep(remote);
  c.local = ep("192.0.2.1:3478");
  return c;
}

class TcpRelayCore : public WorkerCore {
 protected:
  static void requested_tcp(stun::message_builder& b) { b.add_requested_transport(6); }

  stun::endpoint allocate_tcp(const client_ref& c) {
    learn_nonce(c);
    auto r = send(c, build(stun::method::allocate, new_tid(), requested_tcp, "alice", "wonderland"));
    EXPECT_EQ(r.cls(), message_class::success_response) << "error " << error_of(r);
    const auto relayed = r.find(attr::xor_relayed_address);
    return relayed ? *stun::decode_address(*relayed, r.tid(), true) : stun::endpoint{};
  }
  stun::message_view connect(const client_ref& c, const stun::endpoint& peer) {
    return send(c, build(stun::method::connect, new_tid(),
                         [&](auto& b) { b.add_address(attr::xor_peer_address, peer, true); }, "alice",
                         "wonderland"));
  }
  stun::message_view connection_bind(const client_ref& c, std::uint32_t cid) {
    return send(c, build(stun::method::connection_bind, new_tid(),
                         [&](auto& b) { b.add_u32(attr::connection_id, cid); }, "alice", "wonderland"));
  }
};

TEST_F(TcpRelayCore, TcpAllocationsOnlyOverStreamsAndWithoutUdpOptions) {
  start();
  const auto udp = client();
  learn_nonce(udp);
  auto r = send(udp, build(stun::method::allocate, new_tid(), requested_tcp, "alice", "wonderland"));
  EXPECT_EQ(error_of(r), 442);
  // DTLS is a datagram transport too: no data connection could be bound.
  client_ref dtls = stream(9, "203.0.113.11:40000");
  dtls.proto = transport::dtls;
  learn_nonce(dtls);
  r = send(dtls, build(stun::method::allocate, new_tid(), requested_tcp, "alice", "wonderland"));
  EXPECT_EQ(error_of(r), 442);
  r = connection_bind(dtls, 0x00000101);
  EXPECT_EQ(error_of(r), 400) << "ConnectionBind over DTLS";
  const auto c = stream(7);
  learn_nonce(c);
  r = send(c, build(stun::method::allocate, new_tid(), [](auto& b) {
    b.add_requested_transport(6);
    b.add_even_port(false);
  }, "alice", "wonderland"));
  EXPECT_EQ(error_of(r), 400);
  r = send(c, build(stun::method::allocate, new_tid(), [](auto& b) { b.add_requested_transport(7); },
                    "alice", "wonderland"));
  EXPECT_EQ(error_of(r), 442);
  const auto relayed = allocate_tcp(c);
  EXPECT_NE(relayed.port, 0);
  EXPECT_EQ(io_.tcp_open.size(), 1u) << "a listening relay, not a UDP one";
}

// relay.tcp: false (--no-tcp-relay): TCP allocations get 442, UDP ones work.
TEST_F(TcpRelayCore, RelayTcpFalseRefusesTcpAllocationsWith442) {
  start();
  shared_->tcp_relay = false;  // the core reads the shared state per request
  const auto c = stream(7);
  learn_nonce(c);
  auto r = send(c, build(stun::method::allocate, new_tid(), requested_tcp, "alice", "wonderland"));
  EXPECT_EQ(error_of(r), 442);
  EXPECT_TRUE(io_.tcp_open.empty());
  r = send(c, build(stun::method::allocate, new_tid(), [](auto& b) { b.add_requested_transport(17); },
                    "alice", "wonderland"));
  EXPECT_EQ(r.cls(), message_class::success_response) << "error " << error_of(r);
}

TEST_F(TcpRelayCore, ConnectNeedsAPermissionThenAnswersWhenTheConnectEnds) {
  start();
  const auto c = stream(7);
  allocate_tcp(c);
  const auto peer = ep("93.184.216.34:5000");
  EXPECT_EQ(error_of(connect(c, peer)), 403);
  EXPECT_EQ(counters_.tcp_relay_no_permission.load(), 1u);
  ASSERT_EQ(permit(c, peer).cls(), message_class::success_response);
  // Nothing is answered until the connect finishes.
  io_.to_client.clear();
  core_->on_client_packet(c, build(stun::method::connect, new_tid(),
                                   [&](auto& b) { b.add_address(attr::xor_peer_address, peer, true); },
                                   "alice", "wonderland"),
                          now_);
  EXPECT_TRUE(io_.to_client.empty());
  ASSERT_EQ(io_.tcp_connects.size(), 1u);
  const std::uint32_t cid = io_.next_cid;
  EXPECT_TRUE(core_->on_tcp_connected(cid, true, now_));
  ASSERT_EQ(io_.to_client.size(), 1u);
  auto answer = stun::parse_message(io_.to_client.back().data);
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->cls(), message_class::success_response);
  EXPECT_EQ(*stun::decode_u32(*answer->find(attr::connection_id)), cid);
  EXPECT_TRUE(answer->has(attr::message_integrity)) << "signed like the request";
  // The same peer again: 446. A connect that cannot start: 447.
  EXPECT_EQ(error_of(connect(c, peer)), 446);
  io_.refuse_connect = true;
  const auto other = ep("93.184.216.34:5001");
  EXPECT_EQ(error_of(connect(c, other)), 447);
  io_.refuse_connect = false;
  // A connect that fails later: 447 then.
  io_.to_client.clear();
  core_->on_client_packet(c, build(stun::method::connect, new_tid(),
                                   [&](auto& b) { b.add_address(attr::xor_peer_address, other, true); },
                                   "alice", "wonderland"),
                          now_);
  EXPECT_FALSE(core_->on_tcp_connected(io_.next_cid, false, now_));
  ASSERT_EQ(io_.to_client.size(), 1u);
  answer = stun::parse_message(io_.to_client.back().data);
  ASSERT_TRUE(answer);
  EXPECT_EQ(stun::decode_error_code(*answer->find(attr::error_code))->code, 447);
  EXPECT_EQ(counters_.tcp_relay_connect_failed.load(), 2u);
  EXPECT_EQ(counters_.tcp_relay_exists.load(), 1u);
}

TEST_F(TcpRelayCore, PeerConnectionsNeedAPermission) {
  start();
  const auto c = stream(7);
  allocate_tcp(c);
  const relay::relay_id id = io_.tcp_open.begin()->first;
  const auto peer = ep("93.184.216.34:6000");
  io_.to_client.clear();
  EXPECT_FALSE(core_->on_peer_connection(id, peer, 0x42, now_));
  EXPECT_TRUE(io_.to_client.empty());
  ASSERT_EQ(permit(c, peer).cls(), message_class::success_response);
  io_.to_client.clear();
  EXPECT_TRUE(core_->on_peer_connection(id, peer, 0x42, now_));
  ASSERT_EQ(io_.to_client.size(), 1u);
  const auto attempt = stun::parse_message(io_.to_client.back().data);
  ASSERT_TRUE(attempt);
  EXPECT_EQ(attempt->method(), static_cast<std::uint16_t>(stun::method::connection_attempt));
  EXPECT_EQ(attempt->cls(), message_class::indication);
  EXPECT_EQ(*stun::decode_address(*attempt->find(attr::xor_peer_address), attempt->tid(), true), peer);
  EXPECT_EQ(*stun::decode_u32(*attempt->find(attr::connection_id)), 0x42u);
  // A denied peer (the policy) never gets through, permission or not.
  EXPECT_FALSE(core_->on_peer_connection(id, ep("127.0.0.1:7000"), 0x43, now_));
}

TEST_F(TcpRelayCore, ConnectionBindChecksItsConnectionAndUser) {
  start();
  const auto c = stream(7);
  allocate_tcp(c);
  const relay::relay_id id = io_.tcp_open.begin()->first;
  io_.tcp_waiting[0x77] = id;
  // On the control connection: 400. Unknown id: 400.
  EXPECT_EQ(error_of(connection_bind(c, 0x77)), 400);
  const auto data = stream(8, "203.0.113.10:40001");
  EXPECT_EQ(error_of(connection_bind(data, 0x78)), 400);
  EXPECT_TRUE(io_.tcp_bound.empty());
  const auto r = connection_bind(data, 0x77);
  EXPECT_EQ(r.cls(), message_class::success_response) << error_of(r);
  ASSERT_EQ(io_.tcp_bound.count(0x77), 1u);
  EXPECT_EQ(io_.tcp_bound[0x77], data);
  EXPECT_EQ(counters_.tcp_relay_bound.load(), 1u);
  EXPECT_EQ(counters_.tcp_relay_bind_failed.load(), 2u);
  // Another worker's id moves the connection there, before authentication.
  io_.to_client.clear();
  core_->on_client_packet(stream(9, "203.0.113.10:40002"),
                          build(stun::method::connection_bind, new_tid(),
                                [](auto& b) { b.add_u32(attr::connection_id, 0x03000001); }),
                          now_);
  EXPECT_TRUE(io_.to_client.empty());
  ASSERT_EQ(io_.streams_moved.size(), 1u);
  EXPECT_EQ(io_.streams_moved[0], 3u);
}

TEST_F(TcpRelayCore, DataConnectionBytesCountInTheUsageRecord) {
  start();
  const auto c = stream(7);
  allocate_tcp(c);
  const relay::relay_id id = io_.tcp_open.begin()->first;
  core_->on_tcp_relayed(id, 1000, 0);
  core_->on_tcp_relayed(id, 0, 2500);
  EXPECT_EQ(counters_.bytes_to_peer.load(), 1000u);
  EXPECT_EQ(counters_.bytes_to_client.load(), 2500u);
  core_->for_each_allocation([](const relay::allocation& a, std::string_view) {
    EXPECT_EQ(a.bytes_to_peer, 1000u);
    EXPECT_EQ(a.bytes_to_client, 2500u);
  });
  // The allocation ends with its connection: the listener closes.
  core_->on_client_closed(c, now_);
  EXPECT_TRUE(io_.tcp_open.empty());
}

}  // namespace
}  // namespace anyturn::test
