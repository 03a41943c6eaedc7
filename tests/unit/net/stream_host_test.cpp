// The worker's stream transports: TCP on the UDP port, TLS listeners, the
// allocation's lifetime tied to its connection, limits, framing errors and
// the TLS context swap used by SIGHUP.
#include <anyturn/net/worker.hpp>

#include <anyturn/auth/credentials.hpp>
#include <anyturn/auth/nonce.hpp>
#include <anyturn/auth/peer_policy.hpp>
#include <anyturn/net/address.hpp>
#include <anyturn/relay/port_pool.hpp>
#include <anyturn/stun/message.hpp>

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
using bytes = std::vector<std::byte>;

stun::endpoint loopback(std::uint16_t port = 0) { return stun::endpoint::v4(0x7F000001, port); }

std::shared_ptr<turn::shared_state> make_shared_state() {
  auto s = std::make_shared<turn::shared_state>();
  s->credentials = std::make_shared<auth::credential_store>(
      "test", std::vector<auth::static_user>{{"u", std::string("p"), std::nullopt}},
      std::vector<std::string>{});
  s->nonces = std::make_shared<auth::nonce_service>(std::vector<std::uint8_t>(32, 7), 600, false);
  s->peers = std::make_shared<auth::peer_policy>(
      std::vector<auth::cidr>{*auth::cidr::parse("127.0.0.0/8")}, std::vector<auth::cidr>{});
  s->relays.push_back({loopback(), std::make_shared<relay::port_pool>(61500, 61599)});
  return s;
}

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

std::uint64_t read(const std::atomic<std::uint64_t>& c) { return c.load(std::memory_order_relaxed); }

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

}  // namespace
}  // namespace anyturn::net
