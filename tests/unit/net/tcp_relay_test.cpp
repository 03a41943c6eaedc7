// The worker's TCP relay state (src/net/tcp_relay.cpp): CONNECTION-IDs that
// name their worker, the splice pipes, and the io_port operations on a
// worker that is not running (listener opened and closed for real, unknown
// ids refused). The full flows run against the daemon in
// tests/integration/tcp_relay_test.cpp.
#include "../../../src/net/tcp_relay.hpp"

#include "worker_fixture.hpp"

#include <gtest/gtest.h>

#include <cstring>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace anyturn::net {
namespace {

// Whether a TCP connect to 127.0.0.1:port succeeds now.
bool accepts(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  sin.sin_addr.s_addr = htonl(0x7F000001u);
  const bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&sin), sizeof sin) == 0;
  ::close(fd);
  return ok;
}

TEST(tcp_relay_table, ids_name_their_worker_and_are_never_reused_while_alive) {
  detail::tcp_relay_table t;
  const std::uint32_t a = t.new_id(3);
  EXPECT_EQ(a >> 24, 3u);
  EXPECT_NE(a & 0xFFFFFFu, 0u);
  t.conns[a] = nullptr;
  t.next = (a & 0xFFFFFFu) - 1;  // the counter comes round to `a` again
  const std::uint32_t b = t.new_id(3);
  EXPECT_NE(b, a);
  t.next = 0xFFFFFFu;  // wraps past 0
  EXPECT_NE(t.new_id(0), 0u);
}

TEST(tcp_relay_table, a_pipe_is_a_bounded_buffer) {
  detail::splice_pipe p;
  ASSERT_TRUE(p.open());
  EXPECT_GE(p.capacity, 4096u);
  EXPECT_LE(p.capacity, 1u << 20);
  EXPECT_EQ(p.held, 0u);
}

TEST(worker_io, a_tcp_relay_listens_until_closed) {
  worker w(0, make_shared_state(), loopback_options());
  relay::io_port& io = w.io_for_test();
  const std::uint16_t port = free_tcp_port();
  ASSERT_FALSE(io.open_tcp_relay(5, stun::endpoint::v4(0x7F000001u, port)));
  EXPECT_TRUE(accepts(port));
  // Unknown ids: nothing waits for a bind, nothing to bind, no peer.
  EXPECT_EQ(io.tcp_unbound(0x00000042), relay::no_relay);
  relay::client_ref data;
  data.proto = relay::transport::tcp;
  data.connection = 99;
  EXPECT_FALSE(io.tcp_bind(0x00000042, data));
  EXPECT_FALSE(io.tcp_peer_exists(5, stun::endpoint::v4(0x7F000001u, 1)));
  // A Connect from a relay that does not exist cannot start.
  EXPECT_EQ(io.tcp_connect(6, stun::endpoint::v4(0x7F000001u, 1)), 0u);
  io.close_relay(5);
  EXPECT_FALSE(accepts(port));
}

TEST(worker_io, without_hand_off_queues_a_stream_does_not_move) {
  worker w(0, make_shared_state(), loopback_options());
  relay::client_ref from;
  from.proto = relay::transport::tcp;
  from.connection = 1;
  EXPECT_FALSE(w.io_for_test().hand_off_stream(from, 1, {}));
}

}  // namespace
}  // namespace anyturn::net
