// Building messages (src/stun/builder.cpp): attribute encoding, the order
// rules of MESSAGE-INTEGRITY and FINGERPRINT, and the Data indication prefix
// (round trips through the parser are in message_test.cpp).
#include <anyturn/stun/message.hpp>

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <vector>

#include "stun_bytes.hpp"

namespace anyturn::stun {
namespace {

using test::as_bytes;
using test::digest;
using test::from_hex;
using test::m;
using test::round_trip_tid;
using test::tid_from;
using test::to_string;

// A Data indication written as prefix + payload + padding parses back to
// the peer and the payload, for both families and every padding length.
TEST(DataIndication, PrefixAroundPayloadParsesBack) {
  const auto tid = tid_from("0102030405060708090a0b0c");
  for (const char* peer_text : {"192.0.2.7:40000", "[2001:db8::9]:5004"}) {
    const auto peer = endpoint::parse(peer_text);
    ASSERT_TRUE(peer) << peer_text;
    for (std::size_t len = 0; len <= 9; ++len) {
      std::array<std::byte, max_data_indication_prefix> prefix{};
      const std::size_t n = write_data_indication_prefix(prefix, tid, *peer, len);
      ASSERT_GT(n, 0u);
      std::vector<std::byte> wire(prefix.begin(), prefix.begin() + static_cast<std::ptrdiff_t>(n));
      for (std::size_t i = 0; i < len; ++i) wire.push_back(static_cast<std::byte>('a' + i));
      wire.resize(wire.size() + padding_of(len));
      const auto msg = parse_message(wire);
      ASSERT_TRUE(msg) << msg.error.message();
      EXPECT_EQ(msg->method(), static_cast<std::uint16_t>(method::data));
      EXPECT_EQ(msg->cls(), message_class::indication);
      const auto peer_attr = msg->find(attr::xor_peer_address);
      ASSERT_TRUE(peer_attr);
      const auto decoded = decode_address(*peer_attr, tid, true);
      ASSERT_TRUE(decoded);
      EXPECT_EQ(*decoded, *peer);
      const auto data = msg->find(attr::data);
      ASSERT_TRUE(data);
      ASSERT_EQ(data->value.size(), len);
      if (len > 0) {
        EXPECT_EQ(data->value[len - 1], static_cast<std::byte>('a' + len - 1));
      }
    }
  }
}

TEST(DataIndication, RefusesTooSmallBufferAndTooLongPayload) {
  const auto peer = endpoint::parse("192.0.2.7:40000");
  ASSERT_TRUE(peer);
  std::array<std::byte, 20> small{};
  EXPECT_EQ(write_data_indication_prefix(small, {}, *peer, 4), 0u);
  std::array<std::byte, max_data_indication_prefix> prefix{};
  EXPECT_EQ(write_data_indication_prefix(prefix, {}, *peer, 0xFFFF), 0u);
}

// ---- builder failure modes ----
TEST(Builder, HeaderAndLength) {
  std::array<std::byte, 64> buf{};
  buf.fill(std::byte{0xEE});
  message_builder b(buf, m(method::binding), message_class::request, round_trip_tid);
  EXPECT_EQ(b.size(), header_size);
  b.add_string(attr::username, "abcde");
  EXPECT_EQ(b.size(), header_size + 12);
  auto built = b.finish();
  ASSERT_TRUE(built);
  EXPECT_EQ(std::vector<std::byte>(built->begin(), built->end()),
            from_hex("0001 000c 2112a442 a1b2c3d4e5f60718293a4b5c 0006 0005 6162636465 000000"));
}

TEST(Builder, OutOfRoomIsSticky) {
  std::array<std::byte, 30> buf{};
  message_builder b(buf, m(method::binding), message_class::request, round_trip_tid);
  b.add_u32(attr::lifetime, 1);  // 28 bytes
  EXPECT_TRUE(b.ok());
  b.add_u32(attr::lifetime, 2);  // would be 36
  EXPECT_FALSE(b.ok());
  b.add_flag(attr::dont_fragment);  // would fit, but the builder failed
  EXPECT_EQ(b.size(), 28U);
  auto r = b.finish();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error, codec_error::buffer_too_small);

  std::array<std::byte, 10> tiny{};
  message_builder t(tiny, m(method::binding), message_class::request, round_trip_tid);
  EXPECT_FALSE(t.ok());
  EXPECT_EQ(t.finish().error, codec_error::buffer_too_small);
  EXPECT_TRUE(t.add_data_slot(4).empty());
}

TEST(Builder, MessageSizeLimit) {
  std::vector<std::byte> buf(max_message_size + 100);
  message_builder b(buf, m(method::send), message_class::indication, round_trip_tid);
  EXPECT_EQ(b.add_data_slot(0xFFFF).size(), 0U);  // 4 + 65536 > 65532
  EXPECT_FALSE(b.ok());
  message_builder c(buf, m(method::send), message_class::indication, round_trip_tid);
  EXPECT_EQ(c.add_data_slot(0xFFF8).size(), 0xFFF8U);  // 4 + 65528 = 65532
  ASSERT_TRUE(c.finish());
  EXPECT_TRUE(parse_message(*c.finish()));
}

TEST(Builder, BadInput) {
  std::array<std::byte, 1024> buf{};
  auto failed = [&](auto&& add) {
    message_builder b(buf, m(method::binding), message_class::error_response, round_trip_tid);
    add(b);
    return !b.ok() && b.finish().error == codec_error::bad_attribute_value;
  };
  EXPECT_TRUE(failed([](message_builder& b) { b.add_error_code(299, "x"); }));
  EXPECT_TRUE(failed([](message_builder& b) { b.add_error_code(700, "x"); }));
  EXPECT_TRUE(failed([](message_builder& b) { b.add_error_code(400, std::string(764, 'a')); }));
  EXPECT_FALSE(failed([](message_builder& b) { b.add_error_code(400, std::string(763, 'a')); }));
  EXPECT_TRUE(failed([](message_builder& b) {
    b.add_address_family(attr::requested_address_family, static_cast<address_family>(3));
  }));
  EXPECT_TRUE(failed([](message_builder& b) {
    endpoint e;
    e.family = static_cast<address_family>(9);
    b.add_address(attr::xor_peer_address, e, true);
  }));
  message_builder bad_method(buf, 0x1000, message_class::request, round_trip_tid);
  EXPECT_FALSE(bad_method.ok());
}

TEST(Builder, IntegrityAndFingerprintOrder) {
  std::array<std::byte, 256> buf{};
  auto order_fails = [&](auto&& add) {
    message_builder b(buf, m(method::binding), message_class::request, round_trip_tid);
    add(b);
    return !b.ok() && b.finish().error == codec_error::bad_attribute_value;
  };
  const auto k = as_bytes("k");
  EXPECT_TRUE(order_fails([&](message_builder& b) { b.add_message_integrity(k).add_u32(attr::lifetime, 1); }));
  EXPECT_TRUE(order_fails([&](message_builder& b) { b.add_fingerprint().add_message_integrity(k); }));
  EXPECT_TRUE(order_fails([&](message_builder& b) { b.add_message_integrity_sha256(k).add_message_integrity(k); }));
  EXPECT_TRUE(order_fails([&](message_builder& b) { b.add_fingerprint().add_fingerprint(); }));
  EXPECT_TRUE(order_fails([&](message_builder& b) { b.add_fingerprint().add_flag(attr::dont_fragment); }));
  EXPECT_TRUE(order_fails([&](message_builder& b) { (void)b.add_message_integrity(k).add_data_slot(3); }));
  EXPECT_FALSE(order_fails([&](message_builder& b) {
    b.add_message_integrity(k).add_message_integrity_sha256(k).add_fingerprint();
  }));
  EXPECT_FALSE(order_fails([&](message_builder& b) { b.add_message_integrity_sha256(k).add_fingerprint(); }));
}

// 300 Try Alternate (RFC 8489 §14.15, §14.16): ALTERNATE-SERVER is a plain
// address like MAPPED-ADDRESS (not XORed), ALTERNATE-DOMAIN a string; both
// parse back, and the wire bytes of the IPv4 address are in the clear.
TEST(Builder, AlternateServerAndDomain) {
  std::array<std::byte, 256> buf{};
  const endpoint v4 = *endpoint::parse("198.51.100.50:3478");
  const endpoint v6 = *endpoint::parse("[2001:db8::50]:5349");
  auto built = message_builder(buf, m(method::allocate), message_class::error_response, round_trip_tid)
                   .add_error_code(300, "Try Alternate")
                   .add_address(attr::alternate_server, v4, false)
                   .add_address(attr::alternate_server, v6, false)
                   .add_string(attr::alternate_domain, "node1.example.net")
                   .finish();
  ASSERT_TRUE(built);
  auto parsed = parse_message(*built);
  ASSERT_TRUE(parsed);
  std::vector<endpoint> servers;
  for (const auto& a : parsed->attributes()) {
    if (a.type != attr::alternate_server) continue;
    auto e = decode_address(a, parsed->tid(), false);
    ASSERT_TRUE(e);
    servers.push_back(*e);
    if (e->is_v4()) {
      // family 0x01, port 3478 (0x0D96), 198.51.100.50 unchanged on the wire
      const std::array<std::uint8_t, 8> wire{0x00, 0x01, 0x0D, 0x96, 198, 51, 100, 50};
      ASSERT_EQ(a.value.size(), wire.size());
      for (std::size_t i = 0; i < wire.size(); ++i)
        EXPECT_EQ(std::to_integer<std::uint8_t>(a.value[i]), wire[i]) << i;
    }
  }
  EXPECT_EQ(servers, (std::vector<endpoint>{v4, v6}));
  const auto domain = parsed->find(attr::alternate_domain);
  ASSERT_TRUE(domain);
  EXPECT_EQ(*decode_string(*domain, 255), "node1.example.net");
  EXPECT_EQ(decode_error_code(*parsed->find(attr::error_code))->code, 300);
}

// RFC 5780 §7.2-7.4: CHANGE-REQUEST's flags byte for each combination,
// and RESPONSE-ORIGIN / OTHER-ADDRESS as plain (not XORed) addresses.
TEST(Builder, Rfc5780Attributes) {
  const auto tid = tid_from("0102030405060708090a0b0c");
  std::array<std::byte, 256> buf{};
  const struct {
    bool ip, port;
    const char* wire;
  } cases[] = {{false, false, "0003 0004 00000000"},
               {false, true, "0003 0004 00000002"},
               {true, false, "0003 0004 00000004"},
               {true, true, "0003 0004 00000006"}};
  for (const auto& c : cases) {
    auto built = message_builder(buf, m(method::binding), message_class::request, tid)
                     .add_change_request(c.ip, c.port)
                     .finish();
    ASSERT_TRUE(built);
    const auto expected = from_hex(std::string("0001 0008 2112a442 0102030405060708090a0b0c ") + c.wire);
    EXPECT_EQ(std::vector<std::byte>(built->begin(), built->end()), expected) << c.wire;
    auto parsed = parse_message(*built);
    ASSERT_TRUE(parsed);
    const auto flags = decode_change_request(*parsed->find(attr::change_request));
    ASSERT_TRUE(flags);
    EXPECT_EQ(flags->change_ip, c.ip);
    EXPECT_EQ(flags->change_port, c.port);
  }

  auto built = message_builder(buf, m(method::binding), message_class::success_response, tid)
                   .add_address(attr::response_origin, *endpoint::parse("127.0.0.2:3479"), false)
                   .add_address(attr::other_address, *endpoint::parse("[2001:db8::1]:3479"), false)
                   .finish();
  ASSERT_TRUE(built);
  const auto expected = from_hex(
      "0101 0024 2112a442 0102030405060708090a0b0c"
      "802b 0008 0001 0d97 7f000002"
      "802c 0014 0002 0d97 20010db8000000000000000000000001");
  EXPECT_EQ(std::vector<std::byte>(built->begin(), built->end()), expected);
  auto parsed = parse_message(*built);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(*decode_address(*parsed->find(attr::response_origin), parsed->tid(), false),
            *endpoint::parse("127.0.0.2:3479"));
  EXPECT_EQ(*decode_address(*parsed->find(attr::other_address), parsed->tid(), false),
            *endpoint::parse("[2001:db8::1]:3479"));
}

// RESPONSE-PORT (RFC 5780 §7.5): the port, then two bytes of padding.
TEST(Builder, ResponsePort) {
  const auto tid = tid_from("0102030405060708090a0b0c");
  std::array<std::byte, 64> buf{};
  auto built = message_builder(buf, m(method::binding), message_class::request, tid)
                   .add_response_port(40001)
                   .finish();
  ASSERT_TRUE(built);
  EXPECT_EQ(std::vector<std::byte>(built->begin(), built->end()),
            from_hex("0001 0008 2112a442 0102030405060708090a0b0c 0027 0004 9c41 0000"));
  auto parsed = parse_message(*built);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(*decode_response_port(*parsed->find(attr::response_port)), 40001);
}

// CHANGE-REQUEST is four bytes; anything else is malformed. Bits other than
// A and B are ignored (RFC 5780 §7.2 leaves them unused).
TEST(Builder, ChangeRequestDecoderChecksSize) {
  const auto tid = tid_from("0102030405060708090a0b0c");
  std::array<std::byte, 64> buf{};
  const std::array<std::byte, 2> short_value{};
  auto built = message_builder(buf, m(method::binding), message_class::request, tid)
                   .add_bytes(attr::change_request, short_value)
                   .finish();
  ASSERT_TRUE(built);
  auto parsed = parse_message(*built);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(decode_change_request(*parsed->find(attr::change_request)).error,
            make_error_code(codec_error::bad_attribute_value));
  built = message_builder(buf, m(method::binding), message_class::request, tid)
              .add_u32(attr::change_request, 0xFFFFFFFDU)  // every bit but B
              .finish();
  parsed = parse_message(*built);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(*decode_change_request(*parsed->find(attr::change_request)),
            (change_request_value{true, false}));
}

TEST(Builder, EmptyKeyIsAKey) {
  std::array<std::byte, 128> buf{};
  auto built = message_builder(buf, m(method::binding), message_class::request, round_trip_tid)
                   .add_message_integrity({})
                   .finish();
  ASSERT_TRUE(built);
  auto msg = parse_message(*built);
  ASSERT_TRUE(msg);
  EXPECT_TRUE(check_message_integrity(*msg, {}));
  EXPECT_FALSE(check_message_integrity(*msg, as_bytes("k")));
}

}  // namespace
}  // namespace anyturn::stun
