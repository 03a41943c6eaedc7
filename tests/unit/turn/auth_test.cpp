// Authentication (RFC 8489 §9.2) and the retransmission cache (§6.3.1): src/turn/auth.cpp.
#include "turn_core_fixture.hpp"

#include <gtest/gtest.h>

namespace anyturn::test {
namespace {

TEST_F(WorkerCore, UnauthenticatedAllocateGetsChallenge) {
  start();
  auto r = send(client(), build(stun::method::allocate, new_tid(), requested_udp));
  EXPECT_EQ(error_of(r), 401);
  EXPECT_EQ(*stun::decode_string(*r.find(attr::realm), 763), realm);
  auto nonce = stun::decode_string(*r.find(attr::nonce), 763);
  ASSERT_TRUE(nonce);
  EXPECT_EQ(nonce->substr(0, 9), "obMatJos2");
  std::array<std::uint16_t, 4> algs{};
  auto n = stun::decode_password_algorithms(*r.find(attr::password_algorithms), algs);
  ASSERT_TRUE(n);
  ASSERT_EQ(*n, 2u);
  EXPECT_EQ(algs[0], 2);  // SHA-256 preferred
  EXPECT_EQ(algs[1], 1);
  EXPECT_FALSE(r.has(attr::message_integrity));
  EXPECT_EQ(counters_.auth_challenges.load(), 1u);
}

TEST_F(WorkerCore, AllocateSucceedsAndIsSigned) {
  start();
  const auto c = client();
  learn_nonce(c);
  auto r = send(c, build(stun::method::allocate, new_tid(), requested_udp, "alice", "wonderland"));
  ASSERT_EQ(r.cls(), message_class::success_response) << error_of(r);
  const auto key = auth::derive_md5_key("alice", realm, "wonderland");
  EXPECT_TRUE(stun::check_message_integrity(r, std::as_bytes(std::span(key))));
  auto relayed = *stun::decode_address(*r.find(attr::xor_relayed_address), r.tid(), true);
  EXPECT_EQ(relayed.ip_string(), "198.51.100.7");
  EXPECT_GE(relayed.port, 50000);
  EXPECT_LE(relayed.port, 50009);
  EXPECT_EQ(*stun::decode_u32(*r.find(attr::lifetime)), 600u);
  EXPECT_EQ(*stun::decode_address(*r.find(attr::xor_mapped_address), r.tid(), true), c.remote);
  EXPECT_EQ(core_->allocation_count(), 1u);
  EXPECT_EQ(io_.open.size(), 1u);
  EXPECT_EQ(counters_.allocations_created.load(), 1u);
}

TEST_F(WorkerCore, Sha256IntegrityIsAcceptedAndAnsweredInKind) {
  start();
  const auto c = client();
  learn_nonce(c);
  auto r = send(c, build(stun::method::allocate, new_tid(), requested_udp, "alice", "wonderland", true));
  ASSERT_EQ(r.cls(), message_class::success_response) << error_of(r);
  EXPECT_TRUE(r.has(attr::message_integrity_sha256));
  const auto key = auth::derive_sha256_key("alice", realm, "wonderland");
  EXPECT_TRUE(stun::check_message_integrity_sha256(r, std::as_bytes(std::span(key))));
}

TEST_F(WorkerCore, WrongPasswordGets401AndIsCounted) {
  start();
  const auto c = client();
  learn_nonce(c);
  auto r = send(c, build(stun::method::allocate, new_tid(), requested_udp, "alice", "wrong"));
  EXPECT_EQ(error_of(r), 401);
  EXPECT_EQ(counters_.auth_bad_integrity.load(), 1u);
  EXPECT_EQ(core_->allocation_count(), 0u);
}

TEST_F(WorkerCore, UnknownUserGets401) {
  start();
  const auto c = client();
  learn_nonce(c);
  auto r = send(c, build(stun::method::allocate, new_tid(), requested_udp, "mallory", "x"));
  EXPECT_EQ(error_of(r), 401);
  EXPECT_EQ(counters_.auth_unknown_user.load(), 1u);
}

TEST_F(WorkerCore, RestCredentialsWorkAndExpire) {
  start();
  const auto c = client();
  const std::string user = auth::rest_username(now_.unix_s, 3600, "carol");
  const std::string pass = auth::rest_password(rest_secret, user);
  allocate(c, user.c_str(), pass.c_str());
  EXPECT_EQ(core_->allocation_count(), 1u);

  const auto c2 = client("203.0.113.11:40000");
  const std::string old_user = auth::rest_username(now_.unix_s, -10, "carol");
  const std::string old_pass = auth::rest_password(rest_secret, old_user);
  learn_nonce(c2);
  auto r = send(c2, build(stun::method::allocate, new_tid(), requested_udp, old_user.c_str(),
                          old_pass.c_str()));
  EXPECT_EQ(error_of(r), 401);
  EXPECT_EQ(counters_.auth_expired_rest.load(), 1u);
}

TEST_F(WorkerCore, StaleNonceGets438WithAFreshNonce) {
  start();
  const auto c = client();
  learn_nonce(c);
  now_.unix_s += 601;
  auto r = send(c, build(stun::method::allocate, new_tid(), requested_udp, "alice", "wonderland"));
  EXPECT_EQ(error_of(r), 438);
  auto fresh = stun::decode_string(*r.find(attr::nonce), 763);
  ASSERT_TRUE(fresh);
  EXPECT_NE(*fresh, nonce_);
  EXPECT_TRUE(r.has(attr::realm));
}

TEST_F(WorkerCore, ForgedNonceGets401) {
  start();
  const auto c = client();
  learn_nonce(c);
  nonce_[nonce_.size() - 1] = nonce_.back() == 'A' ? 'B' : 'A';
  auto r = send(c, build(stun::method::allocate, new_tid(), requested_udp, "alice", "wonderland"));
  EXPECT_EQ(error_of(r), 401);
  EXPECT_EQ(counters_.auth_bad_nonce.load(), 1u);
}

TEST_F(WorkerCore, MissingUsernameWithIntegrityGets400) {
  start();
  const auto c = client();
  std::array<std::byte, 512> buf{};
  stun::message_builder b(buf, 0x003, message_class::request, new_tid());
  b.add_requested_transport(17);
  const auto key = auth::derive_md5_key("alice", realm, "wonderland");
  b.add_message_integrity(std::as_bytes(std::span(key)));
  auto out = b.finish();
  auto r = send(c, bytes(out->begin(), out->end()));
  EXPECT_EQ(error_of(r), 400);
}

TEST_F(WorkerCore, RetransmittedAllocateGetsTheSameAnswer) {
  start();
  const auto c = client();
  learn_nonce(c);
  const auto tid = new_tid();
  const auto req = build(stun::method::allocate, tid, requested_udp, "alice", "wonderland");
  auto first = send(c, req);
  ASSERT_EQ(first.cls(), message_class::success_response);
  const bytes first_bytes = last_;
  send(c, req);
  EXPECT_EQ(last_, first_bytes);
  EXPECT_EQ(core_->allocation_count(), 1u);
  EXPECT_EQ(counters_.retransmits_answered.load(), 1u);
  // A new transaction on the same 5-tuple is a mismatch.
  auto r = send(c, build(stun::method::allocate, new_tid(), requested_udp, "alice", "wonderland"));
  EXPECT_EQ(error_of(r), 437);
}

// RFC 8489 §9.2.4 downgrade protection. A request signed by alice with the
// password-algorithm attributes chosen by each test.
class Downgrade : public WorkerCore {
 protected:
  struct choice {
    std::optional<stun::password_algorithm> algorithm;  // PASSWORD-ALGORITHM
    std::optional<bytes> algorithms;                     // PASSWORD-ALGORITHMS, raw
    bool mi_sha256 = false;                              // else MESSAGE-INTEGRITY
  };

  // Signs with the key of `key_alg`, as a client that chose it would.
  bytes request(const choice& c, stun::password_algorithm key_alg) {
    std::array<std::byte, 1500> buf{};
    stun::message_builder b(buf, static_cast<std::uint16_t>(stun::method::allocate),
                            message_class::request, new_tid());
    b.add_requested_transport(17);
    b.add_string(attr::username, "alice").add_string(attr::realm, realm).add_string(attr::nonce, nonce_);
    if (c.algorithms) b.add_bytes(attr::password_algorithms, *c.algorithms);
    if (c.algorithm) b.add_password_algorithm(*c.algorithm);
    const auto md5 = auth::derive_md5_key("alice", realm, "wonderland");
    const auto sha = auth::derive_sha256_key("alice", realm, "wonderland");
    const stun::bytes_view key = key_alg == stun::password_algorithm::sha256
                                     ? stun::bytes_view(std::as_bytes(std::span(sha)))
                                     : stun::bytes_view(std::as_bytes(std::span(md5)));
    if (c.mi_sha256) {
      b.add_message_integrity_sha256(key);
    } else {
      b.add_message_integrity(key);
    }
    b.add_fingerprint();
    auto out = b.finish();
    EXPECT_TRUE(out);
    return bytes(out->begin(), out->end());
  }

  static bytes list(std::initializer_list<stun::password_algorithm> algs) {
    std::array<std::byte, 64> buf{};
    stun::message_builder b(buf, 0x001, message_class::request, {});
    b.add_password_algorithms(std::vector<stun::password_algorithm>(algs));
    auto m = stun::parse_message(*b.finish());
    const auto v = m->find(attr::password_algorithms)->value;
    return bytes(v.begin(), v.end());
  }

  static constexpr auto md5 = stun::password_algorithm::md5;
  static constexpr auto sha256 = stun::password_algorithm::sha256;
};

TEST_F(Downgrade, Rfc5389ClientsWithoutTheAttributesUseMd5) {
  start();
  const auto c = client();
  learn_nonce(c);
  ASSERT_FALSE(offered_algorithms_.empty()) << "the 401 offers PASSWORD-ALGORITHMS";
  auto r = send(c, request({}, md5));
  ASSERT_EQ(r.cls(), message_class::success_response) << error_of(r);
  const auto key = auth::derive_md5_key("alice", realm, "wonderland");
  EXPECT_TRUE(stun::check_message_integrity(r, std::as_bytes(std::span(key))));
  EXPECT_EQ(counters_.auth_bad_algorithm.load(), 0u);
}

TEST_F(Downgrade, TheOfferEchoedWithEitherAlgorithmIsAccepted) {
  start();
  const auto c = client();
  learn_nonce(c);
  auto r = send(c, request({sha256, offered_algorithms_, true}, sha256));
  ASSERT_EQ(r.cls(), message_class::success_response) << error_of(r);
  const auto sha = auth::derive_sha256_key("alice", realm, "wonderland");
  EXPECT_TRUE(stun::check_message_integrity_sha256(r, std::as_bytes(std::span(sha))));

  // MD5 named from the same offer, with either integrity attribute: the
  // MD5 key, and the answer is signed in kind.
  const auto c2 = client("203.0.113.11:1");
  learn_nonce(c2);
  r = send(c2, request({md5, offered_algorithms_, true}, md5));
  ASSERT_EQ(r.cls(), message_class::success_response) << error_of(r);
  const auto key = auth::derive_md5_key("alice", realm, "wonderland");
  EXPECT_TRUE(stun::check_message_integrity_sha256(r, std::as_bytes(std::span(key))));
  // The SHA-256 key does not prove an MD5 choice.
  const auto c3 = client("203.0.113.12:1");
  learn_nonce(c3);
  r = send(c3, request({md5, offered_algorithms_, false}, sha256));
  EXPECT_EQ(error_of(r), 401);
}

TEST_F(Downgrade, Sha256WithoutTheEchoedOfferGets400) {
  start();
  const auto c = client();
  learn_nonce(c);
  auto r = send(c, request({sha256, std::nullopt, true}, sha256));
  EXPECT_EQ(error_of(r), 400);
  EXPECT_FALSE(r.has(attr::message_integrity)) << "not authenticated: not signed";
  EXPECT_EQ(counters_.auth_bad_algorithm.load(), 1u);
  EXPECT_EQ(core_->allocation_count(), 0u);
}

TEST_F(Downgrade, AnOfferStrippedOnTheWayGets400) {
  start();
  const auto c = client();
  learn_nonce(c);
  // A middlebox removed SHA-256 from the 401; the client picked MD5 from what it saw.
  auto r = send(c, request({md5, list({md5}), false}, md5));
  EXPECT_EQ(error_of(r), 400);
  // Reordered, or with an algorithm we never offered: 400 too.
  r = send(c, request({md5, list({md5, sha256}), false}, md5));
  EXPECT_EQ(error_of(r), 400);
  r = send(c, request({md5, list({sha256, md5, static_cast<stun::password_algorithm>(3)}), false}, md5));
  EXPECT_EQ(error_of(r), 400);
  EXPECT_EQ(counters_.auth_bad_algorithm.load(), 3u);
  EXPECT_EQ(core_->allocation_count(), 0u);
}

TEST_F(Downgrade, OneAttributeWithoutTheOtherOrAnAlgorithmNotInTheListGets400) {
  start();
  const auto c = client();
  learn_nonce(c);
  auto r = send(c, request({std::nullopt, offered_algorithms_, false}, md5));
  EXPECT_EQ(error_of(r), 400) << "PASSWORD-ALGORITHMS without PASSWORD-ALGORITHM";
  r = send(c, request({md5, std::nullopt, false}, md5));
  EXPECT_EQ(error_of(r), 400) << "PASSWORD-ALGORITHM without PASSWORD-ALGORITHMS";
  r = send(c, request({static_cast<stun::password_algorithm>(3), offered_algorithms_, false}, md5));
  EXPECT_EQ(error_of(r), 400) << "an algorithm outside the list";
  EXPECT_EQ(counters_.auth_bad_algorithm.load(), 3u);
}

TEST_F(Downgrade, WithoutTheFeatureBitOnlyMd5IsAccepted) {
  options o;
  o.offer_password_algorithms = false;
  start(o);
  const auto c = client();
  learn_nonce(c);
  EXPECT_TRUE(offered_algorithms_.empty()) << "no PASSWORD-ALGORITHMS without the feature bit";
  auto r = send(c, request({sha256, list({sha256, md5}), true}, sha256));
  EXPECT_EQ(error_of(r), 400) << "SHA-256 was never offered";
  r = send(c, request({md5, std::nullopt, false}, md5));
  ASSERT_EQ(r.cls(), message_class::success_response) << error_of(r);
  const auto c2 = client("203.0.113.11:1");
  learn_nonce(c2);
  r = send(c2, request({}, md5));
  ASSERT_EQ(r.cls(), message_class::success_response) << error_of(r);
  EXPECT_EQ(counters_.auth_bad_algorithm.load(), 1u);
}

}  // namespace
}  // namespace anyturn::test

namespace anyturn::test {
namespace {

// ---- limits.auth_failures: failed authentications per source and per static user ----

class AuthFailureLimit : public WorkerCore {
 protected:
  // One Allocate from `c` with a fresh nonce for its address; returns its
  // error code, 0 for a success, or -2 when nothing was answered.
  int attempt(const client_ref& c, const char* user, const char* password) {
    if (!nonce_ip_ || !nonce_ip_->same_ip(c.remote)) learn(c);  // a nonce is bound to an address, not a port
    io_.to_client.clear();
    core_->on_client_packet(c, build(stun::method::allocate, new_tid(), requested_udp, user, password),
                            now_);
    if (io_.to_client.empty()) return -2;
    auto parsed = stun::parse_message(io_.to_client.back().data);
    if (!parsed) return -3;
    return error_of(*parsed);
  }
  void learn(const client_ref& c) {
    learn_nonce(c);
    nonce_ip_ = c.remote;
  }
  static client_ref from(int host, int port = 40000) {
    client_ref c;
    c.proto = transport::udp;
    c.remote = stun::endpoint::v4(0xCB007100u + static_cast<std::uint32_t>(host),
                                  static_cast<std::uint16_t>(port));  // 203.0.113.<host>
    c.local = ep("192.0.2.1:3478");
    return c;
  }
  std::optional<stun::endpoint> nonce_ip_;
};

// Past the limit a request gets 401 without any key being tried: the same
// answer as a wrong password, so guessing learns nothing, and a client with
// a wrong password is told so instead of retransmitting into silence.
TEST_F(AuthFailureLimit, WrongPasswordsFromOneSourceAreRefusedUncheckedPastTheLimit) {
  start({.unauthenticated_per_source = turn::rate_limit{0, 1},  // every 401 goes out
         .auth_failures_per_source = turn::rate_limit{1, 5},
         .auth_failures_per_user = turn::rate_limit{0, 1}});
  int answered = 0;
  for (int i = 0; i < 100; ++i) answered += attempt(from(66, 1000 + i), "alice", "guess") == 401;
  EXPECT_EQ(answered, 100);
  EXPECT_EQ(counters_.auth_bad_integrity.load(), 5u);  // only 5 were checked
  EXPECT_EQ(counters_.auth_fail_rate_dropped.load(), 95u);
  // Past the limit even the right password is not tried: a guess learns nothing.
  EXPECT_EQ(attempt(from(66, 2000), "alice", "wonderland"), 401);
  EXPECT_EQ(core_->allocation_count(), 0u);
  EXPECT_EQ(counters_.auth_fail_rate_dropped.load(), 96u);
  // The user herself, from her own address, gets in.
  EXPECT_EQ(attempt(from(10), "alice", "wonderland"), 0);
  // And the attacker's address gets one more checked try a second.
  now_.mono_ms += 1000;
  EXPECT_EQ(attempt(from(66, 3000), "alice", "guess"), 401);
  EXPECT_EQ(counters_.auth_bad_integrity.load(), 6u);
  EXPECT_EQ(attempt(from(66, 3001), "alice", "guess"), 401);
  EXPECT_EQ(counters_.auth_bad_integrity.load(), 6u);
  EXPECT_EQ(counters_.auth_fail_rate_dropped.load(), 97u);
}

TEST_F(AuthFailureLimit, UnknownUsersSpendTheSourceBudget) {
  start({.auth_failures_per_source = turn::rate_limit{1, 3}});
  int answered = 0;
  for (int i = 0; i < 20; ++i) answered += attempt(from(66, 1000 + i), "mallory", "x") == 401;
  EXPECT_EQ(answered, 20);  // 3 checked, 17 refused unchecked
  EXPECT_EQ(counters_.auth_unknown_user.load(), 3u);
  EXPECT_EQ(counters_.auth_fail_rate_dropped.load(), 17u);
}

TEST_F(AuthFailureLimit, AFloodAgainstAnotherNameFromAnotherSourceLeavesAUserAlone) {
  start();  // the defaults
  for (int i = 0; i < 200; ++i) attempt(from(66, 1000 + i), "bob", "guess");
  EXPECT_GT(counters_.auth_fail_rate_dropped.load(), 0u);
  EXPECT_EQ(attempt(from(10), "alice", "wonderland"), 0);
}

// The trade-off: a per-user limit lets many addresses together lock a static
// user out (while they keep at it), except where she already has an allocation.
TEST_F(AuthFailureLimit, ManySourcesCanLockAStaticUserOutButNotHerAllocation) {
  start({.auth_failures_per_source = turn::rate_limit{0, 1},
         .auth_failures_per_user = turn::rate_limit{1, 5}});
  const auto alice = from(10);
  allocate(alice);
  for (int host = 100; host < 105; ++host) EXPECT_EQ(attempt(from(host), "alice", "guess"), 401);
  EXPECT_EQ(attempt(from(105), "alice", "guess"), 401);
  EXPECT_EQ(attempt(from(11), "alice", "wonderland"), 401);  // locked out elsewhere...
  EXPECT_EQ(core_->allocation_count(), 1u);
  EXPECT_EQ(counters_.auth_fail_rate_dropped.load(), 2u);
  learn(alice);
  auto r = permit(alice, peer_);  // ...but her allocation's 5-tuple goes on
  EXPECT_EQ(r.cls(), message_class::success_response) << error_of(r);
  // Another user is not affected, and the lock lifts at the rate.
  EXPECT_EQ(attempt(from(12), "bob", "builder"), 0);
  now_.mono_ms += 1000;
  EXPECT_EQ(attempt(from(13), "alice", "wonderland"), 0);
}

TEST_F(AuthFailureLimit, RestUsernamesHaveNoPerUserBucket) {
  start({.auth_failures_per_source = turn::rate_limit{0, 1},
         .auth_failures_per_user = turn::rate_limit{1, 2}});
  const std::string user = auth::rest_username(now_.unix_s, 3600, "carol");
  for (int host = 100; host < 110; ++host)
    EXPECT_EQ(attempt(from(host), user.c_str(), "not-the-mac"), 401);
  EXPECT_EQ(counters_.auth_fail_rate_dropped.load(), 0u);
  const std::string pass = auth::rest_password(rest_secret, user);
  EXPECT_EQ(attempt(from(10), user.c_str(), pass.c_str()), 0);
}

TEST_F(AuthFailureLimit, ExpiredRestCredentialsAreNoFailuresToLimit) {
  start({.auth_failures_per_source = turn::rate_limit{1, 2}});
  const std::string old_user = auth::rest_username(now_.unix_s, -10, "carol");
  const std::string old_pass = auth::rest_password(rest_secret, old_user);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(attempt(from(10, 1000 + i), old_user.c_str(), old_pass.c_str()), 401);
  EXPECT_EQ(counters_.auth_expired_rest.load(), 10u);
  EXPECT_EQ(counters_.auth_fail_rate_dropped.load(), 0u);
}

TEST_F(AuthFailureLimit, RateZeroIsOff) {
  start({.auth_failures_per_source = turn::rate_limit{0, 1},
         .auth_failures_per_user = turn::rate_limit{0, 1}});
  int answered = 0;
  for (int i = 0; i < 40; ++i) answered += attempt(from(66, 1000 + i), "alice", "guess") == 401;
  EXPECT_EQ(answered, 40);
  EXPECT_EQ(counters_.auth_fail_rate_dropped.load(), 0u);
}

}  // namespace
}  // namespace anyturn::test
