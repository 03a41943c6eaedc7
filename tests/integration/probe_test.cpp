// anyturn::probe::run against the real daemon on loopback (UDP, TCP and
// TLS listeners, a self-signed certificate): the three transports pass
// end to end; a wrong password fails in allocate, a closed port in
// connect, an untrusted certificate or another name in tls, a silent UDP socket with
// "timeout after"; REST credentials minted from the daemon's secret pass.
#include "daemon.hpp"
#include "loopback_socket.hpp"

#include <anyturn/net/tls.hpp>
#include <anyturn/probe/probe.hpp>

#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>

namespace anyturn::itest {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr const char* secret = "probe-integration-secret";

class Probe : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string tmpl = (fs::temp_directory_path() / "anyturn-probe-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    const std::vector<stun::endpoint> ips{stun::endpoint::v4(0x7F000001u, 0)};
    const std::vector<std::string> dns{"probe.test"};
    std::string error;
    const auto pem = net::make_self_signed(ips, dns, std::chrono::hours{24}, error);
    ASSERT_TRUE(pem) << error;
    std::ofstream(dir_ / "cert.pem") << pem->certificate;
    std::ofstream(dir_ / "key.pem") << pem->private_key;
    tls_port_ = free_port(false);
    daemon::options o;
    o.args = {"--relay-ip", "127.0.0.1", "--relay-ports", relay_ports_for_slot(180).flag(),
              "--user", "alice:wonderland", "--auth-secret", secret, "--allow-peer", "127.0.0.1/32",
              "--threads", "2", "--tls-listen", "127.0.0.1:" + std::to_string(tls_port_),
              "--tls-cert", (dir_ / "cert.pem").string(), "--tls-key", (dir_ / "key.pem").string()};
    daemon_ = std::make_unique<daemon>(o);
    ASSERT_TRUE(daemon_->start()) << daemon_->log();
  }
  static void TearDownTestSuite() {
    if (daemon_) {
      EXPECT_EQ(daemon_->stop(), 0) << daemon_->log();
    }
    daemon_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  void SetUp() override { ASSERT_TRUE(daemon_ && daemon_->running()); }

  static probe::target url(const std::string& text) {
    std::string error;
    const auto t = probe::parse_url(text, error);
    EXPECT_TRUE(t) << text << ": " << error;
    return t.value_or(probe::target{});
  }
  static std::string port() { return std::to_string(daemon_->address().port); }
  static std::string tls_port() { return std::to_string(tls_port_); }
  static probe::options alice() {
    probe::options o;
    o.auth = probe::credentials{"alice", "wonderland"};
    o.count = 20;
    o.interval = 2ms;
    o.ca_file = (dir_ / "cert.pem").string();
    return o;
  }
  static void expect_pass(const probe::report& r, const probe::options& o) {
    EXPECT_TRUE(r.success) << r.url << ": " << r.error << "\n" << probe::format_text(r) << daemon_->log();
    EXPECT_EQ(r.error, "");
    EXPECT_EQ(r.relayed.size(), 2u);
    EXPECT_EQ(r.sent, 2 * o.count);
    EXPECT_EQ(r.received, r.sent);
    EXPECT_EQ(r.loss, 0.0);
    ASSERT_TRUE(r.rtt.has_value());
    EXPECT_GT(r.rtt->max.count(), 0);
    EXPECT_LE(r.rtt->p50, r.rtt->p99);
    EXPECT_FALSE(r.software.empty());
    EXPECT_FALSE(r.mapped.empty());
    ASSERT_FALSE(r.phases.empty());
    EXPECT_EQ(r.phases.back().which, probe::phase::deallocate);
    for (const auto& p : r.phases) EXPECT_TRUE(p.ok) << probe::phase_name(p.which);
  }

  static inline fs::path dir_;
  static inline std::uint16_t tls_port_ = 0;
  static inline std::unique_ptr<daemon> daemon_;
};

TEST_F(Probe, udp_passes) {
  const auto o = alice();
  expect_pass(probe::run(url("turn:127.0.0.1:" + port() + "?transport=udp"), o), o);
}

TEST_F(Probe, tcp_passes) {
  const auto o = alice();
  expect_pass(probe::run(url("turn:127.0.0.1:" + port() + "?transport=tcp"), o), o);
}

TEST_F(Probe, tls_passes_with_the_right_ca) {
  const auto o = alice();
  const auto r = probe::run(url("turns:127.0.0.1:" + tls_port() + "?transport=tcp"), o);
  expect_pass(r, o);
  EXPECT_EQ(r.phases[2].which, probe::phase::tls);
}

TEST_F(Probe, rest_credentials_from_the_shared_secret_pass) {
  auto o = alice();
  o.auth = probe::rest_credentials(secret, "probe", 600, static_cast<std::int64_t>(std::time(nullptr)));
  expect_pass(probe::run(url("turn:127.0.0.1:" + port()), o), o);
}

TEST_F(Probe, stun_binding_passes) {
  const auto r = probe::run(url("stun:127.0.0.1:" + port()), probe::options{});
  EXPECT_TRUE(r.success) << r.error;
  EXPECT_EQ(r.mapped.rfind("127.0.0.1:", 0), 0u) << r.mapped;
  EXPECT_EQ(r.phases.back().which, probe::phase::binding);
}

TEST_F(Probe, wrong_password_fails_in_allocate) {
  for (const std::string& u : {"turn:127.0.0.1:" + port() + "?transport=udp",
                              "turn:127.0.0.1:" + port() + "?transport=tcp"}) {
    auto o = alice();
    o.auth->password = "not-the-password";
    const auto r = probe::run(url(u), o);
    EXPECT_FALSE(r.success);
    EXPECT_EQ(r.phases.back().which, probe::phase::allocate);
    // anyturn answers a wrong password with 401 (RFC 8489 §9.2.4), coturn with 401 or 441.
    EXPECT_EQ(r.error.rfind("allocate: 401 Unauthorized", 0), 0u) << r.error;
    EXPECT_TRUE(r.relayed.empty());
  }
}

TEST_F(Probe, closed_port_fails_in_connect) {
  const test::loopback_socket closed(SOCK_STREAM);  // bound, not listening
  const auto r = probe::run(url("turn:127.0.0.1:" + closed.port_text() + "?transport=tcp"), alice());
  EXPECT_FALSE(r.success);
  EXPECT_EQ(r.error, "connect: connection refused");
  EXPECT_EQ(r.phases.back().which, probe::phase::connect);
}

TEST_F(Probe, untrusted_certificate_fails_in_tls) {
  auto o = alice();
  o.ca_file.clear();  // the system store does not know our self-signed certificate
  const auto r = probe::run(url("turns:127.0.0.1:" + tls_port()), o);
  EXPECT_FALSE(r.success);
  EXPECT_EQ(r.phases.back().which, probe::phase::tls);
  EXPECT_EQ(r.error.rfind("tls: certificate verify failed (", 0), 0u) << r.error;
  // --insecure skips the checks.
  o.insecure = true;
  expect_pass(probe::run(url("turns:127.0.0.1:" + tls_port()), o), o);
}

TEST_F(Probe, name_mismatch_fails_in_tls) {
  // The certificate names 127.0.0.1 and probe.test, not localhost. ("localhost"
  // may resolve to ::1 first, where nothing listens: the next address is tried.)
  const auto r = probe::run(url("turns:localhost:" + tls_port()), alice());
  EXPECT_FALSE(r.success);
  EXPECT_EQ(r.phases.back().which, probe::phase::tls);
  EXPECT_EQ(r.error, "tls: certificate verify failed (hostname mismatch)");
}

TEST_F(Probe, silent_udp_socket_times_out) {
  const test::loopback_socket silent(SOCK_DGRAM);
  auto o = alice();
  o.timeout = 1s;
  const auto r = probe::run(url("turn:127.0.0.1:" + silent.port_text()), o);
  EXPECT_FALSE(r.success);
  EXPECT_EQ(r.error, "timeout after 1 s in allocate");
  EXPECT_LT(r.duration, 2s);
}

}  // namespace
}  // namespace anyturn::itest
