// anyturn::app — the systemd notification protocol (sd_notify), spoken
// directly over the NOTIFY_SOCKET datagram socket (no libsystemd).
//
// systemd (Type=notify) passes NOTIFY_SOCKET: a filesystem path, or an
// abstract socket name written with a leading '@'. Each notification is one
// datagram of newline-separated KEY=VALUE lines: READY=1 once every
// listener and the side HTTP server are bound, RELOADING=1 with
// MONOTONIC_USEC=<CLOCK_MONOTONIC in us> before a reload and READY=1 after
// it, STOPPING=1 when a stop or a drain starts, STATUS=<text> for
// `systemctl status`, and WATCHDOG=1 at half the WATCHDOG_USEC interval
// while watchdog_check says the workers are alive.
//
// Without NOTIFY_SOCKET every call does nothing. A send that fails (systemd
// gone) is dropped: notifications never stop the server. send() may be
// called from any thread (one sendto per datagram on a socket opened once).
#pragma once

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace anyturn::app {

// Where notifications go: a sockaddr_un and its length (an abstract name
// counts its leading NUL and no trailing one).
struct notify_address {
  sockaddr_un addr{};
  socklen_t length = 0;
};

// NOTIFY_SOCKET's value -> address. "/run/systemd/notify" is a path,
// "@name" the abstract socket "\0name". nullopt (with `error`) for an empty
// value, a relative path or a name longer than sun_path.
std::optional<notify_address> parse_notify_socket(std::string_view value, std::string& error);

// The watchdog interval systemd asks for: WATCHDOG_USEC (microseconds, > 0),
// for this process only when WATCHDOG_PID is unset or names `self`. 0: no
// watchdog. `usec` and `pid` may be null (unset).
std::chrono::microseconds watchdog_interval(const char* usec, const char* pid, pid_t self);

// STATUS= text: "<n> allocation(s)" and ", draining" while draining.
std::string status_text(std::uint64_t allocations, bool draining);

// RELOADING=1 with the monotonic time systemd (>= 253) wants beside it.
std::string reloading_message(std::chrono::microseconds monotonic);

// Decides the watchdog pings (main thread, on its tick). A ping is due at
// half the interval after the previous one, and is sent only when every
// worker's heartbeat (a counter its thread bumps on each of its ticks)
// advanced since that ping: a worker whose loop is stuck stops the pings
// and systemd restarts the service after WatchdogSec.
class watchdog_check {
 public:
  explicit watchdog_check(std::chrono::microseconds interval) : interval_(interval) {}

  // True when WATCHDOG=1 should be sent now (and records the ping).
  bool on_tick(std::chrono::microseconds now, std::span<const std::uint64_t> heartbeats);
  [[nodiscard]] bool enabled() const { return interval_.count() > 0; }
  // Consecutive due ticks refused because a worker did not advance.
  [[nodiscard]] std::uint64_t stalled_ticks() const { return stalled_ticks_; }

 private:
  std::chrono::microseconds interval_;
  std::chrono::microseconds last_ping_{0};
  bool pinged_ = false;
  std::vector<std::uint64_t> seen_;  // heartbeats at the last ping
  std::uint64_t stalled_ticks_ = 0;
};

class sd_notifier {
 public:
  // NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID of this process.
  static sd_notifier from_environment();
  // No socket (every call does nothing).
  sd_notifier() = default;
  sd_notifier(std::optional<notify_address> to, std::chrono::microseconds watchdog);
  ~sd_notifier();
  sd_notifier(sd_notifier&& other) noexcept;
  sd_notifier& operator=(sd_notifier&& other) noexcept;
  sd_notifier(const sd_notifier&) = delete;
  sd_notifier& operator=(const sd_notifier&) = delete;

  [[nodiscard]] bool enabled() const { return fd_ >= 0; }
  [[nodiscard]] std::chrono::microseconds watchdog() const { return watchdog_; }
  // Why NOTIFY_SOCKET was not usable (empty when it was, or was unset).
  [[nodiscard]] const std::string& problem() const { return problem_; }

  // One datagram; false when it could not be sent (or there is no socket).
  bool send(std::string_view message) const;

  bool ready(std::string_view status) const;
  bool reloading() const;
  bool stopping() const;
  bool status(std::string_view status) const;
  bool watchdog_ping() const;

 private:
  int fd_ = -1;
  notify_address to_{};
  std::chrono::microseconds watchdog_{0};
  std::string problem_;
};

}  // namespace anyturn::app
