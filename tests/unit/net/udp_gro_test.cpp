// UDP_GRO on the listeners and relay sockets (worker_options::udp_gro): a
// sender's UDP GSO message arrives at the worker as one coalesced buffer
// (loopback keeps GSO packets whole for a socket with UDP_GRO), and the
// loop relays each segment as a datagram of its own, in order, the last one
// shorter; counted in gro_messages / gro_datagrams.
#include "../../../src/net/udp_loop.hpp"

#include "worker_fixture.hpp"

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstring>
#include <vector>

#include <netinet/udp.h>
#include <poll.h>
#include <sys/socket.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

namespace anyturn::net {
namespace {

using namespace std::chrono_literals;

// Sends `data` to `to` as one UDP GSO message of `segment`-byte segments.
bool send_gso(int fd, const stun::endpoint& to, const std::vector<std::byte>& data, std::uint16_t segment) {
  const socket_address sa = to_sockaddr(to);
  iovec iov{const_cast<std::byte*>(data.data()), data.size()};
  alignas(cmsghdr) std::array<std::byte, CMSG_SPACE(sizeof(std::uint16_t))> control{};
  msghdr msg{};
  msg.msg_name = const_cast<sockaddr*>(sa.data());
  msg.msg_namelen = sa.size;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_UDP;
  c->cmsg_type = UDP_SEGMENT;
  c->cmsg_len = CMSG_LEN(sizeof segment);
  std::memcpy(CMSG_DATA(c), &segment, sizeof segment);
  return ::sendmsg(fd, &msg, 0) == static_cast<ssize_t>(data.size());
}

bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 1000) == 1;
}

// Relays `count` datagrams of `payload` bytes (the last `last` bytes) each
// way, sent as one GSO message per direction; every datagram must arrive
// alone, in order, with its length.
void relay_gso_burst(running_worker& w, std::size_t count, std::size_t payload, std::size_t last) {
  turn_client c;
  c.server = w.listener();
  udp_socket peer;
  const auto relayed = allocate_with_channel(c, peer.local(), 0x4001);
  ASSERT_TRUE(relayed.has_value());

  // Client -> peer: ChannelData segments of 4 + payload bytes (payload a
  // multiple of 4: no padding), the last shorter.
  std::vector<std::byte> out;
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t len = i + 1 == count ? last : payload;
    const std::size_t at = out.size();
    out.resize(at + 4 + len, static_cast<std::byte>(i));
    stun::write_channel_data_header(std::span<std::byte>(out).subspan(at, 4), 0x4001,
                                    static_cast<std::uint16_t>(len));
  }
  ASSERT_TRUE(send_gso(c.socket.fd(), w.listener(), out, static_cast<std::uint16_t>(4 + payload)));
  std::array<std::byte, 4096> in{};
  for (std::size_t i = 0; i < count; ++i) {
    ASSERT_TRUE(readable(peer.fd())) << "datagram " << i << " did not reach the peer";
    const ssize_t n = ::recv(peer.fd(), in.data(), in.size(), 0);
    ASSERT_EQ(n, static_cast<ssize_t>(i + 1 == count ? last : payload)) << i;
    EXPECT_EQ(in[0], static_cast<std::byte>(i));
  }

  // Peer -> client: plain segments of `payload` bytes, the last shorter.
  std::vector<std::byte> back;
  for (std::size_t i = 0; i < count; ++i) {
    back.resize(back.size() + (i + 1 == count ? last : payload), static_cast<std::byte>(0x80 + i));
  }
  ASSERT_TRUE(send_gso(peer.fd(), *relayed, back, static_cast<std::uint16_t>(payload)));
  for (std::size_t i = 0; i < count; ++i) {
    ASSERT_TRUE(readable(c.socket.fd())) << "datagram " << i << " did not reach the client";
    const ssize_t n = ::recv(c.socket.fd(), in.data(), in.size(), 0);
    const std::size_t len = i + 1 == count ? last : payload;
    ASSERT_EQ(n, static_cast<ssize_t>(4 + len)) << i;
    EXPECT_EQ(in[4], static_cast<std::byte>(0x80 + i));
  }
}

TEST(worker_gro, splits_coalesced_receives_into_datagrams_both_ways) {
  worker_options o = loopback_options();
  o.udp_gro = true;
  running_worker w(o);
  w.start();
  relay_gso_burst(w, 20, 200, 76);
  w.stop();
  const auto& counters = w.get().counters();
  EXPECT_EQ(read(counters.packets_to_peer), 20u);
  EXPECT_EQ(read(counters.packets_to_client), 20u);
  const auto& io = w.get().io_counters();
  // Both GSO messages arrived coalesced: 2 buffers of 20 datagrams.
  EXPECT_EQ(read(io.gro_messages), 2u);
  EXPECT_EQ(read(io.gro_datagrams), 40u);
}

TEST(worker_gro, when_off_the_kernel_splits_and_nothing_is_counted) {
  worker_options o = loopback_options();
  o.udp_gro = false;
  running_worker w(o);
  w.start();
  relay_gso_burst(w, 8, 100, 100);
  w.stop();
  EXPECT_EQ(read(w.get().counters().packets_to_peer), 8u);
  EXPECT_EQ(read(w.get().counters().packets_to_client), 8u);
  EXPECT_EQ(read(w.get().io_counters().gro_messages), 0u);
}

// A coalesced segment longer than datagram_size is dropped and counted as
// the truncated datagram it would have been without UDP_GRO.
TEST(worker_gro, segments_longer_than_datagram_size_are_dropped_and_counted) {
  worker_options o = loopback_options();
  o.udp_gro = true;
  o.datagram_size = 512;
  running_worker w(o);
  w.start();
  udp_socket client;
  std::vector<std::byte> big(3 * 1000, std::byte{0x01});
  ASSERT_TRUE(send_gso(client.fd(), w.listener(), big, 1000));
  client.send_to(w.listener(), binding_request(random_tid()));
  ASSERT_TRUE(client.receive(1000ms).has_value());  // still answered
  w.stop();
  EXPECT_EQ(read(w.get().counters().malformed_dropped), 3u);
}

}  // namespace
}  // namespace anyturn::net
