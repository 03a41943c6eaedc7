// TURN over DTLS 1.2 against the real daemon on loopback (--dtls-listen):
// a handshake (with its cookie exchange) and an Allocate relaying both ways
// with unpadded ChannelData; garbage datagrams and a ClientHello without a
// cookie leave no session behind (HelloVerifyRequest smaller than the
// ClientHello: no amplification); the handshake and idle timeouts; the
// per-address session limit; the certificate reloaded on SIGHUP; IPv6.
#include "daemon.hpp"
#include "dtls_client.hpp"
#include "turn_client.hpp"

#include <gtest/gtest.h>

#include <anyturn/net/tls.hpp>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <csignal>

#include <array>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

namespace anyturn::itest {
namespace {

namespace fs = std::filesystem;
using clock = std::chrono::steady_clock;

const credentials alice{"alice", "wonderland-dtls-1", false};

// The daemon with UDP on one port and DTLS on another, its development
// certificate, and an optional config file for the dtls.* timeouts.
class dtls_server {
 public:
  dtls_server(unsigned slot, const std::string& config_yaml = {},
              const std::vector<std::string>& extra_args = {})
      : ports_(relay_ports_for_slot(slot)) {
    dtls_port_ = free_port(false);
    daemon::options o;
    o.args = {"--relay-ip", "127.0.0.1", "--relay-ports", ports_.flag(), "--user",
              alice.username + ":" + alice.password, "--allow-peer", "127.0.0.1", "--threads", "2",
              "--dtls-listen", "127.0.0.1:" + std::to_string(dtls_port_), "--log-level", "debug"};
    if (!config_yaml.empty()) {
      config_path_ = (fs::temp_directory_path() / ("anyturn-dtls-" + std::to_string(dtls_port_) + ".yaml")).string();
      std::ofstream(config_path_) << config_yaml;
      o.args.push_back("--config");
      o.args.push_back(config_path_);
    }
    o.args.insert(o.args.end(), extra_args.begin(), extra_args.end());
    daemon_ = std::make_unique<daemon>(o);
  }
  ~dtls_server() {
    if (!config_path_.empty()) std::remove(config_path_.c_str());
  }

  bool start() { return daemon_->start(); }
  [[nodiscard]] stun::endpoint dtls() const { return v4_loopback(dtls_port_); }
  daemon& d() { return *daemon_; }

  // One sample of /metrics (-1 when missing).
  double metric(const std::string& series) {
    auto r = http_request(daemon_->http_port(), "GET", "/metrics");
    if (!r || r->status != 200) return -1;
    return metric_value(r->body, series).value_or(-1);
  }
  // Waits up to `limit` for `series` to reach `value`.
  bool metric_becomes(const std::string& series, double value, std::chrono::milliseconds limit) {
    const auto deadline = clock::now() + limit;
    do {
      if (metric(series) == value) return true;
      std::this_thread::sleep_for(50ms);
    } while (clock::now() < deadline);
    return false;
  }

  std::string stop() {
    EXPECT_EQ(daemon_->stop(), 0) << daemon_->log();
    return daemon_->log();
  }

 private:
  port_range ports_;
  std::uint16_t dtls_port_ = 0;
  std::string config_path_;
  std::unique_ptr<daemon> daemon_;
};

const std::string handshakes = "anyturn_dtls_handshakes_total";
std::string result(const char* r) { return handshakes + "{result=\"" + r + "\"}"; }
const std::string sessions_open = "anyturn_dtls_sessions_open";

// An OpenSSL DTLS client on memory BIOs: what it would send, datagram by
// datagram, without a socket (a bare ClientHello, a half handshake).
class scripted_client {
 public:
  scripted_client() {
    ctx_ = SSL_CTX_new(DTLS_client_method());
    ssl_ = SSL_new(ctx_);
    in_ = BIO_new(BIO_s_mem());
    out_ = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(in_, -1);
    SSL_set_bio(ssl_, in_, out_);
    SSL_set_connect_state(ssl_);
  }
  ~scripted_client() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
  }
  // Feeds one datagram from the server (or none) and returns what the
  // client sends next.
  bytes step(const std::optional<bytes>& from_server = std::nullopt) {
    if (from_server) BIO_write(in_, from_server->data(), static_cast<int>(from_server->size()));
    SSL_do_handshake(ssl_);
    bytes out(static_cast<std::size_t>(BIO_ctrl_pending(out_)));
    if (!out.empty()) BIO_read(out_, out.data(), static_cast<int>(out.size()));
    return out;
  }

 private:
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  BIO* in_ = nullptr;
  BIO* out_ = nullptr;
};

// A raw UDP socket toward the DTLS port.
std::unique_ptr<dtls_client> raw_socket(const stun::endpoint& server) {
  return std::make_unique<dtls_client>(server);
}

bool is_hello_verify_request(const bytes& d) {
  return d.size() > 13 && static_cast<std::uint8_t>(d[0]) == 22 && static_cast<std::uint8_t>(d[13]) == 3;
}

TEST(dtls, handshake_allocate_and_relay_both_ways) {
  dtls_server server(40);
  ASSERT_TRUE(server.start()) << server.d().log();

  dtls_client c(server.dtls());
  ASSERT_TRUE(c.connect()) << c.last_error() << "\n" << server.d().log();
  c.set_credentials(alice);
  auto alloc = c.allocate();
  ASSERT_TRUE(alloc && alloc->is_success()) << describe(alloc);
  const auto relayed = alloc->address(stun::attr::xor_relayed_address);
  ASSERT_TRUE(relayed);
  const auto mapped = alloc->address(stun::attr::xor_mapped_address);
  ASSERT_TRUE(mapped);
  EXPECT_EQ(*mapped, c.local()) << "XOR-MAPPED-ADDRESS is the DTLS client's own address";

  udp_socket peer(v4_loopback());
  auto bound = c.channel_bind(0x4001, peer.local());
  ASSERT_TRUE(bound && bound->is_success()) << describe(bound);

  // Client -> peer: ChannelData of 5 bytes, unpadded, as one record.
  bytes cd(4 + 5);
  stun::write_channel_data_header(cd, 0x4001, 5);
  std::memcpy(cd.data() + 4, "hello", 5);
  ASSERT_TRUE(c.send_record(cd));
  auto got = peer.recv(2s);
  ASSERT_TRUE(got);
  EXPECT_EQ(to_string(got->data), "hello");
  EXPECT_EQ(got->from, *relayed);

  // Peer -> client: ChannelData without padding (datagram transport).
  peer.send_to(*relayed, to_bytes("world!!"));
  auto rec = c.recv_record(2s);
  ASSERT_TRUE(rec);
  ASSERT_EQ(rec->size(), 4u + 7u) << "no stream padding over DTLS";
  auto data = decode_relayed(*rec);
  ASSERT_TRUE(data);
  EXPECT_EQ(data->channel, 0x4001);
  EXPECT_EQ(to_string(data->payload), "world!!");

  // A full-size media packet both ways: one record each, past the
  // handshake's 1200-byte fragment size.
  const bytes big(1400, std::byte{0x5A});
  bytes big_cd(4 + big.size());
  stun::write_channel_data_header(big_cd, 0x4001, static_cast<std::uint16_t>(big.size()));
  std::memcpy(big_cd.data() + 4, big.data(), big.size());
  ASSERT_TRUE(c.send_record(big_cd));
  auto got_big = peer.recv(2s);
  ASSERT_TRUE(got_big);
  EXPECT_EQ(got_big->data, big);
  peer.send_to(*relayed, big);
  auto rec_big = c.recv_record(2s);
  ASSERT_TRUE(rec_big) << "the server could not send a 1404-byte record";
  EXPECT_EQ(rec_big->size(), 4u + big.size());

  EXPECT_GE(server.metric(result("ok")), 1);
  EXPECT_GE(server.metric(result("cookie_sent")), 1) << "the handshake went through a HelloVerifyRequest";
  EXPECT_EQ(server.metric(sessions_open), 1);
  EXPECT_EQ(server.metric("anyturn_allocations_active{transport=\"dtls\"}"), 1);

  // close_notify from the client ends the session and its allocation.
  c.shutdown();
  EXPECT_TRUE(server.metric_becomes(sessions_open, 0, 3s));
  EXPECT_TRUE(server.metric_becomes("anyturn_allocations_active{transport=\"dtls\"}", 0, 3s));
  const std::string log = server.stop();
  EXPECT_NE(log.find("allocation start: dtls"), std::string::npos) << log;
}

TEST(dtls, garbage_and_a_client_hello_without_cookie_cost_no_state) {
  dtls_server server(41);
  ASSERT_TRUE(server.start()) << server.d().log();
  auto sock = raw_socket(server.dtls());

  // Garbage: not DTLS at all, and a handshake record that is not a ClientHello.
  const bytes junk = to_bytes("definitely not a DTLS record, just bytes");
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(sock->send_plain(junk));
  bytes fake(40, std::byte{0});
  fake[0] = std::byte{22};
  fake[1] = std::byte{0xFE};
  fake[2] = std::byte{0xFD};
  ASSERT_TRUE(sock->send_plain(fake));
  EXPECT_FALSE(sock->recv_plain(300ms)) << "garbage gets no answer";
  EXPECT_TRUE(server.metric_becomes("anyturn_dropped_packets_total{reason=\"dtls_garbage\"}", 21, 2s))
      << server.metric("anyturn_dropped_packets_total{reason=\"dtls_garbage\"}");

  // A ClientHello without a cookie: a HelloVerifyRequest, smaller than the
  // ClientHello, and still no session.
  scripted_client hello;
  const bytes client_hello = hello.step();
  ASSERT_FALSE(client_hello.empty());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(sock->send_plain(client_hello));
    auto hvr = sock->recv_plain(2s);
    ASSERT_TRUE(hvr);
    EXPECT_TRUE(is_hello_verify_request(*hvr));
    EXPECT_LT(hvr->size(), client_hello.size()) << "no amplification";
  }
  EXPECT_EQ(server.metric(result("cookie_sent")), 5);
  EXPECT_EQ(server.metric(result("ok")), 0);
  EXPECT_EQ(server.metric(sessions_open), 0) << "nothing is kept before the cookie comes back";

  // A ClientHello with a wrong cookie: counted, answered, no session.
  // `other` answers a HelloVerifyRequest that was meant for another socket:
  // a cookie made for another address does not verify for this one.
  scripted_client other;
  other.step();  // its first ClientHello, not sent
  auto sock2 = raw_socket(server.dtls());
  scripted_client third;
  ASSERT_TRUE(sock2->send_plain(third.step()));
  auto hvr2 = sock2->recv_plain(2s);
  ASSERT_TRUE(hvr2);
  const bytes with_foreign_cookie = other.step(hvr2);
  ASSERT_FALSE(with_foreign_cookie.empty());
  ASSERT_TRUE(sock->send_plain(with_foreign_cookie));
  auto again = sock->recv_plain(2s);
  ASSERT_TRUE(again);
  EXPECT_TRUE(is_hello_verify_request(*again)) << "a bad cookie is answered like no cookie";
  EXPECT_EQ(server.metric(result("bad_cookie")), 1);
  EXPECT_EQ(server.metric(sessions_open), 0);

  // A real client is still served.
  dtls_client c(server.dtls());
  ASSERT_TRUE(c.connect()) << c.last_error();
  c.set_credentials(alice);
  auto alloc = c.allocate();
  EXPECT_TRUE(alloc && alloc->is_success()) << describe(alloc);
  EXPECT_EQ(server.metric(sessions_open), 1);
  server.stop();
}

TEST(dtls, half_handshake_times_out) {
  dtls_server server(42, "dtls:\n  handshake_timeout: 1\n");
  ASSERT_TRUE(server.start()) << server.d().log();
  auto sock = raw_socket(server.dtls());
  scripted_client half;
  ASSERT_TRUE(sock->send_plain(half.step()));
  auto hvr = sock->recv_plain(2s);
  ASSERT_TRUE(hvr && is_hello_verify_request(*hvr));
  // The ClientHello with the cookie: the server starts a session and sends
  // its flight; the client never answers.
  ASSERT_TRUE(sock->send_plain(half.step(hvr)));
  auto flight = sock->recv_plain(2s);
  ASSERT_TRUE(flight) << "ServerHello flight";
  EXPECT_TRUE(server.metric_becomes(sessions_open, 1, 2s));
  EXPECT_TRUE(server.metric_becomes(result("timeout"), 1, 4s)) << server.d().log();
  EXPECT_EQ(server.metric(sessions_open), 0);
  EXPECT_EQ(server.metric(result("ok")), 0);
  server.stop();
}

TEST(dtls, idle_session_is_closed_and_its_allocation_freed) {
  dtls_server server(43, "dtls:\n  idle_timeout: 2\n");
  ASSERT_TRUE(server.start()) << server.d().log();
  dtls_client c(server.dtls());
  ASSERT_TRUE(c.connect()) << c.last_error();
  c.set_credentials(alice);
  auto alloc = c.allocate();
  ASSERT_TRUE(alloc && alloc->is_success()) << describe(alloc);
  EXPECT_EQ(server.metric("anyturn_allocations_active{transport=\"dtls\"}"), 1);
  const auto start = clock::now();
  EXPECT_TRUE(c.wait_closed(6s)) << "the server sends close_notify";
  EXPECT_GE(clock::now() - start, 1500ms) << "not before the idle timeout";
  EXPECT_EQ(server.metric("anyturn_dtls_sessions_closed_total{reason=\"idle_timeout\"}"), 1);
  EXPECT_EQ(server.metric(sessions_open), 0);
  EXPECT_EQ(server.metric("anyturn_allocations_active{transport=\"dtls\"}"), 0);
  server.stop();
}

TEST(dtls, ipv6_handshake_and_allocate) {
  if (!ipv6_loopback_usable()) GTEST_SKIP() << "::1 is not usable here";
  const port_range ports = relay_ports_for_slot(46);
  const std::uint16_t port = free_port(true);
  daemon::options o;
  o.ipv6 = true;
  o.args = {"--relay-ip", "::1", "--relay-ports", ports.flag(), "--user", alice.username + ":" + alice.password,
            "--allow-peer", "::1/128", "--dtls-listen", "[::1]:" + std::to_string(port)};
  daemon d(o);
  ASSERT_TRUE(d.start()) << d.log();
  std::array<std::uint8_t, 16> loopback{};
  loopback[15] = 1;
  dtls_client c(stun::endpoint::v6(loopback, port));
  ASSERT_TRUE(c.connect()) << c.last_error() << "\n" << d.log();
  c.set_credentials(alice);
  auto alloc = c.request(stun::method::allocate, [](stun::message_builder& b) {
    b.add_requested_transport(17);
    b.add_address_family(stun::attr::requested_address_family, stun::address_family::ipv6);
  });
  ASSERT_TRUE(alloc && alloc->is_success()) << describe(alloc);
  const auto relayed = alloc->address(stun::attr::xor_relayed_address);
  ASSERT_TRUE(relayed);
  EXPECT_FALSE(relayed->is_v4());
  EXPECT_EQ(alloc->address(stun::attr::xor_mapped_address), c.local());
  c.shutdown();
  EXPECT_EQ(d.stop(), 0) << d.log();
}

TEST(dtls, sessions_count_against_the_per_address_limit) {
  dtls_server server(44, "streams:\n  max_connections_per_ip: 1\n");
  ASSERT_TRUE(server.start()) << server.d().log();
  dtls_client first(server.dtls());
  ASSERT_TRUE(first.connect()) << first.last_error();
  // A second session from 127.0.0.1: refused once its cookie checks out.
  dtls_client second(server.dtls());
  EXPECT_FALSE(second.connect(1500ms));
  EXPECT_GE(server.metric(result("limit")), 1);
  EXPECT_EQ(server.metric(sessions_open), 1);
  // The first session still works; once it ends, the address may open another.
  first.set_credentials(alice);
  auto alloc = first.allocate();
  EXPECT_TRUE(alloc && alloc->is_success()) << describe(alloc);
  first.shutdown();
  ASSERT_TRUE(server.metric_becomes(sessions_open, 0, 3s));
  dtls_client third(server.dtls());
  EXPECT_TRUE(third.connect()) << third.last_error();
  server.stop();
}

// The DER of the first certificate in a PEM text.
std::string der_of(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (cert == nullptr) return {};
  unsigned char* der = nullptr;
  const int len = i2d_X509(cert, &der);
  std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(std::max(len, 0)));
  OPENSSL_free(der);
  X509_free(cert);
  return out;
}

TEST(dtls, sighup_reloads_the_certificate_for_new_handshakes) {
  const fs::path dir = fs::temp_directory_path() / ("anyturn-dtls-cert-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::vector<stun::endpoint> ips{v4_loopback()};
  const std::vector<std::string> dns{"localhost"};
  std::string error;
  auto one = net::make_self_signed(ips, dns, std::chrono::hours{24}, error);
  auto two = net::make_self_signed(ips, dns, std::chrono::hours{24}, error);
  ASSERT_TRUE(one && two) << error;
  const std::string cert = (dir / "cert.pem").string();
  const std::string key = (dir / "key.pem").string();
  std::ofstream(cert) << one->certificate;
  std::ofstream(key) << one->private_key;

  dtls_server server(45, {}, {"--tls-cert", cert, "--tls-key", key});
  ASSERT_TRUE(server.start()) << server.d().log();
  dtls_client before(server.dtls());
  ASSERT_TRUE(before.connect()) << before.last_error();
  EXPECT_EQ(before.peer_certificate_der(), der_of(one->certificate));

  std::ofstream(cert, std::ios::trunc) << two->certificate;
  std::ofstream(key, std::ios::trunc) << two->private_key;
  ASSERT_TRUE(server.d().signal(SIGHUP));
  const auto deadline = clock::now() + 5s;
  while (server.d().log().find("TLS: reloaded") == std::string::npos && clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_NE(server.d().log().find("TLS: reloaded"), std::string::npos) << server.d().log();
  std::this_thread::sleep_for(200ms);  // the workers take the new context between rounds

  dtls_client after(server.dtls());
  ASSERT_TRUE(after.connect()) << after.last_error();
  EXPECT_EQ(after.peer_certificate_der(), der_of(two->certificate));
  // The session that started before keeps working.
  before.set_credentials(alice);
  auto alloc = before.allocate();
  EXPECT_TRUE(alloc && alloc->is_success()) << describe(alloc);
  server.stop();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace anyturn::itest
