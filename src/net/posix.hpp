// anyturn::net (internal) — small POSIX helpers the worker's files share:
// descriptors, errno, socket options and the clocks the loop reads.
#pragma once

#include <anyturn/relay/io.hpp>
#include <anyturn/stun/endpoint.hpp>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <system_error>
#include <utility>

#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

namespace anyturn::net::detail {

inline std::int64_t mono_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

inline relay::now_t read_clock() {
  using namespace std::chrono;
  const std::int64_t wall_ms = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  return {duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count(), wall_ms / 1000, wall_ms};
}

inline std::error_code last_error() { return {errno, std::system_category()}; }

inline bool would_block(int err) { return err == EAGAIN || err == EWOULDBLOCK; }

inline int set_int_option(int fd, int level, int name, int value) {
  return ::setsockopt(fd, level, name, &value, sizeof value);
}

inline int domain_of(const stun::endpoint& ep) { return ep.is_v4() ? AF_INET : AF_INET6; }

// Owns a raw descriptor until it is handed to Asio.
struct fd_guard {
  int fd = -1;
  ~fd_guard() {
    if (fd >= 0) ::close(fd);
  }
  int release() { return std::exchange(fd, -1); }
};

// A descriptor the worker owns outright (UDP sockets: not registered with Asio).
class unique_fd {
 public:
  unique_fd() = default;
  explicit unique_fd(int fd) : fd_(fd) {}
  unique_fd(unique_fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd() { reset(); }
  [[nodiscard]] int get() const { return fd_; }
  [[nodiscard]] bool is_open() const { return fd_ >= 0; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

}  // namespace anyturn::net::detail
