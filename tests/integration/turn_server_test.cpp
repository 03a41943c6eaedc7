// End-to-end tests: the real anyturn daemon on loopback, driven by the
// C++ TURN client in turn_client.hpp. Every test starts its own daemon with
// its own relay port range and checks that it exits cleanly on SIGTERM.
#include "daemon.hpp"
#include "turn_client.hpp"

#include <anyturn/auth/credentials.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace anyturn::itest {
namespace {

const std::string realm = "anyturn.test";
const std::string user = "alice";
const std::string password = "wonderland";
const std::string rest_secret = "integration-rest-secret";

stun::endpoint v6_loopback(std::uint16_t port = 0) {
  std::array<std::uint8_t, 16> ip{};
  ip[15] = 1;
  return stun::endpoint::v6(ip, port);
}

class TurnServer : public ::testing::Test {
 protected:
  // Starts the daemon with the common flags plus `extra`. Relay ports come
  // from `slot` so that tests running in parallel never share a port.
  [[nodiscard]] ::testing::AssertionResult start(unsigned slot, std::vector<std::string> extra = {},
                                                 unsigned width = 20, bool ipv6 = false,
                                                 bool relay_v4 = true) {
    ports_ = relay_ports_for_slot(slot, width);
    std::vector<std::string> args = {"--relay-ports", ports_.flag(), "--realm", realm,
                                     "--user", user + ":" + password, "--threads", "2",
                                     "--log-level", "debug"};
    if (relay_v4) {
      args.push_back("--relay-ip");
      args.push_back("127.0.0.1");
    }
    args.insert(args.end(), extra.begin(), extra.end());
    daemon_ = std::make_unique<daemon>(daemon::options{ipv6, args});
    if (!daemon_->start()) {
      return ::testing::AssertionFailure() << "daemon did not become ready\n" << daemon_->log();
    }
    return ::testing::AssertionSuccess();
  }

  void TearDown() override {
    if (!daemon_) return;
    const int rc = daemon_->stop();
    EXPECT_EQ(rc, 0) << "anyturn did not exit cleanly on SIGTERM (0 expected; 128+N: signal N, -1: hung)\n"
                     << daemon_->log();
    if (HasFailure() && rc == 0) std::cerr << daemon_->log() << '\n';
  }

  [[nodiscard]] stun::endpoint server() const { return daemon_->address(); }

  std::unique_ptr<turn_client> authed_client() {
    auto c = std::make_unique<turn_client>(server());
    c->set_credentials({user, password});
    return c;
  }

  // Allocates and checks the relayed address; returns it.
  stun::endpoint allocate_ok(turn_client& c, turn_client::allocate_options o = {}) {
    auto r = c.allocate(o);
    EXPECT_TRUE(r && r->is_success()) << describe(r);
    if (!r || !r->is_success()) return {};
    auto relayed = r->address(stun::attr::xor_relayed_address);
    EXPECT_TRUE(relayed.has_value()) << r->describe();
    if (!relayed) return {};
    EXPECT_TRUE(ports_.contains(relayed->port)) << relayed->to_string() << " not in " << ports_.flag();
    return *relayed;
  }

  std::unique_ptr<daemon> daemon_;
  port_range ports_;
};

// ------------------------------------------------------------------ STUN

TEST_F(TurnServer, BindingReturnsXorMappedAddress) {
  ASSERT_TRUE(start(0));
  turn_client c(server());
  auto r = c.binding();
  ASSERT_TRUE(r && r->is_success()) << describe(r);
  auto mapped = r->address(stun::attr::xor_mapped_address);
  ASSERT_TRUE(mapped.has_value()) << r->describe();
  EXPECT_EQ(*mapped, c.local());
}

TEST_F(TurnServer, UnknownComprehensionRequiredAttributeGets420) {
  ASSERT_TRUE(start(17));
  constexpr std::uint16_t unknown_type = 0x7F31;
  ASSERT_TRUE(stun::attr::comprehension_required(unknown_type));
  ASSERT_FALSE(stun::attr::known(unknown_type));
  turn_client c(server());
  auto r = c.request_unauthenticated(stun::method::binding, [](stun::message_builder& b) {
    const std::array<std::byte, 4> v{std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}};
    b.add_bytes(unknown_type, v);
  });
  ASSERT_TRUE(r.has_value()) << "no response";
  EXPECT_TRUE(r->is_error()) << r->describe();
  EXPECT_EQ(r->error_code(), 420) << r->describe();
  const auto unknown = r->unknown_attributes();
  EXPECT_NE(std::find(unknown.begin(), unknown.end(), unknown_type), unknown.end()) << r->describe();
}

TEST_F(TurnServer, BadFingerprintIsDroppedSilently) {
  ASSERT_TRUE(start(14));
  turn_client c(server());
  bytes req = c.build_request(stun::method::binding, turn_client::random_tid(), {}, false, true);
  req.back() ^= std::byte{0x5A};  // corrupt the FINGERPRINT value
  c.send_raw(req);
  EXPECT_FALSE(c.recv_raw(silence_timeout).has_value()) << "a message with a bad FINGERPRINT was answered";
  auto r = c.binding();
  EXPECT_TRUE(r && r->is_success()) << describe(r);
}

TEST_F(TurnServer, GarbageDatagramsGetNoResponseAndDoNotCrash) {
  ASSERT_TRUE(start(15));
  turn_client c(server());
  std::mt19937 rng(12345);
  auto random_bytes = [&](std::size_t n, std::optional<std::uint8_t> first) {
    bytes b(n);
    for (auto& x : b) x = static_cast<std::byte>(rng() & 0xFF);
    if (first && n > 0) b[0] = std::byte{*first};
    return b;
  };
  std::vector<bytes> garbage = {
      random_bytes(100, 0x00),  // STUN-looking first byte, wrong cookie
      random_bytes(100, 0x01),
      random_bytes(64, 0x40),   // ChannelData-looking, no allocation
      random_bytes(37, 0x7F),
      random_bytes(1, std::nullopt),
      random_bytes(3, 0x40),
      random_bytes(19, 0x00),   // shorter than a STUN header
      random_bytes(548, 0xFF),
      bytes{},                  // empty datagram
  };
  // A valid Binding header whose length field runs past the datagram.
  bytes lying = c.build_request(stun::method::binding, turn_client::random_tid(), {}, false, false);
  lying[3] = std::byte{0x40};
  garbage.push_back(lying);
  for (int i = 0; i < 50; ++i) garbage.push_back(random_bytes(1 + rng() % 300, std::nullopt));

  for (const auto& g : garbage) c.send_raw(g);
  EXPECT_FALSE(c.recv_raw(silence_timeout).has_value()) << "garbage was answered";
  EXPECT_TRUE(daemon_->running()) << daemon_->log();
  auto r = c.binding();
  EXPECT_TRUE(r && r->is_success()) << describe(r);
}

// ---------------------------------------------------------- authentication

TEST_F(TurnServer, AllocateWithoutCredentialsGets401WithRealmAndNonce) {
  ASSERT_TRUE(start(1));
  turn_client c(server());  // no credentials
  auto r = c.allocate();
  ASSERT_TRUE(r.has_value()) << "no response";
  EXPECT_EQ(r->error_code(), 401) << r->describe();
  EXPECT_EQ(r->string(stun::attr::realm).value_or(""), realm) << r->describe();
  const auto nonce = r->string(stun::attr::nonce).value_or("");
  EXPECT_FALSE(nonce.empty()) << r->describe();
  // RFC 8489 §9.2.4: PASSWORD-ALGORITHMS is offered, and the nonce cookie says so.
  EXPECT_TRUE(r->has(stun::attr::password_algorithms)) << r->describe();
  const auto algs = r->password_algorithms();
  EXPECT_NE(std::find(algs.begin(), algs.end(), std::uint16_t{1}), algs.end()) << "MD5 not offered";
  EXPECT_EQ(nonce.rfind("obMatJos2", 0), 0u) << nonce;
  EXPECT_FALSE(r->has(stun::attr::message_integrity)) << r->describe();
}

TEST_F(TurnServer, AllocateWithWrongPasswordGets401) {
  ASSERT_TRUE(start(2));
  turn_client c(server());
  c.set_credentials({user, "not-the-password"});
  auto r = c.allocate();
  ASSERT_TRUE(r.has_value()) << "no response";
  EXPECT_FALSE(c.realm().empty()) << "the client never got a challenge";
  EXPECT_EQ(r->error_code(), 401) << r->describe();

  turn_client unknown(server());
  unknown.set_credentials({"mallory", password});
  r = unknown.allocate();
  ASSERT_TRUE(r.has_value()) << "no response";
  EXPECT_EQ(r->error_code(), 401) << r->describe();
}

// limits.unauthenticated_per_source (defaults: 20 a second, burst 50): a
// flood of unauthenticated Allocates from one address gets few answers, the
// rest are counted, and a client on another address is served as usual.
TEST_F(TurnServer, UnauthenticatedFloodFromOneAddressIsCutAndCounted) {
  ASSERT_TRUE(start(73));
  udp_socket flooder(stun::endpoint::v4(0x7F000002u, 0));  // 127.0.0.2
  turn_client builder(server());
  constexpr int sent = 2000;
  const auto t0 = std::chrono::steady_clock::now();
  int answered = 0;
  for (int i = 0; i < sent; ++i) {
    const bytes req = builder.build_request(
        stun::method::allocate, turn_client::random_tid(),
        [](stun::message_builder& b) { b.add_requested_transport(17); }, false);
    flooder.send_to(server(), req);
    if (i % 100 == 99) {
      while (flooder.recv(std::chrono::milliseconds(0))) ++answered;
    }
  }
  while (flooder.recv(silence_timeout)) ++answered;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // One socket is one 5-tuple, so one worker's buckets: burst + rate * t.
  EXPECT_LE(answered, 50 + 20 * seconds + 1) << "in " << seconds << " s";
  EXPECT_GE(answered, 50);

  const auto metrics = http_request(daemon_->http_port(), "GET", "/metrics");
  ASSERT_TRUE(metrics && metrics->status == 200);
  const auto dropped =
      metric_value(metrics->body, "anyturn_dropped_packets_total{reason=\"unauth_rate\"}");
  ASSERT_TRUE(dropped.has_value()) << metrics->body;
  EXPECT_LE(*dropped, sent - answered);
  EXPECT_GE(*dropped, sent - answered - 50) << "the kernel dropped more than expected?";

  // Another address: its 401, then its allocation.
  turn_client other(server(), stun::endpoint::v4(0x7F000003u, 0));  // 127.0.0.3
  auto r = other.allocate();
  ASSERT_TRUE(r.has_value()) << "no answer to 127.0.0.3";
  EXPECT_EQ(r->error_code(), 401) << r->describe();
  other.set_credentials({user, password});
  allocate_ok(other);
}

TEST_F(TurnServer, AllocateWithStaticUser) {
  ASSERT_TRUE(start(3));
  auto c = authed_client();
  auto r = c->allocate();
  ASSERT_TRUE(r && r->is_success()) << describe(r);
  auto relayed = r->address(stun::attr::xor_relayed_address);
  ASSERT_TRUE(relayed.has_value()) << r->describe();
  EXPECT_EQ(relayed->ip_string(), "127.0.0.1");
  EXPECT_TRUE(ports_.contains(relayed->port)) << relayed->to_string();
  EXPECT_EQ(r->address(stun::attr::xor_mapped_address), c->local()) << r->describe();
  auto lifetime = r->u32(stun::attr::lifetime);
  ASSERT_TRUE(lifetime.has_value()) << r->describe();
  EXPECT_GT(*lifetime, 0u);
  EXPECT_LE(*lifetime, 3600u);
  ASSERT_TRUE(r->has(stun::attr::message_integrity)) << r->describe();
  EXPECT_TRUE(r->integrity_ok(*c->md5_key())) << "response MESSAGE-INTEGRITY does not verify";
}

TEST_F(TurnServer, AllocateWithSha256PasswordAlgorithm) {
  ASSERT_TRUE(start(20));
  turn_client c(server());
  c.set_credentials({user, password, /*sha256=*/true});
  auto r = c.allocate();
  ASSERT_TRUE(r && r->is_success()) << describe(r);
  ASSERT_TRUE(c.sha256_key().has_value());
  if (r->has(stun::attr::message_integrity_sha256)) {
    EXPECT_TRUE(r->integrity_sha256_ok(*c.sha256_key())) << "response MESSAGE-INTEGRITY-SHA256 does not verify";
  } else {
    ADD_FAILURE() << "response to a SHA-256 request lacks MESSAGE-INTEGRITY-SHA256: " << r->describe();
  }
}

TEST_F(TurnServer, AllocateWithRestSecret) {
  ASSERT_TRUE(start(4, {"--auth-secret", rest_secret}));
  const std::string username = std::to_string(unix_now() + 3600) + ":alice";
  const std::string pass = rest_password(rest_secret, username);
  EXPECT_EQ(pass, auth::rest_password(rest_secret, username));
  turn_client c(server());
  c.set_credentials({username, pass});
  auto r = c.allocate();
  ASSERT_TRUE(r && r->is_success()) << describe(r);
  EXPECT_TRUE(r->has(stun::attr::xor_relayed_address)) << r->describe();
  EXPECT_TRUE(r->integrity_ok(*c.md5_key()));

  // A REST password made with another secret is refused.
  turn_client wrong(server());
  wrong.set_credentials({username, rest_password("some-other-secret", username)});
  r = wrong.allocate();
  ASSERT_TRUE(r.has_value()) << "no response";
  EXPECT_EQ(r->error_code(), 401) << r->describe();
}

TEST_F(TurnServer, ExpiredRestUsernameGets401) {
  ASSERT_TRUE(start(5, {"--auth-secret", rest_secret}));
  const std::string username = std::to_string(unix_now() - 3600) + ":alice";
  turn_client c(server());
  c.set_credentials({username, rest_password(rest_secret, username)});
  auto r = c.allocate();
  ASSERT_TRUE(r.has_value()) << "no response";
  EXPECT_EQ(r->error_code(), 401) << r->describe();
}

// ------------------------------------------------------------- allocations

TEST_F(TurnServer, RetransmittedAllocateGetsTheSameSuccess) {
  ASSERT_TRUE(start(6));
  auto c = authed_client();
  auto attrs = [](stun::message_builder& b) { b.add_requested_transport(17); };
  auto challenge = c->exchange(c->build_request(stun::method::allocate, turn_client::random_tid(), attrs, false));
  ASSERT_TRUE(challenge && challenge->error_code() == 401) << describe(challenge);
  ASSERT_TRUE(c->learn_challenge(*challenge));

  const bytes request = c->build_request(stun::method::allocate, turn_client::random_tid(), attrs, true);
  auto first = c->exchange(request);
  ASSERT_TRUE(first && first->is_success()) << describe(first);
  auto second = c->exchange(request);  // the same bytes, the same transaction id
  ASSERT_TRUE(second && second->is_success()) << describe(second)
                                              << " (a retransmission must not be answered with 437)";
  EXPECT_EQ(second->view().tid(), first->view().tid());
  EXPECT_EQ(second->address(stun::attr::xor_relayed_address), first->address(stun::attr::xor_relayed_address));
  EXPECT_EQ(second->address(stun::attr::xor_mapped_address), first->address(stun::attr::xor_mapped_address));
}

TEST_F(TurnServer, SecondAllocateOnSameFiveTupleGets437) {
  ASSERT_TRUE(start(13));
  auto c = authed_client();
  allocate_ok(*c);
  auto r = c->allocate();  // a new transaction
  ASSERT_TRUE(r.has_value()) << "no response";
  EXPECT_EQ(r->error_code(), 437) << r->describe();
}

TEST_F(TurnServer, RefreshWithLifetimeZeroFreesTheAllocation) {
  ASSERT_TRUE(start(7));
  auto c = authed_client();
  allocate_ok(*c);
  auto r = c->refresh(600);
  ASSERT_TRUE(r && r->is_success()) << describe(r);
  EXPECT_TRUE(r->u32(stun::attr::lifetime).has_value()) << r->describe();

  r = c->refresh(0);
  ASSERT_TRUE(r && r->is_success()) << describe(r);
  EXPECT_EQ(r->u32(stun::attr::lifetime), std::optional<std::uint32_t>{0}) << r->describe();

  r = c->refresh(600);  // nothing left to refresh
  ASSERT_TRUE(r.has_value()) << "no response";
  EXPECT_EQ(r->error_code(), 437) << r->describe();

  allocate_ok(*c);  // the same 5-tuple can allocate again at once
}

TEST_F(TurnServer, RequestedTransportTcpGets442) {
  ASSERT_TRUE(start(12));
  auto c = authed_client();
  turn_client::allocate_options o;
  o.transport = 6;
  auto r = c->allocate(o);
  ASSERT_TRUE(r.has_value()) << "no response";
  EXPECT_EQ(r->error_code(), 442) << r->describe();
}

TEST_F(TurnServer, ExhaustedRelayPortRangeGets508) {
  ASSERT_TRUE(start(16, {}, /*width=*/2));
  auto a = authed_client();
  auto b = authed_client();
  auto c = authed_client();
  const auto ra = allocate_ok(*a);
  const auto rb = allocate_ok(*b);
  EXPECT_NE(ra.port, rb.port);
  auto r = c->allocate();
  ASSERT_TRUE(r.has_value()) << "no response";
  EXPECT_EQ(r->error_code(), 508) << r->describe();

  // Freeing one makes room again.
  auto freed = a->refresh(0);
  ASSERT_TRUE(freed && freed->is_success()) << describe(freed);
  const auto rc = allocate_ok(*c);
  EXPECT_EQ(rc.port, ra.port);
}

// Other sockets on the host hold most of the relay range (as outgoing
// connections do when the range overlaps the kernel's ephemeral range). The
// kernel refuses those ports (EADDRINUSE); each refused port cools down out
// of the pool and an Allocate keeps trying, so every Allocate succeeds while
// a free port remains, and the refusals are counted.
TEST_F(TurnServer, AllocateSucceedsWhileFreePortsRemainAmongRefusedOnes) {
  constexpr unsigned width = 100;
  constexpr unsigned occupied_count = 70;
  constexpr unsigned free_count = width - occupied_count;
  std::vector<std::string> users;
  for (unsigned i = 0; i <= free_count; ++i) {
    users.push_back("--user");
    users.push_back("ports" + std::to_string(i) + ":refused-port-password-" + std::to_string(i));
  }
  // Slot 24 of width 100: offsets 2400-2499, clear of the 20-wide slots.
  ASSERT_TRUE(start(24, users, width));
  // Hold 70 of the 100 relay ports on 127.0.0.1, chosen at random.
  std::vector<std::uint16_t> ports;
  for (unsigned p = ports_.low; p <= ports_.high; ++p) ports.push_back(static_cast<std::uint16_t>(p));
  std::mt19937 rng(12);
  std::shuffle(ports.begin(), ports.end(), rng);
  std::vector<std::unique_ptr<udp_socket>> held;
  for (unsigned i = 0; i < occupied_count; ++i) {
    held.push_back(std::make_unique<udp_socket>(v4_loopback(ports[i])));
  }
  std::vector<std::uint16_t> free_ports(ports.begin() + occupied_count, ports.end());
  std::sort(free_ports.begin(), free_ports.end());

  std::vector<std::unique_ptr<turn_client>> clients;
  std::vector<std::uint16_t> got;
  unsigned refused_508 = 0;
  for (unsigned i = 0; i < free_count; ++i) {
    auto c = std::make_unique<turn_client>(server());
    c->set_credentials({"ports" + std::to_string(i), "refused-port-password-" + std::to_string(i)});
    auto r = c->allocate();
    ASSERT_TRUE(r.has_value()) << "no response to Allocate " << i;
    if (r->is_success()) {
      const auto relayed = r->address(stun::attr::xor_relayed_address);
      ASSERT_TRUE(relayed.has_value()) << r->describe();
      got.push_back(relayed->port);
    } else {
      EXPECT_EQ(r->error_code(), 508) << r->describe();
      ++refused_508;
    }
    clients.push_back(std::move(c));
  }
  EXPECT_EQ(refused_508, 0u) << refused_508 << " of " << free_count
                             << " Allocates got 508 while free ports remained";
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, free_ports) << "each Allocate got one of the free ports, once";

  // Now every port is held: 508, after the refused ones were tried.
  auto last = std::make_unique<turn_client>(server());
  last->set_credentials({"ports" + std::to_string(free_count),
                         "refused-port-password-" + std::to_string(free_count)});
  auto r = last->allocate();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->error_code(), 508) << r->describe();

  auto m = http_request(daemon_->http_port(), "GET", "/metrics");
  ASSERT_TRUE(m && m->status == 200);
  const auto refused = metric_value(m->body, "anyturn_relay_port_refused_total");
  ASSERT_TRUE(refused.has_value()) << m->body;
  // Each held port is refused once, then cools down for 60 s.
  EXPECT_EQ(*refused, static_cast<double>(occupied_count)) << m->body;
}

// ------------------------------------------------------------------ relay

TEST_F(TurnServer, SendIndicationReachesPeerAndDataIndicationComesBack) {
  ASSERT_TRUE(start(8, {"--allow-peer", "127.0.0.1/32"}));
  udp_socket peer(v4_loopback());
  auto c = authed_client();
  const auto relayed = allocate_ok(*c);
  ASSERT_NE(relayed.port, 0);

  auto r = c->create_permission({peer.local()});
  ASSERT_TRUE(r && r->is_success()) << describe(r);

  c->send_indication(peer.local(), to_bytes("hello peer"));
  auto got = peer.recv(response_timeout);
  ASSERT_TRUE(got.has_value()) << "the peer received nothing";
  EXPECT_EQ(to_string(got->data), "hello peer");
  EXPECT_EQ(got->from, relayed);

  peer.send_to(relayed, to_bytes("hello client"));
  auto back = c->recv_data();
  ASSERT_TRUE(back.has_value()) << "no Data indication";
  EXPECT_EQ(back->how, relayed_data::kind::data_indication);
  EXPECT_EQ(back->peer, peer.local());
  EXPECT_EQ(to_string(back->payload), "hello client");
}

TEST_F(TurnServer, ChannelDataBothDirectionsOnLowestAndHighestChannels) {
  ASSERT_TRUE(start(9, {"--allow-peer", "127.0.0.1/32"}));
  udp_socket peer_low(v4_loopback());
  udp_socket peer_high(v4_loopback());
  auto c = authed_client();
  const auto relayed = allocate_ok(*c);
  ASSERT_NE(relayed.port, 0);

  auto r = c->channel_bind(0x4000, peer_low.local());
  ASSERT_TRUE(r && r->is_success()) << describe(r);
  r = c->channel_bind(0x7FFF, peer_high.local());
  ASSERT_TRUE(r && r->is_success()) << describe(r);

  struct leg {
    std::uint16_t channel;
    udp_socket& peer;
  };
  for (leg l : {leg{0x4000, peer_low}, leg{0x7FFF, peer_high}}) {
    // Lengths that do and do not need padding.
    for (std::string payload : {std::string("abc"), std::string("0123456789abcdef"), std::string(1001, 'x')}) {
      c->send_channel_data(l.channel, to_bytes(payload));
      auto got = l.peer.recv(response_timeout);
      ASSERT_TRUE(got.has_value()) << "peer of channel " << l.channel << " received nothing";
      EXPECT_EQ(to_string(got->data), payload);
      EXPECT_EQ(got->from, relayed);

      const std::string reply = "re:" + payload;
      l.peer.send_to(relayed, to_bytes(reply));
      auto back = c->recv_data();
      ASSERT_TRUE(back.has_value()) << "nothing came back on channel " << l.channel;
      EXPECT_EQ(back->how, relayed_data::kind::channel_data);
      EXPECT_EQ(back->channel, l.channel);
      EXPECT_EQ(to_string(back->payload), reply);
    }
  }

  // Re-binding the same channel to the same peer refreshes it.
  r = c->channel_bind(0x4000, peer_low.local());
  EXPECT_TRUE(r && r->is_success()) << describe(r);
  // Binding that channel to another peer is refused (RFC 8656 §11.2).
  r = c->channel_bind(0x4000, peer_high.local());
  ASSERT_TRUE(r.has_value()) << "no response";
  EXPECT_EQ(r->error_code(), 400) << r->describe();
}

TEST_F(TurnServer, ChannelNumberOutsideTheRangeGets400) {
  ASSERT_TRUE(start(10, {"--allow-peer", "127.0.0.1/32"}));
  udp_socket peer(v4_loopback());
  auto c = authed_client();
  allocate_ok(*c);
  for (std::uint16_t ch : {std::uint16_t{0x3FFF}, std::uint16_t{0x8000}}) {
    auto r = c->channel_bind(ch, peer.local());
    ASSERT_TRUE(r.has_value()) << "no response for channel " << ch;
    EXPECT_EQ(r->error_code(), 400) << "channel 0x" << std::hex << ch << ": " << r->describe();
  }
}

TEST_F(TurnServer, LoopbackPeerIsRefusedByDefault) {
  ASSERT_TRUE(start(11));  // no --allow-peer
  // 127.0.0.2: loopback, but not one of the server's own addresses (those
  // have their own rule, tested below).
  udp_socket peer(stun::endpoint::v4(0x7F000002u, 0));
  auto c = authed_client();
  allocate_ok(*c);
  auto r = c->create_permission({peer.local()});
  ASSERT_TRUE(r.has_value()) << "no response";
  EXPECT_EQ(r->error_code(), 403) << r->describe();
  r = c->channel_bind(0x4001, peer.local());
  ASSERT_TRUE(r.has_value()) << "no response";
  EXPECT_EQ(r->error_code(), 403) << r->describe();

  // Nothing leaks to the peer through a Send indication either.
  c->send_indication(peer.local(), to_bytes("must not arrive"));
  EXPECT_FALSE(peer.recv(silence_timeout).has_value()) << "a denied peer received data";
}

// Issue 12, hole 1.3. The daemon listens and relays on 127.0.0.1 with no
// --allow-peer, so the server's own address is guarded: a client reaches the
// relayed address of another live allocation (two browsers on one server),
// and nothing else on the host: not the TURN listener (TURN inside TURN), not
// the HTTP port, not another service, not a relay port no allocation holds.
TEST_F(TurnServer, OwnAddressesArePeersOnlyOnLiveRelayPorts) {
  ASSERT_TRUE(start(21));
  udp_socket service(v4_loopback());  // some other UDP service on the host
  auto a = authed_client();
  auto b = authed_client();
  const auto relay_a = allocate_ok(*a);
  const auto relay_b = allocate_ok(*b);
  ASSERT_NE(relay_a, relay_b);

  const auto refused = [&](std::uint16_t channel, const stun::endpoint& peer) {
    const auto r = a->channel_bind(channel, peer);
    return r.has_value() && r->error_code() == 403;
  };
  EXPECT_TRUE(refused(0x4000, server())) << "the TURN listener";
  EXPECT_TRUE(refused(0x4001, v4_loopback(daemon_->http_port()))) << "the HTTP port";
  EXPECT_TRUE(refused(0x4002, service.local())) << "another service";
  std::uint16_t idle_port = ports_.low;
  while (idle_port == relay_a.port || idle_port == relay_b.port) ++idle_port;
  EXPECT_TRUE(refused(0x4003, v4_loopback(idle_port))) << "a relay port no allocation holds";

  // Between the two allocations, both ways: a channel from A, a permission
  // (for the relay IP) and a Send indication from B.
  auto r = a->channel_bind(0x4010, relay_b);
  ASSERT_TRUE(r && r->is_success()) << describe(r);
  r = b->create_permission({relay_a});
  ASSERT_TRUE(r && r->is_success()) << describe(r);
  a->send_channel_data(0x4010, to_bytes("a to b"));
  auto got = b->recv_data();
  ASSERT_TRUE(got.has_value()) << "B did not receive A's data";
  EXPECT_EQ(to_string(got->payload), "a to b");
  EXPECT_EQ(got->peer, relay_a);
  b->send_indication(relay_a, to_bytes("b to a"));
  got = a->recv_data();
  ASSERT_TRUE(got.has_value()) << "A did not receive B's data";
  EXPECT_EQ(to_string(got->payload), "b to a");

  // B's permission covers the whole relay IP, but a Send to the service's
  // port on it is dropped, and counted.
  b->send_indication(service.local(), to_bytes("must not arrive"));
  EXPECT_FALSE(service.recv(silence_timeout).has_value()) << "the host's own service received data";

  // Once B's allocation ends, its port is no longer a live relay port: A's
  // channel to it stops forwarding.
  r = b->refresh(0);
  ASSERT_TRUE(r && r->is_success()) << describe(r);
  a->send_channel_data(0x4010, to_bytes("too late"));

  const auto metrics = http_request(daemon_->http_port(), "GET", "/metrics");
  ASSERT_TRUE(metrics && metrics->status == 200);
  EXPECT_EQ(metric_value(metrics->body, R"(anyturn_peer_denied_total{reason="self"})"), 4.0) << metrics->body;
  EXPECT_EQ(metric_value(metrics->body, R"(anyturn_peer_denied_total{reason="policy"})"), 0.0);
  // The Send to the service and the ChannelData after B's end (the worker
  // may count the second a moment after the request returns).
  std::optional<double> dropped;
  for (int i = 0; i < 20; ++i) {
    const auto m = http_request(daemon_->http_port(), "GET", "/metrics");
    if (m) dropped = metric_value(m->body, R"(anyturn_dropped_packets_total{reason="self_peer"})");
    if (dropped == 2.0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
  }
  EXPECT_EQ(dropped, 2.0);
}

// With the own address opened by --allow-peer (as the other tests here do),
// the operator's allow wins: the listener is a peer like any other.
TEST_F(TurnServer, AllowPeerOpensTheOwnAddress) {
  ASSERT_TRUE(start(22, {"--allow-peer", "127.0.0.1"}));
  udp_socket service(v4_loopback());
  auto a = authed_client();
  allocate_ok(*a);
  const auto r = a->channel_bind(0x4000, service.local());
  ASSERT_TRUE(r && r->is_success()) << describe(r);
  a->send_channel_data(0x4000, to_bytes("allowed"));
  const auto got = service.recv(std::chrono::seconds{2});
  ASSERT_TRUE(got.has_value());
}

// ------------------------------------------------------------------- IPv6

TEST_F(TurnServer, Ipv6BindingOverLoopback) {
  if (!ipv6_loopback_usable()) GTEST_SKIP() << "::1 is not usable here";
  ASSERT_TRUE(start(18, {}, 20, /*ipv6=*/true));
  turn_client c(server());
  auto r = c.binding();
  ASSERT_TRUE(r && r->is_success()) << describe(r);
  auto mapped = r->address(stun::attr::xor_mapped_address);
  ASSERT_TRUE(mapped.has_value()) << r->describe();
  EXPECT_FALSE(mapped->is_v4());
  EXPECT_EQ(*mapped, c.local());
}

TEST_F(TurnServer, Ipv6AllocationRelaysToIpv6Peer) {
  if (!ipv6_loopback_usable()) GTEST_SKIP() << "::1 is not usable here";
  ASSERT_TRUE(start(19, {"--relay-ip", "::1", "--allow-peer", "::1/128"}, 20, /*ipv6=*/true));
  udp_socket peer(v6_loopback());
  auto c = authed_client();
  turn_client::allocate_options o;
  o.family = stun::address_family::ipv6;
  const auto relayed = allocate_ok(*c, o);
  ASSERT_FALSE(relayed.is_v4()) << relayed.to_string();
  EXPECT_EQ(relayed.ip_string(), "::1");

  auto r = c->create_permission({peer.local()});
  ASSERT_TRUE(r && r->is_success()) << describe(r);
  c->send_indication(peer.local(), to_bytes("v6 hello"));
  auto got = peer.recv(response_timeout);
  ASSERT_TRUE(got.has_value()) << "the IPv6 peer received nothing";
  EXPECT_EQ(to_string(got->data), "v6 hello");
  EXPECT_EQ(got->from, relayed);
  peer.send_to(relayed, to_bytes("v6 back"));
  auto back = c->recv_data();
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->peer, peer.local());
  EXPECT_EQ(to_string(back->payload), "v6 back");

  // RFC 6156 §4.2: without REQUESTED-ADDRESS-FAMILY the relay is IPv4,
  // whatever the client's own transport.
  auto c4 = authed_client();
  const auto relayed4 = allocate_ok(*c4);
  EXPECT_TRUE(relayed4.is_v4()) << relayed4.to_string();
}

}  // namespace
}  // namespace anyturn::itest
