// GET /probe against the real daemon (docs/probe.md, "/probe"): a node with
// only static users and an admin key probes its own UDP, TCP and TLS
// listeners with the credential it mints for itself; a second daemon is
// reached through http.probe_targets and http.probe_credentials; a silent
// UDP socket makes slow probes for the concurrency limit and shows that
// /metrics keeps answering meanwhile; a reload keeps self-probing working.
#include "daemon.hpp"

#include <anyturn/net/tls.hpp>

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace anyturn::itest {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string admin_key = "probe-test-admin-key-0123456789";

std::string encode(std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '.' || c == '-' || c == '_') {
      out += c;
    } else {
      out += '%';
      out += hex[u >> 4];
      out += hex[u & 0xF];
    }
  }
  return out;
}

// A bound loopback UDP socket that never answers.
class silent_udp {
 public:
  silent_udp() {
    fd_ = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      throw std::runtime_error("silent_udp: bind failed");
    }
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~silent_udp() { ::close(fd_); }
  silent_udp(const silent_udp&) = delete;
  silent_udp& operator=(const silent_udp&) = delete;
  [[nodiscard]] std::uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

class ProbeHttp : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "anyturn-probe-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    const std::vector<stun::endpoint> ips{stun::endpoint::v4(0x7F000001u, 0)};
    const std::vector<std::string> dns{"localhost"};
    std::string error;
    auto pem = net::make_self_signed(ips, dns, std::chrono::hours{24}, error);
    ASSERT_TRUE(pem) << error;
    write("cert.pem", pem->certificate);
    write("key.pem", pem->private_key);

    // The second node: a user of its own, nothing else.
    daemon::options r;
    r.args = {"--relay-ip", "127.0.0.1", "--relay-ports", relay_ports_for_slot(231).flag(), "--user",
              "bob:builder-7f3a", "--allow-peer", "127.0.0.1", "--threads", "1"};
    remote_ = std::make_unique<daemon>(r);
    ASSERT_TRUE(remote_->start()) << remote_->log();

    tls_port_ = free_port(false);
    const std::string remote = "127.0.0.1:" + std::to_string(remote_->address().port);
    const std::string silent = "127.0.0.1:" + std::to_string(silent_.port());
    config_ = write("anyturn.yaml",
                    "http:\n"
                    "  probe_timeout: 2\n"
                    "  probe_max_count: 20\n"
                    "  probe_ca: " + (dir_ / "cert.pem").string() + "\n"
                    "  probe_targets: [\"" + remote + "\", \"" + silent + "\", \"127.0.0.1:1\"]\n"
                    "  probe_credentials:\n"
                    "    - {target: \"" + remote + "\", username: bob, password: builder-7f3a}\n"
                    "    - {target: \"" + silent + "\", username: nobody, password: nothing-here}\n");
    daemon::options o;
    o.args = {"--config", config_, "--relay-ip", "127.0.0.1", "--relay-ports",
              relay_ports_for_slot(232).flag(), "--user", "alice:wonderland-5c1e", "--allow-peer",
              "127.0.0.1", "--threads", "2", "--admin-key", admin_key, "--tls-listen",
              "127.0.0.1:" + std::to_string(tls_port_), "--tls-cert", (dir_ / "cert.pem").string(),
              "--tls-key", (dir_ / "key.pem").string()};
    node_ = std::make_unique<daemon>(o);
    ASSERT_TRUE(node_->start()) << node_->log();
  }

  void TearDown() override {
    if (node_) {
      EXPECT_EQ(node_->stop(), 0) << node_->log();
    }
    if (remote_) {
      EXPECT_EQ(remote_->stop(), 0) << remote_->log();
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(dir_ / name) << text;
    return (dir_ / name).string();
  }

  std::optional<http_response> probe(const std::string& url, const std::string& extra = {},
                                     const std::string& key = admin_key) const {
    std::vector<std::string> headers;
    if (!key.empty()) headers.push_back("Authorization: Bearer " + key);
    return http_request(node_->http_port(), "GET", "/probe?target=" + encode(url) + extra, headers, {},
                        10s);
  }

  [[nodiscard]] std::string own(const std::string& scheme, std::uint16_t port,
                                const std::string& transport) const {
    return scheme + ":127.0.0.1:" + std::to_string(port) + "?transport=" + transport;
  }

  std::string metrics() const {
    const auto r = http_request(node_->http_port(), "GET", "/metrics");
    return r ? r->body : std::string();
  }

  // An answer of a successful probe: 200, probe_success 1, the phases, no loss.
  static void expect_success(const std::optional<http_response>& r, const std::string& what) {
    ASSERT_TRUE(r) << what;
    ASSERT_EQ(r->status, 200) << what << "\n" << r->body;
    EXPECT_NE(r->headers.find("content-type: text/plain; version=0.0.4"), std::string::npos) << r->headers;
    EXPECT_EQ(metric_value(r->body, "probe_success"), 1.0) << what << "\n" << r->body;
    for (const char* phase : {"resolve", "allocate", "permission", "channel", "relay", "deallocate"}) {
      EXPECT_TRUE(metric_value(r->body, std::string("anyturn_probe_phase_duration_seconds{phase=\"") +
                                            phase + "\"}"))
          << what << ": no phase " << phase << "\n" << r->body;
    }
    EXPECT_EQ(metric_value(r->body, "anyturn_probe_loss_ratio"), 0.0) << what;
    EXPECT_TRUE(metric_value(r->body, "anyturn_probe_rtt_seconds{quantile=\"0.99\"}")) << what;
  }

  fs::path dir_;
  silent_udp silent_;
  std::uint16_t tls_port_ = 0;
  std::string config_;
  std::unique_ptr<daemon> remote_;
  std::unique_ptr<daemon> node_;
};

TEST_F(ProbeHttp, OwnListenersOnEveryTransportWithOnlyStaticUsers) {
  const std::uint16_t port = node_->address().port;
  expect_success(probe(own("turn", port, "udp")), "udp");
  expect_success(probe(own("turn", port, "udp"), "&transport=tcp"), "tcp (transport parameter)");
  expect_success(probe("turns:127.0.0.1:" + std::to_string(tls_port_) + "?transport=tcp"), "tls");
  const std::string m = metrics();
  EXPECT_EQ(metric_value(m, "anyturn_http_probes_total{result=\"success\"}"), 3.0) << m;
  EXPECT_EQ(metric_value(m, "anyturn_http_requests_total{route=\"/probe\",code=\"200\"}"), 3.0) << m;
}

TEST_F(ProbeHttp, RefusesWithoutTheKeyAndForeignTargets) {
  const std::uint16_t port = node_->address().port;
  auto r = probe(own("turn", port, "udp"), {}, "");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  r = probe(own("turn", port, "udp"), {}, "wrong-admin-key-0123456789");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  // Not a listener of this node, not in http.probe_targets.
  r = probe("turn:127.0.0.1:" + std::to_string(port + 1 == tls_port_ ? port + 2 : port + 1));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_NE(r->body.find("nor in http.probe_targets"), std::string::npos) << r->body;
  // TLS port but plain TCP: not a listener of that kind.
  r = probe("turn:127.0.0.1:" + std::to_string(tls_port_) + "?transport=tcp");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
  // Listed without credentials.
  r = probe("turn:127.0.0.1:1");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_NE(r->body.find("has no credentials"), std::string::npos) << r->body;
  r = http_request(node_->http_port(), "GET", "/probe", {"Authorization: Bearer " + admin_key});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
}

TEST_F(ProbeHttp, ListedTargetWithConfiguredCredentials) {
  expect_success(probe(own("turn", remote_->address().port, "udp")), "the second node");
}

TEST_F(ProbeHttp, ConcurrencyLimitAndMetricsStayResponsive) {
  const std::string slow = "turn:127.0.0.1:" + std::to_string(silent_.port()) + "?transport=udp";
  auto a = std::async(std::launch::async, [&] { return probe(slow); });
  auto b = std::async(std::launch::async, [&] { return probe(slow); });
  // Both are running once the gauge says so.
  const auto deadline = std::chrono::steady_clock::now() + 1500ms;
  while (metric_value(metrics(), "anyturn_http_probes_running") != 2.0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  const auto t0 = std::chrono::steady_clock::now();
  const std::string m = metrics();
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(metric_value(m, "anyturn_http_probes_running"), 2.0) << m;
  EXPECT_LT(took, 500ms) << "/metrics waited for a probe";
  const auto third = probe(own("turn", node_->address().port, "udp"));
  ASSERT_TRUE(third);
  EXPECT_EQ(third->status, 429) << third->body;
  EXPECT_NE(third->headers.find("retry-after: 2"), std::string::npos) << third->headers;
  for (auto* f : {&a, &b}) {
    const auto r = f->get();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;  // a failed probe is still 200
    EXPECT_EQ(metric_value(r->body, "probe_success"), 0.0) << r->body;
  }
  const std::string after = metrics();
  EXPECT_EQ(metric_value(after, "anyturn_http_probes_total{result=\"failure\"}"), 2.0) << after;
  EXPECT_EQ(metric_value(after, "anyturn_http_probes_total{result=\"rejected\"}"), 1.0) << after;
  EXPECT_EQ(metric_value(after, "anyturn_http_requests_total{route=\"/probe\",code=\"429\"}"), 1.0);
}

TEST_F(ProbeHttp, SelfProbingSurvivesAReload) {
  const auto r = http_request(node_->http_port(), "POST", "/admin/reload",
                              {"Authorization: Bearer " + admin_key});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  expect_success(probe(own("turn", node_->address().port, "udp")), "udp after a reload");
}

}  // namespace
}  // namespace anyturn::itest
