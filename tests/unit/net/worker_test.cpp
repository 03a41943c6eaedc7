// The worker shell: start-up (listeners, the exclusive-port probe, errors),
// run and stop, and a whole TURN exchange over real sockets, from the
// Allocate to the relay ports' release at stop.
#include <anyturn/net/worker.hpp>

#include "worker_fixture.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <sys/socket.h>
#include <unistd.h>

namespace anyturn::net {
namespace {

using namespace std::chrono_literals;
namespace attr = stun::attr;

TEST(worker, answers_binding_with_xor_mapped_address_and_stops_promptly) {
  running_worker w(loopback_options());
  const stun::endpoint server = w.listener();
  EXPECT_EQ(server.ip, loopback().ip);
  EXPECT_NE(server.port, 0);
  w.start();

  udp_socket client;
  const auto tid = random_tid();
  client.send_to(server, binding_request(tid));
  stun::endpoint from;
  auto reply = client.receive(1000ms, &from);
  ASSERT_TRUE(reply.has_value()) << "no Binding response";
  EXPECT_EQ(from, server);
  auto msg = stun::parse_message(*reply);
  ASSERT_TRUE(msg.has_value()) << msg.error.message();
  EXPECT_EQ(msg->method(), static_cast<std::uint16_t>(stun::method::binding));
  EXPECT_EQ(msg->cls(), stun::message_class::success_response);
  EXPECT_EQ(msg->tid(), tid);
  auto xma = msg->find(attr::xor_mapped_address);
  ASSERT_TRUE(xma.has_value());
  auto mapped = stun::decode_address(*xma, msg->tid(), true);
  ASSERT_TRUE(mapped.has_value());
  EXPECT_EQ(*mapped, client.local());

  EXPECT_LT(w.stop().count(), 500);
  EXPECT_EQ(read(w.get().counters().binding_requests), 1u);
  EXPECT_EQ(read(w.get().counters().packets_received), 1u);
}

// stun.other_ip (RFC 5780): three more UDP sockets per listener, kept out
// of listener_endpoints(), and io_port::alternate maps each socket of the
// group to the one with the IP and/or port flipped.
TEST(worker, other_ip_opens_the_rfc5780_group) {
  worker_options o = loopback_options();
  o.other_ip = stun::endpoint::v4(0x7F000002, 0);
  worker w(0, make_shared_state(), o);
  std::string what;
  ASSERT_FALSE(w.open(what)) << what;
  const auto listeners = w.listener_endpoints();
  ASSERT_EQ(listeners.size(), 1u);
  const stun::endpoint a = listeners[0];
  const auto socket_of = [&](unsigned member) {
    return stun::endpoint::v4((member & 2U) != 0 ? 0x7F000002 : 0x7F000001,
                              static_cast<std::uint16_t>(a.port + (member & 1U)));
  };
  relay::io_port& io = w.io_for_test();
  relay::client_ref c;
  c.remote = loopback(40000);
  c.local = a;
  EXPECT_FALSE(io.binding_only(c));
  const auto other = io.alternate(c, true, true);
  ASSERT_TRUE(other);
  EXPECT_EQ(other->local, socket_of(3));
  EXPECT_EQ(other->remote, c.remote);
  EXPECT_TRUE(io.binding_only(*other));
  EXPECT_EQ(io.alternate(c, false, true)->local, socket_of(1));
  EXPECT_EQ(io.alternate(c, true, false)->local, socket_of(2));
  EXPECT_EQ(io.alternate(*other, true, true)->local, a);
  EXPECT_EQ(io.alternate(*other, true, true)->listener, 0u);
  relay::client_ref stream = c;
  stream.proto = relay::transport::tcp;
  EXPECT_FALSE(io.alternate(stream, true, true));

  // Without other_ip: no group.
  worker plain(1, make_shared_state(), loopback_options());
  ASSERT_FALSE(plain.open(what)) << what;
  EXPECT_FALSE(plain.io_for_test().alternate(c, true, true));
}

// A socket of the group that cannot bind fails open(), naming the key.
TEST(worker, other_ip_port_taken_fails_open) {
  udp_socket holder(stun::endpoint::v4(0x7F000002, 0));
  worker_options o = loopback_options();
  o.listen = {loopback(holder.local().port)};  // OTHER:P is taken
  o.tcp = false;
  o.other_ip = stun::endpoint::v4(0x7F000002, 0);
  worker w(0, make_shared_state(), o);
  std::string what;
  EXPECT_TRUE(w.open(what));
  EXPECT_NE(what.find("stun.other_ip"), std::string::npos) << what;
}

TEST(worker, stop_before_run_makes_run_return) {
  worker w(0, make_shared_state(), loopback_options());
  std::string what;
  ASSERT_FALSE(w.open(what)) << what;
  w.stop();
  const auto begin = std::chrono::steady_clock::now();
  w.run();
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 500ms);
}

TEST(worker, heartbeat_advances_on_every_tick_and_stops_with_the_loop) {
  worker_options o = loopback_options();
  o.tick = 20ms;
  running_worker w(o);
  EXPECT_EQ(w.get().heartbeat(), 0u) << "no tick before run()";
  w.start();
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  while (w.get().heartbeat() < 3 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
  EXPECT_GE(w.get().heartbeat(), 3u) << "the watchdog reads this: it must advance while the loop runs";
  w.stop();
  const std::uint64_t after_stop = w.get().heartbeat();
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(w.get().heartbeat(), after_stop) << "a stopped loop does not tick";
}

TEST(worker, workers_share_a_port_through_reuseport) {
  running_worker a(loopback_options());
  worker_options o = loopback_options();
  o.listen = {a.listener()};
  running_worker b(o);  // a second worker binds the very same address and port
  EXPECT_EQ(b.listener(), a.listener());
}

TEST(worker, listener_bind_failure_is_reported) {
  udp_socket squatter;  // no SO_REUSEPORT: the port is really taken
  worker_options o;
  o.listen = {squatter.local()};
  worker w(0, make_shared_state(), o);
  std::string what;
  const std::error_code ec = w.open(what);
  EXPECT_EQ(ec, std::errc::address_in_use);
  EXPECT_NE(what.find(squatter.local().to_string()), std::string::npos) << what;
  EXPECT_NE(what.find("bind"), std::string::npos) << what;
  EXPECT_TRUE(w.listener_endpoints().empty());
}

TEST(worker, probe_refuses_a_port_another_reuseport_socket_holds) {
  // Another process (same user) with SO_REUSEPORT would share the port silently.
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  ASSERT_EQ(::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one), 0);
  const socket_address sa = to_sockaddr(loopback());
  ASSERT_EQ(::bind(fd, sa.data(), sa.size), 0);
  socket_address bound;
  bound.size = sizeof bound.storage;
  ::getsockname(fd, bound.data(), &bound.size);
  const stun::endpoint taken = *from_sockaddr(bound.data(), bound.size);

  worker_options o;
  o.listen = {taken};
  {
    worker sharing(0, make_shared_state(), o);
    std::string what;
    EXPECT_FALSE(sharing.open(what)) << what;  // without the probe it joins the group
  }
  o.probe_exclusive = true;
  worker w(0, make_shared_state(), o);
  std::string what;
  EXPECT_EQ(w.open(what), std::errc::address_in_use);
  ::close(fd);
}

TEST(worker, ipv6_listener) {
  udp_socket probe_v6_support(stun::endpoint::v4(0x7F000001, 0));
  int fd = ::socket(AF_INET6, SOCK_DGRAM, 0);
  const socket_address sa = to_sockaddr(*stun::endpoint::parse("[::1]:0"));
  const bool have_v6 = fd >= 0 && ::bind(fd, sa.data(), sa.size) == 0;
  if (fd >= 0) ::close(fd);
  if (!have_v6) GTEST_SKIP() << "no IPv6 loopback";

  worker_options o;
  o.listen = {*stun::endpoint::parse("[::1]:0")};
  running_worker w(o);
  w.start();
  udp_socket client(*stun::endpoint::parse("[::1]:0"));
  const auto tid = random_tid();
  client.send_to(w.listener(), binding_request(tid));
  auto reply = client.receive(1000ms);
  ASSERT_TRUE(reply.has_value());
  auto msg = stun::parse_message(*reply);
  ASSERT_TRUE(msg.has_value());
  auto mapped = stun::decode_address(*msg->find(attr::xor_mapped_address), tid, true);
  ASSERT_TRUE(mapped.has_value());
  EXPECT_EQ(*mapped, client.local());
}

TEST(worker, relays_between_client_and_peer_and_frees_on_stop) {
  running_worker w(loopback_options());
  w.start();
  turn_client c;
  c.server = w.listener();
  udp_socket peer;
  const auto allocate = static_cast<std::uint16_t>(stun::method::allocate);
  auto transport = [](stun::message_builder& b) { b.add_requested_transport(17); };

  // RFC 8656 §7.1: the first Allocate is challenged.
  std::vector<std::byte> storage;
  auto challenge = c.exchange(storage, allocate, transport, false);
  ASSERT_EQ(challenge.cls(), stun::message_class::error_response);
  c.realm = std::string(*stun::decode_string(*challenge.find(attr::realm), 763));
  c.nonce = std::string(*stun::decode_string(*challenge.find(attr::nonce), 763));
  c.key = auth::derive_md5_key("u", c.realm, "p");

  auto ok = c.exchange(storage, allocate, transport, true);
  ASSERT_EQ(ok.cls(), stun::message_class::success_response);
  auto relayed = stun::decode_address(*ok.find(attr::xor_relayed_address), ok.tid(), true);
  ASSERT_TRUE(relayed.has_value());
  EXPECT_EQ(relayed->ip, loopback().ip);
  EXPECT_GE(relayed->port, relay_low);
  EXPECT_LE(relayed->port, relay_high);

  const stun::endpoint peer_ep = peer.local();
  auto perm = c.exchange(storage, static_cast<std::uint16_t>(stun::method::create_permission),
                         [&](stun::message_builder& b) { b.add_address(attr::xor_peer_address, peer_ep, true); },
                         true);
  ASSERT_EQ(perm.cls(), stun::message_class::success_response);

  // Client -> peer through a Send indication.
  {
    std::vector<std::byte> out(256);
    stun::message_builder b(out, static_cast<std::uint16_t>(stun::method::send),
                            stun::message_class::indication, random_tid());
    b.add_address(attr::xor_peer_address, peer_ep, true);
    const std::string payload = "hello peer";
    b.add_bytes(attr::data, std::as_bytes(std::span(payload)));
    c.socket.send_to(c.server, *b.finish());
    stun::endpoint from;
    auto got = peer.receive(1000ms, &from);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(from, *relayed);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(got->data()), got->size()), payload);
  }
  // Peer -> client as a Data indication.
  {
    const std::string payload = "hello client";
    peer.send_to(*relayed, std::as_bytes(std::span(payload)));
    auto got = c.socket.receive(1000ms);
    ASSERT_TRUE(got.has_value());
    auto data_ind = stun::parse_message(*got);
    ASSERT_TRUE(data_ind.has_value());
    EXPECT_EQ(data_ind->method(), static_cast<std::uint16_t>(stun::method::data));
    auto data = data_ind->find(attr::data);
    ASSERT_TRUE(data.has_value());
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(data->value.data()), data->value.size()),
              payload);
  }
  EXPECT_EQ(read(w.get().io_counters().relay_sockets_open), 1u);

  EXPECT_LT(w.stop().count(), 500);
  const auto& counters = w.get().counters();
  EXPECT_EQ(read(counters.allocations_created), 1u);
  EXPECT_EQ(read(counters.allocations_closed), 1u);
  EXPECT_EQ(read(counters.packets_to_peer), 1u);
  EXPECT_EQ(read(counters.packets_to_client), 1u);
  EXPECT_EQ(read(w.get().io_counters().relay_sockets_open), 0u);
  // The relay port went back to the kernel.
  udp_socket reuse(*relayed);
  EXPECT_EQ(reuse.local(), *relayed);
}

// The zero-allocation tests above rely on the counter seeing every thread's
// allocations (the worker runs on its own thread).
TEST(worker, the_allocation_counter_sees_every_thread) {
  // A call the optimiser may not elide.
  EXPECT_EQ(allocations_in([] { ::operator delete(::operator new(8)); }), 1u);
  EXPECT_EQ(allocations_in([] {}), 0u);

  // One allocation on another thread while the counter runs (the thread
  // itself is started before and joined after).
  std::atomic<int> step{0};
  std::thread other([&] {
    while (step.load() != 1) std::this_thread::yield();
    ::operator delete(::operator new(16));
    step = 2;
  });
  EXPECT_EQ(allocations_in([&] {
              step = 1;
              while (step.load() != 2) std::this_thread::yield();
            }),
            1u);
  other.join();
}

}  // namespace
}  // namespace anyturn::net
