// The UDP loop: listeners read in rounds under budgets, kernel drops,
// oversized datagrams, answers from the address the client reached, the
// immediate send outside a round, batching and GSO under bursts, busy
// polling, and the zero-allocation forward path.
#include "../../../src/net/udp_loop.hpp"

#include "worker_fixture.hpp"

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstring>
#include <optional>
#include <thread>
#include <vector>

#include <poll.h>
#include <sys/socket.h>

namespace anyturn::net {
namespace {

using namespace std::chrono_literals;
namespace attr = stun::attr;

TEST(worker, wildcard_listener_answers_from_the_address_the_client_reached) {
  worker_options o;
  o.listen = {stun::endpoint::v4(0, 0)};
  running_worker w(o);
  const std::uint16_t port = w.listener().port;
  w.start();
  udp_socket client;
  // 127.0.0.2 is local too; without IP_PKTINFO the reply would leave from 127.0.0.1.
  const stun::endpoint target = stun::endpoint::v4(0x7F000002, port);
  client.send_to(target, binding_request(random_tid()));
  stun::endpoint from;
  auto reply = client.receive(1000ms, &from);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(from, target);
}

TEST(worker, oversized_client_datagram_is_counted_as_malformed) {
  worker_options o = loopback_options();
  o.datagram_size = 1024;
  running_worker w(o);
  udp_socket client;
  std::vector<std::byte> big(2000, std::byte{0x01});
  client.send_to(w.listener(), big);
  client.send_to(w.listener(), binding_request(random_tid()));
  w.start();
  ASSERT_TRUE(client.receive(1000ms).has_value());  // the small one is still answered
  w.stop();
  EXPECT_EQ(read(w.get().counters().malformed_dropped), 1u);
}

TEST(worker, counts_kernel_drops_from_so_rxq_ovfl) {
  worker_options o = loopback_options();
  o.socket_buffer = 1;  // the kernel's minimum: a handful of datagrams
  running_worker w(o);
  udp_socket client;
  const std::vector<std::byte> junk(1000, std::byte{0xEE});  // "other": dropped by the core
  for (int i = 0; i < 200; ++i) client.send_to(w.listener(), junk);
  client.send_to(w.listener(), binding_request(random_tid()));  // dropped too, most likely
  w.start();
  // Something new after the overflow carries the counter to us.
  for (int i = 0; i < 5; ++i) {
    client.send_to(w.listener(), binding_request(random_tid()));
    if (client.receive(200ms)) break;
  }
  w.stop();
  const auto& c = w.get().counters();
  EXPECT_GT(read(c.kernel_drops), 0u);
  EXPECT_LT(read(c.packets_received), 201u);
  EXPECT_GE(read(c.kernel_drops) + read(c.packets_received), 201u);
}

TEST(worker, budget_does_not_strand_queued_datagrams) {
  worker_options o = loopback_options();
  o.batch_size = 4;
  o.read_budget = 4;  // every wake-up stops long before the queue is empty
  running_worker w(o);
  udp_socket client;
  constexpr int count = 50;
  for (int i = 0; i < count; ++i) client.send_to(w.listener(), binding_request(random_tid()));
  w.start();
  int answered = 0;
  while (answered < count && client.receive(500ms)) ++answered;
  EXPECT_EQ(answered, count);
}

TEST(worker_io, send_to_client_counts_failures) {
  worker w(0, make_shared_state(), loopback_options());
  std::string what;
  ASSERT_FALSE(w.open(what)) << what;
  relay::io_port& io = w.io_for_test();
  udp_socket client;
  const std::array<std::byte, 2> a{std::byte{7}, std::byte{8}};
  const std::array<stun::bytes_view, 1> parts{stun::bytes_view(a)};

  relay::client_ref to;
  to.remote = client.local();
  to.local = w.listener_endpoints()[0];
  io.send_to_client(to, parts);
  stun::endpoint from;
  auto got = client.receive(1000ms, &from);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(from, w.listener_endpoints()[0]);
  EXPECT_EQ(got->size(), 2u);

  to.listener = 5;  // no such listener
  io.send_to_client(to, parts);
  to.listener = 0;
  to.proto = relay::transport::tcp;  // not ours
  io.send_to_client(to, parts);
  EXPECT_EQ(read(w.counters().client_send_failed), 2u);
}

TEST(worker, channel_data_forwarding_allocates_nothing) {
  running_worker w(loopback_options());
  w.start();
  turn_client c;
  c.server = w.listener();
  udp_socket peer;
  const stun::endpoint peer_ep = peer.local();
  std::vector<std::byte> storage;
  auto transport = [](stun::message_builder& b) { b.add_requested_transport(17); };
  const auto allocate = static_cast<std::uint16_t>(stun::method::allocate);
  auto challenge = c.exchange(storage, allocate, transport, false);
  c.realm = std::string(*stun::decode_string(*challenge.find(attr::realm), 763));
  c.nonce = std::string(*stun::decode_string(*challenge.find(attr::nonce), 763));
  c.key = auth::derive_md5_key("u", c.realm, "p");
  auto ok = c.exchange(storage, allocate, transport, true);
  ASSERT_EQ(ok.cls(), stun::message_class::success_response);
  const stun::endpoint relayed = *stun::decode_address(*ok.find(attr::xor_relayed_address), ok.tid(), true);
  constexpr std::uint16_t channel = 0x4001;
  auto bound = c.exchange(storage, static_cast<std::uint16_t>(stun::method::channel_bind),
                          [&](stun::message_builder& b) {
                            b.add_channel_number(channel);
                            b.add_address(attr::xor_peer_address, peer_ep, true);
                          },
                          true);
  ASSERT_EQ(bound.cls(), stun::message_class::success_response);

  // Fixed buffers and raw syscalls only: the test thread allocates nothing either.
  std::array<std::byte, 164> to_peer{};
  stun::write_channel_data_header(to_peer, channel, 160);
  std::array<std::byte, 160> from_peer{};
  std::array<std::byte, 2048> in{};
  const socket_address server_sa = to_sockaddr(c.server);
  const socket_address relay_sa = to_sockaddr(relayed);
  auto round_trip = [&]() -> bool {
    ::sendto(c.socket.fd(), to_peer.data(), to_peer.size(), 0, server_sa.data(), server_sa.size);
    pollfd p{peer.fd(), POLLIN, 0};
    if (::poll(&p, 1, 1000) != 1 || ::recv(peer.fd(), in.data(), in.size(), 0) != 160) return false;
    ::sendto(peer.fd(), from_peer.data(), from_peer.size(), 0, relay_sa.data(), relay_sa.size);
    pollfd q{c.socket.fd(), POLLIN, 0};
    return ::poll(&q, 1, 1000) == 1 && ::recv(c.socket.fd(), in.data(), in.size(), 0) == 164;
  };
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(round_trip());  // warm-up: Asio recycles its op memory

  // The counter sees allocations (the replacement is in effect); a call the
  // optimiser may not elide.
  ASSERT_EQ(allocations_in([] { ::operator delete(::operator new(8)); }), 1u);

  int ok_count = 0;
  EXPECT_EQ(allocations_in([&] {
              for (int i = 0; i < 200; ++i) ok_count += round_trip() ? 1 : 0;
            }),
            0u);
  EXPECT_EQ(ok_count, 200);
  w.stop();
  EXPECT_EQ(read(w.get().counters().packets_to_peer), 220u);
  EXPECT_EQ(read(w.get().counters().packets_to_client), 220u);
}

// Bursts from several clients at once: the worker reads many datagrams per
// round and sends them with sendmmsg, one batch per socket, the equal-size
// runs to one destination as UDP GSO messages. Every datagram arrives, from
// the right relay, in order per client, and the batched path allocates
// nothing.
TEST(worker, batched_forwarding_of_bursts_keeps_order_and_allocates_nothing) {
  running_worker w(loopback_options());
  w.start();
  constexpr std::size_t clients = 4;
  constexpr std::size_t burst = 16;
  constexpr std::size_t payload = 100;
  std::array<turn_client, clients> c;
  std::array<stun::endpoint, clients> relayed{};
  udp_socket peer;
  for (std::size_t i = 0; i < clients; ++i) {
    c[i].server = w.listener();
    auto r = allocate_with_channel(c[i], peer.local(), static_cast<std::uint16_t>(0x4000 + i));
    ASSERT_TRUE(r.has_value());
    relayed[i] = *r;
  }
  std::array<socket_address, clients> relay_sa{};
  for (std::size_t i = 0; i < clients; ++i) relay_sa[i] = to_sockaddr(relayed[i]);
  const socket_address server_sa = to_sockaddr(w.listener());

  // Payload: [client, sequence, 0...]. Fixed buffers and raw syscalls only.
  std::array<std::byte, 4 + payload> out{};
  std::array<std::byte, 2048> in{};
  auto wait_readable = [](int fd) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 1000) == 1;
  };
  auto round = [&]() -> bool {
    // Every client sends its burst before anybody reads.
    for (std::size_t seq = 0; seq < burst; ++seq) {
      for (std::size_t i = 0; i < clients; ++i) {
        stun::write_channel_data_header(out, static_cast<std::uint16_t>(0x4000 + i), payload);
        out[4] = static_cast<std::byte>(i);
        out[5] = static_cast<std::byte>(seq);
        if (::sendto(c[i].socket.fd(), out.data(), out.size(), 0, server_sa.data(), server_sa.size) < 0) return false;
      }
    }
    // The peer checks source and order, and echoes each datagram back.
    std::array<std::size_t, clients> next{};
    for (std::size_t k = 0; k < clients * burst; ++k) {
      if (!wait_readable(peer.fd())) return false;
      socket_address from;
      from.size = sizeof from.storage;
      const ssize_t n = ::recvfrom(peer.fd(), in.data(), in.size(), 0, from.data(), &from.size);
      if (n != static_cast<ssize_t>(payload)) return false;
      const auto i = static_cast<std::size_t>(in[0]);
      if (i >= clients || static_cast<std::size_t>(in[1]) != next[i]++) return false;
      if (std::memcmp(from.data(), relay_sa[i].data(), relay_sa[i].size) != 0) return false;
      if (::sendto(peer.fd(), in.data(), payload, 0, relay_sa[i].data(), relay_sa[i].size) < 0) return false;
    }
    // Each client gets its own datagrams back, as ChannelData, in order.
    for (std::size_t i = 0; i < clients; ++i) {
      for (std::size_t seq = 0; seq < burst; ++seq) {
        if (!wait_readable(c[i].socket.fd())) return false;
        const ssize_t n = ::recv(c[i].socket.fd(), in.data(), in.size(), 0);
        if (n != static_cast<ssize_t>(4 + payload)) return false;
        if (static_cast<std::size_t>(in[4]) != i || static_cast<std::size_t>(in[5]) != seq) return false;
      }
    }
    return true;
  };
  for (int r = 0; r < 5; ++r) ASSERT_TRUE(round()) << "warm-up round " << r;

  int ok_rounds = 0;
  EXPECT_EQ(allocations_in([&] {
              for (int r = 0; r < 30; ++r) ok_rounds += round() ? 1 : 0;
            }),
            0u);
  EXPECT_EQ(ok_rounds, 30);
  w.stop();
  const auto& counters = w.get().counters();
  EXPECT_EQ(read(counters.packets_to_peer), 35u * clients * burst);
  EXPECT_EQ(read(counters.packets_to_client), 35u * clients * burst);
  EXPECT_EQ(read(counters.relay_send_failed), 0u);
  EXPECT_EQ(read(counters.client_send_failed), 0u);
  // The bursts were runs of equal-size datagrams to one destination: GSO
  // carried some of them (how many depends on how the rounds fell).
  const auto& io = w.get().io_counters();
  EXPECT_GT(read(io.gso_messages), 0u);
  EXPECT_GE(read(io.gso_datagrams), 2 * read(io.gso_messages));
}

// Rounds of `burst` ChannelData datagrams from one client to a peer that
// echoes them back after `think`, the rounds `pause` apart; returns the
// rounds that completed with every datagram.
int echo_rounds(running_worker& w, int rounds, std::size_t burst,
                std::chrono::microseconds pause = std::chrono::microseconds{0},
                std::chrono::microseconds think = std::chrono::microseconds{0}) {
  turn_client c;
  c.server = w.listener();
  udp_socket peer;
  const auto relayed = allocate_with_channel(c, peer.local(), 0x4000);
  if (!relayed) return 0;
  const socket_address server_sa = to_sockaddr(c.server);
  const socket_address relay_sa = to_sockaddr(*relayed);
  std::array<std::byte, 104> out{};
  stun::write_channel_data_header(out, 0x4000, 100);
  std::array<std::byte, 2048> in{};
  auto wait_readable = [](int fd) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 1000) == 1;
  };
  int ok = 0;
  for (int r = 0; r < rounds; ++r) {
    if (pause.count() > 0) std::this_thread::sleep_for(pause);
    bool good = true;
    for (std::size_t i = 0; i < burst; ++i) {
      ::sendto(c.socket.fd(), out.data(), out.size(), 0, server_sa.data(), server_sa.size);
    }
    for (std::size_t i = 0; i < burst && good; ++i) {
      good = wait_readable(peer.fd()) && ::recv(peer.fd(), in.data(), in.size(), 0) == 100;
    }
    if (think.count() > 0) std::this_thread::sleep_for(think);
    for (std::size_t i = 0; i < burst && good; ++i) {
      ::sendto(peer.fd(), in.data(), 100, 0, relay_sa.data(), relay_sa.size);
    }
    for (std::size_t i = 0; i < burst && good; ++i) {
      good = wait_readable(c.socket.fd()) && ::recv(c.socket.fd(), in.data(), in.size(), 0) == 104;
    }
    ok += good ? 1 : 0;
  }
  return ok;
}

// After a round that read several datagrams the worker keeps polling for a
// while (udp_busy_poll) instead of going to sleep; the peer's echo, 100 us
// after the burst, comes back within that time. Counted as hits and misses.
TEST(worker, busy_polls_after_busy_rounds) {
  worker_options o = loopback_options();
  o.udp_busy_poll = max_udp_busy_poll;  // 1 ms
  running_worker w(o);
  w.start();
  EXPECT_EQ(echo_rounds(w, 20, 8, std::chrono::microseconds{0}, std::chrono::microseconds{100}), 20);
  w.stop();
  const auto& io = w.get().io_counters();
  EXPECT_GT(read(io.busy_poll_hits), 0u) << "misses " << read(io.busy_poll_misses) << " wakeups " << read(io.wakeups_socket);
  EXPECT_GT(read(io.busy_poll_hits) + read(io.busy_poll_misses), 0u);
}

TEST(worker, busy_polling_off_never_polls_and_single_datagram_rounds_never_poll) {
  worker_options o = loopback_options();
  o.udp_busy_poll = std::chrono::microseconds{0};
  running_worker off(o);
  off.start();
  EXPECT_EQ(echo_rounds(off, 10, 8), 10);
  off.stop();
  EXPECT_EQ(read(off.get().io_counters().busy_poll_hits), 0u);
  EXPECT_EQ(read(off.get().io_counters().busy_poll_misses), 0u);

  // On, but single datagrams with pauses (paced traffic): a round reads the
  // datagram and perhaps its echo, never a busy round's worth, so no polling.
  o.udp_busy_poll = max_udp_busy_poll;
  running_worker paced(o);
  paced.start();
  EXPECT_EQ(echo_rounds(paced, 10, 1, std::chrono::milliseconds{3}), 10);
  paced.stop();
  EXPECT_EQ(read(paced.get().io_counters().busy_poll_hits), 0u);
  EXPECT_EQ(read(paced.get().io_counters().busy_poll_misses), 0u);
}

// ---- the batch, on its own ----

TEST(udp_batch, sends_at_once_outside_a_round_and_after_each_pass_inside_one) {
  relay::worker_counters counters;
  net_counters io;
  detail::udp_batch batch(loopback_options(), 0, counters, io);
  udp_socket from;
  udp_socket to;
  const std::array<std::byte, 3> a{std::byte{1}, std::byte{2}, std::byte{3}};
  const std::array<std::byte, 2> b{std::byte{4}, std::byte{5}};
  const std::array<stun::bytes_view, 2> parts{stun::bytes_view(a), stun::bytes_view(b)};
  const std::vector<std::byte> whole{std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}, std::byte{5}};

  EXPECT_FALSE(batch.in_round());
  EXPECT_TRUE(batch.send(from.fd(), send_queue::direction::to_peer, to.local(), parts, nullptr));
  EXPECT_EQ(to.receive(1000ms), whole);  // the immediate fallback

  batch.begin_round();
  EXPECT_TRUE(batch.in_round());
  EXPECT_TRUE(batch.send(from.fd(), send_queue::direction::to_peer, to.local(), parts, nullptr));
  EXPECT_FALSE(to.receive(50ms).has_value()) << "queued until the round ends";
  batch.end_round();
  EXPECT_FALSE(batch.in_round());
  EXPECT_EQ(to.receive(1000ms), whole);

  // A pass of a round ends with what it queued sent; the round goes on.
  batch.begin_round();
  EXPECT_TRUE(batch.send(from.fd(), send_queue::direction::to_peer, to.local(), parts, nullptr));
  batch.end_pass();
  EXPECT_TRUE(batch.in_round());
  EXPECT_EQ(to.receive(1000ms), whole);
  batch.end_round();

  // Refused at once: a destination of the other family, too many fragments
  // (in a round too: the queue cannot take it, so it is sent at once and
  // refused). Nothing of it is counted here: the caller counts.
  const stun::endpoint v6 = *stun::endpoint::parse("[::1]:9");
  EXPECT_FALSE(batch.send(from.fd(), send_queue::direction::to_client, v6, parts, nullptr));
  std::array<stun::bytes_view, detail::max_fragments + 1> many;
  many.fill(stun::bytes_view(a));
  EXPECT_FALSE(batch.send(from.fd(), send_queue::direction::to_client, to.local(), many, nullptr));
  batch.begin_round();
  EXPECT_FALSE(batch.send(from.fd(), send_queue::direction::to_client, to.local(), many, nullptr));
  batch.end_round();
  EXPECT_FALSE(to.receive(50ms).has_value());
  EXPECT_EQ(read(counters.client_send_failed), 0u);
  EXPECT_EQ(read(counters.relay_send_failed), 0u);
}

// Queued sends may point into the arena: before the arena is reused, the
// queue is flushed, so what leaves is what was received.
TEST(udp_batch, flushes_the_queue_before_it_reuses_the_arena) {
  worker_options o = loopback_options();
  o.batch_size = 4;
  o.receive_arena = 4;
  relay::worker_counters counters;
  net_counters io;
  detail::udp_batch batch(o, 0, counters, io);
  udp_socket client;
  udp_socket listener;
  udp_socket peer;
  auto datagram = [](std::uint8_t tag) { return std::vector<std::byte>(100, std::byte{tag}); };
  for (std::uint8_t tag = 1; tag <= 3; ++tag) client.send_to(listener.local(), datagram(tag));
  pollfd p{listener.fd(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 1000), 1);
  std::this_thread::sleep_for(20ms);  // all three queued on the socket

  batch.begin_round();
  std::size_t first = 99;
  ASSERT_EQ(batch.receive(listener.fd(), 4, false, first), 3);
  EXPECT_EQ(first, 0u);
  for (std::size_t i = 0; i < 3; ++i) {
    const stun::bytes_view d = batch.datagram(i);
    EXPECT_EQ(std::vector<std::byte>(d.begin(), d.end()), datagram(static_cast<std::uint8_t>(i + 1)));
    const msghdr& h = batch.header(i);
    EXPECT_EQ(*from_sockaddr(static_cast<const sockaddr*>(h.msg_name), h.msg_namelen), client.local());
  }
  // Forward the first datagram from the arena slot itself (queued, not copied).
  const std::array<stun::bytes_view, 1> forward{batch.datagram(0)};
  ASSERT_TRUE(batch.send(listener.fd(), send_queue::direction::to_peer, peer.local(), forward, nullptr));
  EXPECT_FALSE(peer.receive(20ms).has_value());

  // One slot left, four wanted: the queue leaves first, then slot 0 is reused.
  client.send_to(listener.local(), datagram(4));
  ASSERT_EQ(::poll(&p, 1, 1000), 1);
  ASSERT_EQ(batch.receive(listener.fd(), 4, false, first), 1);
  EXPECT_EQ(first, 0u);
  EXPECT_EQ(peer.receive(1000ms), datagram(1));
  const stun::bytes_view d = batch.datagram(0);
  EXPECT_EQ(std::vector<std::byte>(d.begin(), d.end()), datagram(4));

  // free_slot() hands out the next slot and flushes when none is left.
  for (int i = 0; i < 3; ++i) {
    std::byte* slot = batch.free_slot();
    ASSERT_NE(slot, nullptr);
    batch.take_slot();
  }
  const std::array<stun::bytes_view, 1> again{batch.datagram(0)};
  ASSERT_TRUE(batch.send(listener.fd(), send_queue::direction::to_peer, peer.local(), again, nullptr));
  EXPECT_NE(batch.free_slot(), nullptr);  // the arena is full: this flushes
  EXPECT_EQ(peer.receive(1000ms), datagram(4));
  batch.end_round();
  EXPECT_EQ(read(counters.relay_send_failed), 0u);
}

}  // namespace
}  // namespace anyturn::net
