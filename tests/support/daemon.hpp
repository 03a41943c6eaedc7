// Starts the real anyturn binary for one test and stops it again.
//
// The daemon listens on a free loopback UDP port picked at start-up. Its
// stdout and stderr go to a temporary log file, shown when a test fails.
// stop() sends SIGTERM to exactly the daemon's PID and reports its exit
// status, so every test also checks that the server shuts down cleanly.
#pragma once

#include <anyturn/stun/endpoint.hpp>

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace anyturn::itest {

// A relay port range [low, high] of `width` ports outside the kernel's
// ephemeral range, at offset (slot * width) mod 5000 of a 10000-port window
// (the window's second half belongs to tests/interop). Tests that may run in
// parallel use slots whose ranges do not overlap.
struct port_range {
  std::uint16_t low = 0;
  std::uint16_t high = 0;
  [[nodiscard]] std::string flag() const;  // "LOW-HIGH"
  [[nodiscard]] bool contains(std::uint16_t p) const { return p >= low && p <= high; }
};
port_range relay_ports_for_slot(unsigned slot, unsigned width = 20);

// A loopback port free for both UDP and TCP at the time of the call.
std::uint16_t free_port(bool ipv6);

// True when a UDP socket can be bound to [::1].
bool ipv6_loopback_usable();

// One HTTP/1.1 exchange with 127.0.0.1:port (Connection: close), blocking,
// bounded by `timeout`. nullopt when nothing parsable came back.
struct http_response {
  int status = 0;
  std::string headers;  // raw header block, lower-cased names
  std::string body;
};
std::optional<http_response> http_request(std::uint16_t port, std::string_view method,
                                          std::string_view target,
                                          const std::vector<std::string>& headers = {},
                                          std::string_view body = {},
                                          std::chrono::milliseconds timeout = std::chrono::seconds{3});

// The value of one sample in Prometheus text output: `series` is the exact
// series as rendered, e.g. anyturn_relayed_bytes_total{direction="to_peer"}.
std::optional<double> metric_value(std::string_view exposition, std::string_view series);
// Sum of every sample of a family whose labels contain all of `matchers`
// (each like tenant="acme"); nullopt when no sample matched.
std::optional<double> metric_sum(std::string_view exposition, std::string_view family,
                                 const std::vector<std::string>& matchers = {});

class daemon {
 public:
  struct options {
    bool ipv6 = false;               // listen on [::1] instead of 127.0.0.1
    std::vector<std::string> args;   // extra flags: --relay-ip, --user, ...
    // The side HTTP server listens on a free loopback port (--http-listen),
    // never the shared default 127.0.0.1:9641; args may override it.
    bool http = true;
  };
  explicit daemon(options o);
  ~daemon();  // kills the daemon if stop() was not called
  daemon(const daemon&) = delete;
  daemon& operator=(const daemon&) = delete;

  // Forks and execs the binary, then waits until it answers a Binding
  // request. Returns false (with log() explaining) when it does not. After
  // stop() it starts a new process on new ports with the same state directory.
  bool start(std::chrono::milliseconds ready_timeout = std::chrono::seconds{10});

  [[nodiscard]] const stun::endpoint& address() const { return address_; }
  // The side HTTP server's port (0 when options.http is off).
  [[nodiscard]] std::uint16_t http_port() const { return http_port_; }
  // Sends `sig` to exactly the daemon's PID; false if it is not running.
  bool signal(int sig);
  [[nodiscard]] pid_t pid() const { return pid_; }
  // The daemon's $XDG_STATE_HOME (its state directory is <this>/anyturn);
  // kept across stop() and start(), removed with the object.
  [[nodiscard]] const std::string& state_home() const { return state_home_; }
  [[nodiscard]] bool running();
  [[nodiscard]] std::string log() const;
  [[nodiscard]] std::string command_line() const;

  // SIGTERM, then waits up to `grace`. Returns the exit code (0 is a clean
  // stop), 128+signal when killed by a signal, or -1 if it had to be
  // SIGKILLed after the grace period.
  int stop(std::chrono::milliseconds grace = std::chrono::seconds{5});
  // After a signal that stops the daemon by itself (SIGTERM, a drain):
  // waits up to `limit` for it to exit, without signalling again (a second
  // SIGTERM during its shutdown kills it the default way, as designed).
  // The exit code as stop() gives it, or nullopt while it still runs.
  std::optional<int> wait_exit(std::chrono::milliseconds limit);

 private:
  std::optional<int> reap(bool block);
  bool launch(std::chrono::milliseconds ready_timeout);  // one attempt of start()

  options options_;
  stun::endpoint address_;
  std::uint16_t http_port_ = 0;
  std::vector<std::string> argv_;
  std::string log_path_;
  // The daemon's state directory ($XDG_STATE_HOME/anyturn): a temporary one
  // per daemon, so a generated REST secret or certificate never lands in the
  // home of whoever runs the tests, and never leaks between tests.
  std::string state_home_;
  pid_t pid_ = -1;
  std::optional<int> exit_status_;
};

}  // namespace anyturn::itest
