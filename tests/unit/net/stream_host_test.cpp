// The worker's stream host: TCP on the UDP port, TLS listeners, the
// allocation's lifetime tied to its connection, limits, framing errors, the
// TLS context swap used by SIGHUP, the zero-allocation forward path over
// TCP and TLS, and the connection table.
#include "../../../src/net/stream_host.hpp"

#include "worker_fixture.hpp"

#include <boost/asio/io_context.hpp>

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <array>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace anyturn::net {
namespace {

using namespace std::chrono_literals;
namespace attr = stun::attr;
using bytes = std::vector<std::byte>;

pem_credentials self_signed() {
  std::string error;
  auto pem = make_self_signed(std::vector{loopback()}, {}, std::chrono::hours{24}, error);
  EXPECT_TRUE(pem) << error;
  return pem.value_or(pem_credentials{});
}

tls_context_ptr context_of(const pem_credentials& pem) {
  std::string error;
  auto ctx = make_server_tls_context_from_pem(pem.certificate, pem.private_key, error);
  EXPECT_TRUE(ctx) << error;
  return ctx;
}

// A worker running on its own thread for the length of a test.
class running {
 public:
  explicit running(worker_options o) : w_(0, make_shared_state(), std::move(o)) {
    std::string what;
    ok_ = !w_.open(what);
    EXPECT_TRUE(ok_) << what;
    if (ok_) thread_ = std::thread([this] { w_.run(); });
  }
  ~running() {
    w_.stop();
    if (thread_.joinable()) thread_.join();
  }
  worker& get() { return w_; }
  [[nodiscard]] stun::endpoint udp_tcp() const { return w_.listener_endpoints().at(0); }
  [[nodiscard]] stun::endpoint tls() const { return w_.tls_listener_endpoints().at(0); }

 private:
  worker w_;
  bool ok_ = false;
  std::thread thread_;
};

// Waits until `pred` holds (up to 2 s).
bool eventually(const std::function<bool()>& pred) {
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

// A blocking TCP (optionally TLS) client.
class client {
 public:
  explicit client(const stun::endpoint& server, bool tls = false) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const socket_address sa = to_sockaddr(server);
    connected_ = ::connect(fd_, sa.data(), sa.size) == 0;
    timeval tv{2, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (tls && connected_) {
      ctx_ = SSL_CTX_new(TLS_client_method());
      ssl_ = SSL_new(ctx_);
      SSL_set_fd(ssl_, fd_);
      connected_ = SSL_connect(ssl_) == 1;
    }
  }
  ~client() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
    if (fd_ >= 0) ::close(fd_);
  }
  [[nodiscard]] bool connected() const { return connected_; }
  [[nodiscard]] SSL* ssl() const { return ssl_; }
  void close() {
    ::close(fd_);
    fd_ = -1;
  }

  // DER of the server's certificate (TLS).
  [[nodiscard]] bytes peer_certificate() const {
    X509* cert = SSL_get1_peer_certificate(ssl_);
    if (cert == nullptr) return {};
    unsigned char* der = nullptr;
    const int n = i2d_X509(cert, &der);
    bytes out(reinterpret_cast<std::byte*>(der), reinterpret_cast<std::byte*>(der) + n);
    OPENSSL_free(der);
    X509_free(cert);
    return out;
  }

  bool send(stun::bytes_view data) {
    if (ssl_ != nullptr) return SSL_write(ssl_, data.data(), static_cast<int>(data.size())) == static_cast<int>(data.size());
    return ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size());
  }

  // One STUN message (or nullopt on close/timeout).
  std::optional<bytes> receive() {
    for (;;) {
      auto len = stun::stream_frame_length(buffer_, 65536);
      if (len) {
        bytes frame(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(*len));
        buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(*len));
        return frame;
      }
      std::array<std::byte, 4096> buf{};
      const int n = ssl_ != nullptr ? SSL_read(ssl_, buf.data(), static_cast<int>(buf.size()))
                                    : static_cast<int>(::recv(fd_, buf.data(), buf.size(), 0));
      if (n <= 0) return std::nullopt;
      buffer_.insert(buffer_.end(), buf.begin(), buf.begin() + n);
    }
  }

  // True when the server closed the connection.
  bool closed_by_server() {
    std::array<std::byte, 256> buf{};
    for (;;) {
      const int n = ssl_ != nullptr ? SSL_read(ssl_, buf.data(), static_cast<int>(buf.size()))
                                    : static_cast<int>(::recv(fd_, buf.data(), buf.size(), 0));
      if (n > 0) continue;
      if (n == 0) return true;
      return errno != EAGAIN && errno != EWOULDBLOCK;
    }
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  bytes buffer_;
};

stun::transaction_id tid_of(int n) {
  stun::transaction_id tid;
  tid.bytes[0] = std::byte(n);
  tid.bytes[11] = std::byte(0x5A);
  return tid;
}

bytes request(stun::method m, int n, const std::function<void(stun::message_builder&)>& attrs = {}) {
  bytes buf(1024);
  stun::message_builder b(buf, static_cast<std::uint16_t>(m), stun::message_class::request, tid_of(n));
  if (attrs) attrs(b);
  auto done = b.finish();
  return bytes(done->begin(), done->end());
}

bool is_success(const std::optional<bytes>& m) {
  if (!m) return false;
  auto v = stun::parse_message(*m);
  return v && v->cls() == stun::message_class::success_response;
}

// Allocate with the long-term credential dance over `c`.
bool allocate(client& c) {
  if (!c.send(request(stun::method::allocate, 1, [](auto& b) { b.add_requested_transport(17); }))) return false;
  auto challenge = c.receive();
  if (!challenge) return false;
  auto v = stun::parse_message(*challenge);
  auto realm = stun::decode_string(*v->find(stun::attr::realm), 763);
  auto nonce = stun::decode_string(*v->find(stun::attr::nonce), 763);
  const std::string realm_s(*realm);
  const std::string nonce_s(*nonce);
  const auto key = auth::derive_md5_key("u", realm_s, "p");
  c.send(request(stun::method::allocate, 2, [&](stun::message_builder& b) {
    b.add_requested_transport(17);
    b.add_string(stun::attr::username, "u");
    b.add_string(stun::attr::realm, realm_s);
    b.add_string(stun::attr::nonce, nonce_s);
    b.add_message_integrity(stun::bytes_view(reinterpret_cast<const std::byte*>(key.data()), key.size()));
  }));
  return is_success(c.receive());
}

worker_options stream_options() {
  worker_options o;
  o.listen = {loopback()};
  o.socket_buffer = 256 * 1024;
  return o;
}

TEST(stream_worker, tcp_serves_the_udp_port) {
  running w(stream_options());
  client c(w.udp_tcp());
  ASSERT_TRUE(c.connected());
  bytes two = request(stun::method::binding, 1);
  const bytes second = request(stun::method::binding, 2);
  two.insert(two.end(), second.begin(), second.end());
  ASSERT_TRUE(c.send(two));
  EXPECT_TRUE(is_success(c.receive()));
  EXPECT_TRUE(is_success(c.receive()));
  EXPECT_EQ(read(w.get().io_counters().connections_accepted), 1u);
  EXPECT_EQ(read(w.get().io_counters().connections_open), 1u);
}

TEST(stream_worker, tcp_can_be_switched_off) {
  worker_options o = stream_options();
  o.tcp = false;
  running w(o);
  client c(w.udp_tcp());
  EXPECT_FALSE(c.connected());
}

TEST(stream_worker, allocation_ends_with_its_connection) {
  running w(stream_options());
  client c(w.udp_tcp());
  ASSERT_TRUE(allocate(c));
  EXPECT_EQ(read(w.get().io_counters().relay_sockets_open), 1u);
  EXPECT_EQ(read(w.get().counters().active_allocations), 1u);
  c.close();
  EXPECT_TRUE(eventually([&] { return read(w.get().io_counters().relay_sockets_open) == 0; }));
  EXPECT_TRUE(eventually([&] { return read(w.get().counters().allocations_closed) == 1; }));
  EXPECT_TRUE(eventually([&] { return read(w.get().io_counters().connections_open) == 0; }));
}

TEST(stream_worker, framing_error_closes_and_counts) {
  running w(stream_options());
  client c(w.udp_tcp());
  const bytes junk(64, std::byte{0xFF});
  ASSERT_TRUE(c.send(junk));
  EXPECT_TRUE(c.closed_by_server());
  EXPECT_TRUE(eventually([&] { return read(w.get().io_counters().stream_framing_errors) == 1; }));
}

TEST(stream_worker, total_connection_limit_refuses_and_counts) {
  worker_options o = stream_options();
  o.connections = std::make_shared<connection_limiter>(1, 0);
  running w(o);
  client first(w.udp_tcp());
  ASSERT_TRUE(first.send(request(stun::method::binding, 1)));
  ASSERT_TRUE(is_success(first.receive()));
  client second(w.udp_tcp());
  EXPECT_TRUE(second.closed_by_server());
  EXPECT_TRUE(eventually([&] { return read(w.get().io_counters().connections_refused_total) == 1; }));
  EXPECT_EQ(o.connections->total(), 1u);
  first.close();
  EXPECT_TRUE(eventually([&] { return o.connections->total() == 0; })) << "released on close";
}

TEST(stream_worker, tls_context_swap_reaches_new_handshakes_only) {
  const pem_credentials a = self_signed();
  const pem_credentials b = self_signed();
  worker_options o = stream_options();
  o.tls_listen = {loopback()};
  o.tls = context_of(a);
  running w(o);

  client before(w.tls(), true);
  ASSERT_TRUE(before.connected());
  const bytes cert_a = before.peer_certificate();
  ASSERT_FALSE(cert_a.empty());

  w.get().set_tls_context(context_of(b));
  bytes cert_after;
  ASSERT_TRUE(eventually([&] {
    client c(w.tls(), true);
    cert_after = c.peer_certificate();
    return c.connected() && cert_after != cert_a;
  }));
  // The connection made before the swap continues.
  ASSERT_TRUE(before.send(request(stun::method::binding, 7)));
  EXPECT_TRUE(is_success(before.receive()));
  // The server counts a handshake when its side completes, which may be
  // just after the client's side did.
  EXPECT_TRUE(eventually([&] { return read(w.get().io_counters().tls_handshakes) >= 2u; }));
}

TEST(stream_worker, tls_handshake_garbage_is_counted) {
  worker_options o = stream_options();
  o.tls_listen = {loopback()};
  o.tls = context_of(self_signed());
  running w(o);
  client c(w.tls());  // plain TCP to the TLS port
  ASSERT_TRUE(c.send(request(stun::method::binding, 1)));
  EXPECT_TRUE(c.closed_by_server());
  EXPECT_TRUE(eventually([&] { return read(w.get().io_counters().tls_handshake_failures) == 1; }));
}

TEST(stream_worker, tls_listeners_need_a_context) {
  worker_options o = stream_options();
  o.tls_listen = {loopback()};
  worker w(0, make_shared_state(), o);
  std::string what;
  EXPECT_TRUE(w.open(what));
  EXPECT_NE(what.find("TLS"), std::string::npos) << what;
}

// ---- hole 1.6: what a connection costs before it authenticates ----

// The client's end of a TLS session, as OpenSSL reports it.
enum class tls_end { close_notify, no_close_notify, still_open };
tls_end wait_tls_end(SSL* ssl) {
  std::array<std::byte, 256> buf{};
  for (;;) {
    const int n = SSL_read(ssl, buf.data(), static_cast<int>(buf.size()));
    if (n > 0) continue;
    const int err = SSL_get_error(ssl, n);
    if (err == SSL_ERROR_ZERO_RETURN) return tls_end::close_notify;
    if (err == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK)) return tls_end::still_open;
    return tls_end::no_close_notify;
  }
}

TEST(stream_worker, a_silent_connection_is_closed_after_the_first_message_timeout) {
  worker_options o = stream_options();
  o.first_message_timeout = 300ms;
  running w(o);
  client silent(w.udp_tcp());
  client partial(w.udp_tcp());  // half a STUN message is not a message
  client speaking(w.udp_tcp());
  ASSERT_TRUE(silent.connected() && partial.connected() && speaking.connected());
  const bytes binding = request(stun::method::binding, 1);
  ASSERT_TRUE(partial.send(stun::bytes_view(binding).first(12)));
  ASSERT_TRUE(speaking.send(binding));
  ASSERT_TRUE(is_success(speaking.receive()));
  const auto begin = std::chrono::steady_clock::now();
  EXPECT_TRUE(silent.closed_by_server());
  EXPECT_TRUE(partial.closed_by_server());
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 1500ms);
  EXPECT_TRUE(eventually([&] { return read(w.get().io_counters().first_message_timeouts) == 2; }));
  // The one that spoke in time is still served (idle_timeout is 30 s).
  std::this_thread::sleep_for(200ms);
  ASSERT_TRUE(speaking.send(request(stun::method::binding, 2)));
  EXPECT_TRUE(is_success(speaking.receive()));
  EXPECT_EQ(read(w.get().io_counters().first_message_timeouts), 2u);
}

TEST(stream_worker, tls_first_message_clock_starts_at_accept) {
  worker_options o = stream_options();
  o.tls_listen = {loopback()};
  o.tls = context_of(self_signed());
  o.first_message_timeout = 300ms;  // shorter than the handshake timeout (10 s)
  running w(o);
  client no_handshake(w.tls());   // TCP only: never starts the handshake
  client handshaken(w.tls(), true);  // handshakes, then says nothing
  ASSERT_TRUE(no_handshake.connected() && handshaken.connected());
  EXPECT_TRUE(no_handshake.closed_by_server());
  EXPECT_TRUE(handshaken.closed_by_server());
  EXPECT_TRUE(eventually([&] { return read(w.get().io_counters().first_message_timeouts) == 2; }));
  EXPECT_EQ(read(w.get().io_counters().tls_handshake_timeouts), 0u);
}

TEST(stream_worker, unauthenticated_budget_refuses_new_connections_and_counts) {
  worker_options o = stream_options();
  o.unauth_memory = std::make_shared<memory_budget>(2 * tcp_connection_cost);
  running w(o);
  client a(w.udp_tcp());
  client b(w.udp_tcp());
  ASSERT_TRUE(a.connected() && b.connected());
  // Silent connections hold no read buffer: just their fixed cost.
  ASSERT_TRUE(eventually([&] { return o.unauth_memory->used() == 2 * tcp_connection_cost; }));
  client c(w.udp_tcp());
  EXPECT_TRUE(c.closed_by_server());
  EXPECT_TRUE(eventually([&] { return read(w.get().io_counters().unauth_memory_closes) == 1; }));
  EXPECT_EQ(read(w.get().io_counters().connections_accepted), 2u);
  // A closed one gives its share back, and the next one is admitted.
  a.close();
  ASSERT_TRUE(eventually([&] { return o.unauth_memory->used() == tcp_connection_cost; }));
  client d(w.udp_tcp());
  ASSERT_TRUE(d.connected());
  EXPECT_TRUE(eventually([&] { return read(w.get().io_counters().connections_accepted) == 3; }));
  EXPECT_TRUE(eventually([&] { return o.unauth_memory->used() == 2 * tcp_connection_cost; }));
  EXPECT_EQ(read(w.get().io_counters().unauth_memory_closes), 1u);
}

TEST(stream_worker, an_unauthenticated_connection_growing_past_the_budget_is_closed) {
  worker_options o = stream_options();
  // The fixed cost and the first 4 KiB read buffer fit; doubling it does not.
  o.unauth_memory = std::make_shared<memory_budget>(tcp_connection_cost + 4096);
  running w(o);
  client c(w.udp_tcp());
  ASSERT_TRUE(c.connected());
  // A STUN header announcing 6000 bytes of attributes, and 4076 of them.
  bytes big = request(stun::method::binding, 1);
  big.resize(20 + 4076);
  big[2] = std::byte{0x17};
  big[3] = std::byte{0x70};
  ASSERT_TRUE(c.send(big));
  EXPECT_TRUE(c.closed_by_server());
  EXPECT_TRUE(eventually([&] { return read(w.get().io_counters().unauth_memory_closes) == 1; }));
  EXPECT_TRUE(eventually([&] { return o.unauth_memory->used() == 0; })) << "everything credited back";
}

TEST(stream_worker, authenticating_leaves_the_unauthenticated_budget) {
  worker_options o = stream_options();
  o.unauth_memory = std::make_shared<memory_budget>(1 << 20);
  running w(o);
  client c(w.udp_tcp());
  ASSERT_TRUE(c.send(request(stun::method::binding, 1)));
  ASSERT_TRUE(is_success(c.receive()));
  EXPECT_GE(o.unauth_memory->used(), tcp_connection_cost);
  ASSERT_TRUE(allocate(c));
  EXPECT_TRUE(eventually([&] { return o.unauth_memory->used() == 0; }));
  // A second, unauthenticated connection is charged as before.
  client other(w.udp_tcp());
  ASSERT_TRUE(other.connected());
  EXPECT_TRUE(eventually([&] { return o.unauth_memory->used() == tcp_connection_cost; }));
}

// RFC 8446 §6.1: each side sends close_notify before it closes its write side.
TEST(stream_worker, tls_server_close_sends_close_notify) {
  worker_options o = stream_options();
  o.tls_listen = {loopback()};
  o.tls = context_of(self_signed());
  o.idle_timeout = 300ms;
  running w(o);
  client c(w.tls(), true);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send(request(stun::method::binding, 1)));
  ASSERT_TRUE(is_success(c.receive()));
  EXPECT_EQ(wait_tls_end(c.ssl()), tls_end::close_notify);
  EXPECT_TRUE(eventually([&] { return read(w.get().io_counters().idle_timeouts) == 1; }));
}

TEST(stream_worker, tls_client_close_notify_is_answered) {
  worker_options o = stream_options();
  o.tls_listen = {loopback()};
  o.tls = context_of(self_signed());
  running w(o);
  client c(w.tls(), true);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send(request(stun::method::binding, 1)));
  ASSERT_TRUE(is_success(c.receive()));
  ASSERT_EQ(SSL_shutdown(c.ssl()), 0) << "ours sent, theirs not yet received";
  EXPECT_EQ(SSL_shutdown(c.ssl()), 1) << "the server answered with its close_notify";
  EXPECT_TRUE(eventually([&] { return read(w.get().io_counters().connections_open) == 0; }));
}

// The same over TCP and TLS: relaying between a stream client and a UDP
// peer allocates nothing once the connection is warm (its read buffer and
// write ring have their size, Asio recycles its operation memory).
// OpenSSL allocates with malloc, which this counter does not see; it keeps
// its record buffers once the client authenticated (SSL_MODE_RELEASE_BUFFERS
// is cleared then).
// ---- PROXY protocol listeners

// A PROXY v2 header (PROXY, TCP over IPv4) naming `client`.
bytes proxy_v2(const stun::endpoint& client) {
  bytes out = {std::byte{0x0D}, std::byte{0x0A}, std::byte{0x0D}, std::byte{0x0A}, std::byte{0x00},
               std::byte{0x0D}, std::byte{0x0A}, std::byte{0x51}, std::byte{0x55}, std::byte{0x49},
               std::byte{0x54}, std::byte{0x0A}, std::byte{0x21}, std::byte{0x11}, std::byte{0x00},
               std::byte{12}};
  for (std::size_t i = 0; i < 4; ++i) out.push_back(std::byte{client.ip[i]});
  for (std::uint8_t b : {127, 0, 0, 1}) out.push_back(std::byte{b});
  out.push_back(std::byte{static_cast<std::uint8_t>(client.port >> 8)});
  out.push_back(std::byte{static_cast<std::uint8_t>(client.port & 0xFF)});
  out.push_back(std::byte{0x0D});
  out.push_back(std::byte{0x96});
  return out;
}

worker_options proxy_options(const char* trusted) {
  worker_options o = stream_options();
  config::proxy_protocol_config pp;
  pp.enabled = true;
  pp.trusted.push_back(*auth::cidr::parse(trusted));
  o.listen_proxy = {pp};
  return o;
}

std::optional<stun::endpoint> mapped_of(const std::optional<bytes>& m) {
  if (!m) return std::nullopt;
  auto v = stun::parse_message(*m);
  if (!v) return std::nullopt;
  auto a = v->find(attr::xor_mapped_address);
  if (!a) return std::nullopt;
  auto ep = stun::decode_address(*a, v->tid(), true);
  if (!ep) return std::nullopt;
  return *ep;
}

const stun::endpoint header_client = stun::endpoint::v4(0xC6336407u, 40000);  // 198.51.100.7

TEST(stream_worker, a_proxy_header_in_pieces_names_the_client_and_leaves_the_stream_intact) {
  running w(proxy_options("127.0.0.0/8"));
  client c(w.udp_tcp());
  ASSERT_TRUE(c.connected());
  const bytes header = proxy_v2(header_client);
  // Half the header, a pause, then the rest with the first request behind it
  // in the same segment: the request must not be taken as header bytes.
  ASSERT_TRUE(c.send(stun::bytes_view(header).first(10)));
  std::this_thread::sleep_for(50ms);
  bytes rest(header.begin() + 10, header.end());
  const bytes binding = request(stun::method::binding, 1);
  rest.insert(rest.end(), binding.begin(), binding.end());
  ASSERT_TRUE(c.send(rest));
  EXPECT_EQ(mapped_of(c.receive()), header_client);
  EXPECT_EQ(read(w.get().io_counters().proxy_accepted), 1u);
  // The allocation is made for the header's client too.
  ASSERT_TRUE(allocate(c));
}

TEST(stream_worker, a_proxy_header_from_an_untrusted_source_is_refused_and_counted) {
  running w(proxy_options("10.0.0.0/8"));
  client c(w.udp_tcp());
  ASSERT_TRUE(c.connected());
  c.send(proxy_v2(header_client));
  EXPECT_TRUE(c.closed_by_server());
  EXPECT_TRUE(eventually([&] { return read(w.get().io_counters().proxy_rejected_untrusted) == 1; }));
  EXPECT_EQ(read(w.get().io_counters().proxy_accepted), 0u);
}

TEST(stream_worker, a_malformed_or_late_proxy_header_closes_and_counts) {
  worker_options o = proxy_options("127.0.0.0/8");
  o.proxy_header_timeout = 200ms;
  running w(o);
  client plain(w.udp_tcp());  // a STUN request where the header belongs
  client partial(w.udp_tcp());
  ASSERT_TRUE(plain.connected() && partial.connected());
  ASSERT_TRUE(plain.send(request(stun::method::binding, 1)));
  ASSERT_TRUE(partial.send(stun::bytes_view(proxy_v2(header_client)).first(20)));
  EXPECT_TRUE(plain.closed_by_server());
  EXPECT_TRUE(partial.closed_by_server());
  EXPECT_TRUE(eventually([&] { return read(w.get().io_counters().proxy_rejected_malformed) == 1; }));
  EXPECT_TRUE(eventually([&] { return read(w.get().io_counters().proxy_rejected_timeout) == 1; }));
  EXPECT_TRUE(eventually([&] { return read(w.get().io_counters().connections_open) == 0; }));
}

TEST(stream_worker, the_per_address_limit_counts_the_proxy_headers_client) {
  worker_options o = proxy_options("127.0.0.0/8");
  o.connections = std::make_shared<connection_limiter>(0, 1);
  running w(o);
  client first(w.udp_tcp());
  client second(w.udp_tcp());
  client other(w.udp_tcp());
  ASSERT_TRUE(first.connected() && second.connected() && other.connected());
  bytes hello = proxy_v2(header_client);
  const bytes binding = request(stun::method::binding, 1);
  hello.insert(hello.end(), binding.begin(), binding.end());
  ASSERT_TRUE(first.send(hello));
  EXPECT_EQ(mapped_of(first.receive()), header_client);
  // All three come from 127.0.0.1; the limit of 1 is per header client.
  second.send(hello);
  EXPECT_TRUE(second.closed_by_server());
  EXPECT_TRUE(eventually([&] { return read(w.get().io_counters().connections_refused_per_ip) == 1; }));
  const stun::endpoint another = stun::endpoint::v4(0xC6336408u, 1);
  bytes other_hello = proxy_v2(another);
  other_hello.insert(other_hello.end(), binding.begin(), binding.end());
  ASSERT_TRUE(other.send(other_hello));
  EXPECT_EQ(mapped_of(other.receive()), another);
  // Closing gives the header client's count back.
  first.close();
  EXPECT_TRUE(eventually([&] { return o.connections->count(header_client) == 0; }));
}

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

// ---- the connection table, on its own ----

// A host that records which sessions closed; its sessions are never started.
class recording_host final : public detail::stream_host {
 public:
  [[nodiscard]] const detail::stream_settings& settings() const override { return settings_; }
  [[nodiscard]] relay::now_t now() const override { return {}; }
  [[nodiscard]] const std::shared_ptr<memory_budget>& unauth_budget() const override { return budget_; }
  void on_stream_frame(detail::stream_session&, stun::bytes_view, const relay::now_t&) override {}
  void on_stream_ready(detail::stream_session&) override {}
  void on_stream_closed(detail::stream_session& s, detail::close_reason why) override {
    closed.push_back(s.ref().connection);
    reasons.push_back(why);
    // As the worker does: take the session out of the table.
    if (table != nullptr) still_listed.push_back(table->remove(s.ref().connection, s) != nullptr);
  }

  detail::connection_table* table = nullptr;
  std::vector<std::uint64_t> closed;
  std::vector<detail::close_reason> reasons;
  std::vector<bool> still_listed;

 private:
  detail::stream_settings settings_;
  std::shared_ptr<memory_budget> budget_;
};

// A plain TCP session on an unopened socket, made under the id the table gives.
auto session_maker(boost::asio::io_context& ioc, detail::stream_host& host) {
  return [&ioc, &host](std::uint64_t id) {
    relay::client_ref ref;
    ref.proto = relay::transport::tcp;
    ref.connection = id;
    return detail::stream_session::make(host, boost::asio::ip::tcp::socket(ioc), ref, nullptr, 0);
  };
}

TEST(connection_table, ids_are_never_zero_and_a_reused_slot_gets_a_new_one) {
  boost::asio::io_context ioc;
  recording_host host;
  detail::connection_table table;
  const auto make = session_maker(ioc, host);
  detail::stream_session& a = table.add(make);
  detail::stream_session& b = table.add(make);
  const std::uint64_t id_a = a.ref().connection;
  const std::uint64_t id_b = b.ref().connection;
  EXPECT_NE(id_a, 0u);
  EXPECT_NE(id_b, 0u);
  EXPECT_NE(id_a, id_b);
  EXPECT_EQ(table.find(id_a), &a);
  EXPECT_EQ(table.find(id_b), &b);
  EXPECT_EQ(table.find(0), nullptr);

  // remove() takes only the session its id names, once.
  EXPECT_EQ(table.remove(id_a, b), nullptr);
  const std::shared_ptr<detail::stream_session> held = table.remove(id_a, a);
  EXPECT_EQ(held.get(), &a);
  EXPECT_EQ(table.find(id_a), nullptr);
  EXPECT_EQ(table.remove(id_a, a), nullptr);
  EXPECT_EQ(table.find(id_b), &b);

  // The freed slot is reused under a new id; the old one stays dead.
  detail::stream_session& c = table.add(make);
  const std::uint64_t id_c = c.ref().connection;
  EXPECT_EQ(id_c & 0xFFFFFFFFu, id_a & 0xFFFFFFFFu);
  EXPECT_NE(id_c, id_a);
  EXPECT_EQ(table.find(id_a), nullptr);
  EXPECT_EQ(table.find(id_c), &c);
}

TEST(connection_table, close_all_empties_the_table_before_the_sessions_call_back) {
  boost::asio::io_context ioc;
  recording_host host;
  detail::connection_table table;
  host.table = &table;
  const auto make = session_maker(ioc, host);
  const std::uint64_t first = table.add(make).ref().connection;
  const std::uint64_t second = table.add(make).ref().connection;
  table.close_all();
  EXPECT_EQ(host.closed, (std::vector<std::uint64_t>{first, second}));
  EXPECT_EQ(host.reasons, (std::vector<detail::close_reason>(2, detail::close_reason::shutdown)));
  EXPECT_EQ(host.still_listed, (std::vector<bool>{false, false}));
  EXPECT_EQ(table.find(first), nullptr);
  EXPECT_EQ(table.find(second), nullptr);
  table.close_all();  // empty: nothing to close
  EXPECT_EQ(host.closed.size(), 2u);
}

}  // namespace
}  // namespace anyturn::net
