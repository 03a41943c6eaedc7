#include <anyturn/app/sd_notify.hpp>

#include <fmt/format.h>

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace anyturn::app {

std::optional<notify_address> parse_notify_socket(std::string_view value, std::string& error) {
  notify_address out;
  out.addr.sun_family = AF_UNIX;
  if (value.empty()) {
    error = "NOTIFY_SOCKET is empty";
    return std::nullopt;
  }
  const bool abstract = value.front() == '@';
  if (!abstract && value.front() != '/') {
    error = fmt::format("NOTIFY_SOCKET '{}' is neither an absolute path nor an abstract name (@...)", value);
    return std::nullopt;
  }
  if (abstract && value.size() < 2) {
    error = "NOTIFY_SOCKET '@' names no abstract socket";
    return std::nullopt;
  }
  // A path needs room for its terminating NUL; an abstract name has none.
  const std::size_t room = sizeof(out.addr.sun_path) - (abstract ? 0 : 1);
  if (value.size() > room) {
    error = fmt::format("NOTIFY_SOCKET is {} bytes, longer than a socket address holds ({})",
                        value.size(), room);
    return std::nullopt;
  }
  std::memcpy(out.addr.sun_path, value.data(), value.size());
  if (abstract) out.addr.sun_path[0] = '\0';
  out.length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + value.size() + (abstract ? 0 : 1));
  return out;
}

namespace {

template <typename T>
std::optional<T> parse_number(const char* text) {
  if (text == nullptr) return std::nullopt;
  const std::string_view s(text);
  T value{};
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return value;
}

}  // namespace

std::chrono::microseconds watchdog_interval(const char* usec, const char* pid, pid_t self) {
  const auto interval = parse_number<std::uint64_t>(usec);
  if (!interval || *interval == 0) return std::chrono::microseconds{0};
  if (pid != nullptr) {
    const auto owner = parse_number<long long>(pid);
    if (!owner || *owner != static_cast<long long>(self)) return std::chrono::microseconds{0};
  }
  return std::chrono::microseconds{static_cast<std::int64_t>(*interval)};
}

std::string status_text(std::uint64_t allocations, bool draining) {
  return fmt::format("{} allocation{}{}", allocations, allocations == 1 ? "" : "s",
                     draining ? ", draining" : "");
}

std::string reloading_message(std::chrono::microseconds monotonic) {
  return fmt::format("RELOADING=1\nMONOTONIC_USEC={}", monotonic.count());
}

bool watchdog_check::on_tick(std::chrono::microseconds now, std::span<const std::uint64_t> heartbeats) {
  if (!enabled()) return false;
  if (!pinged_ || seen_.size() != heartbeats.size()) {
    // The baseline: the first ping goes out as soon as every worker ticked once more.
    seen_.assign(heartbeats.begin(), heartbeats.end());
    last_ping_ = now - interval_;
    pinged_ = true;
    return false;
  }
  if (now - last_ping_ < interval_ / 2) return false;
  for (std::size_t i = 0; i < heartbeats.size(); ++i) {
    if (heartbeats[i] == seen_[i]) {
      ++stalled_ticks_;
      return false;
    }
  }
  std::copy(heartbeats.begin(), heartbeats.end(), seen_.begin());
  last_ping_ = now;
  stalled_ticks_ = 0;
  return true;
}

sd_notifier sd_notifier::from_environment() {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  if (socket == nullptr) return {};
  std::string error;
  auto to = parse_notify_socket(socket, error);
  sd_notifier n(to, watchdog_interval(std::getenv("WATCHDOG_USEC"), std::getenv("WATCHDOG_PID"), ::getpid()));
  if (!to) n.problem_ = error;
  return n;
}

sd_notifier::sd_notifier(std::optional<notify_address> to, std::chrono::microseconds watchdog) {
  if (!to) return;
  to_ = *to;
  watchdog_ = watchdog;
  fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    problem_ = fmt::format("cannot open a datagram socket for NOTIFY_SOCKET: {}", std::strerror(errno));
    watchdog_ = std::chrono::microseconds{0};
  }
}

sd_notifier::~sd_notifier() {
  if (fd_ >= 0) ::close(fd_);
}

sd_notifier::sd_notifier(sd_notifier&& other) noexcept
    : fd_(other.fd_), to_(other.to_), watchdog_(other.watchdog_), problem_(std::move(other.problem_)) {
  other.fd_ = -1;
}

sd_notifier& sd_notifier::operator=(sd_notifier&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    to_ = other.to_;
    watchdog_ = other.watchdog_;
    problem_ = std::move(other.problem_);
    other.fd_ = -1;
  }
  return *this;
}

bool sd_notifier::send(std::string_view message) const {
  if (fd_ < 0) return false;
  const ssize_t n = ::sendto(fd_, message.data(), message.size(), MSG_NOSIGNAL,
                             reinterpret_cast<const sockaddr*>(&to_.addr), to_.length);
  return n == static_cast<ssize_t>(message.size());
}

bool sd_notifier::ready(std::string_view status) const {
  return send(fmt::format("READY=1\nSTATUS={}", status));
}

bool sd_notifier::reloading() const {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return send(reloading_message(std::chrono::seconds{ts.tv_sec} +
                                std::chrono::microseconds{ts.tv_nsec / 1000}));
}

bool sd_notifier::stopping() const { return send("STOPPING=1"); }

bool sd_notifier::status(std::string_view status) const { return send(fmt::format("STATUS={}", status)); }

bool sd_notifier::watchdog_ping() const { return send("WATCHDOG=1"); }

}  // namespace anyturn::app
