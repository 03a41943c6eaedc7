// The PROXY protocol (src/net/proxy_protocol.cpp, read by the stream
// sessions) against the real daemon on loopback: a TCP and a TLS listener
// with --proxy-protocol trusting 127.0.0.1 only. The client address of a v1
// or v2 header is the client for XOR-MAPPED-ADDRESS and the per-address
// connection limit; LOCAL keeps the connection's own address; an untrusted
// source and a malformed header close the connection and are counted
// (anyturn_proxy_protocol_rejected_total{reason}).
#include "daemon.hpp"
#include "stream_client.hpp"
#include "turn_client.hpp"

#include <anyturn/net/tls.hpp>
#include <anyturn/stun/message.hpp>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace anyturn::itest {
namespace {

namespace fs = std::filesystem;

const credentials alice{"alice", "wonderland", false};

bytes text_bytes(std::string_view text) {
  bytes out;
  for (char c : text) out.push_back(static_cast<std::byte>(c));
  return out;
}

// A PROXY v2 header: PROXY (or LOCAL) over TCP/IPv4 from `client` to `server`.
bytes proxy_v2(const stun::endpoint& client, const stun::endpoint& server, bool local = false) {
  bytes out = {std::byte{0x0D}, std::byte{0x0A}, std::byte{0x0D}, std::byte{0x0A},
               std::byte{0x00}, std::byte{0x0D}, std::byte{0x0A}, std::byte{0x51},
               std::byte{0x55}, std::byte{0x49}, std::byte{0x54}, std::byte{0x0A}};
  out.push_back(std::byte{static_cast<unsigned char>(local ? 0x20 : 0x21)});
  out.push_back(std::byte{0x11});
  out.push_back(std::byte{0x00});
  out.push_back(std::byte{12});
  for (const auto* ep : {&client, &server}) {
    for (std::size_t i = 0; i < 4; ++i) out.push_back(std::byte{ep->ip[i]});
  }
  for (const auto* ep : {&client, &server}) {
    out.push_back(std::byte{static_cast<unsigned char>(ep->port >> 8)});
    out.push_back(std::byte{static_cast<unsigned char>(ep->port & 0xFF)});
  }
  return out;
}

class proxy_server {
 public:
  explicit proxy_server(unsigned slot, const std::string& yaml = {}) : ports_(relay_ports_for_slot(slot)) {
    std::string tmpl = (fs::temp_directory_path() / "anyturn-proxy-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    std::string error;
    const std::vector<stun::endpoint> ips{stun::endpoint::v4(0x7F000001u, 0)};
    const std::vector<std::string> dns{"localhost"};
    auto pem = net::make_self_signed(ips, dns, std::chrono::hours{24}, error);
    if (!pem) throw std::runtime_error("make_self_signed: " + error);
    std::ofstream(dir_ / "cert.pem") << pem->certificate;
    std::ofstream(dir_ / "key.pem") << pem->private_key;
    tls_port_ = free_port(false);
    daemon::options o;
    // The daemon's own --listen comes first: --proxy-protocol applies to it.
    o.args = {"--proxy-protocol", "--proxy-trusted", "127.0.0.1/32", "--relay-ip", "127.0.0.1",
              "--relay-ports", ports_.flag(), "--user", alice.username + ":" + alice.password,
              "--threads", "2", "--tls-listen", "127.0.0.1:" + std::to_string(tls_port_),
              "--proxy-protocol", "--proxy-trusted", "127.0.0.1/32", "--tls-cert",
              (dir_ / "cert.pem").string(), "--tls-key", (dir_ / "key.pem").string(),
              "--log-level", "debug"};
    if (!yaml.empty()) {
      std::ofstream(dir_ / "anyturn.yaml") << yaml;
      o.args.push_back("--config");
      o.args.push_back((dir_ / "anyturn.yaml").string());
    }
    daemon_ = std::make_unique<daemon>(o);
  }
  ~proxy_server() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  bool start() { return daemon_->start(); }
  [[nodiscard]] stun::endpoint tcp() const { return daemon_->address(); }
  [[nodiscard]] stun::endpoint tls() const { return stun::endpoint::v4(0x7F000001u, tls_port_); }
  daemon& d() { return *daemon_; }

  // A connection from `from` that sends `preamble` first.
  std::unique_ptr<stream_client> connect(bool tls_on, const bytes& preamble,
                                         const stun::endpoint& from = v4_loopback()) {
    stream_client::options o;
    o.tls = tls_on;
    o.bind = from;
    o.preamble = preamble;
    auto c = std::make_unique<stream_client>(tls_on ? tls() : tcp(), o);
    EXPECT_TRUE(c->connect()) << c->last_error();
    c->set_credentials(alice);
    return c;
  }

  double metric(const std::string& series) {
    auto r = http_request(daemon_->http_port(), "GET", "/metrics");
    if (!r || r->status != 200) return -1;
    return metric_value(r->body, series).value_or(-1);
  }

 private:
  fs::path dir_;
  port_range ports_;
  std::uint16_t tls_port_ = 0;
  std::unique_ptr<daemon> daemon_;
};

const stun::endpoint real_client = stun::endpoint::v4(0xC6336407u, 40000);  // 198.51.100.7:40000

TEST(proxy_protocol, the_client_of_a_v2_header_is_the_mapped_address_over_tcp_and_tls) {
  proxy_server server(230);
  ASSERT_TRUE(server.start()) << server.d().log();
  for (bool tls_on : {false, true}) {
    auto c = server.connect(tls_on, proxy_v2(real_client, tls_on ? server.tls() : server.tcp()));
    auto r = c->binding();
    ASSERT_TRUE(r && r->is_success()) << describe(r) << "\n" << server.d().log();
    EXPECT_EQ(r->address(stun::attr::xor_mapped_address), real_client) << (tls_on ? "TLS" : "TCP");
    // An allocation works on top of it, and names the same client.
    auto a = c->allocate();
    ASSERT_TRUE(a && a->is_success()) << describe(a);
    EXPECT_EQ(a->address(stun::attr::xor_mapped_address), real_client);
  }
  EXPECT_EQ(server.metric("anyturn_proxy_protocol_accepted_total"), 2);
  EXPECT_EQ(server.d().stop(), 0);
}

TEST(proxy_protocol, v1_names_the_client_and_local_keeps_the_connections_own_address) {
  proxy_server server(231);
  ASSERT_TRUE(server.start()) << server.d().log();
  auto v1 = server.connect(
      false, text_bytes("PROXY TCP4 203.0.113.9 127.0.0.1 5555 " + std::to_string(server.tcp().port) + "\r\n"));
  auto r = v1->binding();
  ASSERT_TRUE(r && r->is_success()) << describe(r);
  EXPECT_EQ(r->address(stun::attr::xor_mapped_address), stun::endpoint::v4(0xCB007109u, 5555));

  auto local = server.connect(false, proxy_v2(real_client, server.tcp(), true));
  r = local->binding();
  ASSERT_TRUE(r && r->is_success()) << describe(r);
  EXPECT_EQ(r->address(stun::attr::xor_mapped_address), local->local());
  EXPECT_EQ(server.metric("anyturn_proxy_protocol_accepted_total"), 2);
  EXPECT_EQ(server.d().stop(), 0);
}

TEST(proxy_protocol, untrusted_source_and_malformed_headers_are_closed_and_counted) {
  proxy_server server(232);
  ASSERT_TRUE(server.start()) << server.d().log();
  const stun::endpoint untrusted = stun::endpoint::v4(0x7F000002u, 0);  // 127.0.0.2
  for (bool tls_on : {false, true}) {
    // Refused at accept, before any TLS: a plain TCP connection shows it.
    stream_client::options o;
    o.bind = untrusted;
    o.preamble = proxy_v2(real_client, server.tcp());
    stream_client c(tls_on ? server.tls() : server.tcp(), o);
    if (c.connect()) {
      EXPECT_TRUE(c.wait_closed(std::chrono::seconds{3}));
    }
  }
  // Not a header at all (a plain STUN Binding request), and a broken v1 line.
  auto plain = server.connect(false, {});
  plain->send_raw(plain->build_request(stun::method::binding, nullptr, false));
  EXPECT_TRUE(plain->wait_closed(std::chrono::seconds{3}));
  auto broken = server.connect(false, text_bytes("PROXY TCP4 1.2.3 4.5.6.7 1 2\r\n"));
  EXPECT_TRUE(broken->wait_closed(std::chrono::seconds{3}));
  // A TLS ClientHello without a header on the TLS proxy listener.
  {
    stream_client::options o;
    o.tls = true;
    stream_client hello(server.tls(), o);
    EXPECT_FALSE(hello.connect(std::chrono::seconds{3}));
  }
  EXPECT_EQ(server.metric(R"(anyturn_proxy_protocol_rejected_total{reason="untrusted"})"), 2);
  EXPECT_EQ(server.metric(R"(anyturn_proxy_protocol_rejected_total{reason="malformed"})"), 3);
  EXPECT_EQ(server.metric("anyturn_proxy_protocol_accepted_total"), 0);
  // Trusted clients are still served.
  auto ok = server.connect(false, proxy_v2(real_client, server.tcp()));
  auto r = ok->binding();
  ASSERT_TRUE(r && r->is_success()) << describe(r);
  EXPECT_EQ(server.d().stop(), 0);
}

TEST(proxy_protocol, the_per_address_connection_limit_counts_the_header_client) {
  proxy_server server(233, "streams:\n  max_connections_per_ip: 2\n");
  ASSERT_TRUE(server.start()) << server.d().log();
  std::vector<std::unique_ptr<stream_client>> held;
  for (int i = 0; i < 2; ++i) {
    held.push_back(server.connect(false, proxy_v2(real_client, server.tcp())));
    auto r = held.back()->binding();
    ASSERT_TRUE(r && r->is_success()) << describe(r);
  }
  // All come from 127.0.0.1; the third from the same header client is refused.
  auto third = server.connect(false, proxy_v2(real_client, server.tcp()));
  EXPECT_TRUE(third->wait_closed(std::chrono::seconds{3}));
  EXPECT_EQ(server.metric(R"(anyturn_connections_total{result="refused_per_ip_limit"})"), 1);
  // Another client behind the same balancer is served.
  auto other = server.connect(false, proxy_v2(stun::endpoint::v4(0xC6336408u, 1), server.tcp()));
  auto r = other->binding();
  ASSERT_TRUE(r && r->is_success()) << describe(r);
  EXPECT_EQ(server.d().stop(), 0);
}

}  // namespace
}  // namespace anyturn::itest
