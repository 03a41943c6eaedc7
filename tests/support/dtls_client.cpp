#include "dtls_client.hpp"
#include "sockaddr.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace anyturn::itest {

namespace {

using clock = std::chrono::steady_clock;

std::chrono::milliseconds remaining(clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
  return left.count() > 0 ? left : std::chrono::milliseconds{0};
}

bool readable(int fd, std::chrono::milliseconds timeout) {
  pollfd p{fd, POLLIN, 0};
  for (;;) {
    const int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (r < 0 && errno == EINTR) continue;
    return r > 0;
  }
}

bool is_response(stun::message_class c) {
  return c == stun::message_class::success_response || c == stun::message_class::error_response;
}

std::string ssl_error_text() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "no OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

}  // namespace

struct dtls_client::ssl_state {
  SSL_CTX* ctx = nullptr;
  SSL* ssl = nullptr;
  ~ssl_state() {
    if (ssl != nullptr) SSL_free(ssl);
    if (ctx != nullptr) SSL_CTX_free(ctx);
  }
};

dtls_client::dtls_client(stun::endpoint server) : server_(server), ssl_(std::make_unique<ssl_state>()) {
  fd_ = ::socket(server.is_v4() ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd_ < 0) throw std::runtime_error("dtls_client: socket failed");
  sockaddr_storage ss{};
  const socklen_t len = to_sockaddr(server, ss);
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&ss), len) != 0) {
    throw std::runtime_error("dtls_client: connect failed");
  }
  sockaddr_storage local{};
  socklen_t local_len = sizeof local;
  ::getsockname(fd_, reinterpret_cast<sockaddr*>(&local), &local_len);
  local_ = from_sockaddr(local);
}

dtls_client::~dtls_client() {
  ssl_.reset();
  if (fd_ >= 0) ::close(fd_);
}

bool dtls_client::connect(std::chrono::milliseconds timeout) {
  ERR_clear_error();
  ssl_->ctx = SSL_CTX_new(DTLS_client_method());
  if (ssl_->ctx == nullptr) {
    error_ = "SSL_CTX_new: " + ssl_error_text();
    return false;
  }
  SSL_CTX_set_min_proto_version(ssl_->ctx, DTLS1_2_VERSION);
  SSL_CTX_set_verify(ssl_->ctx, SSL_VERIFY_NONE, nullptr);
  ssl_->ssl = SSL_new(ssl_->ctx);
  BIO* bio = BIO_new_dgram(fd_, BIO_NOCLOSE);
  if (ssl_->ssl == nullptr || bio == nullptr) {
    error_ = "SSL_new/BIO_new_dgram: " + ssl_error_text();
    return false;
  }
  sockaddr_storage ss{};
  to_sockaddr(server_, ss);
  BIO_ctrl(bio, BIO_CTRL_DGRAM_SET_CONNECTED, 0, &ss);
  SSL_set_bio(ssl_->ssl, bio, bio);
  SSL_set_connect_state(ssl_->ssl);
  const auto deadline = clock::now() + timeout;
  for (;;) {
    ERR_clear_error();
    const int rc = SSL_do_handshake(ssl_->ssl);
    if (rc == 1) {
      connected_ = true;
      return true;
    }
    const int err = SSL_get_error(ssl_->ssl, rc);
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
      error_ = "handshake failed: " + ssl_error_text();
      return false;
    }
    if (clock::now() >= deadline) {
      error_ = "handshake timed out";
      return false;
    }
    // Wake up for the server's flight or our retransmission timer.
    if (!readable(fd_, std::min(remaining(deadline), std::chrono::milliseconds{100}))) {
      DTLSv1_handle_timeout(ssl_->ssl);
    }
  }
}

std::string dtls_client::peer_certificate_der() const {
  if (!connected_) return {};
  X509* cert = SSL_get1_peer_certificate(ssl_->ssl);
  if (cert == nullptr) return {};
  unsigned char* der = nullptr;
  const int len = i2d_X509(cert, &der);
  std::string out;
  if (len > 0) out.assign(reinterpret_cast<const char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  X509_free(cert);
  return out;
}

bool dtls_client::send_plain(stun::bytes_view data) {
  return ::send(fd_, data.data(), data.size(), 0) == static_cast<ssize_t>(data.size());
}

std::optional<bytes> dtls_client::recv_plain(std::chrono::milliseconds timeout) {
  if (!readable(fd_, timeout)) return std::nullopt;
  bytes buf(65536);
  const ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
  if (n < 0) return std::nullopt;
  buf.resize(static_cast<std::size_t>(n));
  return buf;
}

bool dtls_client::send_record(stun::bytes_view data) {
  if (!connected_ || closed_) return false;
  ERR_clear_error();
  return SSL_write(ssl_->ssl, data.data(), static_cast<int>(data.size())) == static_cast<int>(data.size());
}

std::optional<bytes> dtls_client::recv_record(std::chrono::milliseconds timeout) {
  if (!inbox_.empty()) {
    bytes b = std::move(inbox_.front());
    inbox_.pop_front();
    return b;
  }
  if (!connected_ || closed_) return std::nullopt;
  const auto deadline = clock::now() + timeout;
  bytes buf(65536);
  for (;;) {
    ERR_clear_error();
    const int n = SSL_read(ssl_->ssl, buf.data(), static_cast<int>(buf.size()));
    if (n > 0) {
      buf.resize(static_cast<std::size_t>(n));
      return buf;
    }
    const int err = SSL_get_error(ssl_->ssl, n);
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
      closed_ = true;  // close_notify (ZERO_RETURN) or a fatal alert
      return std::nullopt;
    }
    if (clock::now() >= deadline) return std::nullopt;
    readable(fd_, std::min(remaining(deadline), std::chrono::milliseconds{100}));
  }
}

bool dtls_client::wait_closed(std::chrono::milliseconds timeout) {
  const auto deadline = clock::now() + timeout;
  while (!closed_ && clock::now() < deadline) {
    if (auto r = recv_record(remaining(deadline))) inbox_.push_back(std::move(*r));
  }
  return closed_;
}

void dtls_client::shutdown() {
  if (connected_ && !closed_) SSL_shutdown(ssl_->ssl);
  closed_ = true;
}

bytes dtls_client::build_request(stun::method m, const attribute_writer& attrs, bool authenticate) const {
  std::array<std::byte, 2048> buf{};
  stun::message_builder b(buf, static_cast<std::uint16_t>(m), stun::message_class::request,
                          turn_client::random_tid());
  if (attrs) attrs(b);
  if (authenticate) auth_.sign(b);
  b.add_fingerprint();
  auto done = b.finish();
  if (!done) throw std::runtime_error("build_request: " + done.error.message());
  return bytes(done->begin(), done->end());
}

std::optional<stun_message> dtls_client::exchange(const bytes& request, std::chrono::milliseconds timeout) {
  auto parsed = stun::parse_message(request);
  if (!parsed) throw std::invalid_argument("exchange: request does not parse");
  const stun::transaction_id tid = parsed->tid();
  // Loopback loses nothing: one transmission.
  if (!send_record(request)) return std::nullopt;
  const auto deadline = clock::now() + timeout;
  std::deque<bytes> others;
  std::optional<stun_message> out;
  while (!out) {
    auto r = recv_record(remaining(deadline));
    if (!r) break;
    auto m = stun::parse_message(*r);
    if (m && m->tid() == tid && is_response(m->cls())) out.emplace(std::move(*r));
    else others.push_back(std::move(*r));
  }
  for (auto& o : others) inbox_.push_back(std::move(o));
  return out;
}

std::optional<stun_message> dtls_client::request(stun::method m, const attribute_writer& attrs,
                                                 std::chrono::milliseconds timeout) {
  return auth_.request([&](bool sign) { return exchange(build_request(m, attrs, sign), timeout); });
}

std::optional<stun_message> dtls_client::allocate() {
  return request(stun::method::allocate, [](stun::message_builder& b) { b.add_requested_transport(17); });
}

std::optional<stun_message> dtls_client::create_permission(const stun::endpoint& peer) {
  return request(stun::method::create_permission,
                 [&](stun::message_builder& b) { b.add_address(stun::attr::xor_peer_address, peer, true); });
}

std::optional<stun_message> dtls_client::channel_bind(std::uint16_t channel, const stun::endpoint& peer) {
  return request(stun::method::channel_bind, [&](stun::message_builder& b) {
    b.add_channel_number(channel);
    b.add_address(stun::attr::xor_peer_address, peer, true);
  });
}

std::optional<relayed_data> dtls_client::recv_data(std::chrono::milliseconds timeout) {
  const auto deadline = clock::now() + timeout;
  for (;;) {
    auto r = recv_record(remaining(deadline));
    if (!r) return std::nullopt;
    if (auto out = decode_relayed(std::move(*r))) return out;
  }
}

}  // namespace anyturn::itest
