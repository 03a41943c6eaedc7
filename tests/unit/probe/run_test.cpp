// run (src/probe/run.cpp) against loopback sockets of the test itself:
// a closed TCP port, a silent UDP socket, and a scripted UDP STUN server
// (Binding; the 401 challenge, 438 Stale Nonce, a coturn-style reason with
// a trailing NUL). The runs against real servers are in
// tests/integration/probe_test.cpp and tests/interop/probe_coturn.sh.
#include <anyturn/probe/probe.hpp>
#include <anyturn/stun/message.hpp>

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <span>
#include <functional>
#include <thread>
#include <vector>

namespace anyturn::probe {
namespace {

using namespace std::chrono_literals;
namespace attr = stun::attr;

// A loopback socket bound to an ephemeral port, closed at the end.
struct bound_socket {
  int fd = -1;
  std::uint16_t port = 0;
  explicit bound_socket(int type) {
    fd = ::socket(AF_INET, type, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~bound_socket() { ::close(fd); }
};

// Answers each STUN request with what `answer` builds (nothing when it
// returns false), on its own thread, until destroyed.
class scripted_udp_server {
 public:
  using responder = std::function<void(const stun::message_view& req, std::vector<std::byte>& out)>;
  explicit scripted_udp_server(responder r) : sock_(SOCK_DGRAM), respond_(std::move(r)) {
    thread_ = std::thread([this] { loop(); });
  }
  ~scripted_udp_server() {
    stop_ = true;
    thread_.join();
  }
  [[nodiscard]] std::uint16_t port() const { return sock_.port; }
  std::atomic<int> requests{0};

 private:
  void loop() {
    std::vector<std::byte> buf(2048);
    while (!stop_) {
      pollfd p{sock_.fd, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      sockaddr_in from{};
      socklen_t len = sizeof from;
      const auto n = ::recvfrom(sock_.fd, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n <= 0) continue;
      const auto req = stun::parse_message(stun::bytes_view(buf.data(), static_cast<std::size_t>(n)));
      if (!req) continue;
      ++requests;
      std::vector<std::byte> out;
      respond_(*req, out);
      if (!out.empty()) ::sendto(sock_.fd, out.data(), out.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
    }
  }
  bound_socket sock_;
  responder respond_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

std::vector<std::byte> error_response(const stun::message_view& req, int code, std::string_view reason,
                                      std::string_view nonce = {}) {
  std::vector<std::byte> out(512);
  stun::message_builder b(out, req.method(), stun::message_class::error_response, req.tid());
  b.add_error_code(code, reason);
  if (!nonce.empty()) {
    b.add_string(attr::realm, "example.org");
    b.add_string(attr::nonce, nonce);
  }
  b.add_string(attr::software, "scripted 1.0");
  out.resize(b.finish()->size());
  return out;
}

target udp_target(scheme s, std::uint16_t port) {
  std::string error;
  const auto prefix = s == scheme::stun ? "stun:127.0.0.1:" : "turn:127.0.0.1:";
  return *parse_url(prefix + std::to_string(port), error);
}

options quick(std::chrono::milliseconds timeout = 2s) {
  options o;
  o.timeout = timeout;
  return o;
}

TEST(run, closed_tcp_port_fails_in_connect) {
  std::uint16_t port = 0;
  {
    bound_socket s(SOCK_STREAM);  // bound, never listening: connect is refused
    port = s.port;
    std::string error;
    const auto r = run(*parse_url("turn:127.0.0.1:" + std::to_string(port) + "?transport=tcp", error), quick());
    EXPECT_FALSE(r.success);
    EXPECT_EQ(r.error, "connect: connection refused");
    ASSERT_EQ(r.phases.size(), 2u);
    EXPECT_TRUE(r.phases[0].ok);
    EXPECT_EQ(r.phases[1].which, phase::connect);
    EXPECT_EQ(r.resolved, std::vector<std::string>{"127.0.0.1:" + std::to_string(port)});
  }
}

TEST(run, silent_udp_server_times_out_in_allocate) {
  bound_socket silent(SOCK_DGRAM);
  options o = quick(300ms);
  o.auth = credentials{"u", "p"};
  const auto start = std::chrono::steady_clock::now();
  const auto r = run(udp_target(scheme::turn, silent.port), o);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_FALSE(r.success);
  EXPECT_EQ(r.error, "timeout after 0.3 s in allocate");
  EXPECT_EQ(r.phases.back().which, phase::allocate);
  EXPECT_GE(took, 290ms);
  EXPECT_LT(took, 1500ms);
  // It retransmitted (250 ms, then doubling): at least two requests arrived.
  char buf[1500];
  int got = 0;
  while (::recv(silent.fd, buf, sizeof buf, MSG_DONTWAIT) > 0) ++got;
  EXPECT_GE(got, 2);
}

TEST(run, stun_binding_reports_the_mapped_address_and_software) {
  scripted_udp_server server([](const stun::message_view& req, std::vector<std::byte>& out) {
    out.resize(512);
    stun::message_builder b(out, req.method(), stun::message_class::success_response, req.tid());
    b.add_address(attr::xor_mapped_address, stun::endpoint::v4(0x01020304, 5678), true);
    b.add_string(attr::software, "scripted 1.0");
    out.resize(b.finish()->size());
  });
  const auto r = run(udp_target(scheme::stun, server.port()), quick());
  EXPECT_TRUE(r.success) << r.error;
  EXPECT_EQ(r.mapped, "1.2.3.4:5678");
  EXPECT_EQ(r.software, "scripted 1.0");
  ASSERT_EQ(r.phases.size(), 3u);
  EXPECT_EQ(r.phases[2].which, phase::binding);
}

TEST(run, no_credentials_stops_at_the_challenge) {
  scripted_udp_server server([](const stun::message_view& req, std::vector<std::byte>& out) {
    out = error_response(req, 401, "Unauthorized", "n1");
  });
  const auto r = run(udp_target(scheme::turn, server.port()), quick());
  EXPECT_FALSE(r.success);
  EXPECT_EQ(r.error.rfind("allocate: 401 Unauthorized (no credentials", 0), 0u) << r.error;
}

TEST(run, stale_nonce_is_retried_once_and_the_reason_loses_its_nul) {
  std::atomic<int> authed{0};
  scripted_udp_server server([&](const stun::message_view& req, std::vector<std::byte>& out) {
    if (!req.has(attr::message_integrity)) {
      out = error_response(req, 401, "Unauthorized", "n1");
      return;
    }
    const auto nonce = stun::decode_string(*req.find(attr::nonce), 763);
    if (++authed == 1) {
      EXPECT_EQ(*nonce, "n1");
      out = error_response(req, 438, "Stale Nonce", "n2");
      return;
    }
    EXPECT_EQ(*nonce, "n2");
    // coturn sends its reason phrase with a trailing NUL.
    out = error_response(req, 441, std::string_view("Wrong Credentials\0", 18));
  });
  options o = quick();
  o.auth = credentials{"alice", "wrong"};
  const auto r = run(udp_target(scheme::turn, server.port()), o);
  EXPECT_FALSE(r.success);
  EXPECT_EQ(r.error, "allocate: 441 Wrong Credentials");
  EXPECT_EQ(authed.load(), 2);
  EXPECT_EQ(r.software, "scripted 1.0");
}

// A 401 that offers PASSWORD-ALGORITHMS (RFC 8489 §9.2.4, as anyturn's does
// by default): the list is echoed unchanged with PASSWORD-ALGORITHM MD5.
std::vector<std::byte> challenge_with_algorithms(const stun::message_view& req,
                                                 std::span<const stun::password_algorithm> algs) {
  std::vector<std::byte> out(512);
  stun::message_builder b(out, req.method(), stun::message_class::error_response, req.tid());
  b.add_error_code(401, "Unauthorized");
  b.add_string(attr::realm, "example.org");
  b.add_string(attr::nonce, "n1");
  b.add_password_algorithms(algs);
  out.resize(b.finish()->size());
  return out;
}

TEST(run, password_algorithms_are_echoed_with_md5_chosen) {
  static constexpr std::array offer{stun::password_algorithm::sha256, stun::password_algorithm::md5};
  std::atomic<bool> echoed{false};
  scripted_udp_server server([&](const stun::message_view& req, std::vector<std::byte>& out) {
    if (!req.has(attr::message_integrity)) {
      out = challenge_with_algorithms(req, offer);
      return;
    }
    const auto list = req.find(attr::password_algorithms);
    const auto alg = req.find(attr::password_algorithm);
    std::array<std::uint16_t, 4> got{};
    const auto n = list ? stun::decode_password_algorithms(*list, got) : stun::result<std::size_t>(stun::codec_error::attribute_missing);
    echoed = n && *n == 2 && got[0] == 2 && got[1] == 1 && alg &&
             *stun::decode_password_algorithm(*alg) == stun::password_algorithm::md5;
    out = error_response(req, 486, "Allocation Quota Reached");
  });
  options o = quick();
  o.auth = credentials{"alice", "pw"};
  const auto r = run(udp_target(scheme::turn, server.port()), o);
  EXPECT_TRUE(echoed.load());
  EXPECT_EQ(r.error, "allocate: 486 Allocation Quota Reached");
}

TEST(run, a_server_offering_only_sha256_is_refused_with_a_reason) {
  static constexpr std::array offer{stun::password_algorithm::sha256};
  scripted_udp_server server([&](const stun::message_view& req, std::vector<std::byte>& out) {
    out = challenge_with_algorithms(req, offer);
  });
  options o = quick();
  o.auth = credentials{"alice", "pw"};
  const auto r = run(udp_target(scheme::turn, server.port()), o);
  EXPECT_EQ(r.error, "allocate: the server does not offer MD5 in PASSWORD-ALGORITHMS");
}

TEST(run, never_throws_and_bounds_bad_options) {
  bound_socket silent(SOCK_DGRAM);
  options o = quick(100ms);
  o.count = 0;
  o.size = 5;
  const auto r = run(udp_target(scheme::turn, silent.port), o);
  EXPECT_FALSE(r.success);
  EXPECT_EQ(r.error, "timeout after 0.1 s in allocate");
}

}  // namespace
}  // namespace anyturn::probe
