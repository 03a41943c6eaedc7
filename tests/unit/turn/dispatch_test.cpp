// The TURN core's entry points, the tick and the end of allocations: src/turn/dispatch.cpp.
#include "turn_core_fixture.hpp"
#include "allocation_counter.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <string_view>

namespace anyturn::test {
namespace {

TEST_F(WorkerCore, BindingReturnsXorMappedAddress) {
  start();
  const auto c = client();
  auto r = send(c, build(stun::method::binding, new_tid(), nullptr));
  ASSERT_EQ(r.cls(), message_class::success_response);
  auto mapped = r.find(attr::xor_mapped_address);
  ASSERT_TRUE(mapped);
  EXPECT_EQ(*stun::decode_address(*mapped, r.tid(), true), c.remote);
  EXPECT_TRUE(r.has_fingerprint());
}

TEST_F(WorkerCore, EndedAllocationsWriteUsageRecords) {
  options o;
  o.tenants = true;
  o.acme.id = "acme";
  start(o);
  auto usage = std::make_shared<recording_usage>();
  shared_->usage = usage;
  const auto c = client();
  const auto relayed = allocate(c, "dave", "dave-pass");
  const relay_id rid = io_.open.begin()->first;
  ASSERT_EQ(send(c, build(stun::method::create_permission, new_tid(),
                          [&](auto& b) { b.add_address(attr::xor_peer_address, peer_, true); },
                          "dave", "dave-pass"))
                .cls(),
            message_class::success_response);
  std::array<std::byte, 256> buf{};
  stun::message_builder b(buf, 0x006, message_class::indication, new_tid());
  b.add_address(attr::xor_peer_address, peer_, true);
  b.add_bytes(attr::data, payload_bytes("0123456789"));
  core_->on_client_packet(c, *b.finish(), now_);
  core_->on_peer_packet(rid, peer_, payload_bytes("abc"), now_);
  core_->on_peer_packet(rid, peer_, payload_bytes("defg"), now_);
  advance(700);  // expires
  ASSERT_EQ(usage->rows.size(), 1u);
  const auto& row = usage->rows[0];
  EXPECT_EQ(row.tenant, "acme");
  EXPECT_EQ(row.user, "dave");
  EXPECT_EQ(row.reason, "expired");
  EXPECT_EQ(row.client, c.remote);
  EXPECT_EQ(row.relay, relayed);
  EXPECT_EQ(row.pp, 1u);
  EXPECT_EQ(row.bp, 10u);
  EXPECT_EQ(row.pc, 2u);
  EXPECT_EQ(row.bc, 7u);
  EXPECT_GE(row.end - row.start, 600'000);
  // 700 s lands in the (600, 1800] bucket of the duration histogram.
  EXPECT_EQ(counters_.allocation_duration_buckets[5].load(), 1u);
  EXPECT_GE(counters_.allocation_duration_sum_ms.load(), 600'000u);
}

TEST_F(WorkerCore, UnknownComprehensionRequiredAttributeGets420) {
  start();
  const auto c = client();
  auto r = send(c, build(stun::method::allocate, new_tid(), [](auto& b) {
    b.add_requested_transport(17);
    b.add_u32(0x0077, 1);  // unknown, comprehension-required
  }));
  EXPECT_EQ(error_of(r), 420);
  std::array<std::uint16_t, 4> types{};
  auto n = stun::decode_unknown_attributes(*r.find(attr::unknown_attributes), types);
  ASSERT_TRUE(n);
  ASSERT_EQ(*n, 1u);
  EXPECT_EQ(types[0], 0x0077);
}

TEST_F(WorkerCore, UnknownMethodGets400) {
  start();
  std::array<std::byte, 64> buf{};
  stun::message_builder b(buf, 0x00F, message_class::request, new_tid());
  auto r = send(client(), bytes(b.finish()->begin(), b.finish()->end()));
  EXPECT_EQ(error_of(r), 400);
}

TEST_F(WorkerCore, BadFingerprintAndGarbageAreDroppedAndCounted) {
  start();
  const auto c = client();
  auto req = build(stun::method::binding, new_tid(), nullptr);
  req.back() ^= std::byte{0x01};
  io_.to_client.clear();
  core_->on_client_packet(c, req, now_);
  EXPECT_TRUE(io_.to_client.empty());
  EXPECT_EQ(counters_.bad_fingerprint_dropped.load(), 1u);

  const bytes garbage{std::byte{0xFF}, std::byte{0x00}, std::byte{0x12}};
  core_->on_client_packet(c, garbage, now_);
  EXPECT_EQ(counters_.unknown_dropped.load(), 1u);
  const bytes truncated{std::byte{0x00}, std::byte{0x01}, std::byte{0x00}, std::byte{0x08}};
  core_->on_client_packet(c, truncated, now_);
  EXPECT_EQ(counters_.malformed_dropped.load(), 1u);
  // The server is still fine.
  auto r = send(c, build(stun::method::binding, new_tid(), nullptr));
  EXPECT_EQ(r.cls(), message_class::success_response);
}

TEST_F(WorkerCore, ShutdownFreesEverything) {
  start();
  allocate(client("203.0.113.1:1"));
  allocate(client("203.0.113.2:1"));
  core_->shutdown(now_);
  EXPECT_EQ(core_->allocation_count(), 0u);
  EXPECT_TRUE(io_.open.empty());
  EXPECT_EQ(shared_->relays[0].ports->in_use(), 0u);
  EXPECT_EQ(counters_.allocations_closed.load(), 2u);
}

// The walk the state-machine fuzzer checks its invariants with: every
// allocation once, with the user that made it, and none after it ended.
TEST_F(WorkerCore, ForEachAllocationVisitsEachAllocationWithItsUser) {
  start();
  const auto a = client("203.0.113.10:40000");
  const auto b = client("203.0.113.11:40001");
  allocate(a, "alice", "wonderland");
  allocate(b, "bob", "builder");
  std::map<std::string, stun::endpoint> seen;
  core_->for_each_allocation([&](const relay::allocation& al, std::string_view user) {
    EXPECT_TRUE(seen.emplace(std::string(user), al.client.remote).second) << user;
  });
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen["alice"], a.remote);
  EXPECT_EQ(seen["bob"], b.remote);

  core_->on_client_closed(a, now_);
  seen.clear();
  core_->for_each_allocation([&](const relay::allocation&, std::string_view user) {
    seen.emplace(std::string(user), stun::endpoint{});
  });
  EXPECT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen.count("bob"), 1u);
}

TEST_F(WorkerCore, ForwardingAllocatesNothing) {
  start();
  const auto c = client();
  allocate(c);
  const relay_id rid = io_.open.begin()->first;
  ASSERT_EQ(bind_channel(c, 0x4000, peer_).cls(), message_class::success_response);
  auto other = peer_;
  other.port = 5002;  // no channel: Data indications
  const auto cd = channel_data(0x4000, std::string(200, 'x'));
  const auto payload = payload_bytes(std::string(200, 'y'));
  std::array<std::byte, 512> ind_buf{};
  stun::message_builder b(ind_buf, 0x006, message_class::indication, new_tid());
  b.add_address(attr::xor_peer_address, peer_, true);
  b.add_bytes(attr::data, payload);
  const auto send_ind = *b.finish();

  io_.record = false;
  ASSERT_EQ(allocations_in([] { ::operator delete(::operator new(8)); }), 1u);  // the counter sees them
  const std::size_t sends_before = io_.client_sends, peer_sends_before = io_.peer_sends;
  const std::size_t allocations = allocations_in([&] {
    for (int i = 0; i < 1000; ++i) {
      core_->on_client_packet(c, cd, now_);
      core_->on_client_packet(c, send_ind, now_);
      core_->on_peer_packet(rid, peer_, payload, now_);
      core_->on_peer_packet(rid, other, payload, now_);
    }
  });
  io_.record = true;
  EXPECT_EQ(allocations, 0u);
  EXPECT_EQ(io_.peer_sends - peer_sends_before, 2000u);
  EXPECT_EQ(io_.client_sends - sends_before, 2000u);
}

}  // namespace
}  // namespace anyturn::test
