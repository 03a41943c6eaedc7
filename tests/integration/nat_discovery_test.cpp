// RFC 5780 against the real daemon: --listen 127.0.0.1:P --other-ip
// 127.0.0.2 (loopback holds all of 127/8). A raw UDP client sends Binding
// with every CHANGE-REQUEST combination to each of the four sockets and
// checks where the answer came from, RESPONSE-ORIGIN and OTHER-ADDRESS.
#include "daemon.hpp"

#include <anyturn/stun/message.hpp>

#include <gtest/gtest.h>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace anyturn::itest {
namespace {

namespace attr = stun::attr;

sockaddr_in to_sockaddr(const stun::endpoint& ep) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  std::memcpy(&a.sin_addr, ep.ip.data(), 4);
  a.sin_port = htons(ep.port);
  return a;
}

stun::endpoint from_sockaddr(const sockaddr_in& a) {
  return stun::endpoint::v4(ntohl(a.sin_addr.s_addr), ntohs(a.sin_port));
}

// One UDP socket on 127.0.0.1 and what it received.
class udp_client {
 public:
  udp_client() : fd_(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in a = to_sockaddr(stun::endpoint::v4(0x7F000001u, 0));
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
      throw std::runtime_error("udp_client: cannot bind 127.0.0.1:0");
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    local_ = from_sockaddr(a);
  }
  ~udp_client() { ::close(fd_); }
  udp_client(const udp_client&) = delete;
  udp_client& operator=(const udp_client&) = delete;

  [[nodiscard]] const stun::endpoint& local() const { return local_; }

  void send(const stun::endpoint& to, stun::bytes_view data) {
    const sockaddr_in a = to_sockaddr(to);
    ASSERT_EQ(::sendto(fd_, data.data(), data.size(), 0, reinterpret_cast<const sockaddr*>(&a), sizeof a),
              static_cast<ssize_t>(data.size()));
  }

  struct datagram {
    stun::endpoint from;
    std::vector<std::byte> data;
  };
  // The next datagram within `timeout_ms`, or nullopt.
  std::optional<datagram> receive(int timeout_ms = 2000) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) != 1) return std::nullopt;
    datagram d;
    d.data.resize(2048);
    sockaddr_in a{};
    socklen_t len = sizeof a;
    const ssize_t n = ::recvfrom(fd_, d.data.data(), d.data.size(), 0, reinterpret_cast<sockaddr*>(&a), &len);
    if (n < 0) return std::nullopt;
    d.data.resize(static_cast<std::size_t>(n));
    d.from = from_sockaddr(a);
    return d;
  }

 private:
  int fd_;
  stun::endpoint local_;
};

stun::transaction_id random_tid() {
  static std::mt19937 rng{std::random_device{}()};
  stun::transaction_id t;
  for (auto& b : t.bytes) b = static_cast<std::byte>(rng());
  return t;
}

std::vector<std::byte> request(stun::method m, const stun::transaction_id& tid,
                               std::optional<std::pair<bool, bool>> change) {
  std::array<std::byte, 256> buf{};
  stun::message_builder b(buf, static_cast<std::uint16_t>(m), stun::message_class::request, tid);
  if (m == stun::method::allocate) b.add_requested_transport(17);
  if (change) b.add_change_request(change->first, change->second);
  b.add_fingerprint();
  auto out = b.finish();
  return {out->begin(), out->end()};
}

class NatDiscovery : public ::testing::Test {
 protected:
  void TearDown() override {
    if (!daemon_) return;
    const int rc = daemon_->stop();
    EXPECT_EQ(rc, 0) << daemon_->log();
    if (HasFailure()) std::cerr << daemon_->log() << '\n';
  }

  [[nodiscard]] ::testing::AssertionResult start(std::vector<std::string> extra) {
    std::vector<std::string> args = {"--relay-ports", relay_ports_for_slot(50).flag(), "--relay-ip",
                                     "127.0.0.1", "--realm", "anyturn.test", "--user",
                                     "alice:wonderland-password", "--threads", "2"};
    args.insert(args.end(), extra.begin(), extra.end());
    daemon_ = std::make_unique<daemon>(daemon::options{false, args});
    if (!daemon_->start()) return ::testing::AssertionFailure() << daemon_->log();
    return ::testing::AssertionSuccess();
  }

  // Socket `member` of the group: bit 0 port P+1, bit 1 127.0.0.2.
  [[nodiscard]] stun::endpoint socket_of(unsigned member) const {
    const stun::endpoint a = daemon_->address();
    return stun::endpoint::v4((member & 2U) != 0 ? 0x7F000002u : 0x7F000001u,
                              static_cast<std::uint16_t>(a.port + (member & 1U)));
  }

  std::unique_ptr<daemon> daemon_;
};

std::optional<stun::endpoint> plain(const stun::message_view& m, std::uint16_t type) {
  const auto a = m.find(type);
  if (!a) return std::nullopt;
  const auto e = stun::decode_address(*a, m.tid(), false);
  return e ? std::optional<stun::endpoint>(*e) : std::nullopt;
}

TEST_F(NatDiscovery, ChangeRequestAnswersFromTheRightSocket) {
  ASSERT_TRUE(start({"--other-ip", "127.0.0.2"}));
  udp_client client;
  const struct {
    std::optional<std::pair<bool, bool>> change;
    unsigned flip;
  } cases[] = {{std::nullopt, 0}, {{{false, false}}, 0}, {{{false, true}}, 1},
               {{{true, false}}, 2}, {{{true, true}}, 3}};
  int changed = 0;
  for (unsigned reached = 0; reached < 4; ++reached) {
    for (const auto& c : cases) {
      const auto tid = random_tid();
      client.send(socket_of(reached), request(stun::method::binding, tid, c.change));
      const auto got = client.receive();
      ASSERT_TRUE(got) << "no answer from " << socket_of(reached).to_string() << " flip " << c.flip;
      const auto parsed = stun::parse_message(got->data);
      ASSERT_TRUE(parsed);
      ASSERT_EQ(parsed->cls(), stun::message_class::success_response);
      EXPECT_EQ(parsed->tid(), tid);
      const stun::endpoint origin = socket_of(reached ^ c.flip);
      EXPECT_EQ(got->from, origin) << "asked " << socket_of(reached).to_string() << " flip " << c.flip;
      EXPECT_EQ(plain(*parsed, attr::response_origin), origin);
      EXPECT_EQ(plain(*parsed, attr::mapped_address), client.local());
      EXPECT_EQ(plain(*parsed, attr::other_address), socket_of(reached ^ 3U));
      EXPECT_EQ(*stun::decode_address(*parsed->find(attr::xor_mapped_address), parsed->tid(), true),
                client.local());
      if (c.flip != 0) ++changed;
    }
  }
  // The extra sockets serve Binding only.
  client.send(socket_of(3), request(stun::method::allocate, random_tid(), std::nullopt));
  const auto refused = client.receive();
  ASSERT_TRUE(refused);
  const auto parsed = stun::parse_message(refused->data);
  ASSERT_TRUE(parsed);
  const auto code = stun::decode_error_code(*parsed->find(attr::error_code));
  ASSERT_TRUE(code);
  EXPECT_EQ(code->code, 400);

  const auto metrics = http_request(daemon_->http_port(), "GET", "/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metric_value(metrics->body, "anyturn_nat_discovery_total{result=\"changed\"}"), changed);
  EXPECT_EQ(metric_value(metrics->body, "anyturn_nat_discovery_total{result=\"not_binding\"}"), 1.0);
  EXPECT_EQ(metric_value(metrics->body, "anyturn_nat_discovery_total{result=\"refused\"}"), 0.0);
}

// Without --other-ip nothing listens on port+1, Binding has no RFC 5780
// attributes, and CHANGE-REQUEST gets 420 (RFC 5780 §7.2), counted.
TEST_F(NatDiscovery, WithoutOtherIpBindingIsPlain) {
  ASSERT_TRUE(start({}));
  udp_client client;
  client.send(socket_of(0), request(stun::method::binding, random_tid(), std::nullopt));
  auto got = client.receive();
  ASSERT_TRUE(got);
  auto parsed = stun::parse_message(got->data);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->cls(), stun::message_class::success_response);
  EXPECT_FALSE(parsed->has(attr::other_address));
  EXPECT_FALSE(parsed->has(attr::response_origin));
  client.send(socket_of(0), request(stun::method::binding, random_tid(), std::pair{true, true}));
  got = client.receive();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->from, socket_of(0));
  parsed = stun::parse_message(got->data);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(stun::decode_error_code(*parsed->find(attr::error_code))->code, 420);
  client.send(socket_of(1), request(stun::method::binding, random_tid(), std::nullopt));
  EXPECT_FALSE(client.receive(300)) << "port+1 answered without --other-ip";
  const auto metrics = http_request(daemon_->http_port(), "GET", "/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metric_value(metrics->body, "anyturn_nat_discovery_total{result=\"refused\"}"), 1.0);
}

}  // namespace
}  // namespace anyturn::itest
