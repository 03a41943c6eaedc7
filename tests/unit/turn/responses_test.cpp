// Answers (src/turn/responses.cpp): the limit on unauthenticated answers per
// source (limits.unauthenticated_per_source), and the size of the challenge.
#include "allocation_counter.hpp"
#include "turn_core_fixture.hpp"

#include <gtest/gtest.h>

#include <iostream>

namespace anyturn::test {
namespace {

std::size_t padded(std::size_t n) { return 4 + ((n + 3) & ~std::size_t{3}); }

class UnauthLimit : public WorkerCore {
 protected:
  // Sends `n` unauthenticated Allocates from `from` at the current time;
  // returns how many were answered.
  std::size_t flood_from(const client_ref& from, int n) {
    io_.to_client.clear();
    for (int i = 0; i < n; ++i)
      core_->on_client_packet(from, build(stun::method::allocate, new_tid(), requested_udp), now_);
    return io_.to_client.size();
  }
};

TEST_F(WorkerCore, ChallengeCarriesNoSoftwareAndOnlyWhatTheRfcRequires) {
  const std::size_t nonce = auth::nonce_service::nonce_size;
  for (const bool sha256 : {false, true}) {
    options o;
    o.offer_password_algorithms = sha256;  // the nonce's feature bit decides the offer
    start(o);
    for (const bool fingerprint : {false, true}) {
      const auto req = build(stun::method::allocate, new_tid(), requested_udp, nullptr, nullptr,
                             false, fingerprint);
      const auto r = send(client(), req);
      ASSERT_EQ(error_of(r), 401);
      EXPECT_FALSE(r.has(attr::software)) << "RFC 8489 §14.14: optional; it only adds bytes";
      // Header, ERROR-CODE 401 "Unauthorized", REALM, NONCE, PASSWORD-ALGORITHMS, FINGERPRINT.
      const std::size_t expected = 20 + padded(4 + 12) + padded(std::string_view(realm).size()) +
                                   padded(nonce) + (sha256 ? padded(8) : 0) + (fingerprint ? 8 : 0);
      EXPECT_EQ(last_.size(), expected);
      std::cout << "[ size     ] offer_sha256=" << sha256 << " fingerprint=" << fingerprint
                << ": request " << req.size() << " B, 401 " << last_.size() << " B, ratio "
                << static_cast<double>(last_.size()) / static_cast<double>(req.size()) << "\n";
    }
  }
}

TEST_F(WorkerCore, StaleNonceAnswerCarriesNoSoftware) {
  start();
  const auto c = client();
  learn_nonce(c);
  advance(601);  // the nonce lifetime is 600 s
  auto r = send(c, build(stun::method::allocate, new_tid(), requested_udp, "alice", "wonderland"));
  ASSERT_EQ(error_of(r), 438);
  EXPECT_FALSE(r.has(attr::software));
}

TEST_F(WorkerCore, SignedAnswersStillCarrySoftware) {
  start();
  const auto c = client();
  learn_nonce(c);
  auto r = send(c, build(stun::method::allocate, new_tid(), requested_udp, "alice", "wonderland"));
  ASSERT_EQ(r.cls(), message_class::success_response);
  EXPECT_EQ(*stun::decode_string(*r.find(attr::software), 763), "anyturn");
}

TEST_F(UnauthLimit, FloodFromOneSourceGetsAtMostBurstPlusRateTimesTime) {
  start();  // the default: 20 a second, burst 50
  ASSERT_EQ(shared_->unauthenticated_per_source.per_second, 20);
  ASSERT_EQ(shared_->unauthenticated_per_source.burst, 50u);
  // 5,000 Allocates in 2.5 s (one every 500 us), from one address and many ports.
  std::size_t answered = 0;
  io_.to_client.clear();
  const std::int64_t start_ms = now_.mono_ms;
  for (int i = 0; i < 5000; ++i) {
    const std::string from = "203.0.113.66:" + std::to_string(1024 + i % 30000);
    core_->on_client_packet(client(from.c_str()), build(stun::method::allocate, new_tid(), requested_udp),
                            now_);
    if (i % 2 == 1) ++now_.mono_ms;
  }
  answered = io_.to_client.size();
  const double seconds = static_cast<double>(now_.mono_ms - start_ms) / 1000.0;
  EXPECT_LE(answered, static_cast<std::size_t>(50 + 20 * seconds + 1));
  EXPECT_GE(answered, static_cast<std::size_t>(50 + 20 * seconds - 1));
  EXPECT_EQ(counters_.unauth_rate_dropped.load(), 5000 - answered);
  EXPECT_EQ(counters_.auth_challenges.load(), answered);  // 401s sent, not requests dropped
  for (const auto& m : io_.to_client) {
    auto parsed = stun::parse_message(m.data);
    ASSERT_TRUE(parsed);
    EXPECT_EQ(error_of(*parsed), 401);
  }
}

TEST_F(UnauthLimit, AnotherSourceIsStillAnswered) {
  start();
  EXPECT_EQ(flood_from(client("203.0.113.66:4000"), 5000), 50u);
  EXPECT_EQ(error_of(send(client("203.0.113.67:4000"),
                          build(stun::method::allocate, new_tid(), requested_udp))),
            401);
  EXPECT_EQ(counters_.unauth_rate_dropped.load(), 4950u);
}

TEST_F(UnauthLimit, AuthenticatedRequestsFromTheFloodedSourceAreServed) {
  start();
  const auto victim = client("203.0.113.66:4000");
  learn_nonce(victim);
  EXPECT_EQ(flood_from(client("203.0.113.66:4001"), 5000), 49u);  // spoofed, same address
  // An authenticated request never needs an unsigned answer.
  auto r = send(victim, build(stun::method::allocate, new_tid(), requested_udp, "alice", "wonderland"));
  ASSERT_EQ(r.cls(), message_class::success_response) << error_of(r);
  r = permit(victim, peer_);
  EXPECT_EQ(r.cls(), message_class::success_response) << error_of(r);

  // Its nonce goes stale while the flood goes on: the 438 reaches it anyway,
  // because its 5-tuple holds an allocation.
  advance(300);
  r = send(victim, build(stun::method::refresh, new_tid(), nullptr, "alice", "wonderland"));
  ASSERT_EQ(r.cls(), message_class::success_response) << error_of(r);
  advance(301);
  EXPECT_EQ(flood_from(client("203.0.113.66:4001"), 5000), 50u);
  r = send(victim, build(stun::method::refresh, new_tid(), nullptr, "alice", "wonderland"));
  ASSERT_EQ(error_of(r), 438);
  nonce_ = std::string(*stun::decode_string(*r.find(attr::nonce), 763));
  r = send(victim, build(stun::method::refresh, new_tid(), nullptr, "alice", "wonderland"));
  EXPECT_EQ(r.cls(), message_class::success_response) << error_of(r);
}

TEST_F(UnauthLimit, IPv6SourcesShareTheirSlash64) {
  start();
  EXPECT_EQ(flood_from(client("[2001:db8:1:2::1]:4000"), 200), 50u);
  io_.to_client.clear();
  core_->on_client_packet(client("[2001:db8:1:2:aaaa::2]:4000"),
                          build(stun::method::allocate, new_tid(), requested_udp), now_);
  EXPECT_TRUE(io_.to_client.empty()) << "the same /64 has no tokens left";
  EXPECT_EQ(error_of(send(client("[2001:db8:1:3::1]:4000"),
                          build(stun::method::allocate, new_tid(), requested_udp))),
            401);
}

TEST_F(UnauthLimit, CoversEveryUnsignedErrorAndRetransmissionsDoNotBypassIt) {
  start({.unauthenticated_per_source = turn::rate_limit{1, 5}});
  const auto c = client();
  // The same request again and again (a retransmission): 420 is not cached,
  // so each repetition meets the limit.
  const auto bad = build(stun::method::allocate, new_tid(), [](auto& b) {
    b.add_requested_transport(17);
    b.add_u32(0x0077, 1);  // unknown, comprehension-required
  });
  io_.to_client.clear();
  for (int i = 0; i < 100; ++i) core_->on_client_packet(c, bad, now_);
  EXPECT_EQ(io_.to_client.size(), 5u);
  EXPECT_EQ(counters_.retransmits_answered.load(), 0u);
  for (const auto& m : io_.to_client) {
    auto parsed = stun::parse_message(m.data);
    ASSERT_TRUE(parsed);
    EXPECT_EQ(error_of(*parsed), 420);
    EXPECT_FALSE(parsed->has(attr::software));
  }
  // 400 (unknown method) from the same, now empty, source: dropped too.
  std::array<std::byte, 64> buf{};
  stun::message_builder b(buf, 0x00F, message_class::request, new_tid());
  const auto unknown = b.finish();
  io_.to_client.clear();
  core_->on_client_packet(c, bytes(unknown->begin(), unknown->end()), now_);
  EXPECT_TRUE(io_.to_client.empty());
  EXPECT_EQ(counters_.unauth_rate_dropped.load(), 96u);
  // Binding is answered: it is no error (and not what this limit is for).
  EXPECT_EQ(send(c, build(stun::method::binding, new_tid(), nullptr)).cls(),
            message_class::success_response);
}

TEST_F(UnauthLimit, RateZeroIsOff) {
  start({.unauthenticated_per_source = turn::rate_limit{0, 1}});
  EXPECT_EQ(flood_from(client(), 5000), 5000u);
  EXPECT_EQ(counters_.unauth_rate_dropped.load(), 0u);
}

TEST_F(UnauthLimit, StreamsAreNotLimited) {
  start({.unauthenticated_per_source = turn::rate_limit{1, 5}});
  auto c = client();
  c.proto = transport::tcp;
  EXPECT_EQ(flood_from(c, 100), 100u);  // a connected peer is no spoofed source
}

TEST_F(UnauthLimit, RefillsAtTheRate) {
  start({.unauthenticated_per_source = turn::rate_limit{2, 4}});
  const auto c = client();
  EXPECT_EQ(flood_from(c, 100), 4u);
  now_.mono_ms += 1000;
  EXPECT_EQ(flood_from(c, 100), 2u);
  now_.mono_ms += 10'000;
  EXPECT_EQ(flood_from(c, 100), 4u);
}

TEST_F(UnauthLimit, NeitherAnsweringNorDroppingAllocates) {
  start();
  const auto c = client();
  const auto req = build(stun::method::allocate, new_tid(), requested_udp);
  io_.record = false;
  const std::size_t sends_before = io_.client_sends;
  // 50 answered (the burst), then dropped; the first drop logs its line here.
  for (int i = 0; i < 100; ++i) core_->on_client_packet(c, req, now_);
  ASSERT_EQ(io_.client_sends - sends_before, 50u);
  ASSERT_EQ(allocations_in([] { ::operator delete(::operator new(8)); }), 1u);  // the counter sees them
  const std::size_t dropping = allocations_in([&] {
    for (int i = 0; i < 5000; ++i) core_->on_client_packet(c, req, now_);
  });
  EXPECT_EQ(dropping, 0u);
  // Answering: another source, one answer per refill.
  const auto d = client("203.0.113.99:1");
  const std::size_t answering = allocations_in([&] {
    for (int i = 0; i < 500; ++i) {
      core_->on_client_packet(d, req, now_);
      now_.mono_ms += 50;  // one token at 20 a second
    }
  });
  io_.record = true;
  EXPECT_EQ(io_.client_sends - sends_before, 50u + 500u);
  EXPECT_EQ(answering, 0u);
}

}  // namespace
}  // namespace anyturn::test
