// The hand-off inbox: datagrams for another worker's allocation reach the
// owner, are answered through the owner's listener, and allocate nothing;
// a stopped owner's queue drops and counts.
#include "worker_fixture.hpp"

#include <anyturn/net/handoff.hpp>

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace anyturn::net {
namespace {

using namespace std::chrono_literals;
namespace attr = stun::attr;

// Two workers share one port (SO_REUSEPORT) and one handoff_group. Worker A
// runs; worker B is open but its loop does not run, so the test thread may
// drive B's core directly with deliver_for_test. The client socket is chosen
// so the kernel steers it to A (B never reads its socket), A allocates, and
// then datagrams for that 5-tuple are delivered to B as if B had received
// them: B hands them to A, whose core handles them and answers through its
// own listener.
class handoff_pair {
 public:
  handoff_pair()
      : group_(std::make_shared<handoff_group>(2, 64, loopback_options().datagram_size, 1024)),
        shared_(make_shared_state()),
        a_(0, shared_, options(loopback_options())) {
    std::string what;
    EXPECT_FALSE(a_.open(what)) << what;
    worker_options ob = options(loopback_options());
    ob.listen = a_.listener_endpoints();
    b_ = std::make_unique<worker>(1, shared_, std::move(ob));
    EXPECT_FALSE(b_->open(what)) << what;
    thread_ = std::thread([this] { a_.run(); });
  }
  ~handoff_pair() { stop_a(); }
  void stop_a() {
    a_.stop();
    if (thread_.joinable()) thread_.join();
  }

  worker_options options(worker_options o) {
    o.handoff = group_;
    return o;
  }

  // A client socket whose 5-tuple the kernel steers to A (a Binding gets
  // an answer); B's socket is never read, so B's share is skipped.
  std::unique_ptr<udp_socket> client_of_a() {
    const stun::endpoint server = a_.listener_endpoints().at(0);
    for (int attempt = 0; attempt < 64; ++attempt) {
      auto s = std::make_unique<udp_socket>();
      s->send_to(server, binding_request(random_tid()));
      if (s->receive(300ms)) return s;
    }
    return nullptr;
  }

  worker& a() { return a_; }
  worker& b() { return *b_; }
  handoff_group& group() { return *group_; }

 private:
  std::shared_ptr<handoff_group> group_;
  std::shared_ptr<turn::shared_state> shared_;
  worker a_;
  std::unique_ptr<worker> b_;
  std::thread thread_;
};

TEST(worker_handoff, refresh_and_channel_data_reach_the_owner_without_allocating) {
  handoff_pair pair;
  auto socket = pair.client_of_a();
  ASSERT_NE(socket, nullptr) << "the kernel never steered a client to worker A";
  const stun::endpoint server = pair.a().listener_endpoints().at(0);
  turn_client c;
  // turn_client owns its socket: move ours in by duplicating the descriptor.
  ASSERT_EQ(::dup2(socket->fd(), c.socket.fd()), c.socket.fd());
  c.server = server;
  udp_socket peer;
  constexpr std::uint16_t channel = 0x4002;
  const auto relayed = allocate_with_channel(c, peer.local(), channel);
  ASSERT_TRUE(relayed.has_value());
  EXPECT_EQ(read(pair.a().counters().allocations_created), 1u);

  relay::client_ref from;
  from.proto = relay::transport::udp;
  from.listener = 0;
  from.remote = c.socket.local();
  from.local = server;
  // A registered the 5-tuple as its own.
  EXPECT_EQ(pair.group().directory.lookup(handoff_group::key_of(from)), 0u);

  // A Refresh delivered to B: B hands it off; A answers the client.
  {
    const auto tid = random_tid();
    std::vector<std::byte> out(512);
    stun::message_builder b(out, static_cast<std::uint16_t>(stun::method::refresh),
                            stun::message_class::request, tid);
    b.add_u32(attr::lifetime, 600);
    b.add_string(attr::username, "u");
    b.add_string(attr::realm, c.realm);
    b.add_string(attr::nonce, c.nonce);
    b.add_message_integrity(std::as_bytes(std::span(c.key)));
    b.add_fingerprint();
    auto msg = b.finish();
    ASSERT_TRUE(msg.has_value());
    pair.b().deliver_for_test(from, *msg);
    stun::endpoint replied_from;
    auto reply = c.socket.receive(1000ms, &replied_from);
    ASSERT_TRUE(reply.has_value());
    auto parsed = stun::parse_message(*reply);
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(parsed->tid(), tid);
    EXPECT_EQ(parsed->cls(), stun::message_class::success_response);
    EXPECT_EQ(replied_from, server);  // from the address the client reached
  }
  EXPECT_EQ(read(pair.b().io_counters().handed_off_out), 1u);
  EXPECT_EQ(read(pair.a().io_counters().handed_off_in), 1u);
  EXPECT_EQ(read(pair.b().counters().allocations_created), 0u);

  // ChannelData delivered to B reaches the peer through A's relay socket.
  std::array<std::byte, 132> to_peer{};
  stun::write_channel_data_header(to_peer, channel, 128);
  std::array<std::byte, 2048> in{};
  auto one = [&]() -> bool {
    pair.b().deliver_for_test(from, to_peer);
    pollfd p{peer.fd(), POLLIN, 0};
    return ::poll(&p, 1, 1000) == 1 && ::recv(peer.fd(), in.data(), in.size(), 0) == 128;
  };
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(one());  // warm-up

  ASSERT_EQ(allocations_in([] { ::operator delete(::operator new(8)); }), 1u);

  int ok_count = 0;
  EXPECT_EQ(allocations_in([&] {
              for (int i = 0; i < 200; ++i) ok_count += one() ? 1 : 0;
            }),
            0u);
  EXPECT_EQ(ok_count, 200);
  EXPECT_EQ(read(pair.b().io_counters().handed_off_out), 221u);
  EXPECT_EQ(read(pair.b().io_counters().handoff_dropped), 0u);

  // Once A stops, its allocation ends and leaves the directory: B handles
  // the datagram itself (no allocation: dropped and counted).
  pair.stop_a();
  EXPECT_EQ(read(pair.a().io_counters().handed_off_in), 221u);
  EXPECT_EQ(read(pair.a().counters().packets_to_peer), 220u);
  EXPECT_FALSE(pair.group().directory.lookup(handoff_group::key_of(from)).has_value());
  pair.b().deliver_for_test(from, to_peer);
  EXPECT_EQ(read(pair.b().io_counters().handed_off_out), 221u);
  EXPECT_EQ(read(pair.b().counters().no_allocation_dropped), 1u);
}

TEST(worker_handoff, closed_owner_queue_drops_and_counts) {
  handoff_pair pair;
  relay::client_ref from;
  from.proto = relay::transport::udp;
  from.remote = loopback(40000);
  from.local = pair.a().listener_endpoints().at(0);
  // Pretend A owns the 5-tuple, and A has stopped (its queue is closed).
  pair.stop_a();
  ASSERT_TRUE(pair.group().directory.insert(handoff_group::key_of(from), 0));
  std::array<std::byte, 8> cd{};
  stun::write_channel_data_header(cd, 0x4000, 4);
  pair.b().deliver_for_test(from, cd);
  EXPECT_EQ(read(pair.b().io_counters().handoff_dropped), 1u);
  EXPECT_EQ(read(pair.b().io_counters().handed_off_out), 0u);
  EXPECT_EQ(read(pair.b().counters().no_allocation_dropped), 0u);
}

}  // namespace
}  // namespace anyturn::net
