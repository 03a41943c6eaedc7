// 5,000 TCP connections that never send a byte, from 100 loopback addresses
// (127.0.1.1-100, 50 each, so the per-address limit is not what stops
// them), plus 300 from one address (past streams.max_connections_per_ip).
// The server keeps serving turnutils_uclient over TCP with zero loss and a
// fresh client at once, resets what is over the per-address limit
// (anyturn_connections_total{result="refused_per_ip_limit"}), and closes
// every idle connection after streams.first_message_timeout_s
// (anyturn_connections_closed_total{reason="first_message_timeout"}, or
// "unauth_memory" when the budget for unauthenticated connections runs out
// first).
#include "hostile.hpp"
#include "stream_client.hpp"

#include <gtest/gtest.h>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <thread>

namespace anyturn::itest::hostile {
namespace {

constexpr int addresses = 100;
constexpr int per_address = 50;
constexpr int one_address = 300;
constexpr int per_ip_limit = 256;
constexpr int first_message_timeout_s = 3;

// Non-blocking connects from `from` to `to`, appended to `fds`; false when a socket cannot be made.
bool start_connect(const stun::endpoint& from, const stun::endpoint& to, std::vector<int>& fds) {
  const int fd = bound_socket(SOCK_STREAM, from, true);
  if (fd < 0) return false;
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(to.v4_host_order());
  sin.sin_port = htons(to.port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0 && errno != EINPROGRESS) {
    ::close(fd);
    return false;
  }
  fds.push_back(fd);
  return true;
}

// Polls every socket until the server has closed or reset it, or `deadline`
// passes; returns how many were closed.
std::size_t wait_all_closed(const std::vector<int>& fds, clock::time_point deadline) {
  std::vector<pollfd> open;
  for (const int fd : fds) open.push_back({fd, POLLIN, 0});
  std::size_t closed = 0;
  char buf[512];
  while (!open.empty() && clock::now() < deadline) {
    if (::poll(open.data(), open.size(), 100) <= 0) continue;
    std::vector<pollfd> still;
    for (const auto& p : open) {
      if (p.revents == 0) {
        still.push_back({p.fd, POLLIN, 0});
        continue;
      }
      const ssize_t n = ::recv(p.fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        ++closed;
      } else {
        still.push_back({p.fd, POLLIN, 0});
      }
    }
    open.swap(still);
  }
  return closed;
}

TEST(hostile_stream, five_thousand_idle_connections_are_closed_and_others_are_served) {
  ASSERT_GE(raise_fd_limit(), 6000u);
  server_options so;
  so.config_yaml = "streams:\n  idle_timeout: 60\n  max_connections_per_ip: " + std::to_string(per_ip_limit) +
                   "\n  first_message_timeout_s: " + std::to_string(first_message_timeout_s) + "\n";
  server s(so);
  ASSERT_TRUE(s.start()) << s.d().log();

  const std::string before = s.scrape();
  auto read_counts = [](const std::string& text, double out[6]) {
    out[0] = server::metric(text, R"(anyturn_connections_total{result="accepted"})");
    out[1] = server::metric(text, R"(anyturn_connections_total{result="refused_per_ip_limit"})");
    out[2] = server::metric(text, R"(anyturn_connections_total{result="refused_total_limit"})");
    out[3] = server::metric(text, R"(anyturn_connections_closed_total{reason="first_message_timeout"})");
    out[4] = server::metric(text, R"(anyturn_connections_closed_total{reason="unauth_memory"})");
    out[5] = server::metric(text, R"(anyturn_connections_closed_total{reason="idle_timeout"})");
  };
  double c0[6];
  read_counts(before, c0);

  std::vector<int> idle;
  const auto begin = clock::now();
  for (int a = 0; a < addresses; ++a) {
    for (int k = 0; k < per_address; ++k) {
      ASSERT_TRUE(start_connect(loopback(0, 1, static_cast<std::uint8_t>(1 + a)), s.udp(), idle))
          << std::strerror(errno);
    }
  }
  for (int k = 0; k < one_address; ++k) {
    ASSERT_TRUE(start_connect(loopback(0, 3, 1), s.udp(), idle)) << std::strerror(errno);
  }
  const auto opened_ms = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - begin);

  // The well-behaved client and a fresh one are served while they hang.
  uclient_options uo = well_behaved(s, via::tcp);
  uclient good(uo);
  ASSERT_TRUE(good.start()) << good.why();
  {
    stream_client fresh(s.udp(), {});
    ASSERT_TRUE(fresh.connect()) << fresh.last_error();
    fresh.set_credentials(user());
    const auto t0 = clock::now();
    auto r = fresh.allocate();
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - t0);
    EXPECT_TRUE(r && r->is_success()) << describe(r);
    EXPECT_LT(took, std::chrono::milliseconds{1000});
  }

  // Every one of them is closed within the timeout and some slack.
  const std::size_t closed =
      wait_all_closed(idle, begin + std::chrono::seconds{first_message_timeout_s + 7});
  const auto closed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - begin);
  const std::size_t total = idle.size();
  close_all(idle);

  const uclient_result r = good.finish();
  EXPECT_TRUE(r.zero_loss(good.expected_messages())) << r.summary() << "\n" << r.output;

  double c[6];
  read_counts(s.scrape(), c);
  for (int i = 0; i < 6; ++i) c[i] -= c0[i];
  std::printf("[ hostile idle ] %zu connections opened in %lld ms, %zu closed by the server after %lld ms; "
              "accepted +%.0f, refused per-ip +%.0f, refused total +%.0f; closed first_message_timeout +%.0f, "
              "unauth_memory +%.0f, idle_timeout +%.0f; daemon VmRSS %llu KiB; %s\n",
              total, static_cast<long long>(opened_ms.count()), closed, static_cast<long long>(closed_ms.count()),
              c[0], c[1], c[2], c[3], c[4], c[5], static_cast<unsigned long long>(rss_kib_of(s.pid())),
              r.summary().c_str());
  EXPECT_EQ(closed, total) << "connections the server left open";
  EXPECT_GE(c[1], static_cast<double>(one_address - per_ip_limit));
  EXPECT_GT(c[3] + c[4], 0.0);
  // Each hostile connection was refused or closed by the server, and counted.
  EXPECT_GE(c[1] + c[2] + c[3] + c[4] + c[5], static_cast<double>(total));
  s.stop();
}

}  // namespace
}  // namespace anyturn::itest::hostile
