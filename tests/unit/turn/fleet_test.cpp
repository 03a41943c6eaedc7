// The worker's fleet rules: src/turn/fleet.cpp (anycast redirect, drain,
// revocations, auth.enforce_expiry, relay.external_ips).
#include "turn_core_fixture.hpp"

#include <anyturn/auth/revocations.hpp>
#include <anyturn/turn/fleet_signals.hpp>

#include <gtest/gtest.h>

#include <string>

namespace anyturn::test {
namespace {

// The 300's ALTERNATE-SERVER (a plain address, RFC 8489 §14.15).
stun::endpoint alternate_of(const stun::message_view& m) {
  const auto a = m.find(attr::alternate_server);
  EXPECT_TRUE(a) << "300 without ALTERNATE-SERVER";
  if (!a) return {};
  const auto decoded = stun::decode_address(*a, m.tid(), false);
  EXPECT_TRUE(decoded);
  return decoded ? *decoded : stun::endpoint{};
}

class Fleet : public WorkerCore {
 protected:
  // The end of a 5-second REST credential's allocation, in ms after its
  // expiry, for every phase of the wall clock against the ticks (below).
  std::vector<std::int64_t> credential_end_offsets(bool wall_ms);

  client_ref client_on(const char* local, transport proto = transport::udp,
                       const char* remote = "203.0.113.10:40000") {
    client_ref c = client(remote);
    c.local = ep(local);
    c.proto = proto;
    return c;
  }

  // An authenticated Allocate (after its 401) and its answer.
  stun::message_view try_allocate(const client_ref& c, const char* user = "alice",
                                  const char* password = "wonderland") {
    learn_nonce(c);
    return send(c, build(stun::method::allocate, new_tid(), requested_udp, user, password));
  }

  void fleet_node() {
    shared_->anycast_ips = {ep("192.0.2.1:0"), ep("[2001:db8::1]:0")};
    shared_->unicast_ips = {ep("198.51.100.50:0"), ep("[2001:db8::50]:0")};
  }

  std::shared_ptr<turn::fleet_signals> draining(std::optional<turn::alternate_node> target) {
    auto f = std::make_shared<turn::fleet_signals>();
    f->set_draining(true);
    f->set_drain_target(target);
    shared_->fleet = f;
    return f;
  }

  static turn::alternate_node node2() {
    turn::alternate_node n;
    n.v4 = ep("198.51.100.60:0");
    n.v6 = ep("[2001:db8::60]:0");
    n.udp_port = 3478;
    n.tcp_port = 3479;
    n.tls_port = 5349;
    return n;
  }

  // A REST credential of the default tenant: "<expiry>:<user>".
  struct rest_credential {
    std::string user, password;
  };
  rest_credential rest(std::int64_t expiry, const char* user = "carol") {
    rest_credential c;
    c.user = std::to_string(expiry) + ":" + user;
    c.password = auth::rest_password(rest_secret, c.user);
    return c;
  }
};

// ------------------------------------------------------- anycast

TEST_F(Fleet, AnycastAllocateGets300ToTheUnicastAddressOnlyAfterAuthentication) {
  start();
  fleet_node();
  const auto c = client();  // reached 192.0.2.1:3478, an anycast address
  // Unauthenticated: the normal 401, no redirect (no reflection through 300s).
  auto r = send(c, build(stun::method::allocate, new_tid(), requested_udp));
  EXPECT_EQ(error_of(r), 401);
  EXPECT_FALSE(r.has(attr::alternate_server));

  learn_nonce(c);
  const auto tid = new_tid();
  const auto request = build(stun::method::allocate, tid, requested_udp, "alice", "wonderland");
  r = send(c, request);
  ASSERT_EQ(error_of(r), 300);
  EXPECT_EQ(alternate_of(r), ep("198.51.100.50:3478"));
  EXPECT_FALSE(r.has(attr::alternate_domain)) << "ALTERNATE-DOMAIN only over TLS";
  EXPECT_TRUE(r.has(attr::message_integrity)) << "the 300 is signed like other authenticated errors";
  const auto key = auth::derive_md5_key("alice", realm, "wonderland");
  EXPECT_TRUE(stun::check_message_integrity(r, std::as_bytes(std::span(key))));
  EXPECT_EQ(core_->allocation_count(), 0u);
  EXPECT_TRUE(io_.open.empty());
  EXPECT_EQ(counters_.redirects_anycast.load(), 1u);
  // A retransmission gets the same answer.
  const bytes first = last_;
  send(c, request);
  EXPECT_EQ(last_, first);
}

TEST_F(Fleet, BindingOnTheAnycastAddressIsAnsweredNormally) {
  start();
  fleet_node();
  const auto c = client();
  auto r = send(c, build(stun::method::binding, new_tid(), nullptr));
  ASSERT_EQ(r.cls(), message_class::success_response);
  EXPECT_EQ(*stun::decode_address(*r.find(attr::xor_mapped_address), r.tid(), true), c.remote);
}

TEST_F(Fleet, AllocateOnTheUnicastAddressIsServed) {
  start();
  fleet_node();
  const auto c = client_on("198.51.100.50:3478");
  const auto r = try_allocate(c);
  EXPECT_EQ(r.cls(), message_class::success_response) << error_of(r);
  EXPECT_EQ(core_->allocation_count(), 1u);
  EXPECT_EQ(counters_.redirects_anycast.load(), 0u);
}

TEST_F(Fleet, AnycastOverTlsAddsAlternateDomainAndKeepsTheTransportPort) {
  start();
  fleet_node();
  shared_->alternate_domain = "node1.turn.example.net";
  auto r = try_allocate(client_on("192.0.2.1:5349", transport::tls));
  ASSERT_EQ(error_of(r), 300);
  EXPECT_EQ(alternate_of(r), ep("198.51.100.50:5349"));
  const auto domain = r.find(attr::alternate_domain);
  ASSERT_TRUE(domain);
  EXPECT_EQ(*stun::decode_string(*domain, 255), "node1.turn.example.net");

  r = try_allocate(client_on("192.0.2.1:443", transport::tcp, "203.0.113.11:40000"));
  ASSERT_EQ(error_of(r), 300);
  EXPECT_EQ(alternate_of(r), ep("198.51.100.50:443"));
  EXPECT_FALSE(r.has(attr::alternate_domain)) << "TCP is not TLS";

  // DTLS clients check the certificate too.
  r = try_allocate(client_on("192.0.2.1:5350", transport::dtls, "203.0.113.12:40000"));
  ASSERT_EQ(error_of(r), 300);
  EXPECT_EQ(alternate_of(r), ep("198.51.100.50:5350"));
  EXPECT_TRUE(r.has(attr::alternate_domain)) << "DTLS carries ALTERNATE-DOMAIN like TLS";
}

TEST_F(Fleet, AnycastPicksTheUnicastAddressOfTheClientsFamily) {
  start();
  fleet_node();
  auto r = try_allocate(client_on("[2001:db8::1]:3478", transport::udp, "[2001:db8:1::9]:40000"));
  ASSERT_EQ(error_of(r), 300);
  EXPECT_EQ(alternate_of(r), ep("[2001:db8::50]:3478"));
  // A dual-stack socket reports an IPv4 client's local address as ::ffff:a.b.c.d.
  r = try_allocate(client_on("[::ffff:192.0.2.1]:3478", transport::udp, "[::ffff:203.0.113.12]:40000"));
  ASSERT_EQ(error_of(r), 300);
  EXPECT_EQ(alternate_of(r), ep("198.51.100.50:3478"));
}

TEST_F(Fleet, AnycastWithoutAUnicastAddressOfTheFamilyServesNormally) {
  start();
  shared_->anycast_ips = {ep("192.0.2.1:0")};
  shared_->unicast_ips = {ep("[2001:db8::50]:0")};  // no IPv4 unicast address
  const auto r = try_allocate(client());
  EXPECT_EQ(r.cls(), message_class::success_response) << error_of(r);
  EXPECT_EQ(counters_.redirects_anycast.load(), 0u);
}

// ------------------------------------------------------- drain

TEST_F(Fleet, DrainSendsNewAllocatesToTheTargetOfTheirFamilyAndTransport) {
  start();
  draining(node2());
  struct row {
    const char* local;
    transport proto;
    const char* remote;
    const char* expected;
  };
  const row rows[] = {
      {"192.0.2.1:3478", transport::udp, "203.0.113.10:40000", "198.51.100.60:3478"},
      {"192.0.2.1:3478", transport::tcp, "203.0.113.11:40000", "198.51.100.60:3479"},
      {"192.0.2.1:5349", transport::tls, "203.0.113.12:40000", "198.51.100.60:5349"},
      {"[2001:db8::1]:3478", transport::udp, "[2001:db8:1::9]:40000", "[2001:db8::60]:3478"},
  };
  shared_->alternate_domain = "node1.turn.example.net";  // this node's name: not the target's
  for (const auto& x : rows) {
    const auto r = try_allocate(client_on(x.local, x.proto, x.remote));
    ASSERT_EQ(error_of(r), 300) << x.expected;
    EXPECT_EQ(alternate_of(r), ep(x.expected));
    EXPECT_FALSE(r.has(attr::alternate_domain));
    EXPECT_TRUE(r.has(attr::message_integrity));
  }
  EXPECT_EQ(counters_.redirects_drain.load(), 4u);
  EXPECT_EQ(core_->allocation_count(), 0u);
}

TEST_F(Fleet, DrainWithoutAUsableTargetAnswers508) {
  start();
  auto fleet = draining(std::nullopt);
  auto r = try_allocate(client());
  ASSERT_EQ(error_of(r), 508);
  EXPECT_TRUE(r.has(attr::message_integrity));
  // A target without this transport (port 0) or without this family.
  turn::alternate_node no_tcp = node2();
  no_tcp.tcp_port = 0;
  no_tcp.v6.reset();
  fleet->set_drain_target(no_tcp);
  r = try_allocate(client_on("192.0.2.1:3478", transport::tcp, "203.0.113.11:40000"));
  EXPECT_EQ(error_of(r), 508);
  r = try_allocate(client_on("[2001:db8::1]:3478", transport::udp, "[2001:db8:1::9]:40000"));
  EXPECT_EQ(error_of(r), 508);
  r = try_allocate(client_on("192.0.2.1:3478", transport::udp, "203.0.113.13:40000"));
  EXPECT_EQ(error_of(r), 300);
  EXPECT_EQ(counters_.drain_refused.load(), 3u);
  EXPECT_EQ(counters_.redirects_drain.load(), 1u);
  EXPECT_EQ(core_->allocation_count(), 0u);
}

TEST_F(Fleet, OnADrainingNodeTheDrainRuleWinsOverAnycast) {
  start();
  fleet_node();
  draining(node2());
  const auto r = try_allocate(client());
  ASSERT_EQ(error_of(r), 300);
  EXPECT_EQ(alternate_of(r), ep("198.51.100.60:3478"));
  EXPECT_EQ(counters_.redirects_anycast.load(), 0u);
  EXPECT_EQ(counters_.redirects_drain.load(), 1u);
}

TEST_F(Fleet, ExistingAllocationKeepsRefreshingAndRelayingDuringDrain) {
  start();
  const auto c = client();
  learn_nonce(c);
  const auto tid = new_tid();
  const auto original = build(stun::method::allocate, tid, requested_udp, "alice", "wonderland");
  auto r = send(c, original);
  ASSERT_EQ(r.cls(), message_class::success_response);
  const auto relayed = *stun::decode_address(*r.find(attr::xor_relayed_address), tid, true);

  auto fleet = draining(std::nullopt);
  // Its retransmitted Allocate, from the cache and, once evicted, rebuilt.
  r = send(c, original);
  EXPECT_EQ(r.cls(), message_class::success_response);
  now_.mono_ms += 41'000;
  r = send(c, original);
  ASSERT_EQ(r.cls(), message_class::success_response) << error_of(r);
  EXPECT_EQ(*stun::decode_address(*r.find(attr::xor_relayed_address), tid, true), relayed);
  // Refresh, CreatePermission, ChannelBind, relaying.
  r = send(c, build(stun::method::refresh, new_tid(), [](auto& b) { b.add_u32(attr::lifetime, 600); },
                    "alice", "wonderland"));
  EXPECT_EQ(r.cls(), message_class::success_response) << error_of(r);
  EXPECT_EQ(permit(c, peer_).cls(), message_class::success_response);
  EXPECT_EQ(bind_channel(c, 0x4000, peer_).cls(), message_class::success_response);
  io_.to_peer.clear();
  core_->on_client_packet(c, channel_data(0x4000, "still here"), now_);
  ASSERT_EQ(io_.to_peer.size(), 1u);
  EXPECT_EQ(io_.to_peer[0].peer, peer_);
  // A new client meanwhile gets 508, and after the drain is served again.
  r = try_allocate(client("203.0.113.20:40000"));
  EXPECT_EQ(error_of(r), 508);
  fleet->set_draining(false);
  r = try_allocate(client("203.0.113.21:40000"));
  EXPECT_EQ(r.cls(), message_class::success_response);
  EXPECT_EQ(core_->allocation_count(), 2u);
}

// ------------------------------------------------------- relay.external_ips

TEST_F(Fleet, XorRelayedAddressCarriesTheExternalAddressOfTheRelay) {
  options o;
  o.with_v6 = true;
  start(o);
  shared_->external_ips = {{ep("198.51.100.7:0"), ep("203.0.113.77:0")}};
  const auto c = client();
  const auto relayed = allocate(c);
  ASSERT_EQ(io_.open.size(), 1u);
  const stun::endpoint bound = io_.open.begin()->second;
  EXPECT_EQ(bound.ip_string(), "198.51.100.7") << "the socket binds the private address";
  EXPECT_EQ(relayed, (stun::endpoint{ep("203.0.113.77:0").family, ep("203.0.113.77:0").ip, bound.port}));
  // An unmapped relay address (the IPv6 one) is announced as it is.
  const auto c6 = client("203.0.113.30:40000");
  learn_nonce(c6);
  auto r = send(c6, build(stun::method::allocate, new_tid(),
                          [](stun::message_builder& b) {
                            b.add_requested_transport(17);
                            b.add_address_family(attr::requested_address_family,
                                                 stun::address_family::ipv6);
                          },
                          "alice", "wonderland"));
  ASSERT_EQ(r.cls(), message_class::success_response) << error_of(r);
  const auto v6 = *stun::decode_address(*r.find(attr::xor_relayed_address), r.tid(), true);
  EXPECT_EQ(v6.ip_string(), "2001:db8::7");
}

// ------------------------------------------------------- auth.enforce_expiry

TEST_F(Fleet, RestCredentialClampsAllocateAndRefreshLifetimes) {
  start();
  const auto cred = rest(now_.unix_s + 100);
  const auto c = client();
  learn_nonce(c);
  auto r = send(c, build(stun::method::allocate, new_tid(), requested_udp, cred.user.c_str(),
                         cred.password.c_str()));
  ASSERT_EQ(r.cls(), message_class::success_response) << error_of(r);
  EXPECT_EQ(*stun::decode_u32(*r.find(attr::lifetime)), 100u);
  advance(30);
  r = send(c, build(stun::method::refresh, new_tid(), [](auto& b) { b.add_u32(attr::lifetime, 3600); },
                    cred.user.c_str(), cred.password.c_str()));
  ASSERT_EQ(r.cls(), message_class::success_response) << error_of(r);
  EXPECT_EQ(*stun::decode_u32(*r.find(attr::lifetime)), 70u);
  // A static user has no expiry.
  const auto a = client("203.0.113.40:40000");
  learn_nonce(a);
  r = send(a, build(stun::method::allocate, new_tid(), requested_udp, "alice", "wonderland"));
  EXPECT_EQ(*stun::decode_u32(*r.find(attr::lifetime)), 600u);
}

TEST_F(Fleet, FarFutureRestCredentialIsServedNormally) {
  start();
  const auto cred = rest(999'999'999'999'999'999);  // 18 digits: the longest accepted
  const auto c = client();
  learn_nonce(c);
  auto r = send(c, build(stun::method::allocate, new_tid(), requested_udp, cred.user.c_str(),
                         cred.password.c_str()));
  ASSERT_EQ(r.cls(), message_class::success_response) << error_of(r);
  EXPECT_EQ(*stun::decode_u32(*r.find(attr::lifetime)), 600u);
  advance(300);
  EXPECT_EQ(core_->allocation_count(), 1u);
  advance(301);
  EXPECT_EQ(core_->allocation_count(), 0u);
  EXPECT_EQ(counters_.closed_expired.load(), 1u);
}

// A Refresh that shortens the lifetime re-arms the timer: the allocation
// ends at the new expiry, not at the check armed for the old one.
TEST_F(Fleet, RefreshThatShortensTheLifetimeEndsOnTime) {
  start();
  const auto c = client();
  allocate(c, "alice", "wonderland", [](stun::message_builder& b) { b.add_u32(attr::lifetime, 3600); });
  learn_nonce(c);
  auto r = send(c, build(stun::method::refresh, new_tid(), [](auto& b) { b.add_u32(attr::lifetime, 600); },
                         "alice", "wonderland"));
  ASSERT_EQ(r.cls(), message_class::success_response) << error_of(r);
  EXPECT_EQ(*stun::decode_u32(*r.find(attr::lifetime)), 600u);
  advance(599);
  EXPECT_EQ(core_->allocation_count(), 1u);
  advance(2);
  EXPECT_EQ(core_->allocation_count(), 0u);
  EXPECT_EQ(counters_.closed_expired.load(), 1u);
}

TEST_F(Fleet, WithoutEnforceExpiryTheLifetimeIsNotClamped) {
  start();
  shared_->enforce_expiry = false;
  const auto cred = rest(now_.unix_s + 100);
  const auto c = client();
  learn_nonce(c);
  auto r = send(c, build(stun::method::allocate, new_tid(), requested_udp, cred.user.c_str(),
                         cred.password.c_str()));
  ASSERT_EQ(r.cls(), message_class::success_response);
  EXPECT_EQ(*stun::decode_u32(*r.find(attr::lifetime)), 600u);
  advance(200);
  EXPECT_EQ(core_->allocation_count(), 1u);
  EXPECT_EQ(counters_.closed_credential_expired.load(), 0u);
}

TEST_F(Fleet, CredentialInItsExpirySecondIsRefusedAsExpired) {
  start();
  const auto cred = rest(now_.unix_s);  // valid "while now <= expiry": 0 s left
  const auto c = client();
  learn_nonce(c);
  auto r = send(c, build(stun::method::allocate, new_tid(), requested_udp, cred.user.c_str(),
                         cred.password.c_str()));
  EXPECT_EQ(error_of(r), 401);
  EXPECT_EQ(counters_.auth_expired_rest.load(), 1u);
  EXPECT_EQ(core_->allocation_count(), 0u);
  shared_->enforce_expiry = false;  // as before: valid through its expiry second
  r = send(c, build(stun::method::allocate, new_tid(), requested_udp, cred.user.c_str(),
                    cred.password.c_str()));
  EXPECT_EQ(r.cls(), message_class::success_response);
}

// Real clocks: the wall clock's second starts at any phase of the
// monotonic one, and the worker ticks every 250 ms. For every phase, a
// 5-second credential's allocation ends with its usage record and counter;
// returns how many ms after the expiry (negative: before), per case.
std::vector<std::int64_t> Fleet::credential_end_offsets(bool wall_ms) {
  std::vector<std::int64_t> out;
  for (const std::int64_t phase : {0, 1, 250, 499, 500, 750, 999}) {
    for (const std::int64_t tick_offset : {0, 90, 180}) {
      SCOPED_TRACE("phase " + std::to_string(phase) + " tick offset " + std::to_string(tick_offset));
      start();
      auto usage = std::make_shared<recording_usage>();
      shared_->usage = usage;
      const std::uint64_t closed_before = counters_.closed_credential_expired.load();
      const std::int64_t mono0 = 5'000'000 + tick_offset;
      const std::int64_t unix0_ms = 1'800'000'000'000 + phase;  // the true wall clock
      std::int64_t t = 0;
      auto set_clock = [&] {
        now_.mono_ms = mono0 + t;
        now_.unix_s = (unix0_ms + t) / 1000;
        now_.unix_ms = wall_ms ? unix0_ms + t : 0;
      };
      auto tick = [&] {
        t += 250;
        set_clock();
        core_->on_tick(now_);
      };
      for (int i = 0; i < 8; ++i) tick();  // the worker has been running
      t += 100;
      set_clock();
      const auto cred = rest(now_.unix_s + 5);
      const std::int64_t expiry_ms = (now_.unix_s + 5) * 1000;
      const auto c = client();
      learn_nonce(c);
      auto r = send(c, build(stun::method::allocate, new_tid(), requested_udp, cred.user.c_str(),
                                 cred.password.c_str()));
      EXPECT_EQ(r.cls(), message_class::success_response) << error_of(r);
      if (r.cls() != message_class::success_response) continue;
      EXPECT_LE(*stun::decode_u32(*r.find(attr::lifetime)), 5u);
      std::int64_t ended_ms = -1;
      for (int i = 0; i < 60 && ended_ms < 0; ++i) {
        tick();
        if (core_->allocation_count() == 0) ended_ms = unix0_ms + t;
      }
      EXPECT_GE(ended_ms, 0) << "the allocation never ended";
      if (ended_ms < 0) continue;
      out.push_back(ended_ms - expiry_ms);
      EXPECT_EQ(usage->rows.size(), 1u);
      if (!usage->rows.empty()) {
        EXPECT_EQ(usage->rows[0].reason, "credential_expired");
        EXPECT_EQ(usage->rows[0].user, cred.user);
      }
      EXPECT_EQ(counters_.closed_credential_expired.load(), closed_before + 1);
    }
  }
  return out;
}

// The wall clock in milliseconds (now_t::unix_ms, as the workers read it):
// the allocation ends on the first tick at or after the expiry, never
// before it and at most one tick (250 ms) after.
TEST_F(Fleet, AllocationEndsAtItsCredentialsExpiryOnTheNextTick) {
  const auto offsets = credential_end_offsets(true);
  EXPECT_EQ(offsets.size(), 21u);
  for (const std::int64_t d : offsets) {
    EXPECT_GE(d, 0) << "early by " << -d << " ms";
    EXPECT_LT(d, 250) << "late by " << d << " ms";
  }
}

// Whole seconds only (now_t::unix_ms 0): the core estimates the part of the
// second from its ticks, within half a tick.
TEST_F(Fleet, AllocationEndsNearItsCredentialsExpiryWithTheEstimatedSecond) {
  const auto offsets = credential_end_offsets(false);
  EXPECT_EQ(offsets.size(), 21u);
  for (const std::int64_t d : offsets) {
    EXPECT_GE(d, -125) << "early by " << -d << " ms";
    EXPECT_LE(d, 250 + 125) << "late by " << d << " ms";
  }
}

// ------------------------------------------------------- revocations

TEST_F(Fleet, RevocationEndsTheCredentialsAllocationsOnTheNextTickAndRefusesIt) {
  start();
  auto board = std::make_shared<auth::revocation_board>();
  shared_->revocations = board;
  auto usage = std::make_shared<recording_usage>();
  shared_->usage = usage;
  const auto carol = rest(now_.unix_s + 3600, "carol");
  const auto erin = rest(now_.unix_s + 3600, "erin");
  const auto c1 = client("203.0.113.50:40000");
  const auto c2 = client("203.0.113.51:40000");
  allocate(c1, carol.user.c_str(), carol.password.c_str());
  allocate(c2, erin.user.c_str(), erin.password.c_str());
  ASSERT_EQ(core_->allocation_count(), 2u);

  advance(1);
  EXPECT_EQ(core_->allocation_count(), 2u) << "nothing revoked yet";
  auth::revocation rv;
  rv.username = carol.user;
  rv.until_unix = now_.unix_s + 3600;
  ASSERT_TRUE(board->add(rv));
  now_.mono_ms += 250;
  core_->on_tick(now_);
  EXPECT_EQ(core_->allocation_count(), 1u);
  ASSERT_EQ(usage->rows.size(), 1u);
  EXPECT_EQ(usage->rows[0].user, carol.user);
  EXPECT_EQ(usage->rows[0].reason, "revoked");
  EXPECT_EQ(counters_.closed_revoked.load(), 1u);

  // The credential is refused from then on, like an unknown one.
  const auto c3 = client("203.0.113.52:40000");
  learn_nonce(c3);
  auto r = send(c3, build(stun::method::allocate, new_tid(), requested_udp, carol.user.c_str(),
                          carol.password.c_str()));
  EXPECT_EQ(error_of(r), 401);
  EXPECT_FALSE(r.has(attr::message_integrity));
  EXPECT_EQ(counters_.auth_revoked.load(), 1u);
  // The other user's allocation is untouched.
  learn_nonce(c2);  // nonces are bound to the client's address
  r = send(c2, build(stun::method::refresh, new_tid(), nullptr, erin.user.c_str(),
                     erin.password.c_str()));
  EXPECT_EQ(r.cls(), message_class::success_response);
}

TEST_F(Fleet, RevokingAUserEndsEveryCredentialOfItEvenBeforeTheTick) {
  start();
  auto board = std::make_shared<auth::revocation_board>();
  shared_->revocations = board;
  const auto one = rest(now_.unix_s + 600, "carol");
  const auto two = rest(now_.unix_s + 900, "carol");
  const auto other = rest(now_.unix_s + 900, "erin");
  const auto c1 = client("203.0.113.60:40000");
  const auto c2 = client("203.0.113.61:40000");
  const auto c3 = client("203.0.113.62:40000");
  allocate(c1, one.user.c_str(), one.password.c_str());
  allocate(c2, two.user.c_str(), two.password.c_str());
  allocate(c3, other.user.c_str(), other.password.c_str());
  auth::revocation rv;
  rv.user = "carol";
  rv.until_unix = now_.unix_s + 900;
  board->add(rv);
  // No tick yet: the request that authenticates first applies it.
  auto r = send(c1, build(stun::method::refresh, new_tid(), nullptr, one.user.c_str(),
                          one.password.c_str()));
  EXPECT_EQ(error_of(r), 401);
  EXPECT_EQ(core_->allocation_count(), 1u);
  EXPECT_EQ(counters_.closed_revoked.load(), 2u);
}

// ------------------------------------------------------- usage records

TEST_F(Fleet, UsageRecordCarriesTheCustomIdentifier) {
  start();
  auto usage = std::make_shared<recording_usage>();
  shared_->usage = usage;
  const auto cred = rest(now_.unix_s + 3600, "carol~room-42");
  allocate(client(), cred.user.c_str(), cred.password.c_str());
  allocate(client("203.0.113.70:40000"));  // alice: none
  core_->shutdown(now_);
  ASSERT_EQ(usage->rows.size(), 2u);
  for (const auto& row : usage->rows) {
    EXPECT_EQ(row.custom_identifier, row.user == cred.user ? "room-42" : "") << row.user;
    EXPECT_EQ(row.reason, "shutdown");
  }
  EXPECT_EQ(counters_.closed_shutdown.load(), 2u);
}

TEST_F(Fleet, EveryEndIsCountedByReason) {
  start();
  const auto a = client("203.0.113.80:40000");
  const auto b = client("203.0.113.81:40000");
  const auto d = client("203.0.113.82:40000");
  allocate(a);
  allocate(b);
  allocate(d);
  learn_nonce(b);
  ASSERT_EQ(send(b, build(stun::method::refresh, new_tid(), [](auto& m) { m.add_u32(attr::lifetime, 0); },
                          "alice", "wonderland"))
                .cls(),
            message_class::success_response);
  core_->on_client_closed(d, now_);
  advance(700);
  EXPECT_EQ(counters_.closed_deleted.load(), 1u);
  EXPECT_EQ(counters_.closed_connection.load(), 1u);
  EXPECT_EQ(counters_.closed_expired.load(), 1u);
  EXPECT_EQ(counters_.allocations_expired.load(), 1u) << "the existing series are unchanged";
  EXPECT_EQ(counters_.allocations_deleted.load(), 1u);
  EXPECT_EQ(counters_.allocations_closed.load(), 1u);
}

}  // namespace
}  // namespace anyturn::test
