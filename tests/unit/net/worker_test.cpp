#include <anyturn/net/worker.hpp>

#include <anyturn/auth/credentials.hpp>
#include <anyturn/auth/nonce.hpp>
#include <anyturn/auth/peer_policy.hpp>
#include <anyturn/net/address.hpp>
#include <anyturn/relay/port_pool.hpp>
#include <anyturn/stun/message.hpp>

#include <anyturn/net/tls.hpp>

#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <new>
#include <chrono>
#include <cstring>
#include <functional>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

// Counts heap allocations while `counting` is set, on any thread: the
// forward path must not allocate. (GCC pairs the inlined malloc/free of the
// replacements with new/delete expressions and warns about a mismatch that
// is not one.)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
namespace {
std::atomic<bool> counting{false};
std::atomic<std::uint64_t> allocations{0};
}  // namespace

void* operator new(std::size_t size) {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {
// Heap allocations counted (on any thread) while f() runs.
template <class F>
std::uint64_t allocations_in(F&& f) {
  allocations = 0;
  counting = true;
  f();
  counting = false;
  return allocations.load();
}
}  // namespace

namespace anyturn::net {
namespace {

using namespace std::chrono_literals;
namespace attr = stun::attr;

constexpr std::uint16_t relay_low = 61000;
constexpr std::uint16_t relay_high = 61999;

stun::endpoint loopback(std::uint16_t port = 0) { return stun::endpoint::v4(0x7F000001, port); }

std::shared_ptr<turn::shared_state> make_shared_state() {
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

stun::transaction_id random_tid() {
  static std::mt19937 rng(12345);
  stun::transaction_id tid;
  for (auto& b : tid.bytes) b = static_cast<std::byte>(rng());
  return tid;
}

std::vector<std::byte> binding_request(const stun::transaction_id& tid) {
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

worker_options loopback_options() {
  worker_options o;
  o.listen = {loopback()};
  o.socket_buffer = 256 * 1024;
  return o;
}

std::uint64_t read(const std::atomic<std::uint64_t>& c) { return c.load(std::memory_order_relaxed); }

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

TEST(worker, stop_before_run_makes_run_return) {
  worker w(0, make_shared_state(), loopback_options());
  std::string what;
  ASSERT_FALSE(w.open(what)) << what;
  w.stop();
  const auto begin = std::chrono::steady_clock::now();
  w.run();
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 500ms);
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

// ---- the io_port, driven directly (the worker is not running) ----

std::uint16_t free_port() {
  udp_socket s;
  return s.local().port;
}

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

// ---- a whole TURN exchange over real sockets ----

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
      b.add_string(attr::username, "u");
      b.add_string(attr::realm, realm);
      b.add_string(attr::nonce, nonce);
      b.add_message_integrity(std::as_bytes(std::span(key)));
    }
    b.add_fingerprint();
    auto msg = b.finish();
    EXPECT_TRUE(msg.has_value());
    socket.send_to(server, *msg);
    auto reply = socket.receive(1000ms);
    EXPECT_TRUE(reply.has_value());
    storage = reply.value_or(std::vector<std::byte>{});
    auto parsed = stun::parse_message(storage);
    EXPECT_TRUE(parsed.has_value());
    EXPECT_EQ(parsed->tid(), tid);
    return parsed.value.value_or(stun::message_view{});
  }
};

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

// Allocates over `c` and binds `channel` to `peer_ep`; returns the relayed address.
std::optional<stun::endpoint> allocate_with_channel(turn_client& c, const stun::endpoint& peer_ep,
                                                    std::uint16_t channel) {
  std::vector<std::byte> storage;
  auto transport = [](stun::message_builder& b) { b.add_requested_transport(17); };
  const auto allocate = static_cast<std::uint16_t>(stun::method::allocate);
  auto challenge = c.exchange(storage, allocate, transport, false);
  if (!challenge.find(attr::realm) || !challenge.find(attr::nonce)) return std::nullopt;
  c.realm = std::string(*stun::decode_string(*challenge.find(attr::realm), 763));
  c.nonce = std::string(*stun::decode_string(*challenge.find(attr::nonce), 763));
  c.key = auth::derive_md5_key("u", c.realm, "p");
  auto ok = c.exchange(storage, allocate, transport, true);
  if (ok.cls() != stun::message_class::success_response) return std::nullopt;
  const auto relayed = stun::decode_address(*ok.find(attr::xor_relayed_address), ok.tid(), true);
  if (!relayed) return std::nullopt;
  auto bound = c.exchange(storage, static_cast<std::uint16_t>(stun::method::channel_bind),
                          [&](stun::message_builder& b) {
                            b.add_channel_number(channel);
                            b.add_address(attr::xor_peer_address, peer_ep, true);
                          },
                          true);
  if (bound.cls() != stun::message_class::success_response) return std::nullopt;
  return *relayed;
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

// The same over TCP and TLS: relaying between a stream client and a UDP
// peer allocates nothing once the connection is warm (its read buffer and
// write ring have their size, Asio recycles its operation memory).
// OpenSSL allocates with malloc, which this counter does not see; it keeps
// its record buffers (no SSL_MODE_RELEASE_BUFFERS).
class stream_wire {
 public:
  stream_wire(const stun::endpoint& server, bool tls) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const socket_address sa = to_sockaddr(server);
    EXPECT_EQ(::connect(fd_, sa.data(), sa.size), 0) << std::strerror(errno);
    if (tls) {
      ctx_ = SSL_CTX_new(TLS_client_method());
      ssl_ = SSL_new(ctx_);
      SSL_set_fd(ssl_, fd_);
      EXPECT_EQ(SSL_connect(ssl_), 1);
    }
  }
  ~stream_wire() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
    ::close(fd_);
  }
  stream_wire(const stream_wire&) = delete;
  stream_wire& operator=(const stream_wire&) = delete;

  bool send(stun::bytes_view data) {
    if (ssl_ != nullptr) return SSL_write(ssl_, data.data(), static_cast<int>(data.size())) == static_cast<int>(data.size());
    return ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size());
  }
  // One frame into `out` (fixed storage, no allocation); its size or 0.
  std::size_t receive(std::span<std::byte> out) {
    for (;;) {
      auto len = stun::stream_frame_length(stun::bytes_view(buffer_.data(), held_), out.size());
      if (len) {
        std::memcpy(out.data(), buffer_.data(), *len);
        std::memmove(buffer_.data(), buffer_.data() + *len, held_ - *len);
        held_ -= *len;
        return *len;
      }
      pollfd p{fd_, POLLIN, 0};
      if ((ssl_ == nullptr || SSL_pending(ssl_) == 0) && ::poll(&p, 1, 1000) != 1) return 0;
      const int n = ssl_ != nullptr
                        ? SSL_read(ssl_, buffer_.data() + held_, static_cast<int>(buffer_.size() - held_))
                        : static_cast<int>(::recv(fd_, buffer_.data() + held_, buffer_.size() - held_, 0));
      if (n <= 0) return 0;
      held_ += static_cast<std::size_t>(n);
    }
  }

 private:
  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  std::array<std::byte, 8192> buffer_{};
  std::size_t held_ = 0;
};

void stream_forwarding_allocates_nothing(bool tls) {
  worker_options o = loopback_options();
  if (tls) {
    std::string error;
    auto pem = make_self_signed(std::vector{loopback()}, {}, std::chrono::hours{1}, error);
    ASSERT_TRUE(pem) << error;
    o.tls = make_server_tls_context_from_pem(pem->certificate, pem->private_key, error);
    ASSERT_TRUE(o.tls) << error;
    o.tls_listen = {loopback()};
  }
  running_worker w(o);
  w.start();
  const stun::endpoint server = tls ? w.get().tls_listener_endpoints().at(0) : w.listener();
  stream_wire c(server, tls);
  udp_socket peer;
  std::array<std::byte, 2048> in{};

  std::string realm;
  std::string nonce;
  auth::md5_key key{};
  auto request = [&](std::uint16_t method, const std::function<void(stun::message_builder&)>& add,
                     bool authenticate) -> std::optional<stun::message_view> {
    std::vector<std::byte> out(1024);
    stun::message_builder b(out, method, stun::message_class::request, random_tid());
    add(b);
    if (authenticate) {
      b.add_string(attr::username, "u");
      b.add_string(attr::realm, realm);
      b.add_string(attr::nonce, nonce);
      b.add_message_integrity(std::as_bytes(std::span(key)));
    }
    auto msg = b.finish();
    if (!msg || !c.send(*msg)) return std::nullopt;
    const std::size_t n = c.receive(in);
    auto parsed = stun::parse_message(stun::bytes_view(in.data(), n));
    if (!parsed) return std::nullopt;
    return *parsed;
  };
  auto transport = [](stun::message_builder& b) { b.add_requested_transport(17); };
  const auto allocate = static_cast<std::uint16_t>(stun::method::allocate);
  auto challenge = request(allocate, transport, false);
  ASSERT_TRUE(challenge);
  realm = std::string(*stun::decode_string(*challenge->find(attr::realm), 763));
  nonce = std::string(*stun::decode_string(*challenge->find(attr::nonce), 763));
  key = auth::derive_md5_key("u", realm, "p");
  auto ok = request(allocate, transport, true);
  ASSERT_TRUE(ok && ok->cls() == stun::message_class::success_response);
  const stun::endpoint relayed = *stun::decode_address(*ok->find(attr::xor_relayed_address), ok->tid(), true);
  constexpr std::uint16_t channel = 0x4002;
  auto bound = request(static_cast<std::uint16_t>(stun::method::channel_bind),
                       [&](stun::message_builder& b) {
                         b.add_channel_number(channel);
                         b.add_address(attr::xor_peer_address, peer.local(), true);
                       },
                       true);
  ASSERT_TRUE(bound && bound->cls() == stun::message_class::success_response);

  // 158-byte payloads: padded to 160 on the stream in both directions.
  std::array<std::byte, 162> to_peer{};
  stun::write_channel_data_header(to_peer, channel, 158);
  std::array<std::byte, 158> from_peer{};
  std::array<std::byte, 2048> peer_in{};
  const socket_address relay_sa = to_sockaddr(relayed);
  auto round_trip = [&]() -> bool {
    std::array<std::byte, 164> padded{};
    std::memcpy(padded.data(), to_peer.data(), to_peer.size());
    if (!c.send(padded)) return false;
    pollfd p{peer.fd(), POLLIN, 0};
    if (::poll(&p, 1, 1000) != 1 || ::recv(peer.fd(), peer_in.data(), peer_in.size(), 0) != 158) return false;
    ::sendto(peer.fd(), from_peer.data(), from_peer.size(), 0, relay_sa.data(), relay_sa.size);
    return c.receive(in) == 164;
  };
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(round_trip());  // warm-up

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

TEST(worker, tcp_channel_data_forwarding_allocates_nothing) { stream_forwarding_allocates_nothing(false); }

TEST(worker, tls_channel_data_forwarding_allocates_nothing) { stream_forwarding_allocates_nothing(true); }

// ---- worker hand-off ----
//
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
