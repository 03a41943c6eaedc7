#include "stream_client.hpp"
#include "sockaddr.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace anyturn::itest {

namespace {

using clock = std::chrono::steady_clock;

std::chrono::milliseconds remaining(clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
  return left.count() > 0 ? left : std::chrono::milliseconds{0};
}


// Waits until `fd` is readable/writable; false on timeout.
bool wait_fd(int fd, short events, std::chrono::milliseconds timeout) {
  pollfd p{fd, events, 0};
  for (;;) {
    const int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (r < 0 && errno == EINTR) continue;
    return r > 0;
  }
}

bool is_response(stun::message_class c) {
  return c == stun::message_class::success_response || c == stun::message_class::error_response;
}

}  // namespace

struct stream_client::ssl_state {
  SSL_CTX* ctx = nullptr;
  SSL* ssl = nullptr;
  ~ssl_state() {
    if (ssl != nullptr) SSL_free(ssl);
    if (ctx != nullptr) SSL_CTX_free(ctx);
  }
};

stream_client::stream_client(stun::endpoint server, options o)
    : server_(server), options_(std::move(o)) {}

stream_client::~stream_client() { close(); }

void stream_client::close() {
  ssl_.reset();
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  closed_ = true;
}

bool stream_client::connect(std::chrono::milliseconds timeout) {
  const auto deadline = clock::now() + timeout;
  fd_ = ::socket(server_.is_v4() ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    error_ = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  if (options_.receive_buffer > 0) {
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &options_.receive_buffer, sizeof options_.receive_buffer);
  }
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_storage ss{};
  if (options_.bind) {
    const socklen_t bind_len = to_sockaddr(*options_.bind, ss);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&ss), bind_len) != 0) {
      error_ = "bind " + options_.bind->to_string() + ": " + std::strerror(errno);
      return false;
    }
    ss = {};
  }
  const socklen_t len = to_sockaddr(server_, ss);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    error_ = "connect " + server_.to_string() + ": " + std::strerror(errno);
    return false;
  }
  socklen_t got = sizeof ss;
  ::getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &got);
  local_ = from_sockaddr(ss);
  closed_ = false;
  if (!options_.preamble.empty() && !send_plain(options_.preamble)) {
    error_ = "sending the preamble failed";
    return false;
  }
  if (!options_.tls) return true;

  ssl_ = std::make_unique<ssl_state>();
  ssl_->ctx = SSL_CTX_new(TLS_client_method());
  if (ssl_->ctx == nullptr) {
    error_ = "SSL_CTX_new failed";
    return false;
  }
  SSL_CTX_set_verify(ssl_->ctx, SSL_VERIFY_NONE, nullptr);
  if (!options_.alpn.empty()) {
    std::vector<unsigned char> wire;
    for (const auto& p : options_.alpn) {
      wire.push_back(static_cast<unsigned char>(p.size()));
      wire.insert(wire.end(), p.begin(), p.end());
    }
    SSL_CTX_set_alpn_protos(ssl_->ctx, wire.data(), static_cast<unsigned>(wire.size()));
  }
  ssl_->ssl = SSL_new(ssl_->ctx);
  SSL_set_fd(ssl_->ssl, fd_);
  if (!options_.handshake) return true;
  // A blocking handshake bounded by a receive timeout on the socket.
  timeval tv{};
  const auto left = remaining(deadline);
  tv.tv_sec = static_cast<time_t>(left.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((left.count() % 1000) * 1000);
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const int rc = SSL_connect(ssl_->ssl);
  timeval none{};
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
  if (rc != 1) {
    char buf[256] = "handshake failed";
    if (const unsigned long e = ERR_get_error(); e != 0) ERR_error_string_n(e, buf, sizeof buf);
    error_ = std::string("TLS: ") + buf;
    return false;
  }
  return true;
}

std::string stream_client::alpn_selected() const {
  if (!ssl_ || ssl_->ssl == nullptr) return {};
  const unsigned char* data = nullptr;
  unsigned len = 0;
  SSL_get0_alpn_selected(ssl_->ssl, &data, &len);
  return data == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(data), len);
}

bool stream_client::send_plain(stun::bytes_view data) {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

bool stream_client::send_raw(stun::bytes_view data) {
  if (fd_ < 0) return false;
  if (!ssl_) return send_plain(data);
  std::size_t done = 0;
  while (done < data.size()) {
    std::size_t n = 0;
    if (SSL_write_ex(ssl_->ssl, data.data() + done, data.size() - done, &n) != 1) return false;
    done += n;
  }
  return true;
}

bool stream_client::send_in_pieces(stun::bytes_view data, std::size_t pieces,
                                   std::chrono::milliseconds gap) {
  pieces = std::max<std::size_t>(1, std::min(pieces, data.size()));
  const std::size_t step = (data.size() + pieces - 1) / pieces;
  for (std::size_t off = 0; off < data.size(); off += step) {
    if (off != 0) std::this_thread::sleep_for(gap);
    if (!send_raw(data.subspan(off, std::min(step, data.size() - off)))) return false;
  }
  return true;
}

bool stream_client::fill(std::chrono::milliseconds timeout) {
  if (fd_ < 0 || closed_) return false;
  std::array<std::byte, 16384> buf{};
  // TLS may hold decrypted bytes already.
  if (!(ssl_ && SSL_pending(ssl_->ssl) > 0) && !wait_fd(fd_, POLLIN, timeout)) return false;
  if (ssl_) {
    std::size_t n = 0;
    if (SSL_read_ex(ssl_->ssl, buf.data(), buf.size(), &n) != 1) {
      const int saved_errno = errno;
      const int err = SSL_get_error(ssl_->ssl, 0);
      if (err == SSL_ERROR_WANT_READ) return true;  // a record in pieces, or a post-handshake message
      close_notify_received_ = err == SSL_ERROR_ZERO_RETURN;
      closed_ = true;
      if (close_notify_received_) {
        close_detail_ = "close_notify";
      } else {
        char text[256] = "";
        if (const unsigned long e = ERR_peek_error(); e != 0) ERR_error_string_n(e, text, sizeof text);
        close_detail_ = "SSL_get_error " + std::to_string(err) + ", errno " + std::to_string(saved_errno) +
                        " (" + std::strerror(saved_errno) + "), " + (text[0] != '\0' ? text : "no OpenSSL error");
      }
      return false;
    }
    buffer_.insert(buffer_.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
    return true;
  }
  const ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
  if (n <= 0) {
    if (n < 0 && errno == EINTR) return true;
    closed_ = true;
    close_detail_ = n == 0 ? "eof" : std::string("recv: ") + std::strerror(errno);
    return false;
  }
  buffer_.insert(buffer_.end(), buf.begin(), buf.begin() + n);
  return true;
}

std::optional<bool> stream_client::wait_close_notify(std::chrono::milliseconds timeout) {
  if (!ssl_) return std::nullopt;
  const auto deadline = clock::now() + timeout;
  while (!closed_) {
    const auto left = remaining(deadline);
    if (left.count() <= 0) return std::nullopt;
    fill(left);
    buffer_.clear();  // whatever the server still sent before closing
  }
  return close_notify_received_;
}

bool stream_client::shutdown_tls(std::chrono::milliseconds timeout) {
  if (!ssl_ || fd_ < 0) return false;
  int rc = SSL_shutdown(ssl_->ssl);  // sends our close_notify
  if (rc < 0) return false;
  const auto deadline = clock::now() + timeout;
  while (rc == 0) {
    const auto left = remaining(deadline);
    if (left.count() <= 0 || !wait_fd(fd_, POLLIN, left)) return false;
    rc = SSL_shutdown(ssl_->ssl);  // reads the server's close_notify
    if (rc < 0) {
      const int err = SSL_get_error(ssl_->ssl, rc);
      if (err == SSL_ERROR_WANT_READ) {
        rc = 0;
        continue;
      }
      return false;
    }
  }
  return rc == 1;
}

std::optional<bytes> stream_client::take_frame() {
  if (buffer_.empty()) return std::nullopt;
  auto len = stun::stream_frame_length(buffer_, 1 << 17);
  if (!len) {
    if (len.error == stun::make_error_code(stun::codec_error::need_more)) return std::nullopt;
    throw std::runtime_error("stream_client: server sent an unframeable stream: " + len.error.message());
  }
  bytes frame(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(*len));
  buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(*len));
  return frame;
}

std::optional<bytes> stream_client::recv_frame(std::chrono::milliseconds timeout) {
  if (!inbox_.empty()) {
    bytes b = std::move(inbox_.front());
    inbox_.pop_front();
    return b;
  }
  const auto deadline = clock::now() + timeout;
  for (;;) {
    if (auto f = take_frame()) return f;
    if (closed_ || clock::now() >= deadline) return std::nullopt;
    if (!fill(remaining(deadline)) && closed_) return take_frame();
  }
}

bool stream_client::wait_closed(std::chrono::milliseconds timeout) {
  const auto deadline = clock::now() + timeout;
  while (!closed_ && clock::now() < deadline) {
    fill(remaining(deadline));
    buffer_.clear();  // whatever still arrives is not the point here
  }
  return closed_;
}

bytes stream_client::build_request(stun::method m, const attribute_writer& attrs, bool authenticate,
                                   stun::transaction_id* tid_out) const {
  const stun::transaction_id tid = turn_client::random_tid();
  if (tid_out != nullptr) *tid_out = tid;
  std::array<std::byte, 2048> buf{};
  stun::message_builder b(buf, static_cast<std::uint16_t>(m), stun::message_class::request, tid);
  if (attrs) attrs(b);
  if (authenticate) auth_.sign(b);
  b.add_fingerprint();
  auto done = b.finish();
  if (!done) throw std::runtime_error("build_request: " + done.error.message());
  return bytes(done->begin(), done->end());
}

std::optional<stun_message> stream_client::exchange(const bytes& request,
                                                    std::chrono::milliseconds timeout) {
  auto parsed = stun::parse_message(request);
  if (!parsed) throw std::invalid_argument("exchange: request does not parse");
  const stun::transaction_id tid = parsed->tid();
  // Streams are reliable: no retransmission (RFC 8489 §6.2.2).
  if (!send_raw(request)) return std::nullopt;
  const auto deadline = clock::now() + timeout;
  for (;;) {
    if (auto f = take_frame()) {
      auto m = stun::parse_message(*f);
      if (m && m->tid() == tid && is_response(m->cls())) return stun_message(std::move(*f));
      inbox_.push_back(std::move(*f));
      continue;
    }
    if (closed_ || clock::now() >= deadline) return std::nullopt;
    fill(remaining(deadline));
  }
}

std::optional<stun_message> stream_client::request(stun::method m, const attribute_writer& attrs,
                                                   std::chrono::milliseconds timeout) {
  return auth_.request([&](bool sign) { return exchange(build_request(m, attrs, sign), timeout); });
}

std::optional<stun_message> stream_client::binding() {
  return exchange(build_request(stun::method::binding, {}, false));
}

std::optional<stun_message> stream_client::allocate(std::optional<std::uint32_t> lifetime) {
  return request(stun::method::allocate, [&](stun::message_builder& b) {
    b.add_requested_transport(17);
    if (lifetime) b.add_u32(stun::attr::lifetime, *lifetime);
  });
}

std::optional<stun_message> stream_client::refresh(std::uint32_t lifetime) {
  return request(stun::method::refresh,
                 [&](stun::message_builder& b) { b.add_u32(stun::attr::lifetime, lifetime); });
}

std::optional<stun_message> stream_client::create_permission(const stun::endpoint& peer) {
  return request(stun::method::create_permission,
                 [&](stun::message_builder& b) { b.add_address(stun::attr::xor_peer_address, peer, true); });
}

std::optional<stun_message> stream_client::channel_bind(std::uint16_t channel,
                                                        const stun::endpoint& peer) {
  return request(stun::method::channel_bind, [&](stun::message_builder& b) {
    b.add_channel_number(channel);
    b.add_address(stun::attr::xor_peer_address, peer, true);
  });
}

bytes stream_client::channel_data(std::uint16_t channel, stun::bytes_view payload) {
  const std::size_t padded = (payload.size() + 3) & ~std::size_t{3};
  bytes buf(stun::channel_data_header_size + padded);  // zero padding
  stun::write_channel_data_header(buf, channel, static_cast<std::uint16_t>(payload.size()));
  if (!payload.empty()) {
    std::memcpy(buf.data() + stun::channel_data_header_size, payload.data(), payload.size());
  }
  return buf;
}

bytes stream_client::send_indication(const stun::endpoint& peer, stun::bytes_view payload) {
  std::array<std::byte, 4096> buf{};
  stun::message_builder b(buf, static_cast<std::uint16_t>(stun::method::send),
                          stun::message_class::indication, turn_client::random_tid());
  b.add_address(stun::attr::xor_peer_address, peer, true);
  auto slot = b.add_data_slot(payload.size());
  if (!payload.empty()) std::memcpy(slot.data(), payload.data(), payload.size());
  b.add_fingerprint();
  auto done = b.finish();
  if (!done) throw std::runtime_error("send_indication: " + done.error.message());
  return bytes(done->begin(), done->end());
}

std::optional<relayed_data> stream_client::recv_data(std::chrono::milliseconds timeout) {
  const auto deadline = clock::now() + timeout;
  for (;;) {
    auto f = recv_frame(remaining(deadline));
    if (!f) return std::nullopt;
    if (auto out = decode_relayed(std::move(*f))) return out;
  }
}

std::uint64_t rss_kib(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      std::istringstream in(line.substr(6));
      std::uint64_t kib = 0;
      in >> kib;
      return kib;
    }
  }
  return 0;
}

}  // namespace anyturn::itest
