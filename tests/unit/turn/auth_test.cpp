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

}  // namespace
}  // namespace anyturn::test
