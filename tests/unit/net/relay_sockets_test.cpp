// The relay sockets: opened exclusively, closed for real, DF per send,
// fragments gathered, kernel drops read at the tick, and the table giving
// its memory back.
#include "../../../src/net/relay_sockets.hpp"

#include "worker_fixture.hpp"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace anyturn::net {
namespace {

using namespace std::chrono_literals;
namespace attr = stun::attr;

TEST(worker_io, open_relay_refuses_a_port_in_use) {
  worker w(0, make_shared_state(), loopback_options());
  relay::io_port& io = w.io_for_test();
  udp_socket squatter;
  EXPECT_EQ(io.open_relay(0, squatter.local()), std::errc::address_in_use);

  const stun::endpoint bind = loopback(free_port());
  ASSERT_FALSE(io.open_relay(3, bind));
  EXPECT_EQ(read(w.io_counters().relay_sockets_open), 1u);
  // No SO_REUSEADDR/SO_REUSEPORT: a second relay cannot share it.
  EXPECT_EQ(io.open_relay(4, bind), std::errc::address_in_use);
  io.close_relay(3);
  EXPECT_EQ(read(w.io_counters().relay_sockets_open), 0u);
  // Closed for real: the port can be bound again, also at the same id.
  EXPECT_FALSE(io.open_relay(3, bind));
  io.close_relay(3);
  io.close_relay(3);     // twice: harmless
  io.close_relay(1000);  // never opened: harmless
  EXPECT_EQ(io.open_relay(relay::no_relay, bind), std::errc::invalid_argument);
}

// The socket of ours bound to `ep` (found by address, as an outsider would).
int descriptor_bound_to(const stun::endpoint& ep) {
  for (int fd = 0; fd < 4096; ++fd) {
    socket_address sa;
    sa.size = sizeof sa.storage;
    if (::getsockname(fd, sa.data(), &sa.size) != 0) continue;
    auto local = from_sockaddr(sa.data(), sa.size);
    if (local && *local == ep) return fd;
  }
  return -1;
}

int pmtu_discover_mode(int fd) {
  int mode = -1;
  socklen_t len = sizeof mode;
  ::getsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &mode, &len);
  return mode;
}

TEST(worker_io, send_to_peer_gathers_fragments_and_sets_df) {
  worker w(0, make_shared_state(), loopback_options());
  relay::io_port& io = w.io_for_test();
  const stun::endpoint bind = loopback(free_port());
  ASSERT_FALSE(io.open_relay(0, bind));
  udp_socket peer;

  const std::array<std::byte, 3> a{std::byte{1}, std::byte{2}, std::byte{3}};
  const std::array<std::byte, 2> b{std::byte{4}, std::byte{5}};
  const std::array<stun::bytes_view, 2> parts{stun::bytes_view(a), stun::bytes_view(b)};
  for (bool df : {false, true, true, false}) {
    ASSERT_TRUE(io.send_to_peer(0, peer.local(), parts, df));
    stun::endpoint from;
    auto got = peer.receive(1000ms, &from);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(from, bind);
    EXPECT_EQ(*got, (std::vector<std::byte>{std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4},
                                            std::byte{5}}));
  }
  // The DF state follows the last request: IP_PMTUDISC_DO only while asked.
  const int fd = descriptor_bound_to(bind);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(pmtu_discover_mode(fd), IP_PMTUDISC_DONT);
  ASSERT_TRUE(io.send_to_peer(0, peer.local(), parts, true));
  EXPECT_EQ(pmtu_discover_mode(fd), IP_PMTUDISC_DO);
  ASSERT_TRUE(io.send_to_peer(0, peer.local(), parts, false));
  EXPECT_EQ(pmtu_discover_mode(fd), IP_PMTUDISC_DONT);
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(peer.receive(1000ms).has_value());

  EXPECT_FALSE(io.send_to_peer(7, peer.local(), parts, false));  // no such relay
  io.close_relay(0);
  EXPECT_FALSE(io.send_to_peer(0, peer.local(), parts, false));
  // Wrong family for the socket: refused, not thrown.
  ASSERT_FALSE(io.open_relay(0, bind));
  EXPECT_FALSE(io.send_to_peer(0, *stun::endpoint::parse("[::1]:9"), parts, false));
}

// Relay sockets carry no SO_RXQ_OVFL: a socket read hard has its kernel drop
// count read (SO_MEMINFO) at the next tick.
TEST(worker, counts_kernel_drops_on_relay_sockets) {
  worker_options o = loopback_options();
  o.tick = 20ms;
  running_worker w(o);
  const stun::endpoint bind = loopback(free_port());
  ASSERT_FALSE(w.get().io_for_test().open_relay(0, bind));
  udp_socket peer;
  // Far more than the relay socket's default receive buffer holds.
  const std::vector<std::byte> junk(1000, std::byte{0x5A});
  for (int i = 0; i < 2000; ++i) peer.send_to(bind, junk);
  w.start();
  std::this_thread::sleep_for(200ms);
  w.stop();
  const std::uint64_t drops = read(w.get().counters().kernel_drops);
  EXPECT_GT(drops, 0u);
  EXPECT_LT(drops, 2000u);
}

// The relay table gives its memory back when most of it is free.
TEST(worker, relay_table_shrinks_after_relays_close) {
  worker_options o = loopback_options();
  o.tick = 20ms;
  running_worker w(o);
  relay::io_port& io = w.get().io_for_test();
  const stun::endpoint low = loopback(free_port());
  ASSERT_FALSE(io.open_relay(3, low));
  ASSERT_FALSE(io.open_relay(5000, loopback(free_port())));
  EXPECT_GE(w.get().relay_table_size_for_test(), 5001u);
  io.close_relay(5000);
  w.start();
  std::this_thread::sleep_for(150ms);
  w.stop();
  EXPECT_EQ(w.get().relay_table_size_for_test(), 64u);
  EXPECT_EQ(read(w.get().io_counters().relay_sockets_open), 0u);  // stop closed relay 3
}

// ---- the table, on its own ----

// The epoll set a table registers its sockets in.
class epoll_set {
 public:
  epoll_set() : fd_(::epoll_create1(EPOLL_CLOEXEC)) { EXPECT_GE(fd_, 0); }
  ~epoll_set() { ::close(fd_); }
  epoll_set(const epoll_set&) = delete;
  epoll_set& operator=(const epoll_set&) = delete;
  [[nodiscard]] int fd() const { return fd_; }
  // The token of the next event, or 0 after `timeout`.
  [[nodiscard]] std::uint64_t next(std::chrono::milliseconds timeout) const {
    epoll_event ev{};
    if (::epoll_wait(fd_, &ev, 1, static_cast<int>(timeout.count())) != 1) return 0;
    return ev.data.u64;
  }

 private:
  int fd_;
};

TEST(relay_socket_table, a_reopened_slot_gets_a_new_generation_and_old_tokens_stop_resolving) {
  std::atomic<std::uint64_t> open{0};
  std::atomic<std::uint64_t> drops{0};
  detail::relay_socket_table table(open, drops);
  epoll_set events;
  EXPECT_FALSE(table.make_room(detail::relay_socket_table::max_id));
  ASSERT_TRUE(table.make_room(5));
  EXPECT_GE(table.size(), 6u);
  EXPECT_EQ(table.find(5), nullptr);

  const stun::endpoint bind = loopback(free_port());
  ASSERT_FALSE(table.open(5, bind, events.fd()));
  EXPECT_EQ(read(open), 1u);
  const std::uint32_t first = table[5].generation;
  EXPECT_NE(first, 0u);  // listeners have generation 0
  EXPECT_TRUE(table.live(5, first));
  ASSERT_NE(table.find(5), nullptr);
  EXPECT_EQ(table.find(5)->fd, table[5].fd);

  // Registered under its token: a datagram to it raises that event.
  udp_socket peer;
  peer.send_to(bind, std::vector<std::byte>(8, std::byte{1}));
  EXPECT_EQ(events.next(1000ms), detail::token_of(5, first));

  table.close(5);
  EXPECT_EQ(read(open), 0u);
  EXPECT_FALSE(table.live(5, first));
  EXPECT_EQ(table.find(5), nullptr);

  ASSERT_FALSE(table.open(5, bind, events.fd()));  // closed for real: the port is free again
  const std::uint32_t second = table[5].generation;
  EXPECT_NE(second, first);
  EXPECT_FALSE(table.live(5, first));
  EXPECT_TRUE(table.live(5, second));
  // A port that is taken is refused, and the slot stays closed.
  ASSERT_TRUE(table.make_room(6));
  EXPECT_EQ(table.open(6, bind, events.fd()), std::errc::address_in_use);
  EXPECT_EQ(table.find(6), nullptr);
  EXPECT_EQ(read(open), 1u);
}

TEST(relay_socket_table, compacts_down_to_its_minimum_but_not_past_a_slot_a_connection_holds) {
  std::atomic<std::uint64_t> open{0};
  std::atomic<std::uint64_t> drops{0};
  detail::relay_socket_table table(open, drops);
  epoll_set events;
  ASSERT_TRUE(table.make_room(1000));
  ASSERT_FALSE(table.open(3, loopback(free_port()), events.fd()));
  ASSERT_FALSE(table.open(1000, loopback(free_port()), events.fd()));
  table.compact();
  EXPECT_EQ(table.size(), 1001u) << "the tail is open";

  table.close(1000);
  table[900].connection = 7;  // a connection's allocation still names slot 900
  table.compact();
  EXPECT_EQ(table.size(), 1001u) << "901 slots to keep: more than half";
  table[900].connection = 0;
  table.compact();
  EXPECT_EQ(table.size(), detail::relay_socket_table::min_size);
  EXPECT_TRUE(table.find(3) != nullptr);
}

TEST(relay_socket_table, lists_a_socket_for_a_drop_check_once_and_forgets_closed_ones) {
  std::atomic<std::uint64_t> open{0};
  std::atomic<std::uint64_t> drops{0};
  detail::relay_socket_table table(open, drops);
  epoll_set events;
  ASSERT_TRUE(table.make_room(2));
  ASSERT_FALSE(table.open(1, loopback(free_port()), events.fd()));
  ASSERT_FALSE(table.open(2, loopback(free_port()), events.fd()));
  table.check_drops_later(1, table[1].generation);
  table.check_drops_later(1, table[1].generation);
  table.check_drops_later(2, table[2].generation);
  EXPECT_TRUE(table[1].drop_check);
  table.close(2);
  EXPECT_FALSE(table[2].drop_check);
  table.check_drops();  // reads socket 1, skips the closed 2
  EXPECT_FALSE(table[1].drop_check);
  EXPECT_EQ(read(drops), 0u);  // nothing was dropped
  table.shrink_drop_checks();
}

}  // namespace
}  // namespace anyturn::net
