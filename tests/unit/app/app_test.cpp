#include <anyturn/app/app.hpp>

#include <anyturn/auth/peer_policy.hpp>
#include <anyturn/net/address.hpp>
#include <anyturn/stun/message.hpp>

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <csignal>
#include <cstring>
#include <thread>

#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

namespace anyturn::app {
namespace {

using namespace std::chrono_literals;

stun::endpoint ep(const char* text) { return *stun::endpoint::parse(text, true); }

config::server_config test_config() {
  config::server_config cfg;
  cfg.listen = {ep("127.0.0.1:0")};
  cfg.relay.ips = {ep("127.0.0.1")};
  cfg.relay.port_min = 62000;
  cfg.relay.port_max = 62099;
  cfg.auth.realm = "test";
  auth::static_user u;
  u.name = "u";
  u.password = "p";
  cfg.auth.users = {u};
  cfg.auth.nonce_key = "0123456789abcdef0123";
  cfg.peers.allow = {*auth::cidr::parse("127.0.0.0/8")};
  cfg.threads = 2;
  cfg.udp_socket_buffer = 256 * 1024;
  cfg.http.listen = ep("127.0.0.1:0");  // tests run in parallel: an ephemeral port
  return cfg;
}

TEST(app, shared_state_mirrors_the_config) {
  config::server_config cfg = test_config();
  cfg.relay.ips = {ep("127.0.0.1"), ep("::1")};
  cfg.lifetimes.allocation_default = 300;
  cfg.lifetimes.allocation_max = 900;
  cfg.lifetimes.permission = 120;
  cfg.lifetimes.channel = 240;
  cfg.software = "x";
  cfg.max_allocations_per_worker = 17;
  cfg.auth.offer_sha256 = false;
  const auto s = make_shared_state(cfg);
  ASSERT_EQ(s->relays.size(), 2u);
  EXPECT_EQ(s->relays[0].ip, ep("127.0.0.1"));
  EXPECT_EQ(s->relays[1].ip, ep("::1"));
  EXPECT_NE(s->relays[0].ports, s->relays[1].ports);  // one pool per address
  EXPECT_EQ(s->relays[0].ports->low(), 62000);
  EXPECT_EQ(s->relays[0].ports->capacity(), 100u);
  EXPECT_EQ(s->credentials->realm(), "test");
  EXPECT_EQ(s->allocation_lifetime_default, 300u);
  EXPECT_EQ(s->allocation_lifetime_max, 900u);
  EXPECT_EQ(s->permission_lifetime, 120u);
  EXPECT_EQ(s->channel_lifetime, 240u);
  EXPECT_EQ(s->software, "x");
  EXPECT_EQ(s->max_allocations, 17u);
  EXPECT_FALSE(s->offer_sha256);
  EXPECT_TRUE(auth::is_allowed(s->peers->check(ep("127.0.0.1:9"))));
  EXPECT_FALSE(auth::is_allowed(s->peers->check(ep("10.0.0.1:9"))));
}

TEST(app, nonce_key_is_shared_when_configured_and_random_otherwise) {
  config::server_config cfg = test_config();
  const stun::endpoint client = ep("192.0.2.1:5000");
  std::array<char, auth::nonce_service::nonce_size> a{}, b{};
  const auto n1 = std::string(make_shared_state(cfg)->nonces->mint(client, 1000, a));
  const auto n2 = std::string(make_shared_state(cfg)->nonces->mint(client, 1000, b));
  EXPECT_EQ(n1, n2);  // two nodes of a fleet accept each other's nonces

  cfg.auth.nonce_key.clear();
  const auto r1 = std::string(make_shared_state(cfg)->nonces->mint(client, 1000, a));
  const auto r2 = std::string(make_shared_state(cfg)->nonces->mint(client, 1000, b));
  EXPECT_NE(r1, r2);
}

TEST(app, thread_count_and_descriptor_budget) {
  EXPECT_EQ(resolve_threads(3), 3u);
  EXPECT_GE(resolve_threads(0), 1u);
  config::server_config cfg = test_config();
  cfg.relay.ips = {ep("127.0.0.1"), ep("::1")};
  cfg.listen = {ep("0.0.0.0:3478"), ep("[::]:3478")};
  // UDP only: 2 x 100 relay ports + 4 workers x (2 listeners + 4) + 64 slack
  cfg.streams.tcp = false;
  EXPECT_EQ(required_descriptors(cfg, 4), 200u + 24u + 64u);
  // UDP+TCP on both listen addresses and one TLS listener: 5 listeners per
  // worker, plus one descriptor per allowed connection.
  cfg.streams.tcp = true;
  cfg.tls.listen = {ep("0.0.0.0:5349")};
  cfg.streams.max_connections = 1000;
  EXPECT_EQ(required_descriptors(cfg, 4), 200u + 4u * (5u + 4u) + 1000u + 64u);
}

TEST(app, raises_the_soft_descriptor_limit_to_the_hard_one) {
  rlimit original{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &original), 0);
  if (original.rlim_max == RLIM_INFINITY || original.rlim_max < 64) GTEST_SKIP();
  rlimit lowered = original;
  lowered.rlim_cur = 64;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &lowered), 0);
  const fd_limit r = raise_fd_limit(100);
  EXPECT_EQ(r.before, 64u);
  EXPECT_EQ(r.after, original.rlim_max);
  EXPECT_EQ(r.hard, original.rlim_max);
  EXPECT_TRUE(r.sufficient());
  EXPECT_FALSE(raise_fd_limit(original.rlim_max + 1).sufficient());
  ::setrlimit(RLIMIT_NOFILE, &original);
}

TEST(app, warns_about_allow_entries_that_open_internal_ranges) {
  config::peer_config peers;
  peers.allow = {*auth::cidr::parse("127.0.0.0/8"), *auth::cidr::parse("8.8.8.0/24"),
                 *auth::cidr::parse("0.0.0.0/0"), *auth::cidr::parse("fd00::/8"),
                 *auth::cidr::parse("192.0.2.0/24")};
  const auto w = risky_peer_allowances(peers);
  ASSERT_EQ(w.size(), 4u);
  EXPECT_NE(w[0].find("127.0.0.0/8"), std::string::npos);
  EXPECT_NE(w[0].find("loopback"), std::string::npos);
  EXPECT_NE(w[1].find("0.0.0.0/0"), std::string::npos);
  EXPECT_NE(w[1].find("169.254.169.254"), std::string::npos);  // the metadata service too
  EXPECT_NE(w[2].find("fd00::/8"), std::string::npos);
  EXPECT_NE(w[3].find("192.0.2.0/24"), std::string::npos);   // documentation range
}

// A blocking client socket on loopback.
struct client_socket {
  client_socket() {
    fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    const net::socket_address sa = net::to_sockaddr(ep("127.0.0.1:0"));
    ::bind(fd, sa.data(), sa.size);
  }
  ~client_socket() { ::close(fd); }
  bool binding(const stun::endpoint& server) const {
    stun::transaction_id tid;
    tid.bytes.fill(std::byte{0x42});
    std::array<std::byte, 64> buf{};
    stun::message_builder b(buf, static_cast<std::uint16_t>(stun::method::binding),
                            stun::message_class::request, tid);
    auto msg = b.finish();
    const net::socket_address sa = net::to_sockaddr(server);
    ::sendto(fd, msg->data(), msg->size(), 0, sa.data(), sa.size);
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 1000) != 1) return false;
    std::array<std::byte, 1500> in{};
    const ssize_t n = ::recv(fd, in.data(), in.size(), 0);
    auto reply = stun::parse_message(stun::bytes_view(in.data(), static_cast<std::size_t>(n)));
    return reply.has_value() && reply->cls() == stun::message_class::success_response;
  }
  int fd;
};

TEST(app, serves_until_request_stop_and_sums_counters) {
  server_app app(test_config());
  std::string error;
  ASSERT_TRUE(app.start(error)) << error;
  ASSERT_EQ(app.threads(), 2u);
  const auto listeners = app.listeners();
  ASSERT_EQ(listeners.size(), 1u);
  EXPECT_NE(listeners[0].port, 0);
  // Several source ports, so both workers likely see traffic.
  for (int i = 0; i < 8; ++i) {
    client_socket c;
    EXPECT_TRUE(c.binding(listeners[0]));
  }
  std::thread stopper([&] { app.request_stop(); });
  const auto begin = std::chrono::steady_clock::now();
  EXPECT_EQ(app.wait(), 0);
  stopper.join();
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 1s);
  EXPECT_EQ(app.totals().binding_requests, 8u);
}

TEST(app, sigterm_stops_it_cleanly) {
  server_app app(test_config());
  std::string error;
  ASSERT_TRUE(app.start(error)) << error;
  std::raise(SIGTERM);  // caught by the app's signal_set, not fatal
  EXPECT_EQ(app.wait(), 0);
}

TEST(app, request_stop_with_a_code_is_the_exit_code) {
  server_app app(test_config());
  std::string error;
  ASSERT_TRUE(app.start(error)) << error;
  app.request_stop(3);
  EXPECT_EQ(app.wait(), 3);
}

TEST(app, listener_in_use_fails_start_with_a_clear_error) {
  client_socket holder;  // holds a loopback port without SO_REUSEPORT
  net::socket_address sa;
  sa.size = sizeof sa.storage;
  ::getsockname(holder.fd, sa.data(), &sa.size);
  const stun::endpoint taken = *net::from_sockaddr(sa.data(), sa.size);

  config::server_config cfg = test_config();
  cfg.listen = {taken};
  server_app app(cfg);
  std::string error;
  EXPECT_FALSE(app.start(error));
  EXPECT_NE(error.find(taken.to_string()), std::string::npos) << error;
  EXPECT_NE(error.find("in use"), std::string::npos) << error;
  EXPECT_EQ(app.wait(), 1);  // nothing was started
}

}  // namespace
}  // namespace anyturn::app
