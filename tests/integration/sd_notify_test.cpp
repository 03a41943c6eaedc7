// systemd's notification protocol against the real daemon (docs/packaging.md,
// "systemd"): the test binds its own datagram socket, passes it as
// NOTIFY_SOCKET (and WATCHDOG_USEC) and reads what the daemon says, in order:
// READY=1 once the listeners and the side server answer, STATUS= with the
// allocation count, WATCHDOG=1 pings, RELOADING=1 then READY=1 around SIGHUP,
// STOPPING=1 on SIGUSR1 (drain) and on SIGTERM.
#include "daemon.hpp"
#include "temp_dir.hpp"
#include "turn_client.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace anyturn::itest {
namespace {

using clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// The systemd side: a datagram socket at a path in a temporary directory.
class notify_socket {
 public:
  notify_socket() : path_((dir_.path() / "notify").string()) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path_.c_str(), sizeof(a.sun_path) - 1);
    bound_ = ::bind(fd_, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0;
  }
  ~notify_socket() { ::close(fd_); }
  [[nodiscard]] bool bound() const { return bound_; }
  [[nodiscard]] const std::string& path() const { return path_; }

  // The next datagram within `timeout`, or nullopt.
  std::optional<std::string> next(std::chrono::milliseconds timeout) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::array<char, 4096> buf{};
    const ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
    if (n < 0) return std::nullopt;
    std::string m(buf.data(), static_cast<std::size_t>(n));
    seen_.push_back(m);
    return m;
  }

  // Reads until a datagram that starts with `prefix` (skipping others,
  // e.g. watchdog pings and STATUS updates) or `limit` passes.
  std::optional<std::string> until(std::string_view prefix, std::chrono::milliseconds limit) {
    const auto deadline = clock::now() + limit;
    while (clock::now() < deadline) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
      auto m = next(std::max(left, 1ms));
      if (m && m->rfind(prefix, 0) == 0) return m;
    }
    return std::nullopt;
  }

  [[nodiscard]] std::string history() const {
    std::string out;
    for (const auto& m : seen_) out += "  [" + m + "]\n";
    return out;
  }

 private:
  test::temp_dir dir_{"anyturn-notify"};
  std::string path_;
  int fd_ = -1;
  bool bound_ = false;
  std::vector<std::string> seen_;
};

class SdNotify : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(systemd_.bound()) << "cannot bind the notify socket " << systemd_.path();
    // The daemon inherits this process's environment (tests run one per process).
    ::setenv("NOTIFY_SOCKET", systemd_.path().c_str(), 1);
    ::setenv("WATCHDOG_USEC", "1000000", 1);
  }
  void TearDown() override {
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    if (daemon_ && daemon_->running()) daemon_->stop();
    if (HasFailure()) {
      std::cerr << "notifications:\n" << systemd_.history();
      if (daemon_) std::cerr << daemon_->log() << '\n';
    }
  }

  [[nodiscard]] ::testing::AssertionResult start(unsigned slot) {
    const port_range ports = relay_ports_for_slot(slot);
    daemon_ = std::make_unique<daemon>(daemon::options{
        false,
        {"--relay-ip", "127.0.0.1", "--relay-ports", ports.flag(), "--realm", "anyturn.test", "--user",
         "alice:wonderland-secret", "--threads", "2", "--allow-peer", "127.0.0.1/32"}});
    if (!daemon_->start()) return ::testing::AssertionFailure() << "daemon did not start\n" << daemon_->log();
    return ::testing::AssertionSuccess();
  }

  notify_socket systemd_;
  std::unique_ptr<daemon> daemon_;
};

TEST_F(SdNotify, ReadyFirstThenStatusWatchdogReloadAndStop) {
  ASSERT_TRUE(start(250));

  // READY=1 is the first thing the daemon says, and when it came the UDP
  // listener answered a Binding (daemon::start) and the side server answers.
  auto ready = systemd_.next(5s);
  ASSERT_TRUE(ready) << "no notification within 5 s of the first Binding answer";
  EXPECT_EQ(*ready, "READY=1\nSTATUS=0 allocations");
  auto health = http_request(daemon_->http_port(), "GET", "/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);

  // Watchdog: WATCHDOG_USEC=1 s, so a ping every 0.5 s while the workers
  // tick. Five pings; the median gap must be under the 1 s systemd would
  // wait (one late gap on a loaded machine is not what this checks).
  ASSERT_TRUE(systemd_.until("WATCHDOG=1", 3s)) << "no watchdog ping";
  std::vector<std::chrono::milliseconds> gaps;
  auto last = clock::now();
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(systemd_.until("WATCHDOG=1", 3s)) << "watchdog ping " << i + 2 << " missing";
    const auto now = clock::now();
    gaps.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(now - last));
    last = now;
  }
  std::sort(gaps.begin(), gaps.end());
  std::cout << "[ sd_notify ] watchdog gaps (ms, sorted):";
  for (const auto g : gaps) std::cout << ' ' << g.count();
  std::cout << '\n';
  EXPECT_LT(gaps[gaps.size() / 2], 1000ms) << "pings at half of WATCHDOG_USEC";

  // STATUS= follows the allocation count.
  turn_client c(daemon_->address());
  c.set_credentials({"alice", "wonderland-secret"});
  auto allocated = c.allocate();
  ASSERT_TRUE(allocated && allocated->is_success()) << describe(allocated);
  EXPECT_TRUE(systemd_.until("STATUS=1 allocation", 5s)) << "STATUS did not count the allocation";

  // SIGHUP: RELOADING=1 (with MONOTONIC_USEC), then READY=1.
  ASSERT_TRUE(daemon_->signal(SIGHUP));
  auto reloading = systemd_.until("RELOADING=1", 5s);
  ASSERT_TRUE(reloading) << "no RELOADING=1 after SIGHUP";
  EXPECT_NE(reloading->find("\nMONOTONIC_USEC="), std::string::npos) << *reloading;
  auto reloaded = systemd_.until("READY=1", 5s);
  ASSERT_TRUE(reloaded) << "no READY=1 after the reload";
  EXPECT_EQ(*reloaded, "READY=1\nSTATUS=1 allocation");

  // SIGTERM: STOPPING=1, then a clean exit.
  ASSERT_TRUE(daemon_->signal(SIGTERM));
  EXPECT_TRUE(systemd_.until("STOPPING=1", 5s)) << "no STOPPING=1 after SIGTERM";
  // That one SIGTERM ends the process (no second one from stop()).
  EXPECT_EQ(daemon_->wait_exit(10s), std::optional<int>(0));
}

TEST_F(SdNotify, DrainSaysStoppingAndDraining) {
  ASSERT_TRUE(start(251));
  ASSERT_EQ(systemd_.next(5s).value_or(""), "READY=1\nSTATUS=0 allocations");
  turn_client c(daemon_->address());
  c.set_credentials({"alice", "wonderland-secret"});
  auto allocated = c.allocate();
  ASSERT_TRUE(allocated && allocated->is_success()) << describe(allocated);

  ASSERT_TRUE(daemon_->signal(SIGUSR1));
  EXPECT_TRUE(systemd_.until("STOPPING=1", 5s)) << "no STOPPING=1 when the drain started";
  EXPECT_TRUE(systemd_.until("STATUS=1 allocation, draining", 5s));
  // The last allocation ends: the process exits 0 by itself.
  auto gone = c.refresh(0);
  ASSERT_TRUE(gone && gone->is_success()) << describe(gone);
  EXPECT_EQ(daemon_->wait_exit(5s), std::optional<int>(0))
      << "the drain did not end with the last allocation";
}

TEST_F(SdNotify, WatchdogIsForTheNamedProcessOnly) {
  // WATCHDOG_PID names another process: no pings, but READY=1 still.
  ::setenv("WATCHDOG_PID", "1", 1);
  ASSERT_TRUE(start(252));
  ::unsetenv("WATCHDOG_PID");
  ASSERT_EQ(systemd_.next(5s).value_or(""), "READY=1\nSTATUS=0 allocations");
  EXPECT_FALSE(systemd_.until("WATCHDOG=1", 1500ms)) << "pinged for a watchdog meant for PID 1";
}

}  // namespace
}  // namespace anyturn::itest
