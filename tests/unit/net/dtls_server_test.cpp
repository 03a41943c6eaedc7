// The worker's DTLS server (src/net/dtls_server.hpp) in-process: an OpenSSL
// DTLS client on memory BIOs talks to it through a recording host, so the
// tests see every datagram, every record delivered and every session end.
#include "../../../src/net/dtls_server.hpp"

#include "allocation_counter.hpp"

#include <anyturn/net/tls.hpp>

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>

#include <array>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

namespace anyturn::net::detail {
namespace {

using bytes = std::vector<std::byte>;
using namespace std::chrono_literals;

const stun::endpoint client_addr = stun::endpoint::v4(0xC0000201u, 40000);  // 192.0.2.1:40000
const stun::endpoint server_addr = stun::endpoint::v4(0xC0000202u, 5349);

// Records what the server does; the last datagram and record also land in
// fixed buffers, so the record path can be measured for allocations.
struct recording_host final : dtls_host {
  std::vector<bytes> sent;  // datagrams toward the client (only while `keep`)
  bool keep = true;
  std::array<std::byte, 65536> last_sent{};
  std::size_t last_sent_size = 0;
  std::size_t sent_count = 0;
  stun::endpoint last_to;
  std::array<std::byte, 65536> last_record{};
  std::size_t last_record_size = 0;
  std::size_t delivered = 0;
  relay::client_ref delivered_from;
  std::vector<relay::client_ref> closed;

  void dtls_send(std::uint32_t, const stun::endpoint& to, const stun::endpoint&, stun::bytes_view d) override {
    last_to = to;
    ++sent_count;
    last_sent_size = d.size();
    std::memcpy(last_sent.data(), d.data(), d.size());
    if (keep) sent.emplace_back(d.begin(), d.end());
  }
  void dtls_deliver(const relay::client_ref& from, stun::bytes_view r, const relay::now_t&) override {
    ++delivered;
    delivered_from = from;
    last_record_size = r.size();
    std::memcpy(last_record.data(), r.data(), r.size());
  }
  void dtls_closed(const relay::client_ref& ref, const relay::now_t&) override { closed.push_back(ref); }
};

// A DTLS 1.2 client on memory BIOs.
class memory_client {
 public:
  memory_client() {
    ctx_ = SSL_CTX_new(DTLS_client_method());
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
    ssl_ = SSL_new(ctx_);
    in_ = BIO_new(BIO_s_mem());
    out_ = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(in_, -1);
    SSL_set_bio(ssl_, in_, out_);
    SSL_set_connect_state(ssl_);
  }
  ~memory_client() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
  }
  void feed(const bytes& d) { BIO_write(in_, d.data(), static_cast<int>(d.size())); }
  bytes drain() {
    bytes out(static_cast<std::size_t>(BIO_ctrl_pending(out_)));
    if (!out.empty()) BIO_read(out_, out.data(), static_cast<int>(out.size()));
    return out;
  }
  bytes handshake_step() {
    SSL_do_handshake(ssl_);
    return drain();
  }
  [[nodiscard]] bool done() const { return SSL_is_init_finished(ssl_) == 1; }
  bytes encrypt(std::string_view text) {
    SSL_write(ssl_, text.data(), static_cast<int>(text.size()));
    return drain();
  }
  std::string decrypt(const bytes& d) {
    feed(d);
    std::string out(65536, '\0');
    const int n = SSL_read(ssl_, out.data(), static_cast<int>(out.size()));
    out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    return out;
  }

 private:
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  BIO* in_ = nullptr;
  BIO* out_ = nullptr;
};

tls_context_ptr test_context() {
  std::string error;
  auto pem = make_self_signed(std::vector{server_addr}, {}, std::chrono::hours{24}, error);
  EXPECT_TRUE(pem) << error;
  auto ctx = make_server_tls_context_from_pem(pem->certificate, pem->private_key, error);
  EXPECT_TRUE(ctx) << error;
  return ctx;
}

bytes to_bytes(std::string_view s) {
  bytes b(s.size());
  std::memcpy(b.data(), s.data(), s.size());
  return b;
}

struct fixture {
  recording_host host;
  net_counters counters;
  dtls_server server{host, 0, dtls_settings{}, counters, nullptr};
  relay::now_t now{1000, 0};

  fixture() {
    std::string error;
    EXPECT_TRUE(server.set_context(test_context(), error)) << error;
  }
  void to_server(const bytes& d, const stun::endpoint& from = client_addr) {
    server.on_datagram(0, from, server_addr, d, now);
  }
  // Runs the handshake to its end; true when both sides finished.
  bool handshake(memory_client& c) {
    to_server(c.handshake_step());
    for (int round = 0; round < 10 && !(c.done() && counters.dtls_handshakes > 0); ++round) {
      for (const auto& d : host.sent) c.feed(d);
      host.sent.clear();
      const bytes out = c.handshake_step();
      if (!out.empty()) to_server(out);
    }
    for (const auto& d : host.sent) c.feed(d);
    host.sent.clear();
    return c.done() && counters.dtls_handshakes > 0;
  }
};

TEST(dtls_server, handshake_with_cookie_then_records_both_ways_without_allocating) {
  fixture f;
  memory_client c;
  // The first ClientHello gets a HelloVerifyRequest and no session.
  f.to_server(c.handshake_step());
  EXPECT_EQ(f.counters.dtls_cookies_sent, 1u);
  EXPECT_EQ(f.server.session_count(), 0u);
  ASSERT_EQ(f.host.sent.size(), 1u);
  // The rest of the handshake.
  for (int round = 0; round < 10 && !(c.done() && f.counters.dtls_handshakes > 0); ++round) {
    for (const auto& d : f.host.sent) c.feed(d);
    f.host.sent.clear();
    const bytes out = c.handshake_step();
    if (!out.empty()) f.to_server(out);
  }
  for (const auto& d : f.host.sent) c.feed(d);
  f.host.sent.clear();
  ASSERT_TRUE(c.done());
  EXPECT_EQ(f.counters.dtls_handshakes, 1u);
  EXPECT_EQ(f.server.session_count(), 1u);
  EXPECT_EQ(f.counters.dtls_sessions_open, 1u);

  // Client -> server: the record reaches the host with a dtls client_ref.
  const bytes record = c.encrypt("a STUN message");
  f.host.keep = false;
  const std::size_t in_allocs = test::allocations_in([&] { f.to_server(record); });
  ASSERT_EQ(f.host.delivered, 1u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(f.host.last_record.data()), f.host.last_record_size),
            "a STUN message");
  const relay::client_ref ref = f.host.delivered_from;
  EXPECT_EQ(ref.proto, relay::transport::dtls);
  EXPECT_EQ(ref.remote, client_addr);
  EXPECT_EQ(ref.local, server_addr);
  EXPECT_NE(ref.connection, 0u);
  EXPECT_EQ(in_allocs, 0u) << "no operator new on the record path in";

  // Server -> client: fragments gathered into one record.
  const bytes head = to_bytes("ans");
  const bytes tail = to_bytes("wer");
  const std::array<stun::bytes_view, 2> parts{stun::bytes_view(head), stun::bytes_view(tail)};
  bool sent = false;
  const std::size_t out_allocs = test::allocations_in([&] { sent = f.server.send(ref, parts); });
  EXPECT_TRUE(sent);
  EXPECT_EQ(f.host.last_to, client_addr);
  EXPECT_EQ(out_allocs, 0u) << "no operator new on the record path out";
  EXPECT_EQ(c.decrypt(bytes(f.host.last_sent.begin(), f.host.last_sent.begin() + f.host.last_sent_size)),
            "answer");

  // A stale ref (another connection id) is refused.
  relay::client_ref stale = ref;
  ++stale.connection;
  EXPECT_FALSE(f.server.send(stale, parts));
}

TEST(dtls_server, garbage_and_cookieless_hellos_leave_no_session) {
  fixture f;
  f.to_server(to_bytes("GET / HTTP/1.1\r\n\r\n"));
  bytes fake(40, std::byte{0});
  fake[0] = std::byte{22};
  fake[1] = std::byte{0xFE};
  f.to_server(fake);
  EXPECT_EQ(f.counters.dtls_garbage, 2u);
  EXPECT_TRUE(f.host.sent.empty()) << "garbage gets no answer";
  for (std::uint16_t port = 1; port <= 100; ++port) {
    memory_client c;
    f.to_server(c.handshake_step(), stun::endpoint::v4(0xC0000201u, port));
  }
  EXPECT_EQ(f.counters.dtls_cookies_sent, 100u);
  EXPECT_EQ(f.host.sent.size(), 100u);
  EXPECT_EQ(f.server.session_count(), 0u) << "a HelloVerifyRequest keeps nothing";
  EXPECT_EQ(f.counters.dtls_sessions_open, 0u);
}

TEST(dtls_server, a_restarted_client_replaces_its_session_once_the_cookie_checks_out) {
  fixture f;
  memory_client first;
  ASSERT_TRUE(f.handshake(first));
  const relay::client_ref old_ref = [&] {
    f.to_server(first.encrypt("x"));
    return f.host.delivered_from;
  }();
  // A new ClientHello from the same address: only a HelloVerifyRequest; the
  // old session stays until the cookie comes back.
  memory_client second;
  f.to_server(second.handshake_step());
  EXPECT_EQ(f.server.session_count(), 1u);
  EXPECT_TRUE(f.host.closed.empty());
  for (const auto& d : f.host.sent) second.feed(d);
  f.host.sent.clear();
  f.to_server(second.handshake_step());  // with the cookie
  ASSERT_EQ(f.host.closed.size(), 1u);
  EXPECT_EQ(f.host.closed[0], old_ref) << "the old session's allocation ends";
  EXPECT_EQ(f.server.session_count(), 1u);
  // No close_notify under the old keys to a client that restarted: the
  // server's flight is all that went out.
  ASSERT_FALSE(f.host.sent.empty());
  for (const auto& d : f.host.sent) EXPECT_EQ(static_cast<std::uint8_t>(d[0]), 22) << "handshake records only";
  for (int round = 0; round < 10 && !(second.done() && f.counters.dtls_handshakes == 2); ++round) {
    for (const auto& d : f.host.sent) second.feed(d);
    f.host.sent.clear();
    const bytes out = second.handshake_step();
    if (!out.empty()) f.to_server(out);
  }
  for (const auto& d : f.host.sent) second.feed(d);
  ASSERT_TRUE(second.done());
  EXPECT_EQ(f.counters.dtls_handshakes, 2u);
  f.to_server(second.encrypt("y"));
  EXPECT_EQ(f.host.delivered_from.remote, client_addr);
  EXPECT_NE(f.host.delivered_from.connection, old_ref.connection) << "a new client for the core";
  EXPECT_EQ(f.counters.dtls_sessions_open, 1u);
}

TEST(dtls_server, handshake_and_idle_timeouts_on_the_tick) {
  recording_host host;
  net_counters counters;
  dtls_settings settings;
  settings.handshake_timeout = 2s;
  settings.idle_timeout = 5s;
  dtls_server server(host, 0, settings, counters, nullptr);
  std::string error;
  ASSERT_TRUE(server.set_context(test_context(), error)) << error;
  relay::now_t now{1000, 0};

  // Half a handshake: the cookie comes back, then nothing.
  memory_client half;
  server.on_datagram(0, client_addr, server_addr, half.handshake_step(), now);
  for (const auto& d : host.sent) half.feed(d);
  host.sent.clear();
  server.on_datagram(0, client_addr, server_addr, half.handshake_step(), now);
  EXPECT_EQ(server.session_count(), 1u);
  now.mono_ms += 1999;
  server.on_tick(now);
  EXPECT_EQ(server.session_count(), 1u);
  now.mono_ms += 1;
  server.on_tick(now);
  EXPECT_EQ(server.session_count(), 0u);
  EXPECT_EQ(counters.dtls_handshake_timeouts, 1u);
  EXPECT_TRUE(host.closed.empty()) << "no allocation can exist before the handshake";

  // An established session that goes quiet.
  memory_client quiet;
  const stun::endpoint other = stun::endpoint::v4(0xC0000201u, 40001);
  host.sent.clear();
  server.on_datagram(0, other, server_addr, quiet.handshake_step(), now);
  for (int round = 0; round < 10 && !(quiet.done() && counters.dtls_handshakes > 0); ++round) {
    for (const auto& d : host.sent) quiet.feed(d);
    host.sent.clear();
    const bytes out = quiet.handshake_step();
    if (!out.empty()) server.on_datagram(0, other, server_addr, out, now);
  }
  ASSERT_EQ(counters.dtls_handshakes, 1u);
  now.mono_ms += 4999;
  server.on_tick(now);
  EXPECT_EQ(server.session_count(), 1u);
  now.mono_ms += 1;
  server.on_tick(now);
  EXPECT_EQ(server.session_count(), 0u);
  EXPECT_EQ(counters.dtls_idle_timeouts, 1u);
  ASSERT_EQ(host.closed.size(), 1u);
  EXPECT_EQ(host.closed[0].remote, other);
  EXPECT_EQ(counters.dtls_sessions_open, 0u);
}

}  // namespace
}  // namespace anyturn::net::detail
