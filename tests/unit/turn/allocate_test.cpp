// Allocate (RFC 8656 §7) and Refresh (§8): src/turn/allocate.cpp.
#include "turn_core_fixture.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <set>
#include <sstream>
#include <string>

namespace anyturn::test {
namespace {

// Routes spdlog's default logger into a string for the test's lifetime.
class captured_log {
 public:
  captured_log() : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    auto logger = std::make_shared<spdlog::logger>("captured", sink);
    logger->set_level(spdlog::level::debug);
    spdlog::set_default_logger(logger);
  }
  ~captured_log() { spdlog::set_default_logger(previous_); }
  captured_log(const captured_log&) = delete;
  captured_log& operator=(const captured_log&) = delete;
  [[nodiscard]] std::size_t count(const std::string& needle) const {
    const std::string text = out_.str();
    std::size_t n = 0;
    for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
    return n;
  }
  [[nodiscard]] std::string text() const { return out_.str(); }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> previous_;
};

TEST_F(WorkerCore, RetransmittedAllocateAfterCacheEvictionStillSucceeds) {
  start();
  const auto c = client();
  learn_nonce(c);
  const auto tid = new_tid();
  const auto req = build(stun::method::allocate, tid, requested_udp, "alice", "wonderland");
  auto first = send(c, req);
  ASSERT_EQ(first.cls(), message_class::success_response);
  const auto relayed = *stun::decode_address(*first.find(attr::xor_relayed_address), tid, true);
  now_.mono_ms += 41'000;  // the cache keeps answers for 40 s
  auto again = send(c, req);
  ASSERT_EQ(again.cls(), message_class::success_response) << error_of(again);
  EXPECT_EQ(*stun::decode_address(*again.find(attr::xor_relayed_address), tid, true), relayed);
}

TEST_F(WorkerCore, AllocateNeedsUdpTransport) {
  start();
  const auto c = client();
  learn_nonce(c);
  auto r = send(c, build(stun::method::allocate, new_tid(), nullptr, "alice", "wonderland"));
  EXPECT_EQ(error_of(r), 400);
  EXPECT_TRUE(r.has(attr::message_integrity)) << "errors after authentication are signed";
  r = send(c, build(stun::method::allocate, new_tid(), [](auto& b) { b.add_requested_transport(6); },
                    "alice", "wonderland"));
  EXPECT_EQ(error_of(r), 442);
}

TEST_F(WorkerCore, LifetimeIsClampedBetweenDefaultAndMaximum) {
  start();
  const auto c = client();
  learn_nonce(c);
  auto r = send(c, build(stun::method::allocate, new_tid(),
                         [](auto& b) {
                           b.add_requested_transport(17);
                           b.add_u32(attr::lifetime, 100000);
                         },
                         "alice", "wonderland"));
  EXPECT_EQ(*stun::decode_u32(*r.find(attr::lifetime)), 3600u);
  r = send(c, build(stun::method::refresh, new_tid(), [](auto& b) { b.add_u32(attr::lifetime, 5); },
                    "alice", "wonderland"));
  ASSERT_EQ(r.cls(), message_class::success_response);
  EXPECT_EQ(*stun::decode_u32(*r.find(attr::lifetime)), 600u);
}

TEST_F(WorkerCore, RefreshZeroFreesAndTheFiveTupleCanAllocateAgainAtOnce) {
  start();
  const auto c = client();
  allocate(c);
  auto r = send(c, build(stun::method::refresh, new_tid(), [](auto& b) { b.add_u32(attr::lifetime, 0); },
                         "alice", "wonderland"));
  ASSERT_EQ(r.cls(), message_class::success_response);
  EXPECT_EQ(*stun::decode_u32(*r.find(attr::lifetime)), 0u);
  EXPECT_EQ(core_->allocation_count(), 0u);
  EXPECT_TRUE(io_.open.empty());
  EXPECT_EQ(counters_.allocations_deleted.load(), 1u);
  allocate(c);
  EXPECT_EQ(core_->allocation_count(), 1u);
}

TEST_F(WorkerCore, RefreshWithoutAllocationGets437) {
  start();
  const auto c = client();
  learn_nonce(c);
  auto r = send(c, build(stun::method::refresh, new_tid(), nullptr, "alice", "wonderland"));
  EXPECT_EQ(error_of(r), 437);
}

TEST_F(WorkerCore, AnotherUserOnTheFiveTupleGets441) {
  start();
  const auto c = client();
  allocate(c);
  auto r = send(c, build(stun::method::refresh, new_tid(), nullptr, "bob", "builder"));
  EXPECT_EQ(error_of(r), 441);
}

TEST_F(WorkerCore, AllocationExpiresOnTheWheelAndRefreshExtendsIt) {
  start();
  const auto c = client();
  allocate(c);
  advance(500);
  auto r = send(c, build(stun::method::refresh, new_tid(), nullptr, "alice", "wonderland"));
  ASSERT_EQ(r.cls(), message_class::success_response);
  advance(500);  // 1000 s after the start, 500 s after the refresh
  EXPECT_EQ(core_->allocation_count(), 1u);
  advance(101);
  EXPECT_EQ(core_->allocation_count(), 0u);
  EXPECT_EQ(counters_.allocations_expired.load(), 1u);
  EXPECT_TRUE(io_.open.empty());
}

TEST_F(WorkerCore, PortRangeExhaustionGives508AndFreedPortsComeBack) {
  options o;
  o.port_low = 50000;
  o.port_high = 50001;
  start(o);
  allocate(client("203.0.113.1:1"));
  allocate(client("203.0.113.2:1"));
  const auto c3 = client("203.0.113.3:1");
  learn_nonce(c3);
  auto r = send(c3, build(stun::method::allocate, new_tid(), requested_udp, "alice", "wonderland"));
  EXPECT_EQ(error_of(r), 508);
  EXPECT_EQ(counters_.allocations_failed_ports.load(), 1u);
  learn_nonce(client("203.0.113.1:1"));
  send(client("203.0.113.1:1"),
       build(stun::method::refresh, new_tid(), [](auto& b) { b.add_u32(attr::lifetime, 0); }, "alice",
             "wonderland"));
  allocate(c3);
  EXPECT_EQ(core_->allocation_count(), 2u);
}

TEST_F(WorkerCore, SeveralRelayAddressesAddCapacity) {
  options o;
  o.port_low = 50000;
  o.port_high = 50001;
  o.second_v4 = true;
  start(o);
  std::set<std::string> ips;
  for (int i = 1; i <= 4; ++i) {
    const std::string remote = "203.0.113." + std::to_string(i) + ":1";
    ips.insert(allocate(client(remote.c_str())).ip_string());
  }
  EXPECT_EQ(ips, (std::set<std::string>{"198.51.100.7", "198.51.100.8"}));
  EXPECT_EQ(core_->allocation_count(), 4u);
  const auto c5 = client("203.0.113.5:1");
  learn_nonce(c5);
  auto r = send(c5, build(stun::method::allocate, new_tid(), requested_udp, "alice", "wonderland"));
  EXPECT_EQ(error_of(r), 508) << "2 addresses x 2 ports";
}

TEST_F(WorkerCore, BusyPortIsSkipped) {
  options o;
  o.port_low = 50000;
  o.port_high = 50001;
  start(o);
  io_.ports_in_use_elsewhere = {50000};
  const auto relayed = allocate(client());
  EXPECT_EQ(relayed.port, 50001);
}

TEST_F(WorkerCore, EvenPortReservesTheNextPortForItsToken) {
  start();
  const auto c1 = client("203.0.113.1:1");
  learn_nonce(c1);
  auto r = send(c1, build(stun::method::allocate, new_tid(),
                          [](auto& b) {
                            b.add_requested_transport(17);
                            b.add_even_port(true);
                          },
                          "alice", "wonderland"));
  ASSERT_EQ(r.cls(), message_class::success_response) << error_of(r);
  const auto relayed = *stun::decode_address(*r.find(attr::xor_relayed_address), r.tid(), true);
  EXPECT_EQ(relayed.port % 2, 0);
  auto token_attr = r.find(attr::reservation_token);
  ASSERT_TRUE(token_attr);
  const std::uint64_t token = *stun::decode_reservation_token(*token_attr);

  const auto c2 = client("203.0.113.2:1");
  const auto second = allocate(c2, "alice", "wonderland",
                               [&](auto& b) { b.add_reservation_token(token); });
  EXPECT_EQ(second.port, relayed.port + 1);

  // A token redeems once.
  const auto c3 = client("203.0.113.3:1");
  learn_nonce(c3);
  r = send(c3, build(stun::method::allocate, new_tid(),
                     [&](auto& b) {
                       b.add_requested_transport(17);
                       b.add_reservation_token(token);
                     },
                     "alice", "wonderland"));
  EXPECT_EQ(error_of(r), 508);
  // RESERVATION-TOKEN together with EVEN-PORT is a bad request.
  r = send(c3, build(stun::method::allocate, new_tid(),
                     [&](auto& b) {
                       b.add_requested_transport(17);
                       b.add_even_port(false);
                       b.add_reservation_token(token);
                     },
                     "alice", "wonderland"));
  EXPECT_EQ(error_of(r), 400);
}

TEST_F(WorkerCore, UnredeemedReservationIsReleased) {
  options o;
  o.port_low = 50000;
  o.port_high = 50001;
  start(o);
  const auto c1 = client("203.0.113.1:1");
  learn_nonce(c1);
  auto r = send(c1, build(stun::method::allocate, new_tid(),
                          [](auto& b) {
                            b.add_requested_transport(17);
                            b.add_even_port(true);
                          },
                          "alice", "wonderland"));
  ASSERT_EQ(r.cls(), message_class::success_response);
  EXPECT_EQ(shared_->relays[0].ports->in_use(), 2u);
  advance(31);
  EXPECT_EQ(shared_->relays[0].ports->in_use(), 1u);
}

TEST_F(WorkerCore, AddressFamilies) {
  start();  // IPv4 relay only
  const auto c = client();
  learn_nonce(c);
  auto r = send(c, build(stun::method::allocate, new_tid(),
                         [](auto& b) {
                           b.add_requested_transport(17);
                           b.add_address_family(attr::requested_address_family, stun::address_family::ipv6);
                         },
                         "alice", "wonderland"));
  EXPECT_EQ(error_of(r), 440);
  // Dual allocation without an IPv6 relay: IPv4 only, plus ADDRESS-ERROR-CODE.
  r = send(c, build(stun::method::allocate, new_tid(),
                    [](auto& b) {
                      b.add_requested_transport(17);
                      b.add_address_family(attr::additional_address_family, stun::address_family::ipv6);
                    },
                    "alice", "wonderland"));
  ASSERT_EQ(r.cls(), message_class::success_response) << error_of(r);
  auto aec = r.find(attr::address_error_code);
  ASSERT_TRUE(aec);
  EXPECT_EQ(stun::decode_address_error_code(*aec)->code, 440);
}

TEST_F(WorkerCore, DualAllocationAndIpv6Relaying) {
  options o;
  o.with_v6 = true;
  start(o);
  const auto c = client();
  learn_nonce(c);
  auto r = send(c, build(stun::method::allocate, new_tid(),
                         [](auto& b) {
                           b.add_requested_transport(17);
                           b.add_address_family(attr::additional_address_family, stun::address_family::ipv6);
                         },
                         "alice", "wonderland"));
  ASSERT_EQ(r.cls(), message_class::success_response) << error_of(r);
  int relayed = 0;
  for (const auto& a : r.attributes()) relayed += a.type == attr::xor_relayed_address;
  EXPECT_EQ(relayed, 2);
  EXPECT_EQ(io_.open.size(), 2u);
  const auto v6peer = ep("[2606:4700::1111]:5000");
  ASSERT_EQ(bind_channel(c, 0x4000, v6peer).cls(), message_class::success_response);
  io_.to_peer.clear();
  core_->on_client_packet(c, channel_data(0x4000, "six"), now_);
  ASSERT_EQ(io_.to_peer.size(), 1u);
  EXPECT_FALSE(io_.open.at(io_.to_peer[0].id).is_v4()) << "sent from the IPv6 relay";
  // ADDITIONAL-ADDRESS-FAMILY of IPv4 is a bad request.
  const auto c2 = client("203.0.113.2:2");
  learn_nonce(c2);
  r = send(c2, build(stun::method::allocate, new_tid(),
                     [](auto& b) {
                       b.add_requested_transport(17);
                       b.add_address_family(attr::additional_address_family, stun::address_family::ipv4);
                     },
                     "alice", "wonderland"));
  EXPECT_EQ(error_of(r), 400);
}

TEST_F(WorkerCore, WorkerCapacityGives508) {
  options o;
  o.max_allocations = 1;
  start(o);
  allocate(client("203.0.113.1:1"));
  const auto c2 = client("203.0.113.2:1");
  learn_nonce(c2);
  auto r = send(c2, build(stun::method::allocate, new_tid(), requested_udp, "bob", "builder"));
  EXPECT_EQ(error_of(r), 508);
}

// RFC 8489 §14.5: attributes after MESSAGE-INTEGRITY are not covered by it;
// an on-path attacker could have appended them. Allocate must not see them.
TEST_F(WorkerCore, AllocateIgnoresAttributesAfterIntegrity) {
  options o;
  o.with_v6 = true;
  start(o);
  const auto c = client();
  learn_nonce(c);
  // REQUESTED-TRANSPORT only after the integrity: the request lacks it (400).
  auto r = send(c, build_with_trailer(stun::method::allocate, new_tid(), nullptr,
                                      [](auto& b) { b.add_requested_transport(17); }));
  EXPECT_EQ(error_of(r), 400);
  // EVEN-PORT (R), REQUESTED-ADDRESS-FAMILY IPv6, LIFETIME and a second
  // REQUESTED-TRANSPORT (TCP) after the integrity: a plain IPv4 allocation
  // of the default lifetime, no reservation.
  r = send(c, build_with_trailer(stun::method::allocate, new_tid(), requested_udp, [](auto& b) {
    b.add_even_port(true);
    b.add_address_family(attr::requested_address_family, stun::address_family::ipv6);
    b.add_u32(attr::lifetime, 3600);
    b.add_requested_transport(6);
  }));
  ASSERT_EQ(r.cls(), message_class::success_response) << error_of(r);
  const auto relayed = *stun::decode_address(*r.find(attr::xor_relayed_address), r.tid(), true);
  EXPECT_EQ(relayed.family, stun::address_family::ipv4);
  EXPECT_FALSE(r.has(attr::reservation_token));
  EXPECT_EQ(*stun::decode_u32(*r.find(attr::lifetime)), 600u);
  EXPECT_EQ(io_.open.size(), 1u);
}

TEST_F(WorkerCore, RefreshIgnoresALifetimeAfterIntegrity) {
  start();
  const auto c = client();
  allocate(c);
  // LIFETIME 0 appended after the integrity must not delete the allocation.
  auto r = send(c, build_with_trailer(stun::method::refresh, new_tid(), nullptr,
                                      [](auto& b) { b.add_u32(attr::lifetime, 0); }));
  ASSERT_EQ(r.cls(), message_class::success_response) << error_of(r);
  EXPECT_EQ(*stun::decode_u32(*r.find(attr::lifetime)), 600u);
  EXPECT_EQ(io_.open.size(), 1u);
  // A covered LIFETIME 5 (clamped to the default) with 3600 appended: 600.
  r = send(c, build_with_trailer(stun::method::refresh, new_tid(),
                                 [](auto& b) { b.add_u32(attr::lifetime, 5); },
                                 [](auto& b) { b.add_u32(attr::lifetime, 3600); }));
  ASSERT_EQ(r.cls(), message_class::success_response) << error_of(r);
  EXPECT_EQ(*stun::decode_u32(*r.find(attr::lifetime)), 600u);
}

// The kernel refuses most of the range (other sockets on the host hold
// those ports): an Allocate keeps trying past them, each refused port is
// tried once and then cools down, and 508 comes only when no port is left.
TEST_F(WorkerCore, RefusedPortsAreSkippedUntilAFreeOneIsFound) {
  options o;
  o.port_low = 50000;
  o.port_high = 50099;
  start(o);
  for (std::uint16_t p = 50000; p < 50090; ++p) io_.ports_in_use_elsewhere.insert(p);
  std::set<std::uint16_t> got;
  for (int i = 1; i <= 10; ++i) {
    const std::string remote = "203.0.113." + std::to_string(i) + ":1";
    const auto relayed = allocate(client(remote.c_str()));
    EXPECT_GE(relayed.port, 50090) << "allocation " << i;
    got.insert(relayed.port);
  }
  EXPECT_EQ(got.size(), 10u);
  EXPECT_LE(counters_.relay_port_refused.load(), 90u) << "each held port is tried at most once";
  EXPECT_EQ(counters_.allocations_failed_ports.load(), 0u);
  const auto c11 = client("203.0.113.11:1");
  learn_nonce(c11);
  auto r = send(c11, build(stun::method::allocate, new_tid(), requested_udp, "alice", "wonderland"));
  EXPECT_EQ(error_of(r), 508);
  EXPECT_EQ(counters_.relay_port_refused.load(), 90u) << "every held port tried, each once";
  learn_nonce(c11);
  r = send(c11, build(stun::method::allocate, new_tid(), requested_udp, "alice", "wonderland"));
  EXPECT_EQ(error_of(r), 508);
  EXPECT_EQ(counters_.relay_port_refused.load(), 90u) << "cooling ports are not tried again";
}

// A refused port stays out of the pool for its cool-down (60 s), then is
// tried again.
TEST_F(WorkerCore, RefusedPortComesBackAfterItsCoolDown) {
  options o;
  o.port_low = 50000;
  o.port_high = 50001;
  start(o);
  io_.ports_in_use_elsewhere = {50000};
  EXPECT_EQ(allocate(client("203.0.113.1:1")).port, 50001);
  EXPECT_EQ(counters_.relay_port_refused.load(), 1u);
  io_.ports_in_use_elsewhere.clear();  // the other socket closed
  const auto c2 = client("203.0.113.2:1");
  learn_nonce(c2);
  auto r = send(c2, build(stun::method::allocate, new_tid(), requested_udp, "alice", "wonderland"));
  EXPECT_EQ(error_of(r), 508) << "50000 is still cooling down";
  advance(59);
  learn_nonce(c2);
  r = send(c2, build(stun::method::allocate, new_tid(), requested_udp, "alice", "wonderland"));
  EXPECT_EQ(error_of(r), 508) << "59 s into the cool-down";
  advance(2);
  EXPECT_EQ(allocate(c2).port, 50000);
  EXPECT_EQ(counters_.relay_port_refused.load(), 1u);
}

// The "cannot bind relay" warning is rate-limited by the worker's clock: at
// most one line a second, and a later refusal is logged again (the limiter
// once got a constant time, so it stayed silent after the first line).
TEST_F(WorkerCore, CannotBindWarningIsLoggedAgainAsTimeMoves) {
  options o;
  o.port_low = 50000;
  o.port_high = 50063;  // one word of the pool's bitmap: the order of tries is fixed
  start(o);
  captured_log log;
  for (std::uint16_t p = 50000; p < 50063; ++p) io_.ports_in_use_elsewhere.insert(p);
  EXPECT_EQ(allocate(client("203.0.113.1:1")).port, 50063);  // after refusing 63 ports at one instant
  EXPECT_EQ(log.count("cannot bind relay"), 1u) << log.text();
  // Three minutes later every cool-down is over and the held ports are
  // tried, and refused, again.
  advance(180);
  const auto c2 = client("203.0.113.2:1");
  learn_nonce(c2);
  auto r = send(c2, build(stun::method::allocate, new_tid(), requested_udp, "alice", "wonderland"));
  EXPECT_EQ(error_of(r), 508);
  EXPECT_EQ(counters_.relay_port_refused.load(), 126u);
  EXPECT_EQ(log.count("cannot bind relay"), 2u) << log.text();
  EXPECT_NE(log.text().find("62 similar suppressed"), std::string::npos) << log.text();
}

}  // namespace
}  // namespace anyturn::test
