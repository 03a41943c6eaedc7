// RFC 6062 TCP relay allocations against the real daemon on loopback, two
// workers: peer-initiated connections (ConnectionAttempt, ConnectionBind),
// client-initiated ones (Connect), refusals (no permission, 446, 447, a bad
// CONNECTION-ID, ConnectionBind on the control connection, TCP over UDP),
// back-pressure with a slow reader (nothing lost once it reads), the end of
// the allocation closing its connections, binds that land on the worker
// that does not own the allocation, and the 30 s timer of unbound
// connections.
#include "daemon.hpp"
#include "stream_client.hpp"
#include "temp_dir.hpp"
#include "turn_client.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace anyturn::itest {
namespace {

using clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

const credentials alice{"alice", "wonderland-tcp-relay", false};
constexpr std::uint8_t proto_tcp = 6;

sockaddr_in to_sin(const stun::endpoint& ep) {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(ep.port);
  std::memcpy(&sin.sin_addr, ep.ip.data(), 4);
  return sin;
}

stun::endpoint local_of(int fd) {
  sockaddr_in sin{};
  socklen_t len = sizeof sin;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len);
  return stun::endpoint::v4(ntohl(sin.sin_addr.s_addr), ntohs(sin.sin_port));
}

// A plain TCP socket (a peer), closed with the object.
struct tcp_fd {
  int fd = -1;
  tcp_fd() = default;
  explicit tcp_fd(int f) : fd(f) {}
  tcp_fd(tcp_fd&& o) noexcept : fd(std::exchange(o.fd, -1)) {}
  tcp_fd& operator=(tcp_fd&& o) noexcept {
    std::swap(fd, o.fd);
    return *this;
  }
  ~tcp_fd() {
    if (fd >= 0) ::close(fd);
  }
};

tcp_fd connect_to(const stun::endpoint& to) {
  tcp_fd s{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  const sockaddr_in sin = to_sin(to);
  if (::connect(s.fd, reinterpret_cast<const sockaddr*>(&sin), sizeof sin) != 0) return tcp_fd{};
  return s;
}

tcp_fd listen_on_loopback() {
  tcp_fd s{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  sockaddr_in sin = to_sin(v4_loopback(0));
  ::bind(s.fd, reinterpret_cast<const sockaddr*>(&sin), sizeof sin);
  ::listen(s.fd, 8);
  return s;
}

bool wait_readable(int fd, std::chrono::milliseconds timeout) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(timeout.count())) > 0;
}

// True when the other end closed (EOF or reset) within `timeout`; bytes
// still arriving are read and dropped.
bool wait_closed(int fd, std::chrono::milliseconds timeout) {
  const auto deadline = clock::now() + timeout;
  char buf[4096];
  while (clock::now() < deadline) {
    if (!wait_readable(fd, 100ms)) continue;
    const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return true;
  }
  return false;
}

// Reads exactly `n` bytes (after `have`, bytes already received) within `timeout`.
std::string read_exactly(int fd, std::size_t n, std::chrono::milliseconds timeout, std::string have = {}) {
  const auto deadline = clock::now() + timeout;
  char buf[65536];
  while (have.size() < n && clock::now() < deadline) {
    if (!wait_readable(fd, 100ms)) continue;
    const ssize_t got = ::recv(fd, buf, std::min(sizeof buf, n - have.size()), MSG_DONTWAIT);
    if (got == 0) break;
    if (got > 0) have.append(buf, static_cast<std::size_t>(got));
  }
  return have;
}

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

class tcp_relay_test : public ::testing::Test {
 protected:
  void SetUp() override {
    daemon::options o;
    o.args = {"--relay-ip", "127.0.0.1", "--relay-ports", ports_.flag(), "--user",
              alice.username + ":" + alice.password, "--allow-peer", "127.0.0.0/8", "--threads", "2",
              "--log-level", "debug", "--config", config_path()};
    server_ = std::make_unique<daemon>(o);
    ASSERT_TRUE(server_->start()) << server_->log();
  }
  void TearDown() override {
    if (server_) {
      EXPECT_EQ(server_->stop(), 0) << server_->log();
    }
  }

  // A config file with only usage_log (the usage records, one per ended allocation).
  std::string config_path() {
    const auto p = files_.path() / "anyturn.yaml";
    std::ofstream(p) << "usage_log: \"" << usage_path() << "\"\n";
    return p.string();
  }
  [[nodiscard]] std::string usage_path() const { return (files_.path() / "usage.jsonl").string(); }
  std::string usage_records() const {
    std::ifstream in(usage_path());
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  std::unique_ptr<stream_client> client() {
    auto c = std::make_unique<stream_client>(server_->address(), stream_client::options{});
    EXPECT_TRUE(c->connect()) << c->last_error();
    c->set_credentials(alice);
    return c;
  }

  // Allocates a TCP relay over `c`; returns the relayed address.
  stun::endpoint allocate_tcp(stream_client& c) {
    auto r = c.request(stun::method::allocate,
                       [](stun::message_builder& b) { b.add_requested_transport(proto_tcp); });
    EXPECT_TRUE(r && r->is_success()) << describe(r);
    if (!r || !r->is_success()) return {};
    return r->address(stun::attr::xor_relayed_address).value_or(stun::endpoint{});
  }

  // ConnectionBind on a new connection; the data connection, or null.
  std::unique_ptr<stream_client> bind(std::uint32_t cid, int* code = nullptr) {
    auto d = client();
    auto r = d->request(stun::method::connection_bind,
                        [cid](stun::message_builder& b) { b.add_u32(stun::attr::connection_id, cid); });
    if (code != nullptr) *code = r ? (r->is_success() ? 0 : r->error_code()) : -1;
    if (!r || !r->is_success()) return nullptr;
    return d;
  }

  std::optional<stun_message> connect_peer(stream_client& c, const stun::endpoint& peer) {
    return c.request(stun::method::connect, [&](stun::message_builder& b) {
      b.add_address(stun::attr::xor_peer_address, peer, true);
    }, 15s);
  }

  // The next ConnectionAttempt on the control connection.
  std::optional<stun_message> attempt(stream_client& c, std::chrono::milliseconds timeout = 5s) {
    const auto deadline = clock::now() + timeout;
    while (clock::now() < deadline) {
      auto f = c.recv_frame(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()));
      if (!f) break;
      if (!stun::parse_message(*f)) continue;
      stun_message m(std::move(*f));
      if (m.method() == static_cast<std::uint16_t>(stun::method::connection_attempt)) return m;
    }
    return std::nullopt;
  }

  double metric(const std::string& result) {
    const auto r = http_request(server_->http_port(), "GET", "/metrics");
    if (!r) return -1;
    return metric_value(r->body, "anyturn_tcp_relay_connections_total{result=\"" + result + "\"}")
        .value_or(-1);
  }

  // Each test its own relay slot (30-36): ctest runs them in parallel.
  static unsigned slot_of_this_test() {
    const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    const char* order[] = {"PeerInitiated", "ClientInitiated", "BadConnectionBinds", "SlowReader",
                           "BindsOnEither", "UnboundPeer", "ARelayHolds"};
    for (unsigned i = 0; i < std::size(order); ++i) {
      if (name.rfind(order[i], 0) == 0) return 30 + i;
    }
    return 39;
  }

  anyturn::test::temp_dir files_{"anyturn-tcp-relay"};
  port_range ports_ = relay_ports_for_slot(slot_of_this_test());
  std::unique_ptr<daemon> server_;
};

TEST_F(tcp_relay_test, PeerInitiatedNeedsAPermissionThenRelaysBothWays) {
  auto control = client();
  const stun::endpoint relayed = allocate_tcp(*control);
  ASSERT_NE(relayed.port, 0);

  // No permission yet: the connection is closed at once.
  tcp_fd refused = connect_to(relayed);
  ASSERT_GE(refused.fd, 0);
  EXPECT_TRUE(wait_closed(refused.fd, 3s));
  EXPECT_GE(metric("no_permission"), 1);

  auto p = control->create_permission(v4_loopback(1));
  ASSERT_TRUE(p && p->is_success()) << describe(p);
  tcp_fd peer = connect_to(relayed);
  ASSERT_GE(peer.fd, 0);
  auto a = attempt(*control);
  ASSERT_TRUE(a.has_value()) << "no ConnectionAttempt";
  EXPECT_EQ(a->cls(), stun::message_class::indication);
  EXPECT_EQ(a->address(stun::attr::xor_peer_address), local_of(peer.fd));
  const auto cid = a->u32(stun::attr::connection_id);
  ASSERT_TRUE(cid.has_value());

  // Bytes the peer sent before the bind wait in the kernel, unread.
  ASSERT_TRUE(send_all(peer.fd, "early bytes;"));
  auto data = bind(*cid);
  ASSERT_NE(data, nullptr);
  EXPECT_EQ(read_exactly(data->native_handle(), 12, 5s, to_string(data->take_unframed())), "early bytes;");
  ASSERT_TRUE(send_all(data->native_handle(), "from the client"));
  EXPECT_EQ(read_exactly(peer.fd, 15, 5s), "from the client");
  ASSERT_TRUE(send_all(peer.fd, "from the peer"));
  EXPECT_EQ(read_exactly(data->native_handle(), 13, 5s), "from the peer");
  EXPECT_GE(metric("accepted"), 1);
  EXPECT_GE(metric("bound"), 1);

  // The same id cannot be bound twice.
  int code = 0;
  EXPECT_EQ(bind(*cid, &code), nullptr);
  EXPECT_EQ(code, 400);

  // The allocation ends (Refresh 0): its peer and data connections close.
  auto r = control->refresh(0);
  ASSERT_TRUE(r && r->is_success()) << describe(r);
  EXPECT_TRUE(wait_closed(peer.fd, 3s));
  EXPECT_TRUE(wait_closed(data->native_handle(), 3s));

  // The relayed bytes are counted.
  const auto m = http_request(server_->http_port(), "GET", "/metrics");
  ASSERT_TRUE(m.has_value());
  EXPECT_GE(metric_value(m->body, "anyturn_relayed_bytes_total{direction=\"to_peer\"}").value_or(0), 15);
  EXPECT_GE(metric_value(m->body, "anyturn_relayed_bytes_total{direction=\"to_client\"}").value_or(0), 25);
  // And in the allocation's usage record (written when it ended).
  std::smatch match;
  const std::string records = usage_records();
  ASSERT_TRUE(std::regex_search(records, match,
                                std::regex(R"(\"bytes_to_peer\":(\d+).*\"bytes_to_client\":(\d+).*\"reason\":\"deleted\")")))
      << records;
  EXPECT_EQ(std::stoull(match[1].str()), 15u);
  EXPECT_EQ(std::stoull(match[2].str()), 25u);
}

TEST_F(tcp_relay_test, ClientInitiatedConnectAndItsRefusals) {
  auto control = client();
  const stun::endpoint relayed = allocate_tcp(*control);
  ASSERT_NE(relayed.port, 0);
  tcp_fd listener = listen_on_loopback();
  const stun::endpoint peer_addr = local_of(listener.fd);

  // No permission: 403.
  auto r = connect_peer(*control, peer_addr);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->error_code(), 403) << r->describe();

  auto p = control->create_permission(peer_addr);
  ASSERT_TRUE(p && p->is_success()) << describe(p);
  r = connect_peer(*control, peer_addr);
  ASSERT_TRUE(r && r->is_success()) << describe(r);
  const auto cid = r->u32(stun::attr::connection_id);
  ASSERT_TRUE(cid.has_value());
  // The peer sees the connection come from the relayed address.
  ASSERT_TRUE(wait_readable(listener.fd, 3s));
  sockaddr_in from{};
  socklen_t len = sizeof from;
  tcp_fd peer{::accept(listener.fd, reinterpret_cast<sockaddr*>(&from), &len)};
  ASSERT_GE(peer.fd, 0);
  EXPECT_EQ(stun::endpoint::v4(ntohl(from.sin_addr.s_addr), ntohs(from.sin_port)), relayed);

  // A second connection to the same peer: 446.
  r = connect_peer(*control, peer_addr);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->error_code(), 446) << r->describe();

  // A closed port: 447.
  tcp_fd closed = listen_on_loopback();
  const stun::endpoint closed_addr = local_of(closed.fd);
  closed = tcp_fd{};
  r = connect_peer(*control, closed_addr);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->error_code(), 447) << r->describe();
  EXPECT_GE(metric("connect_failed"), 1);
  EXPECT_GE(metric("already_exists"), 1);

  auto data = bind(*cid);
  ASSERT_NE(data, nullptr);
  ASSERT_TRUE(send_all(peer.fd, "hello client"));
  EXPECT_EQ(read_exactly(data->native_handle(), 12, 5s, to_string(data->take_unframed())), "hello client");
  ASSERT_TRUE(send_all(data->native_handle(), "hello peer"));
  EXPECT_EQ(read_exactly(peer.fd, 10, 5s), "hello peer");

  // The control connection closes: the allocation and its connections end.
  control->close();
  EXPECT_TRUE(wait_closed(peer.fd, 3s));
  EXPECT_TRUE(wait_closed(data->native_handle(), 3s));
}

TEST_F(tcp_relay_test, BadConnectionBindsAndUdpAreRefused) {
  auto control = client();
  ASSERT_NE(allocate_tcp(*control).port, 0);
  int code = 0;
  EXPECT_EQ(bind(0x00ABCDEF, &code), nullptr);  // unknown id (worker 0)
  EXPECT_EQ(code, 400);
  EXPECT_EQ(bind(0x01ABCDEF, &code), nullptr);  // unknown id (worker 1)
  EXPECT_EQ(code, 400);
  // On the control connection itself.
  auto r = control->request(stun::method::connection_bind,
                            [](stun::message_builder& b) { b.add_u32(stun::attr::connection_id, 1); });
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->error_code(), 400);
  EXPECT_GE(metric("bind_failed"), 3);

  // REQUESTED-TRANSPORT TCP over UDP: 442.
  turn_client udp(server_->address());
  udp.set_credentials(alice);
  auto u = udp.request(stun::method::allocate,
                       [](stun::message_builder& b) { b.add_requested_transport(proto_tcp); });
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->error_code(), 442);
}

// A reader that stops: the server stops reading the peer (its pipe is
// full), so the peer's writes stall, and nothing is lost once it reads.
TEST_F(tcp_relay_test, SlowReaderBackPressureLosesNothing) {
  auto control = client();
  const stun::endpoint relayed = allocate_tcp(*control);
  ASSERT_TRUE(control->create_permission(v4_loopback(1))->is_success());
  tcp_fd peer = connect_to(relayed);
  auto a = attempt(*control);
  ASSERT_TRUE(a.has_value());
  auto data = bind(*a->u32(stun::attr::connection_id));
  ASSERT_NE(data, nullptr);
  const int rbuf = 64 * 1024;
  ::setsockopt(data->native_handle(), SOL_SOCKET, SO_RCVBUF, &rbuf, sizeof rbuf);

  constexpr std::size_t total = 128u << 20;  // 128 MiB, far more than any buffer
  auto byte_at = [](std::size_t i) { return static_cast<char>((i * 131 + i / 977) & 0xFF); };
  ::fcntl(peer.fd, F_SETFL, ::fcntl(peer.fd, F_GETFL) | O_NONBLOCK);
  std::size_t written = 0;
  std::string chunk(65536, '\0');
  auto write_some = [&] {
    const std::size_t n = std::min(chunk.size(), total - written);
    for (std::size_t i = 0; i < n; ++i) chunk[i] = byte_at(written + i);
    const ssize_t w = ::send(peer.fd, chunk.data(), n, MSG_NOSIGNAL);
    if (w > 0) written += static_cast<std::size_t>(w);
    return w > 0;
  };
  // Write until stalled for 1 s (bounded to 20 s).
  auto last_progress = clock::now();
  const auto limit = clock::now() + 20s;
  while (written < total && clock::now() - last_progress < 1s && clock::now() < limit) {
    if (write_some()) last_progress = clock::now();
    else std::this_thread::sleep_for(5ms);
  }
  const std::size_t stalled_at = written;
  std::printf("peer writes stalled after %zu bytes (of %zu) while the client read nothing\n", stalled_at, total);
  EXPECT_LT(stalled_at, total / 4) << "the peer could write " << stalled_at << " bytes to a reader that reads nothing";
  const auto status = http_request(server_->http_port(), "GET", "/metrics");
  ASSERT_TRUE(status.has_value());

  // The reader resumes; the writer goes on; every byte arrives, in order.
  std::atomic<bool> writer_failed{false};
  std::thread writer([&] {
    const auto end = clock::now() + 60s;
    while (written < total && clock::now() < end) {
      if (!write_some()) {
        pollfd pf{peer.fd, POLLOUT, 0};
        ::poll(&pf, 1, 100);
      }
    }
    if (written < total) writer_failed = true;
  });
  const int fd = data->native_handle();
  bytes early = data->take_unframed();
  std::size_t got = 0;
  bool in_order = true;
  for (std::byte b : early) {
    in_order = in_order && static_cast<char>(b) == byte_at(got);
    ++got;
  }
  std::vector<char> buf(1 << 16);
  const auto end = clock::now() + 60s;
  while (got < total && clock::now() < end) {
    if (!wait_readable(fd, 100ms)) continue;
    const ssize_t n = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n == 0) break;
    for (ssize_t i = 0; i < n; ++i) {
      if (in_order && buf[static_cast<std::size_t>(i)] != byte_at(got + static_cast<std::size_t>(i))) in_order = false;
    }
    if (n > 0) got += static_cast<std::size_t>(n);
  }
  writer.join();
  EXPECT_FALSE(writer_failed);
  EXPECT_EQ(got, total);
  EXPECT_TRUE(in_order);
}

// Binds spread over both workers (the kernel picks the accepting one):
// each must reach the worker that owns the allocation.
TEST_F(tcp_relay_test, BindsOnEitherWorkerReachTheOwner) {
  auto control = client();
  const stun::endpoint relayed = allocate_tcp(*control);
  ASSERT_TRUE(control->create_permission(v4_loopback(1))->is_success());
  constexpr int pairs = 16;
  std::vector<tcp_fd> peers;
  std::vector<std::unique_ptr<stream_client>> datas;
  for (int i = 0; i < pairs; ++i) {
    peers.push_back(connect_to(relayed));
    auto a = attempt(*control);
    ASSERT_TRUE(a.has_value()) << "no ConnectionAttempt for peer " << i;
    auto d = bind(*a->u32(stun::attr::connection_id));
    ASSERT_NE(d, nullptr) << "bind " << i;
    datas.push_back(std::move(d));
  }
  for (int i = 0; i < pairs; ++i) {
    const std::string msg = "pair " + std::to_string(i);
    ASSERT_TRUE(send_all(datas[i]->native_handle(), msg));
    EXPECT_EQ(read_exactly(peers[i].fd, msg.size(), 5s), msg);
  }
  EXPECT_GE(metric("bound"), pairs);
  // With 16 connections over 2 workers, some were accepted by the other one.
  EXPECT_GE(metric("handed_off"), 1);
}

// A relay holds at most 256 peer connections: the next peer is reset.
TEST_F(tcp_relay_test, ARelayHoldsAtMost256PeerConnections) {
  auto control = client();
  const stun::endpoint relayed = allocate_tcp(*control);
  ASSERT_TRUE(control->create_permission(v4_loopback(1))->is_success());
  std::vector<tcp_fd> peers;
  for (int i = 0; i < 256; ++i) {
    peers.push_back(connect_to(relayed));
    ASSERT_GE(peers.back().fd, 0);
  }
  // Each got its ConnectionAttempt before the next one is judged.
  for (int i = 0; i < 256; ++i) ASSERT_TRUE(attempt(*control).has_value()) << "attempt " << i;
  tcp_fd extra = connect_to(relayed);
  ASSERT_GE(extra.fd, 0);
  EXPECT_TRUE(wait_closed(extra.fd, 3s));
  EXPECT_FALSE(wait_closed(peers.back().fd, 200ms));
  EXPECT_EQ(metric("over_limit"), 1);
  EXPECT_EQ(metric("accepted"), 256);
}

// RFC 6062 §5.3: a peer connection nobody binds is closed after 30 s.
TEST_F(tcp_relay_test, UnboundPeerConnectionClosesAfter30Seconds) {
  auto control = client();
  const stun::endpoint relayed = allocate_tcp(*control);
  ASSERT_TRUE(control->create_permission(v4_loopback(1))->is_success());
  tcp_fd peer = connect_to(relayed);
  auto a = attempt(*control);
  ASSERT_TRUE(a.has_value());
  const auto started = clock::now();
  // Keep the control connection alive meanwhile (idle timeouts).
  EXPECT_FALSE(wait_closed(peer.fd, 28s));
  EXPECT_TRUE(wait_closed(peer.fd, 5s));
  EXPECT_GE(clock::now() - started, 29s);
  EXPECT_GE(metric("timeout"), 1);
  int code = 0;
  EXPECT_EQ(bind(*a->u32(stun::attr::connection_id), &code), nullptr);
  EXPECT_EQ(code, 400);
}

}  // namespace
}  // namespace anyturn::itest
