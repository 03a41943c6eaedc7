// What the worker's tests share (worker_test, udp_loop_test, relay_sockets_test,
// inbox_test, stream_host_test): the TURN state a test worker runs with, a
// worker on its own thread, a blocking UDP socket for the test's side of the
// wire and a TURN client over it.
#pragma once

#include <anyturn/net/worker.hpp>

#include <anyturn/auth/credentials.hpp>
#include <anyturn/auth/nonce.hpp>
#include <anyturn/auth/peer_policy.hpp>
#include <anyturn/net/address.hpp>
#include <anyturn/relay/port_pool.hpp>
#include <anyturn/stun/message.hpp>

#include <gtest/gtest.h>

#include "allocation_counter.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace anyturn::net {

// The zero-allocation tests count operator new with tests/support's
// allocation counter (on any thread).
using test::allocations_in;

// ---- a worker and its wire ----

// The port range of the relay addresses make_shared_state() hands out.
inline constexpr std::uint16_t relay_low = 61000;
inline constexpr std::uint16_t relay_high = 61999;

inline stun::endpoint loopback(std::uint16_t port = 0) { return stun::endpoint::v4(0x7F000001, port); }

inline std::shared_ptr<turn::shared_state> make_shared_state() {
  auto s = std::make_shared<turn::shared_state>();
  s->credentials = std::make_shared<auth::credential_store>(
      "test", std::vector<auth::static_user>{{"u", std::string("p"), std::nullopt}},
      std::vector<std::string>{});
  s->nonces = std::make_shared<auth::nonce_service>(std::vector<std::uint8_t>(32, 7), 600, false);
  s->peers = std::make_shared<auth::peer_policy>(
      std::vector<auth::cidr>{*auth::cidr::parse("127.0.0.0/8")}, std::vector<auth::cidr>{});
  s->relays.push_back({loopback(), std::make_shared<relay::port_pool>(relay_low, relay_high)});
  return s;
}

// A plain blocking UDP socket for the test's side of the wire.
class udp_socket {
 public:
  explicit udp_socket(const stun::endpoint& bind_to = loopback()) {
    fd_ = ::socket(bind_to.is_v4() ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    EXPECT_GE(fd_, 0);
    const socket_address sa = to_sockaddr(bind_to);
    EXPECT_EQ(::bind(fd_, sa.data(), sa.size), 0) << std::strerror(errno);
  }
  ~udp_socket() { ::close(fd_); }
  udp_socket(const udp_socket&) = delete;
  udp_socket& operator=(const udp_socket&) = delete;

  [[nodiscard]] int fd() const { return fd_; }
  [[nodiscard]] stun::endpoint local() const {
    socket_address sa;
    sa.size = sizeof sa.storage;
    ::getsockname(fd_, sa.data(), &sa.size);
    return *from_sockaddr(sa.data(), sa.size);
  }
  void send_to(const stun::endpoint& to, stun::bytes_view data) const {
    const socket_address sa = to_sockaddr(to);
    ASSERT_EQ(::sendto(fd_, data.data(), data.size(), 0, sa.data(), sa.size),
              static_cast<ssize_t>(data.size()))
        << std::strerror(errno);
  }
  // One datagram within `timeout`, and who sent it.
  std::optional<std::vector<std::byte>> receive(std::chrono::milliseconds timeout,
                                                stun::endpoint* from = nullptr) const {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
    std::vector<std::byte> buf(65536);
    socket_address sa;
    sa.size = sizeof sa.storage;
    const ssize_t n = ::recvfrom(fd_, buf.data(), buf.size(), 0, sa.data(), &sa.size);
    if (n < 0) return std::nullopt;
    buf.resize(static_cast<std::size_t>(n));
    if (from != nullptr) *from = *from_sockaddr(sa.data(), sa.size);
    return buf;
  }

 private:
  int fd_ = -1;
};

inline stun::transaction_id random_tid() {
  static std::mt19937 rng(12345);
  stun::transaction_id tid;
  for (auto& b : tid.bytes) b = static_cast<std::byte>(rng());
  return tid;
}

inline std::vector<std::byte> binding_request(const stun::transaction_id& tid) {
  std::vector<std::byte> buf(512);
  stun::message_builder b(buf, static_cast<std::uint16_t>(stun::method::binding),
                          stun::message_class::request, tid);
  b.add_fingerprint();
  auto done = b.finish();
  EXPECT_TRUE(done.has_value());
  buf.resize(done->size());
  return buf;
}

// Runs a worker on its own thread for the duration of a test.
class running_worker {
 public:
  explicit running_worker(worker_options options, std::shared_ptr<turn::shared_state> shared = make_shared_state())
      : worker_(0, std::move(shared), std::move(options)) {
    std::string what;
    const std::error_code ec = worker_.open(what);
    EXPECT_FALSE(ec) << what;
  }
  void start() {
    thread_ = std::thread([this] { worker_.run(); });
  }
  // Stops and joins; returns how long it took.
  std::chrono::milliseconds stop() {
    const auto begin = std::chrono::steady_clock::now();
    worker_.stop();
    if (thread_.joinable()) thread_.join();
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - begin);
  }
  ~running_worker() { stop(); }
  worker& get() { return worker_; }
  [[nodiscard]] stun::endpoint listener(std::size_t i = 0) const { return worker_.listener_endpoints().at(i); }

 private:
  worker worker_;
  std::thread thread_;
};

inline worker_options loopback_options() {
  worker_options o;
  o.listen = {loopback()};
  o.socket_buffer = 256 * 1024;
  return o;
}

inline std::uint64_t read(const std::atomic<std::uint64_t>& c) { return c.load(std::memory_order_relaxed); }

inline std::uint16_t free_port() {
  udp_socket s;
  return s.local().port;
}

// A loopback TCP port that is free now, from 12000-12999: below the kernel's
// ephemeral range (and the integration tests' blocks), so no client socket of
// a parallel test is handed it before the caller binds it, as can happen to
// free_port's ephemeral port. free_port() when the range covers that block.
inline std::uint16_t free_tcp_port() {
  unsigned lo = 32768, hi = 60999;
  if (std::FILE* f = std::fopen("/proc/sys/net/ipv4/ip_local_port_range", "r")) {
    if (std::fscanf(f, "%u %u", &lo, &hi) != 2) lo = 32768, hi = 60999;
    std::fclose(f);
  }
  if (!(12999 < lo || 12000 > hi)) return free_port();
  static std::mt19937 rng{std::random_device{}()};
  for (int attempt = 0; attempt < 100; ++attempt) {
    const auto port = static_cast<std::uint16_t>(12000 + rng() % 1000);
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(0x7F000001u);
    const bool ok = ::bind(fd, reinterpret_cast<const sockaddr*>(&sin), sizeof sin) == 0;
    ::close(fd);
    if (ok) return port;
  }
  return free_port();
}

struct turn_client {
  udp_socket socket;
  stun::endpoint server;
  std::string realm;
  std::string nonce;
  auth::md5_key key{};

  stun::message_view exchange(std::vector<std::byte>& storage, std::uint16_t method,
                              const std::function<void(stun::message_builder&)>& add,
                              bool authenticate) {
    const auto tid = random_tid();
    std::vector<std::byte> out(1024);
    stun::message_builder b(out, method, stun::message_class::request, tid);
    add(b);
    if (authenticate) {
      b.add_string(stun::attr::username, "u");
      b.add_string(stun::attr::realm, realm);
      b.add_string(stun::attr::nonce, nonce);
      b.add_message_integrity(std::as_bytes(std::span(key)));
    }
    b.add_fingerprint();
    auto msg = b.finish();
    EXPECT_TRUE(msg.has_value());
    socket.send_to(server, *msg);
    auto reply = socket.receive(std::chrono::milliseconds{1000});
    EXPECT_TRUE(reply.has_value());
    storage = reply.value_or(std::vector<std::byte>{});
    auto parsed = stun::parse_message(storage);
    EXPECT_TRUE(parsed.has_value());
    EXPECT_EQ(parsed->tid(), tid);
    return parsed.value.value_or(stun::message_view{});
  }
};

// Allocates over `c` and binds `channel` to `peer_ep`; returns the relayed address.
inline std::optional<stun::endpoint> allocate_with_channel(turn_client& c, const stun::endpoint& peer_ep,
                                                           std::uint16_t channel) {
  std::vector<std::byte> storage;
  auto transport = [](stun::message_builder& b) { b.add_requested_transport(17); };
  const auto allocate = static_cast<std::uint16_t>(stun::method::allocate);
  auto challenge = c.exchange(storage, allocate, transport, false);
  if (!challenge.find(stun::attr::realm) || !challenge.find(stun::attr::nonce)) return std::nullopt;
  c.realm = std::string(*stun::decode_string(*challenge.find(stun::attr::realm), 763));
  c.nonce = std::string(*stun::decode_string(*challenge.find(stun::attr::nonce), 763));
  c.key = auth::derive_md5_key("u", c.realm, "p");
  auto ok = c.exchange(storage, allocate, transport, true);
  if (ok.cls() != stun::message_class::success_response) return std::nullopt;
  const auto relayed = stun::decode_address(*ok.find(stun::attr::xor_relayed_address), ok.tid(), true);
  if (!relayed) return std::nullopt;
  auto bound = c.exchange(storage, static_cast<std::uint16_t>(stun::method::channel_bind),
                          [&](stun::message_builder& b) {
                            b.add_channel_number(channel);
                            b.add_address(stun::attr::xor_peer_address, peer_ep, true);
                          },
                          true);
  if (bound.cls() != stun::message_class::success_response) return std::nullopt;
  return *relayed;
}

}  // namespace anyturn::net
