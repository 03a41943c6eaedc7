// A spoofed-source flood of unauthenticated Allocates: 1,000 source
// addresses in 127.1.0.0/16, each sending 20 requests within about half a
// second. Past limits.unauthenticated_per_source (rate 5/s, burst 10) the
// server drops silently and counts anyturn_dropped_packets_total
// {reason="unauth_rate"}; turnutils_uclient from 127.0.0.1 keeps zero loss.
#include "hostile.hpp"

#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <thread>

namespace anyturn::itest::hostile {
namespace {

constexpr int sources = 1000;
constexpr int per_source = 20;
constexpr int rate = 5;
constexpr int burst = 10;

stun::endpoint source(int i) {
  return loopback(1, static_cast<std::uint8_t>(i / 250), static_cast<std::uint8_t>(1 + i % 250));
}

TEST(hostile_unauthenticated, a_spoofed_source_flood_of_allocates_is_rate_limited) {
  raise_fd_limit();
  server_options so;
  so.config_yaml = "limits:\n  unauthenticated_per_source:\n    rate: " + std::to_string(rate) +
                   "\n    burst: " + std::to_string(burst) + "\n";
  server s(so);
  ASSERT_TRUE(s.start()) << s.d().log();

  std::vector<int> fds;
  for (int i = 0; i < sources; ++i) {
    const int fd = bound_socket(SOCK_DGRAM, source(i), true);
    ASSERT_GE(fd, 0) << "bind " << source(i).to_string() << ": " << std::strerror(errno);
    fds.push_back(fd);
  }
  const sockaddr_in to = [&] {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(s.udp().v4_host_order());
    sin.sin_port = htons(s.udp().port);
    return sin;
  }();
  turn_client builder(s.udp(), loopback(0, 7, 2));

  const std::string before = s.scrape();
  const double dropped0 = server::metric(before, R"(anyturn_dropped_packets_total{reason="unauth_rate"})");
  const double challenges0 = server::metric(before, "anyturn_auth_challenges_total");

  uclient_options uo = well_behaved(s);
  uo.messages = 100;
  uclient good(uo);
  ASSERT_TRUE(good.start()) << good.why();

  // Rounds of one request from every source, 20 ms apart: 50 requests a
  // second per source, far over the rate; bounded to 20 rounds and 10 s.
  std::size_t sent = 0, sent_bytes = 0;
  const auto begin = clock::now();
  for (int round = 0; round < per_source && clock::now() < begin + std::chrono::seconds{10}; ++round) {
    for (const int fd : fds) {
      const bytes req = builder.build_request(stun::method::allocate, turn_client::random_tid(),
                                              [](stun::message_builder& b) { b.add_requested_transport(17); },
                                              false);
      if (::sendto(fd, req.data(), req.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to) > 0) {
        ++sent;
        sent_bytes += req.size();
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  const auto flood_ms = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - begin);

  const uclient_result r = good.finish();
  EXPECT_TRUE(r.zero_loss(good.expected_messages())) << r.summary() << "\n" << r.output;

  // What came back to the flooders.
  std::size_t answers = 0, answer_bytes = 0;
  std::array<std::byte, 2048> buf{};
  for (const int fd : fds) {
    for (int k = 0; k < 2 * per_source; ++k) {
      const ssize_t n = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
      if (n <= 0) break;
      ++answers;
      answer_bytes += static_cast<std::size_t>(n);
    }
  }
  close_all(fds);

  const std::string after = s.scrape();
  const double dropped = server::metric(after, R"(anyturn_dropped_packets_total{reason="unauth_rate"})") - dropped0;
  const double challenges = server::metric(after, "anyturn_auth_challenges_total") - challenges0;
  std::printf("[ hostile unauth flood ] %zu Allocates (%zu bytes) from %d sources in %lld ms; unauth_rate +%.0f; "
              "401s counted +%.0f, received %zu (%zu bytes, %.2fx the request bytes); %s\n",
              sent, sent_bytes, sources, static_cast<long long>(flood_ms.count()), dropped, challenges, answers,
              answer_bytes, sent_bytes ? static_cast<double>(answer_bytes) / static_cast<double>(sent_bytes) : 0.0,
              r.summary().c_str());
  ASSERT_EQ(sent, static_cast<std::size_t>(sources * per_source));
  // Each source may be answered its burst plus what refills in the flood's time.
  const double allowed_per_source = burst + rate * (static_cast<double>(flood_ms.count()) / 1000.0 + 1.0);
  EXPECT_LE(static_cast<double>(answers), sources * allowed_per_source);
  EXPECT_GE(dropped, static_cast<double>(sent) - sources * allowed_per_source);
  EXPECT_GT(dropped, 0.0);
  // Every request was either answered or dropped as over the rate (the
  // kernel may drop some before the server reads them, never more).
  EXPECT_LE(static_cast<double>(answers) + dropped, static_cast<double>(sent));
  // The challenge counter counts 401s sent, not requests dropped (plus the
  // well-behaved client's own few challenges).
  EXPECT_GE(challenges, static_cast<double>(answers));
  EXPECT_LE(challenges + dropped, static_cast<double>(sent) + 2.0 * uo.clients * 2);

  // A source that was limited is answered again once its bucket refills.
  std::this_thread::sleep_for(std::chrono::milliseconds{1000 / rate + 100});
  turn_client again(s.udp(), source(0));
  auto challenge = again.request_unauthenticated(stun::method::allocate,
                                                 [](stun::message_builder& b) { b.add_requested_transport(17); });
  EXPECT_TRUE(challenge && challenge->error_code() == 401) << describe(challenge);
  s.stop();
}

}  // namespace
}  // namespace anyturn::itest::hostile
