// One control connection of the probe: UDP, TCP or TLS on a non-blocking
// socket, every wait a poll() bounded by the probe's deadline.
#include "client.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace anyturn::probe::detail {
namespace {

constexpr std::size_t max_frame = 65535 + stun::header_size;

std::string errno_text(int e) {
  switch (e) {
    case ECONNREFUSED: return "connection refused";
    case ENETUNREACH: return "network unreachable";
    case EHOSTUNREACH: return "host unreachable";
    case ECONNRESET: return "connection reset";
    case ETIMEDOUT: return "connection timed out";
    default: return std::strerror(e);
  }
}

bool fail(failure& f, std::string cause, bool timed_out = false) {
  f.cause = std::move(cause);
  f.timed_out = timed_out;
  return false;
}

// The first queued OpenSSL error as text ("" when none), and clears the queue.
std::string openssl_error() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return {};
  const char* reason = ERR_reason_error_string(e);
  return reason != nullptr ? reason : "error " + std::to_string(e);
}

bool is_ip_literal(const std::string& host) {
  in6_addr a6{};
  in_addr a4{};
  return ::inet_pton(AF_INET, host.c_str(), &a4) == 1 || ::inet_pton(AF_INET6, host.c_str(), &a6) == 1;
}

}  // namespace

int poll_timeout(clock::time_point deadline) {
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now()).count();
  return static_cast<int>(std::clamp<long long>(left, 0, 60'000));
}

stun::endpoint socket_address::endpoint() const {
  if (storage.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&storage);
    std::array<std::uint8_t, 16> ip{};
    std::memcpy(ip.data(), &a->sin6_addr, 16);
    return stun::unmap_v4(stun::endpoint::v6(ip, ntohs(a->sin6_port)));
  }
  const auto* a = reinterpret_cast<const sockaddr_in*>(&storage);
  return stun::endpoint::v4(ntohl(a->sin_addr.s_addr), ntohs(a->sin_port));
}

connection::~connection() { close(); }

void connection::close() {
  // A TLS session ends with close_notify (one non-blocking attempt: the
  // probe never waits for the server's answer).
  if (ssl_ != nullptr && SSL_is_init_finished(ssl_) == 1) {
    SSL_shutdown(ssl_);
    ERR_clear_error();
  }
  if (ssl_ != nullptr) SSL_free(ssl_);
  if (ctx_ != nullptr) SSL_CTX_free(ctx_);
  ssl_ = nullptr;
  ctx_ = nullptr;
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool connection::wait(short events, clock::time_point until, failure& f) const {
  for (;;) {
    pollfd p{fd_, events, 0};
    const int n = ::poll(&p, 1, poll_timeout(until));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(f, std::string("poll: ") + std::strerror(errno));
    if (n == 0) return fail(f, "timeout", true);
    return true;
  }
}

bool connection::open(const socket_address& server, bool stream, clock::time_point deadline,
                      failure& f) {
  close();
  stream_ = stream;
  fd_ = ::socket(server.storage.ss_family, (stream ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return fail(f, std::string("socket: ") + std::strerror(errno));
  if (stream) {
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  if (::connect(fd_, server.get(), server.length) == 0) return true;
  if (errno != EINPROGRESS) return fail(f, errno_text(errno));
  if (!wait(POLLOUT, deadline, f)) return false;
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) return fail(f, errno_text(err));
  return true;
}

bool connection::start_tls(const tls_settings& s, clock::time_point deadline, failure& f) {
  ctx_ = SSL_CTX_new(TLS_client_method());
  if (ctx_ == nullptr) return fail(f, "SSL_CTX_new: " + openssl_error());
  SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
  if (!s.insecure) {
    const bool loaded = s.ca_file.empty()
                            ? SSL_CTX_set_default_verify_paths(ctx_) == 1
                            : SSL_CTX_load_verify_locations(ctx_, s.ca_file.c_str(), nullptr) == 1;
    if (!loaded) return fail(f, "cannot load CA certificates " + s.ca_file + ": " + openssl_error());
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
  }
  ssl_ = SSL_new(ctx_);
  if (ssl_ == nullptr) return fail(f, "SSL_new: " + openssl_error());
  SSL_set_fd(ssl_, fd_);
  const bool ip = is_ip_literal(s.host);
  if (!ip) SSL_set_tlsext_host_name(ssl_, s.host.c_str());
  if (!s.insecure) {
    if (ip) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), s.host.c_str());
    } else {
      SSL_set1_host(ssl_, s.host.c_str());
    }
  }
  for (;;) {
    ERR_clear_error();
    const int rc = SSL_connect(ssl_);
    if (rc == 1) return true;
    const int e = SSL_get_error(ssl_, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
      if (!wait(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline, f)) return false;
      continue;
    }
    const long verify = SSL_get_verify_result(ssl_);
    if (verify != X509_V_OK) {
      ERR_clear_error();
      return fail(f, std::string("certificate verify failed (") +
                         X509_verify_cert_error_string(verify) + ")");
    }
    std::string why = openssl_error();
    if (why.empty() && e == SSL_ERROR_SYSCALL) why = errno != 0 ? errno_text(errno) : "connection closed";
    if (why.empty()) why = "error " + std::to_string(e);
    return fail(f, "handshake failed: " + why);
  }
}

bool connection::send(stun::bytes_view data, clock::time_point deadline, failure& f) {
  std::size_t done = 0;
  while (done < data.size()) {
    const auto* p = data.data() + done;
    const std::size_t left = data.size() - done;
    if (ssl_ != nullptr) {
      ERR_clear_error();
      const int rc = SSL_write(ssl_, p, static_cast<int>(left));
      if (rc > 0) {
        done += static_cast<std::size_t>(rc);
        continue;
      }
      const int e = SSL_get_error(ssl_, rc);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        if (!wait(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline, f)) return false;
        continue;
      }
      const std::string why = openssl_error();
      return fail(f, "TLS write failed" + (why.empty() ? std::string() : ": " + why));
    }
    const ssize_t n = ::send(fd_, p, left, MSG_NOSIGNAL);
    if (n >= 0) {
      done += static_cast<std::size_t>(n);
      if (!stream_) return true;  // a datagram goes whole or not at all
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (!wait(POLLOUT, deadline, f)) return false;
      continue;
    }
    // UDP: an ICMP error from an earlier datagram; the request is retried.
    if (!stream_ && errno == ECONNREFUSED) return true;
    return fail(f, errno_text(errno));
  }
  return true;
}

bool connection::fill(clock::time_point until, failure& f) {
  std::byte buf[16384];
  for (;;) {
    if (ssl_ != nullptr) {
      ERR_clear_error();
      const int rc = SSL_read(ssl_, buf, sizeof buf);
      if (rc > 0) {
        in_.insert(in_.end(), buf, buf + rc);
        return true;
      }
      const int e = SSL_get_error(ssl_, rc);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        if (!wait(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, until, f)) return false;
        continue;
      }
      if (e == SSL_ERROR_ZERO_RETURN) return fail(f, "the server closed the connection");
      const std::string why = openssl_error();
      if (why == "unexpected eof while reading") {
        return fail(f, "the server closed the connection (without close_notify)");
      }
      return fail(f, "TLS read failed" + (why.empty() ? std::string(": connection closed") : ": " + why));
    }
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n > 0) {
      in_.insert(in_.end(), buf, buf + n);
      return true;
    }
    if (n == 0) return fail(f, "the server closed the connection");
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (!wait(POLLIN, until, f)) return false;
      continue;
    }
    return fail(f, errno_text(errno));
  }
}

bool connection::receive(frame& out, clock::time_point until, failure& f) {
  if (!stream_) {
    for (;;) {
      out.resize(max_frame);
      const ssize_t n = ::recv(fd_, out.data(), out.size(), 0);
      if (n >= 0) {
        out.resize(static_cast<std::size_t>(n));
        return true;
      }
      if (errno == EINTR) continue;
      // ECONNREFUSED: ICMP port unreachable from an earlier send; keep
      // waiting, the deadline decides (a silent or closed UDP port).
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNREFUSED) {
        return fail(f, errno_text(errno));
      }
      if (errno == ECONNREFUSED) continue;
      if (!wait(POLLIN, until, f)) return false;
    }
  }
  for (;;) {
    if (!in_.empty()) {
      const auto len = stun::stream_frame_length(in_, max_frame);
      if (len) {
        if (*len <= in_.size()) {
          out.assign(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(*len));
          in_.erase(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(*len));
          return true;
        }
      } else if (len.error != stun::codec_error::need_more) {
        return fail(f, "the server sent something that is neither STUN nor ChannelData");
      }
    }
    if (!fill(until, f)) return false;
  }
}

}  // namespace anyturn::probe::detail
