// Binding and RFC 5780 (src/turn/binding.cpp): with an alternate group the
// answer carries RESPONSE-ORIGIN and OTHER-ADDRESS and leaves from the
// socket CHANGE-REQUEST names; without one, Binding is plain RFC 8489 and
// CHANGE-REQUEST is an unknown attribute (420).
#include "turn_core_fixture.hpp"

#include <gtest/gtest.h>

#include <array>
#include <optional>

namespace anyturn::test {
namespace {

class Rfc5780 : public WorkerCore {
 protected:
  // A:P = 192.0.2.1:3478 (the fixture's client().local), OTHER = 192.0.2.2.
  void start_with_group() {
    io_.primary = ep("192.0.2.1:3478");
    io_.other_ip = ep("192.0.2.2:0");
    start();
  }

  // `c` reaching group socket `listener`.
  client_ref at(std::uint32_t listener) {
    client_ref c = client();
    c.listener = listener;
    c.local = io_.group_socket(listener);
    return c;
  }

  bytes binding(std::optional<std::pair<bool, bool>> change) {
    return build(stun::method::binding, new_tid(), [&](stun::message_builder& b) {
      if (change) b.add_change_request(change->first, change->second);
    });
  }

  static std::optional<stun::endpoint> plain_address(const stun::message_view& m, std::uint16_t type) {
    const auto a = m.find(type);
    if (!a) return std::nullopt;
    auto e = stun::decode_address(*a, m.tid(), false);
    return e ? std::optional<stun::endpoint>(*e) : std::nullopt;
  }
};

// Every CHANGE-REQUEST combination, from every socket of the group: the
// answer leaves from the socket with the IP and/or port flipped, names it
// in RESPONSE-ORIGIN, and OTHER-ADDRESS is the socket with both flipped.
TEST_F(Rfc5780, ChangeRequestPicksTheSocketAndTheAttributesFollow) {
  start_with_group();
  const struct {
    std::optional<std::pair<bool, bool>> change;  // (change IP, change port)
    std::uint32_t flip;                           // listener index XOR
  } cases[] = {{std::nullopt, 0}, {{{false, false}}, 0}, {{{false, true}}, 1},
               {{{true, false}}, 2}, {{{true, true}}, 3}};
  std::uint64_t changed = 0;
  for (std::uint32_t reached = 0; reached < 4; ++reached) {
    for (const auto& c : cases) {
      const client_ref from = at(reached);
      auto r = send(from, binding(c.change));
      ASSERT_EQ(r.cls(), message_class::success_response) << reached;
      const client_ref& via = io_.to_client.back().to;
      EXPECT_EQ(via.listener, reached ^ c.flip);
      EXPECT_EQ(via.local, io_.group_socket(reached ^ c.flip));
      EXPECT_EQ(via.remote, from.remote);
      EXPECT_EQ(*stun::decode_address(*r.find(attr::xor_mapped_address), r.tid(), true), from.remote);
      EXPECT_EQ(plain_address(r, attr::mapped_address), from.remote);
      EXPECT_EQ(plain_address(r, attr::response_origin), io_.group_socket(reached ^ c.flip));
      EXPECT_EQ(plain_address(r, attr::other_address), io_.group_socket(reached ^ 3U));
      if (c.flip != 0) ++changed;
    }
  }
  EXPECT_EQ(counters_.nat_changed.load(), changed);
  EXPECT_EQ(counters_.nat_refused.load(), 0u);
  EXPECT_EQ(counters_.binding_requests.load(), 20u);
}

// Concrete values for the usual request to A:P: OTHER-ADDRESS is OTHER:P+1.
TEST_F(Rfc5780, OtherAddressIsTheOtherIpOnTheOtherPort) {
  start_with_group();
  auto r = send(at(0), binding(std::nullopt));
  EXPECT_EQ(plain_address(r, attr::other_address), ep("192.0.2.2:3479"));
  EXPECT_EQ(plain_address(r, attr::response_origin), ep("192.0.2.1:3478"));
  r = send(at(0), binding(std::pair{true, true}));
  EXPECT_EQ(io_.to_client.back().to.local, ep("192.0.2.2:3479"));
  EXPECT_EQ(plain_address(r, attr::response_origin), ep("192.0.2.2:3479"));
}

// Without other_ip: no RFC 5780 attributes, and CHANGE-REQUEST is an unknown
// comprehension-required attribute (420 listing 0x0003), as before.
TEST_F(Rfc5780, WithoutAnAlternateChangeRequestGets420) {
  start();
  auto r = send(client(), binding(std::nullopt));
  ASSERT_EQ(r.cls(), message_class::success_response);
  EXPECT_FALSE(r.has(attr::other_address));
  EXPECT_FALSE(r.has(attr::response_origin));
  EXPECT_FALSE(r.has(attr::mapped_address));
  r = send(client(), binding(std::pair{true, false}));
  EXPECT_EQ(error_of(r), 420);
  std::array<std::uint16_t, 4> types{};
  const auto n = stun::decode_unknown_attributes(*r.find(attr::unknown_attributes), types);
  ASSERT_TRUE(n);
  ASSERT_EQ(*n, 1u);
  EXPECT_EQ(types[0], attr::change_request);
  EXPECT_EQ(io_.to_client.back().to, client());
  EXPECT_EQ(counters_.nat_refused.load(), 1u);
  EXPECT_EQ(counters_.nat_changed.load(), 0u);
}

// A stream has no group even with other_ip (RFC 5780 is served on UDP).
TEST_F(Rfc5780, StreamsKeepPlainBinding) {
  start_with_group();
  client_ref c = client();
  c.proto = transport::tcp;
  c.connection = 7;
  auto r = send(c, binding(std::pair{false, true}));
  EXPECT_EQ(error_of(r), 420);
  r = send(c, binding(std::nullopt));
  ASSERT_EQ(r.cls(), message_class::success_response);
  EXPECT_FALSE(r.has(attr::other_address));
}

// RESPONSE-PORT (§7.5) sends the answer to that port of the client's IP,
// with CHANGE-REQUEST from the changed socket; PADDING (§7.6) is accepted
// and not echoed. This is what turnutils_stunclient -f sends.
TEST_F(Rfc5780, ResponsePortAndPadding) {
  start_with_group();
  const client_ref from = at(0);
  auto r = send(from, build(stun::method::binding, new_tid(), [](stun::message_builder& b) {
    b.add_response_port(40001);
    b.add_change_request(true, true);
  }));
  ASSERT_EQ(r.cls(), message_class::success_response);
  EXPECT_EQ(io_.to_client.back().to.remote, ep("203.0.113.10:40001"));
  EXPECT_EQ(io_.to_client.back().to.listener, 3u);
  EXPECT_EQ(*stun::decode_address(*r.find(attr::xor_mapped_address), r.tid(), true), from.remote);

  const std::vector<std::byte> pad(1000);  // the fixture builds in 1500 bytes
  r = send(from, build(stun::method::binding, new_tid(), [&](stun::message_builder& b) {
    b.add_change_request(true, true);
    b.add_bytes(attr::padding, pad);
  }));
  ASSERT_EQ(r.cls(), message_class::success_response);
  EXPECT_FALSE(r.has(attr::padding));
  EXPECT_EQ(io_.to_client.back().to.remote, from.remote);

  r = send(from, build(stun::method::binding, new_tid(), [](stun::message_builder& b) {
    b.add_u32(attr::response_port, 0);  // port 0
  }));
  EXPECT_EQ(error_of(r), 400);
  EXPECT_EQ(counters_.nat_refused.load(), 1u);

  // Without a group they are unknown attributes, as before.
  io_.other_ip.reset();
  r = send(from, build(stun::method::binding, new_tid(), [](stun::message_builder& b) {
    b.add_response_port(40001);
  }));
  EXPECT_EQ(error_of(r), 420);
}

// CHANGE-REQUEST of the wrong size: 400, counted as refused.
TEST_F(Rfc5780, MalformedChangeRequestGets400) {
  start_with_group();
  auto r = send(at(0), build(stun::method::binding, new_tid(), [](stun::message_builder& b) {
    const std::array<std::byte, 8> v{};
    b.add_bytes(attr::change_request, v);
  }));
  EXPECT_EQ(error_of(r), 400);
  EXPECT_EQ(io_.to_client.back().to.listener, 0u);
  EXPECT_EQ(counters_.nat_refused.load(), 1u);
}

// The extra sockets serve Binding only: Allocate there gets 400 (counted);
// on the primary socket it is served. CHANGE-REQUEST outside Binding stays
// unknown (420) even with a group.
TEST_F(Rfc5780, ExtraSocketsServeBindingOnly) {
  start_with_group();
  for (std::uint32_t extra = 1; extra < 4; ++extra) {
    auto r = send(at(extra), build(stun::method::allocate, new_tid(), requested_udp));
    EXPECT_EQ(error_of(r), 400) << extra;
  }
  EXPECT_EQ(counters_.nat_not_binding.load(), 3u);
  auto r = send(at(0), build(stun::method::allocate, new_tid(), requested_udp));
  EXPECT_EQ(error_of(r), 401);
  r = send(at(0), build(stun::method::allocate, new_tid(), [](stun::message_builder& b) {
    b.add_requested_transport(17);
    b.add_change_request(true, true);
  }));
  EXPECT_EQ(error_of(r), 420);
  EXPECT_EQ(counters_.nat_refused.load(), 0u);
}

}  // namespace
}  // namespace anyturn::test
