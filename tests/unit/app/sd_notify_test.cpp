// The sd_notify protocol: NOTIFY_SOCKET parsing (paths and abstract names),
// the watchdog interval and its PID check, the watchdog's liveness rule, and
// datagrams received on real Unix sockets.
#include <anyturn/app/sd_notify.hpp>

#include "temp_dir.hpp"

#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

namespace anyturn::app {
namespace {

using std::chrono::microseconds;

// A datagram socket bound to `address`, reading with a 1 s timeout.
class listener {
 public:
  explicit listener(const notify_address& address) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    timeval tv{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    bound_ = ::bind(fd_, reinterpret_cast<const sockaddr*>(&address.addr), address.length) == 0;
  }
  ~listener() { ::close(fd_); }
  [[nodiscard]] bool bound() const { return bound_; }
  std::optional<std::string> receive() {
    std::array<char, 4096> buf{};
    const ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
    if (n < 0) return std::nullopt;
    return std::string(buf.data(), static_cast<std::size_t>(n));
  }

 private:
  int fd_ = -1;
  bool bound_ = false;
};

TEST(sd_notify, a_path_is_a_nul_terminated_socket_address) {
  std::string error;
  auto a = parse_notify_socket("/run/systemd/notify", error);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ(a->addr.sun_family, AF_UNIX);
  EXPECT_STREQ(a->addr.sun_path, "/run/systemd/notify");
  EXPECT_EQ(a->length, offsetof(sockaddr_un, sun_path) + 20);
}

TEST(sd_notify, an_at_sign_names_an_abstract_socket_without_a_trailing_nul) {
  std::string error;
  auto a = parse_notify_socket("@anyturn/notify", error);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ(a->addr.sun_path[0], '\0');
  EXPECT_EQ(std::string(a->addr.sun_path + 1, 14), "anyturn/notify");
  EXPECT_EQ(a->length, offsetof(sockaddr_un, sun_path) + 15);
}

TEST(sd_notify, unusable_values_are_refused_with_a_reason) {
  std::string error;
  EXPECT_FALSE(parse_notify_socket("", error));
  EXPECT_NE(error.find("empty"), std::string::npos);
  EXPECT_FALSE(parse_notify_socket("run/notify", error));
  EXPECT_NE(error.find("absolute"), std::string::npos) << error;
  EXPECT_FALSE(parse_notify_socket("@", error));
  EXPECT_FALSE(parse_notify_socket("/" + std::string(200, 'x'), error));
  EXPECT_NE(error.find("longer"), std::string::npos) << error;
  EXPECT_TRUE(parse_notify_socket("/" + std::string(106, 'x'), error)) << "107 bytes and a NUL fit in 108";
  EXPECT_FALSE(parse_notify_socket("/" + std::string(107, 'x'), error));
  EXPECT_TRUE(parse_notify_socket("@" + std::string(107, 'x'), error)) << "an abstract name has no NUL";
}

TEST(sd_notify, watchdog_interval_is_for_this_process_only) {
  EXPECT_EQ(watchdog_interval(nullptr, nullptr, 42), microseconds{0});
  EXPECT_EQ(watchdog_interval("30000000", nullptr, 42), microseconds{30'000'000});
  EXPECT_EQ(watchdog_interval("30000000", "42", 42), microseconds{30'000'000});
  EXPECT_EQ(watchdog_interval("30000000", "43", 42), microseconds{0}) << "meant for another process";
  EXPECT_EQ(watchdog_interval("0", nullptr, 42), microseconds{0});
  EXPECT_EQ(watchdog_interval("30s", nullptr, 42), microseconds{0});
  EXPECT_EQ(watchdog_interval("", nullptr, 42), microseconds{0});
  EXPECT_EQ(watchdog_interval("1000", "x", 42), microseconds{0});
}

TEST(sd_notify, status_and_reloading_texts) {
  EXPECT_EQ(status_text(0, false), "0 allocations");
  EXPECT_EQ(status_text(1, false), "1 allocation");
  EXPECT_EQ(status_text(12, true), "12 allocations, draining");
  EXPECT_EQ(reloading_message(microseconds{123456789}), "RELOADING=1\nMONOTONIC_USEC=123456789");
}

TEST(sd_notify, watchdog_pings_at_half_the_interval_only_while_every_worker_ticks) {
  watchdog_check w(microseconds{1'000'000});
  ASSERT_TRUE(w.enabled());
  std::vector<std::uint64_t> beats = {5, 9};
  EXPECT_FALSE(w.on_tick(microseconds{0}, beats)) << "the first tick only takes the baseline";
  EXPECT_FALSE(w.on_tick(microseconds{250'000}, beats)) << "no worker ticked since";
  beats = {6, 10};
  EXPECT_TRUE(w.on_tick(microseconds{500'000}, beats));
  beats = {7, 11};
  EXPECT_FALSE(w.on_tick(microseconds{750'000}, beats)) << "half the interval has not passed";
  EXPECT_TRUE(w.on_tick(microseconds{1'000'000}, beats));
  beats = {8, 11};  // worker 1 is stuck
  EXPECT_FALSE(w.on_tick(microseconds{1'500'000}, beats));
  EXPECT_FALSE(w.on_tick(microseconds{1'750'000}, beats));
  EXPECT_EQ(w.stalled_ticks(), 2u);
  beats = {9, 12};
  EXPECT_TRUE(w.on_tick(microseconds{2'000'000}, beats)) << "pings resume when it ticks again";
  EXPECT_EQ(w.stalled_ticks(), 0u);
}

TEST(sd_notify, no_interval_no_pings) {
  watchdog_check w(microseconds{0});
  EXPECT_FALSE(w.enabled());
  std::vector<std::uint64_t> beats = {1};
  for (int i = 0; i < 10; ++i) {
    beats[0] += 1;
    EXPECT_FALSE(w.on_tick(microseconds{i * 1'000'000}, beats));
  }
}

TEST(sd_notify, datagrams_reach_a_filesystem_socket_in_order) {
  test::temp_dir dir;
  std::string error;
  const std::string path = (dir.path() / "notify").string();
  auto address = parse_notify_socket(path, error);
  ASSERT_TRUE(address) << error;
  listener l(*address);
  ASSERT_TRUE(l.bound());
  sd_notifier n(address, microseconds{2'000'000});
  ASSERT_TRUE(n.enabled());
  EXPECT_EQ(n.watchdog(), microseconds{2'000'000});
  EXPECT_TRUE(n.ready("0 allocations"));
  EXPECT_TRUE(n.reloading());
  EXPECT_TRUE(n.watchdog_ping());
  EXPECT_TRUE(n.status("3 allocations"));
  EXPECT_TRUE(n.stopping());
  EXPECT_EQ(l.receive(), "READY=1\nSTATUS=0 allocations");
  auto reloading = l.receive();
  ASSERT_TRUE(reloading);
  EXPECT_EQ(reloading->rfind("RELOADING=1\nMONOTONIC_USEC=", 0), 0u) << *reloading;
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  const long long usec = std::stoll(reloading->substr(reloading->find('=', 12) + 1));
  const long long now = static_cast<long long>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
  EXPECT_LE(usec, now);
  EXPECT_GT(usec, now - 5'000'000) << "CLOCK_MONOTONIC in microseconds";
  EXPECT_EQ(l.receive(), "WATCHDOG=1");
  EXPECT_EQ(l.receive(), "STATUS=3 allocations");
  EXPECT_EQ(l.receive(), "STOPPING=1");
}

TEST(sd_notify, datagrams_reach_an_abstract_socket) {
  const std::string name = "@anyturn-sd-notify-test-" + std::to_string(::getpid());
  std::string error;
  auto address = parse_notify_socket(name, error);
  ASSERT_TRUE(address) << error;
  listener l(*address);
  ASSERT_TRUE(l.bound());
  sd_notifier n(address, microseconds{0});
  EXPECT_TRUE(n.stopping());
  EXPECT_EQ(l.receive(), "STOPPING=1");
}

TEST(sd_notify, from_environment_reads_notify_socket_and_the_watchdog) {
  const std::string name = "@anyturn-sd-env-test-" + std::to_string(::getpid());
  ::setenv("NOTIFY_SOCKET", name.c_str(), 1);
  ::setenv("WATCHDOG_USEC", "4000000", 1);
  ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
  sd_notifier n = sd_notifier::from_environment();
  EXPECT_TRUE(n.enabled());
  EXPECT_TRUE(n.problem().empty()) << n.problem();
  EXPECT_EQ(n.watchdog(), microseconds{4'000'000});

  ::setenv("NOTIFY_SOCKET", "relative/path", 1);
  sd_notifier bad = sd_notifier::from_environment();
  EXPECT_FALSE(bad.enabled());
  EXPECT_NE(bad.problem().find("absolute"), std::string::npos) << bad.problem();
  EXPECT_FALSE(bad.send("READY=1"));

  ::unsetenv("NOTIFY_SOCKET");
  ::unsetenv("WATCHDOG_USEC");
  ::unsetenv("WATCHDOG_PID");
  sd_notifier none = sd_notifier::from_environment();
  EXPECT_FALSE(none.enabled());
  EXPECT_TRUE(none.problem().empty());
  EXPECT_FALSE(none.ready("x")) << "without systemd every call does nothing";
}

TEST(sd_notify, a_vanished_listener_makes_send_fail_without_throwing) {
  test::temp_dir dir;
  std::string error;
  auto address = parse_notify_socket((dir.path() / "gone").string(), error);
  ASSERT_TRUE(address) << error;
  sd_notifier n(address, microseconds{0});
  ASSERT_TRUE(n.enabled());
  EXPECT_FALSE(n.ready("0 allocations"));
}

}  // namespace
}  // namespace anyturn::app
