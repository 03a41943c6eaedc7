#include <anyturn/stun/message.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "allocation_counter.hpp"
#include "stun_bytes.hpp"

namespace anyturn::stun {
namespace {

using test::as_bytes;
using test::digest;
using test::from_hex;
using test::load_hex;
using test::append_fingerprint;
using test::tid_from;
using test::to_string;

// ---- RFC 5769 test vectors (the bytes printed in the RFC) ----
const char* const rfc5769_request = R"(
  00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
  80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74
  00 24 00 04 6e 00 01 ff
  80 29 00 08 93 2f f9 b1 51 26 3b 36
  00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
  00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2
  80 28 00 04 e5 7a 3b cf)";

const char* const rfc5769_ipv4_response = R"(
  01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
  80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
  00 20 00 08 00 01 a1 47 e1 12 a6 43
  00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7
  80 28 00 04 c0 7d 4c 96)";

const char* const rfc5769_ipv6_response = R"(
  01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
  80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
  00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9
  00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41
  80 28 00 04 c8 fb 0b 4c)";

const char* const rfc5769_long_term_request = R"(
  00 01 00 60 21 12 a4 42 78 ad 34 33 c6 ad 72 c0 29 da 41 2e
  00 06 00 12 e3 83 9e e3 83 88 e3 83 aa e3 83 83 e3 82 af e3 82 b9 00 00
  00 15 00 1c 66 2f 2f 34 39 39 6b 39 35 34 64 36 4f 4c 33 34 6f 4c 39 46 53 54 76 79 36 34 73 41
  00 14 00 0b 65 78 61 6d 70 6c 65 2e 6f 72 67 00
  00 08 00 14 f6 70 24 65 6d d6 4a 3e 02 b8 e0 71 2e 85 c9 a2 8c a8 96 66)";

// RFC 8489 Appendix B.1 as corrected by erratum 6268: long-term credentials
// with USERHASH, PASSWORD-ALGORITHM SHA-256 and MESSAGE-INTEGRITY-SHA256.
const char* const rfc8489_b1_request = R"(
  00 01 00 90 21 12 a4 42 78 ad 34 33 c6 ad 72 c0 29 da 41 2e
  00 1e 00 20 4a 3c f3 8f ef 69 92 bd a9 52 c6 78 04 17 da 0f 24 81 94 15 56 9e 60 b2 05 c4 6e 41 40 7f 17 04
  00 15 00 29 6f 62 4d 61 74 4a 6f 73 32 41 41 41 43 66 2f 2f 34 39 39 6b 39 35 34 64 36 4f 4c 33 34 6f 4c 39
              46 53 54 76 79 36 34 73 41 00 00 00
  00 14 00 0b 65 78 61 6d 70 6c 65 2e 6f 72 67 00
  00 1d 00 04 00 02 00 00
  00 1c 00 20 b5 c7 bf 00 5b 6c 52 a2 1c 51 c5 e8 92 f8 19 24 13 62 96 cb 92 7c 43 14 93 09 27 8c c6 51 8e 65)";

const std::string_view short_term_password = "VOkJxbRl1RmTxUk/WvJxBt";
// "マトリックス" (U+30DE U+30C8 U+30EA U+30C3 U+30AF U+30B9) in UTF-8.
const std::string_view matrix_user =
    "\xe3\x83\x9e\xe3\x83\x88\xe3\x83\xaa\xe3\x83\x83\xe3\x82\xaf\xe3\x82\xb9";

using test::m;

result<message_view> parse(const std::vector<std::byte>& bytes) { return parse_message(bytes); }

std::string attr_string(const message_view& msg, std::uint16_t type) {
  auto a = msg.find(type);
  if (!a) return "<missing>";
  return to_string(a->value);
}

TEST(Rfc5769, SampleRequestShortTerm) {
  const auto bytes = from_hex(rfc5769_request);
  auto msg = parse(bytes);
  ASSERT_TRUE(msg) << msg.error.message();
  EXPECT_EQ(msg->type(), 0x0001);
  EXPECT_EQ(msg->method(), m(method::binding));
  EXPECT_EQ(msg->cls(), message_class::request);
  EXPECT_EQ(msg->tid(), tid_from("b7e7a701bc34d686fa87dfae"));
  EXPECT_EQ(msg->raw().size(), bytes.size());
  ASSERT_EQ(msg->attributes().size(), 6U);
  EXPECT_TRUE(msg->has_fingerprint());

  EXPECT_EQ(attr_string(*msg, attr::software), "STUN test client");
  // USERNAME "evtj:h6vY": nine bytes, padded with spaces that must be ignored.
  auto user = decode_string(*msg->find(attr::username), 513);
  ASSERT_TRUE(user);
  EXPECT_EQ(*user, "evtj:h6vY");
  auto priority = decode_u32(*msg->find(0x0024));
  ASSERT_TRUE(priority);
  EXPECT_EQ(*priority, 0x6e0001ffU);
  auto controlled = msg->find(0x8029);  // ICE-CONTROLLED, comprehension-optional
  ASSERT_TRUE(controlled);
  EXPECT_EQ(controlled->value.size(), 8U);
  EXPECT_EQ(std::vector<std::byte>(controlled->value.begin(), controlled->value.end()),
            from_hex("932ff9b151263b36"));
  auto fp = decode_u32(*msg->find(attr::fingerprint));
  ASSERT_TRUE(fp);
  EXPECT_EQ(*fp, 0xe57a3bcfU);

  EXPECT_TRUE(check_message_integrity(*msg, as_bytes(short_term_password)));
  EXPECT_FALSE(check_message_integrity(*msg, as_bytes("VOkJxbRl1RmTxUk/WvJxBu")));
  EXPECT_FALSE(check_message_integrity_sha256(*msg, as_bytes(short_term_password)));

  // PRIORITY and USE-CANDIDATE (ICE) are understood: an ICE agent's Binding
  // request is answered, not refused with 420.
  std::array<std::uint16_t, 4> unknown{};
  EXPECT_EQ(msg->unknown_required(unknown), 0U);
}

TEST(Rfc5769, SampleIpv4Response) {
  const auto bytes = from_hex(rfc5769_ipv4_response);
  auto msg = parse(bytes);
  ASSERT_TRUE(msg) << msg.error.message();
  EXPECT_EQ(msg->method(), m(method::binding));
  EXPECT_EQ(msg->cls(), message_class::success_response);
  EXPECT_EQ(attr_string(*msg, attr::software), "test vector");
  auto mapped = decode_address(*msg->find(attr::xor_mapped_address), msg->tid(), true);
  ASSERT_TRUE(mapped);
  EXPECT_EQ(*mapped, endpoint::v4(0xC0000201, 32853));
  EXPECT_EQ(mapped->to_string(), "192.0.2.1:32853");
  EXPECT_TRUE(check_message_integrity(*msg, as_bytes(short_term_password)));
  EXPECT_TRUE(msg->has_fingerprint());
  EXPECT_EQ(*decode_u32(*msg->find(attr::fingerprint)), 0xc07d4c96U);

  // Re-encoding the address gives the RFC's bytes.
  std::array<std::byte, 64> buf{};
  auto built = message_builder(buf, m(method::binding), message_class::success_response, msg->tid())
                   .add_address(attr::xor_mapped_address, *mapped, true)
                   .finish();
  ASSERT_TRUE(built);
  auto reparsed = parse_message(*built);
  ASSERT_TRUE(reparsed);
  auto a = reparsed->find(attr::xor_mapped_address);
  ASSERT_TRUE(a);
  EXPECT_TRUE(std::equal(a->value.begin(), a->value.end(),
                         msg->find(attr::xor_mapped_address)->value.begin(),
                         msg->find(attr::xor_mapped_address)->value.end()));
}

TEST(Rfc5769, SampleIpv6Response) {
  const auto bytes = from_hex(rfc5769_ipv6_response);
  auto msg = parse(bytes);
  ASSERT_TRUE(msg) << msg.error.message();
  EXPECT_EQ(msg->cls(), message_class::success_response);
  EXPECT_EQ(attr_string(*msg, attr::software), "test vector");
  auto mapped = decode_address(*msg->find(attr::xor_mapped_address), msg->tid(), true);
  ASSERT_TRUE(mapped);
  EXPECT_EQ(mapped->family, address_family::ipv6);
  EXPECT_EQ(*mapped, *endpoint::parse("[2001:db8:1234:5678:11:2233:4455:6677]:32853"));
  EXPECT_TRUE(check_message_integrity(*msg, as_bytes(short_term_password)));
  EXPECT_TRUE(msg->has_fingerprint());
  EXPECT_EQ(*decode_u32(*msg->find(attr::fingerprint)), 0xc8fb0b4cU);

  std::array<std::byte, 64> buf{};
  auto built = message_builder(buf, m(method::binding), message_class::success_response, msg->tid())
                   .add_address(attr::xor_mapped_address, *mapped, true)
                   .finish();
  ASSERT_TRUE(built);
  const auto expected = msg->find(attr::xor_mapped_address)->value;
  EXPECT_TRUE(std::equal(expected.begin(), expected.end(), built->begin() + 24, built->end()));
}

TEST(Rfc5769, SampleRequestLongTerm) {
  const auto bytes = from_hex(rfc5769_long_term_request);
  auto msg = parse(bytes);
  ASSERT_TRUE(msg) << msg.error.message();
  EXPECT_EQ(msg->method(), m(method::binding));
  EXPECT_EQ(msg->cls(), message_class::request);
  EXPECT_FALSE(msg->has_fingerprint());
  EXPECT_EQ(attr_string(*msg, attr::username), matrix_user);
  EXPECT_EQ(attr_string(*msg, attr::nonce), "f//499k954d6OL34oL9FSTvy64sA");
  EXPECT_EQ(attr_string(*msg, attr::realm), "example.org");

  // key = MD5(username ":" realm ":" SASLprep(password)); SASLprep turns the
  // RFC's "The<SOFT HYPHEN>M<ORDINAL A>tr<ROMAN NINE>" into "TheMatrIX".
  const auto key = digest("MD5", std::string(matrix_user) + ":example.org:TheMatrIX");
  ASSERT_EQ(key.size(), 16U);
  EXPECT_TRUE(check_message_integrity(*msg, key));
  EXPECT_FALSE(check_message_integrity(*msg, digest("MD5", std::string(matrix_user) + ":example.org:thematrix")));

  // Rebuilt from its parts, the message comes out byte for byte.
  std::array<std::byte, 256> buf{};
  auto built = message_builder(buf, m(method::binding), message_class::request, msg->tid())
                   .add_string(attr::username, matrix_user)
                   .add_string(attr::nonce, "f//499k954d6OL34oL9FSTvy64sA")
                   .add_string(attr::realm, "example.org")
                   .add_message_integrity(key)
                   .finish();
  ASSERT_TRUE(built);
  EXPECT_EQ(std::vector<std::byte>(built->begin(), built->end()), bytes);
}

TEST(Rfc8489, AppendixB1Sha256WithUserhash) {
  const auto bytes = from_hex(rfc8489_b1_request);
  auto msg = parse(bytes);
  ASSERT_TRUE(msg) << msg.error.message();
  EXPECT_EQ(msg->method(), m(method::binding));
  EXPECT_EQ(msg->cls(), message_class::request);
  EXPECT_EQ(msg->tid(), tid_from("78ad3433c6ad72c029da412e"));

  // USERHASH = SHA-256(username ":" realm)
  const auto userhash = digest("SHA256", std::string(matrix_user) + ":example.org");
  auto uh = msg->find(attr::userhash);
  ASSERT_TRUE(uh);
  EXPECT_EQ(std::vector<std::byte>(uh->value.begin(), uh->value.end()), userhash);
  EXPECT_EQ(attr_string(*msg, attr::nonce), "obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA");
  EXPECT_EQ(attr_string(*msg, attr::realm), "example.org");
  auto alg = decode_password_algorithm(*msg->find(attr::password_algorithm));
  ASSERT_TRUE(alg);
  EXPECT_EQ(*alg, password_algorithm::sha256);

  const auto key = digest("SHA256", std::string(matrix_user) + ":example.org:TheMatrIX");
  EXPECT_TRUE(check_message_integrity_sha256(*msg, key));
  EXPECT_FALSE(check_message_integrity_sha256(*msg, digest("SHA256", "x:example.org:TheMatrIX")));
  EXPECT_FALSE(check_message_integrity(*msg, key));  // no MESSAGE-INTEGRITY at all

  std::array<std::byte, 256> buf{};
  auto built = message_builder(buf, m(method::binding), message_class::request, msg->tid())
                   .add_bytes(attr::userhash, userhash)
                   .add_string(attr::nonce, "obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA")
                   .add_string(attr::realm, "example.org")
                   .add_password_algorithm(password_algorithm::sha256)
                   .add_message_integrity_sha256(key)
                   .finish();
  ASSERT_TRUE(built);
  EXPECT_EQ(std::vector<std::byte>(built->begin(), built->end()), bytes);
}

TEST(Rfc5769, AnyFlippedBitIsCaught) {
  // CRC-32 catches every single-bit error, padding included. A flip can
  // only get through by hiding the FINGERPRINT itself (a length that now
  // swallows it, or a changed type), so a flipped vector never parses as a
  // message that still carries a FINGERPRINT.
  const auto original = from_hex(rfc5769_ipv4_response);
  std::size_t parsed_without_fingerprint = 0;
  for (std::size_t i = 0; i < original.size() * 8; ++i) {
    auto bytes = original;
    bytes[i / 8] ^= static_cast<std::byte>(1U << (i % 8));
    auto msg = parse(bytes);
    if (!msg) continue;
    EXPECT_FALSE(msg->has_fingerprint()) << "bit " << i;
    ++parsed_without_fingerprint;
  }
  EXPECT_LE(parsed_without_fingerprint, 32U);  // FINGERPRINT type bits, a few lengths
}

// ---- real captures (coturn 4.6.1 client and server) ----
class CoturnCapture : public ::testing::Test {
 protected:
  const std::vector<std::byte> key = digest("MD5", "alice:example.org:secret");
};

TEST_F(CoturnCapture, AllocateRequestWithoutCredentials) {
  const auto bytes = load_hex("coturn_allocate_request_noauth.hex");
  auto msg = parse(bytes);
  ASSERT_TRUE(msg) << msg.error.message();
  EXPECT_EQ(msg->type(), 0x0003);
  EXPECT_EQ(msg->method(), m(method::allocate));
  EXPECT_EQ(msg->cls(), message_class::request);
  EXPECT_TRUE(msg->has_fingerprint());
  EXPECT_EQ(*decode_requested_transport(*msg->find(attr::requested_transport)), 17);
  EXPECT_EQ(*decode_u32(*msg->find(attr::lifetime)), 777U);
  EXPECT_TRUE(*decode_even_port(*msg->find(attr::even_port)));
  EXPECT_EQ(*decode_address_family(*msg->find(attr::requested_address_family)), address_family::ipv4);
  EXPECT_FALSE(msg->has(attr::message_integrity));
  std::array<std::uint16_t, 4> unknown{};
  EXPECT_EQ(msg->unknown_required(unknown), 0U);
}

TEST_F(CoturnCapture, Unauthorized) {
  const auto bytes = load_hex("coturn_allocate_401.hex");
  auto msg = parse(bytes);
  ASSERT_TRUE(msg) << msg.error.message();
  EXPECT_EQ(msg->type(), 0x0113);
  EXPECT_EQ(msg->cls(), message_class::error_response);
  auto err = decode_error_code(*msg->find(attr::error_code));
  ASSERT_TRUE(err);
  EXPECT_EQ(err->code, 401);
  EXPECT_EQ(err->reason, "Unauthorized");
  EXPECT_EQ(*decode_string(*msg->find(attr::nonce), 763), "91037ce6f093f5aa");
  EXPECT_EQ(*decode_string(*msg->find(attr::realm), 763), "example.org");
  EXPECT_EQ(*decode_string(*msg->find(attr::software), 763), "Coturn-4.6.1 'Gorst'");
}

TEST_F(CoturnCapture, AuthenticatedAllocateRequest) {
  const auto bytes = load_hex("coturn_allocate_request_auth.hex");
  auto msg = parse(bytes);
  ASSERT_TRUE(msg) << msg.error.message();
  EXPECT_EQ(*decode_string(*msg->find(attr::username), 513), "alice");
  EXPECT_TRUE(check_message_integrity(*msg, key));
  EXPECT_FALSE(check_message_integrity(*msg, digest("MD5", "alice:example.org:Secret")));
  EXPECT_TRUE(msg->has_fingerprint());
}

TEST_F(CoturnCapture, AllocateSuccess) {
  const auto bytes = load_hex("coturn_allocate_success.hex");
  auto msg = parse(bytes);
  ASSERT_TRUE(msg) << msg.error.message();
  EXPECT_EQ(msg->type(), 0x0103);
  auto relayed = decode_address(*msg->find(attr::xor_relayed_address), msg->tid(), true);
  ASSERT_TRUE(relayed);
  EXPECT_EQ(relayed->to_string(), "127.0.0.1:49172");
  auto mapped = decode_address(*msg->find(attr::xor_mapped_address), msg->tid(), true);
  ASSERT_TRUE(mapped);
  EXPECT_EQ(mapped->to_string(), "127.0.0.1:57887");
  EXPECT_EQ(*decode_reservation_token(*msg->find(attr::reservation_token)), 0xc9e38212c031c024ULL);
  EXPECT_EQ(*decode_u32(*msg->find(attr::lifetime)), 777U);
  EXPECT_TRUE(check_message_integrity(*msg, key));
}

TEST_F(CoturnCapture, RefreshRoundTrip) {
  for (const char* name : {"coturn_refresh_request.hex", "coturn_refresh_success.hex"}) {
    const auto bytes = load_hex(name);
    auto msg = parse(bytes);
    ASSERT_TRUE(msg) << name << ": " << msg.error.message();
    EXPECT_EQ(msg->method(), m(method::refresh)) << name;
    EXPECT_EQ(*decode_u32(*msg->find(attr::lifetime)), 777U) << name;
    EXPECT_TRUE(check_message_integrity(*msg, key)) << name;
  }
}

TEST_F(CoturnCapture, ReservationTokenAndMismatch) {
  auto req_bytes = load_hex("coturn_allocate_request_token.hex");
  auto req = parse(req_bytes);
  ASSERT_TRUE(req);
  EXPECT_EQ(*decode_reservation_token(*req->find(attr::reservation_token)), 0xc9e38212c031c024ULL);

  auto err_bytes = load_hex("coturn_allocate_437.hex");
  auto err_msg = parse(err_bytes);
  ASSERT_TRUE(err_msg);
  auto err = decode_error_code(*err_msg->find(attr::error_code));
  ASSERT_TRUE(err);
  EXPECT_EQ(err->code, 437);
  // coturn counts a trailing NUL into the reason phrase.
  EXPECT_EQ(err->reason, std::string_view("Mismatched allocation: wrong transaction ID\0", 44));
}

// ---- message type ----
TEST(MessageType, KnownValues) {
  EXPECT_EQ(compose_type(m(method::binding), message_class::request), 0x0001);
  EXPECT_EQ(compose_type(m(method::binding), message_class::success_response), 0x0101);
  EXPECT_EQ(compose_type(m(method::binding), message_class::error_response), 0x0111);
  EXPECT_EQ(compose_type(m(method::allocate), message_class::request), 0x0003);
  EXPECT_EQ(compose_type(m(method::allocate), message_class::success_response), 0x0103);
  EXPECT_EQ(compose_type(m(method::allocate), message_class::error_response), 0x0113);
  EXPECT_EQ(compose_type(m(method::refresh), message_class::request), 0x0004);
  EXPECT_EQ(compose_type(m(method::send), message_class::indication), 0x0016);
  EXPECT_EQ(compose_type(m(method::data), message_class::indication), 0x0017);
  EXPECT_EQ(compose_type(m(method::create_permission), message_class::request), 0x0008);
  EXPECT_EQ(compose_type(m(method::channel_bind), message_class::success_response), 0x0109);
  EXPECT_EQ(compose_type(0x0FFF, message_class::error_response), 0x3FFF);
}

TEST(MessageType, RoundTripsEveryMethodAndClass) {
  for (std::uint16_t method_value = 0; method_value <= 0x0FFF; ++method_value) {
    for (auto cls : {message_class::request, message_class::indication,
                     message_class::success_response, message_class::error_response}) {
      const auto type = compose_type(method_value, cls);
      ASSERT_EQ(type & 0xC000, 0);
      ASSERT_EQ(type_method(type), method_value);
      ASSERT_EQ(type_class(type), cls);
    }
  }
}

// ---- negative parsing ----
std::vector<std::byte> sample_message() {
  std::vector<std::byte> buf(256);
  auto built = message_builder(buf, m(method::allocate), message_class::request,
                               tid_from("0102030405060708090a0b0c"))
                   .add_requested_transport(17)
                   .add_string(attr::software, "anyturn test")
                   .finish();
  EXPECT_TRUE(built);
  return {built->begin(), built->end()};
}

// Serialises raw attributes (type, value) behind a STUN header; padding is
// zero and the length is set. No FINGERPRINT is computed.
std::vector<std::byte> raw_message(std::initializer_list<std::pair<std::uint16_t, std::vector<std::byte>>> attrs) {
  std::vector<std::byte> out = from_hex("0001 0000 2112a442 0102030405060708090a0b0c");
  for (const auto& [type, value] : attrs) {
    out.push_back(static_cast<std::byte>(type >> 8));
    out.push_back(static_cast<std::byte>(type));
    out.push_back(static_cast<std::byte>(value.size() >> 8));
    out.push_back(static_cast<std::byte>(value.size()));
    out.insert(out.end(), value.begin(), value.end());
    while (out.size() % 4 != 0) out.push_back(std::byte{0});
  }
  const auto body = out.size() - header_size;
  out[2] = static_cast<std::byte>(body >> 8);
  out[3] = static_cast<std::byte>(body);
  return out;
}

std::error_code parse_error(const std::vector<std::byte>& bytes) {
  auto r = parse_message(bytes);
  EXPECT_FALSE(r.has_value());
  return r.error;
}

TEST(ParseMessage, TruncatedHeadersAndBodies) {
  const auto good = sample_message();
  ASSERT_TRUE(parse_message(good));
  for (std::size_t n = 0; n < good.size(); ++n) {
    auto r = parse_message(bytes_view{good}.first(n));
    ASSERT_FALSE(r) << "prefix " << n;
    EXPECT_EQ(r.error, codec_error::bad_length) << "prefix " << n;
  }
}

TEST(ParseMessage, HeaderChecks) {
  auto bytes = sample_message();
  bytes[0] |= std::byte{0x80};
  EXPECT_EQ(parse_error(bytes), codec_error::not_stun);
  bytes = sample_message();
  bytes[0] |= std::byte{0x40};
  EXPECT_EQ(parse_error(bytes), codec_error::not_stun);
  bytes = sample_message();
  bytes[5] ^= std::byte{0x01};  // magic cookie
  EXPECT_EQ(parse_error(bytes), codec_error::not_stun);
  bytes = sample_message();
  bytes[3] = static_cast<std::byte>(std::to_integer<int>(bytes[3]) + 2);  // not a multiple of 4
  EXPECT_EQ(parse_error(bytes), codec_error::bad_length);
  bytes = sample_message();
  bytes.resize(bytes.size() + 4);  // datagram longer than the header says
  EXPECT_EQ(parse_error(bytes), codec_error::bad_length);
  bytes = sample_message();
  bytes[3] = static_cast<std::byte>(std::to_integer<int>(bytes[3]) - 4);  // shorter
  EXPECT_EQ(parse_error(bytes), codec_error::bad_length);
}

TEST(ParseMessage, HeaderOnlyMessage) {
  const auto bytes = from_hex("0001 0000 2112a442 0102030405060708090a0b0c");
  auto msg = parse_message(bytes);
  ASSERT_TRUE(msg);
  EXPECT_TRUE(msg->attributes().empty());
  EXPECT_FALSE(msg->has(attr::username));
  EXPECT_FALSE(check_message_integrity(*msg, as_bytes("k")));
}

TEST(ParseMessage, AttributeOverrunningTheMessage) {
  auto bytes = raw_message({{attr::username, from_hex("6162636465")}});  // 5 bytes + 3 padding
  ASSERT_TRUE(parse_message(bytes));
  bytes[23] = std::byte{9};  // length 9 needs 12 bytes, only 8 remain
  EXPECT_EQ(parse_error(bytes), codec_error::truncated_attribute);
  bytes[22] = std::byte{0xFF};
  EXPECT_EQ(parse_error(bytes), codec_error::truncated_attribute);
}

TEST(ParseMessage, Fingerprint) {
  auto bytes = sample_message();
  append_fingerprint(bytes);
  auto msg = parse_message(bytes);
  ASSERT_TRUE(msg);
  EXPECT_TRUE(msg->has_fingerprint());

  auto wrong = bytes;
  wrong.back() ^= std::byte{1};
  EXPECT_EQ(parse_error(wrong), codec_error::bad_fingerprint);

  auto tampered = bytes;
  tampered[25] ^= std::byte{1};  // inside the first attribute
  EXPECT_EQ(parse_error(tampered), codec_error::bad_fingerprint);

  // FINGERPRINT that is not last
  auto not_last = sample_message();
  append_fingerprint(not_last);
  auto extended = raw_message({});
  extended.assign(not_last.begin(), not_last.end());
  for (int b : {0x00, 0x0d, 0x00, 0x04, 0, 0, 0, 1}) extended.push_back(static_cast<std::byte>(b));
  const auto body = extended.size() - header_size;
  extended[3] = static_cast<std::byte>(body);
  extended[2] = static_cast<std::byte>(body >> 8);
  EXPECT_EQ(parse_error(extended), codec_error::bad_fingerprint);

  // FINGERPRINT of the wrong size
  auto short_fp = raw_message({{attr::fingerprint, from_hex("010203")}});
  EXPECT_EQ(parse_error(short_fp), codec_error::bad_fingerprint);
}

TEST(ParseMessage, TooManyAttributes) {
  std::vector<std::byte> buf(1024);
  message_builder b(buf, m(method::binding), message_class::request, tid_from("000000000000000000000000"));
  for (std::size_t i = 0; i < max_attributes; ++i) b.add_flag(attr::dont_fragment);
  auto full = b.finish();
  ASSERT_TRUE(full);
  auto msg = parse_message(*full);
  ASSERT_TRUE(msg);
  EXPECT_EQ(msg->attributes().size(), max_attributes);
  b.add_flag(attr::dont_fragment);
  auto over = b.finish();
  ASSERT_TRUE(over);
  auto r = parse_message(*over);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error, codec_error::too_many_attributes);
}

TEST(ParseMessage, UnknownComprehensionRequired) {
  auto bytes = raw_message({{0x7F00, {}},
                            {attr::username, from_hex("61")},
                            {0x8F00, {}},  // unknown but optional
                            {0x0003, from_hex("00000000")},  // CHANGE-REQUEST: not ours
                            {0x7F00, {}}});                   // duplicate, listed once
  auto msg = parse_message(bytes);
  ASSERT_TRUE(msg);
  std::array<std::uint16_t, 8> out{};
  ASSERT_EQ(msg->unknown_required(out), 2U);
  EXPECT_EQ(out[0], 0x7F00);
  EXPECT_EQ(out[1], 0x0003);
  std::array<std::uint16_t, 1> small{};
  ASSERT_EQ(msg->unknown_required(small), 1U);
  EXPECT_EQ(small[0], 0x7F00);

  for (std::uint16_t t : {attr::mapped_address, attr::xor_peer_address, attr::data, attr::lifetime,
                          attr::userhash, attr::reservation_token, attr::requested_transport}) {
    EXPECT_TRUE(attr::known(t)) << t;
  }
  EXPECT_TRUE(attr::known(attr::priority));
  EXPECT_TRUE(attr::known(attr::use_candidate));
  EXPECT_FALSE(attr::known(0x0003));  // CHANGE-REQUEST (RFC 5780) is not offered
  EXPECT_FALSE(attr::known(0x0077));
}

TEST(ParseMessage, AttributesAfterIntegrityAreIgnored) {
  const auto mi = std::vector<std::byte>(20, std::byte{0xAA});
  const auto mi256 = std::vector<std::byte>(32, std::byte{0xBB});
  auto bytes = raw_message({{attr::username, from_hex("61")},
                            {attr::message_integrity, mi},
                            {attr::data, from_hex("01")},
                            {0x7F00, {}},
                            {attr::message_integrity_sha256, mi256},
                            {attr::lifetime, from_hex("00000001")}});
  append_fingerprint(bytes);
  auto msg = parse_message(bytes);
  ASSERT_TRUE(msg) << msg.error.message();
  // The view ends at MESSAGE-INTEGRITY: USERNAME, MESSAGE-INTEGRITY, then
  // only MESSAGE-INTEGRITY-SHA256 and FINGERPRINT; the three others are gone.
  ASSERT_EQ(msg->attributes().size(), 4U);
  EXPECT_EQ(msg->ignored(), 3U);
  EXPECT_EQ(msg->attributes()[0].type, attr::username);
  EXPECT_EQ(msg->attributes()[1].type, attr::message_integrity);
  EXPECT_EQ(msg->attributes()[2].type, attr::message_integrity_sha256);
  EXPECT_EQ(msg->attributes()[3].type, attr::fingerprint);
  EXPECT_TRUE(msg->has(attr::username));
  EXPECT_TRUE(msg->has(attr::message_integrity));
  EXPECT_FALSE(msg->has(attr::data));
  EXPECT_FALSE(msg->has(attr::lifetime));
  EXPECT_TRUE(msg->has(attr::message_integrity_sha256));
  EXPECT_TRUE(msg->has(attr::fingerprint));
  std::array<std::uint16_t, 4> unknown{};
  EXPECT_EQ(msg->unknown_required(unknown), 0U);  // 0x7F00 is past the integrity cut

  // After MESSAGE-INTEGRITY-SHA256 only FINGERPRINT counts, even MESSAGE-INTEGRITY.
  auto sha_first = raw_message({{attr::message_integrity_sha256, mi256},
                                {attr::message_integrity, mi},
                                {attr::realm, from_hex("61")}});
  append_fingerprint(sha_first);
  auto msg2 = parse_message(sha_first);
  ASSERT_TRUE(msg2);
  EXPECT_TRUE(msg2->has(attr::message_integrity_sha256));
  EXPECT_FALSE(msg2->has(attr::message_integrity));
  EXPECT_FALSE(msg2->has(attr::realm));
  EXPECT_TRUE(msg2->has(attr::fingerprint));

  // A second MESSAGE-INTEGRITY is ignored: find() returns the first.
  auto twice = raw_message({{attr::message_integrity, mi},
                            {attr::message_integrity, std::vector<std::byte>(20, std::byte{0xCC})}});
  auto msg3 = parse_message(twice);
  ASSERT_TRUE(msg3);
  EXPECT_EQ(msg3->find(attr::message_integrity)->value[0], std::byte{0xAA});
  EXPECT_EQ(msg3->attributes().size(), 1U);
}

// RFC 8489 §14.5: iterating a view never reaches an attribute an on-path
// attacker appended to a signed request (the CreatePermission hole: every
// XOR-PEER-ADDRESS in attributes() was installed).
TEST(ParseMessage, IterationStopsAtIntegrity) {
  const std::vector<std::byte> key(16, std::byte{0x42});
  const auto tid = tid_from("0102030405060708090a0b0c");
  std::array<std::byte, 256> buf{};
  message_builder b(buf, m(method::create_permission), message_class::request, tid);
  b.add_address(attr::xor_peer_address, *endpoint::parse("192.0.2.1:1"), true)
      .add_message_integrity(key);
  const auto signed_part = b.finish();
  ASSERT_TRUE(signed_part);
  std::vector<std::byte> bytes(signed_part->begin(), signed_part->end());
  // XOR-PEER-ADDRESS 10.0.0.1:2, XOR-encoded under the magic cookie.
  auto injected = from_hex("0001 2110 2b12a443");
  test::append_attribute(bytes, attr::xor_peer_address, injected);
  test::append_attribute(bytes, attr::lifetime, from_hex("00000e10"));
  test::append_attribute(bytes, 0x7F01, {});  // unknown comprehension-required
  test::append_fingerprint(bytes);

  auto msg = parse_message(bytes);
  ASSERT_TRUE(msg) << msg.error.message();
  EXPECT_TRUE(check_message_integrity(*msg, key));  // the signature still holds
  EXPECT_EQ(msg->ignored(), 3U);
  std::size_t peers = 0;
  for (const auto& a : msg->attributes()) {
    EXPECT_NE(a.type, attr::lifetime);
    EXPECT_NE(a.type, 0x7F01);
    peers += a.type == attr::xor_peer_address;
  }
  EXPECT_EQ(peers, 1U);
  EXPECT_FALSE(msg->has(attr::lifetime));
  EXPECT_TRUE(msg->has(attr::fingerprint));
  std::array<std::uint16_t, 4> unknown{};
  EXPECT_EQ(msg->unknown_required(unknown), 0U);
}

// Ignored attributes still count against max_attributes: the framing limit
// is on what the wire holds, not on what the view keeps.
TEST(ParseMessage, IgnoredAttributesCountTowardTheLimit) {
  auto bytes = raw_message({{attr::message_integrity, std::vector<std::byte>(20, std::byte{1})}});
  for (std::size_t i = 1; i < max_attributes; ++i) test::append_attribute(bytes, attr::software, {});
  auto full = parse_message(bytes);
  ASSERT_TRUE(full) << full.error.message();
  EXPECT_EQ(full->attributes().size(), 1U);
  EXPECT_EQ(full->ignored(), max_attributes - 1);
  test::append_attribute(bytes, attr::software, {});
  EXPECT_EQ(parse_message(bytes).error, codec_error::too_many_attributes);
}

TEST(Integrity, IgnoredTrailingAttributesDoNotBreakTheHmac) {
  // RFC 8489 §14.5: the HMAC covers the message up to MESSAGE-INTEGRITY with
  // the length adjusted to end there, so appended attributes do not matter.
  const auto key = digest("MD5", "user:realm:pass");
  std::vector<std::byte> buf(256);
  auto built = message_builder(buf, m(method::refresh), message_class::request,
                               tid_from("0102030405060708090a0b0c"))
                   .add_u32(attr::lifetime, 600)
                   .add_message_integrity(key)
                   .finish();
  ASSERT_TRUE(built);
  std::vector<std::byte> bytes(built->begin(), built->end());
  for (int b : {0x00, 0x13, 0x00, 0x04, 1, 2, 3, 4}) bytes.push_back(static_cast<std::byte>(b));
  const auto body = bytes.size() - header_size;
  bytes[2] = static_cast<std::byte>(body >> 8);
  bytes[3] = static_cast<std::byte>(body);
  auto msg = parse_message(bytes);
  ASSERT_TRUE(msg);
  EXPECT_TRUE(check_message_integrity(*msg, key));
  EXPECT_FALSE(msg->has(attr::data));

  bytes[26] ^= std::byte{1};  // LIFETIME value, covered by the HMAC
  auto tampered = parse_message(bytes);
  ASSERT_TRUE(tampered);
  EXPECT_FALSE(check_message_integrity(*tampered, key));
}

TEST(Integrity, BadMacSizes) {
  auto short_mi = raw_message({{attr::message_integrity, std::vector<std::byte>(16)}});
  auto msg = parse_message(short_mi);
  ASSERT_TRUE(msg);
  EXPECT_FALSE(check_message_integrity(*msg, as_bytes("k")));
  auto odd_sha = raw_message({{attr::message_integrity_sha256, std::vector<std::byte>(18)}});
  auto msg2 = parse_message(odd_sha);
  ASSERT_TRUE(msg2);
  EXPECT_FALSE(check_message_integrity_sha256(*msg2, as_bytes("k")));
}

TEST(Integrity, TruncatedSha256IsAccepted) {
  // RFC 8489 §14.6: MESSAGE-INTEGRITY-SHA256 may be truncated to 16..32
  // bytes in multiples of 4; the header length then ends at the short MAC.
  const auto key = digest("SHA256", "user:realm:pass");
  auto bytes = raw_message({{attr::username, from_hex("75736572")},
                            {attr::message_integrity_sha256, std::vector<std::byte>(16)}});
  const std::size_t mac_at = bytes.size() - 16;
  std::array<unsigned char, 32> mac{};
  unsigned mac_len = 0;
  ASSERT_NE(HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
                 reinterpret_cast<const unsigned char*>(bytes.data()), mac_at - 4, mac.data(), &mac_len),
            nullptr);
  std::memcpy(bytes.data() + mac_at, mac.data(), 16);
  auto msg = parse_message(bytes);
  ASSERT_TRUE(msg);
  EXPECT_TRUE(check_message_integrity_sha256(*msg, key));
  bytes[mac_at + 15] ^= std::byte{1};
  auto bad = parse_message(bytes);
  ASSERT_TRUE(bad);
  EXPECT_FALSE(check_message_integrity_sha256(*bad, key));
}

// ---- decoders ----
TEST(Decoders, RejectBadValues) {
  const transaction_id tid{};
  auto view = [](const std::vector<std::byte>& v, std::uint16_t type = 0) {
    return attribute_view{type, bytes_view{v}, 0};
  };
  const auto bad_family = from_hex("0003 1234 01020304");
  EXPECT_EQ(decode_address(view(bad_family), tid, false).error, codec_error::bad_attribute_value);
  const auto v4_too_long = from_hex("0001 1234 0102030405");
  EXPECT_FALSE(decode_address(view(v4_too_long), tid, true));
  const auto v6_too_short = from_hex("0002 1234 01020304");
  EXPECT_FALSE(decode_address(view(v6_too_short), tid, true));
  const auto tiny = from_hex("0001");
  EXPECT_FALSE(decode_address(view(tiny), tid, true));
  EXPECT_FALSE(decode_u32(view(from_hex("010203"))));
  EXPECT_FALSE(decode_u32(view(from_hex("0102030405"))));
  EXPECT_FALSE(decode_string(view(from_hex("616263")), 2));
  EXPECT_TRUE(decode_string(view(from_hex("616263")), 3));
  EXPECT_FALSE(decode_error_code(view(from_hex("000002")))) << "too short";
  EXPECT_FALSE(decode_error_code(view(from_hex("00000200")))) << "class 2";
  EXPECT_FALSE(decode_error_code(view(from_hex("00000700")))) << "class 7";
  EXPECT_FALSE(decode_error_code(view(from_hex("00000464")))) << "number 100";
  std::vector<std::byte> long_reason(4 + 764, std::byte{'a'});
  long_reason[2] = std::byte{4};
  long_reason[3] = std::byte{0};
  EXPECT_FALSE(decode_error_code(view(long_reason)));
  long_reason.pop_back();
  EXPECT_TRUE(decode_error_code(view(long_reason)));
  EXPECT_FALSE(decode_channel_number(view(from_hex("4000"))));
  // Out-of-range numbers decode; the range is the TURN layer's 400.
  EXPECT_EQ(*decode_channel_number(view(from_hex("3fff0000"))), 0x3FFF);
  EXPECT_FALSE(valid_channel(*decode_channel_number(view(from_hex("8000ffff")))));
  EXPECT_FALSE(decode_requested_transport(view(from_hex("11"))));
  EXPECT_FALSE(decode_address_family(view(from_hex("03000000"))));
  EXPECT_FALSE(decode_address_family(view(from_hex("01"))));
  EXPECT_FALSE(decode_even_port(view(from_hex("80000000"))));
  EXPECT_FALSE(decode_even_port(view({})));
  EXPECT_FALSE(decode_reservation_token(view(from_hex("01020304"))));
  EXPECT_FALSE(decode_address_error_code(view(from_hex("03000440"))));
  EXPECT_FALSE(decode_address_error_code(view(from_hex("01000940"))));
  EXPECT_FALSE(decode_password_algorithm(view(from_hex("0002"))));
  EXPECT_FALSE(decode_password_algorithm(view(from_hex("00020004"))));
  std::array<std::uint16_t, 4> out{};
  EXPECT_FALSE(decode_unknown_attributes(view(from_hex("000102")), out));
  EXPECT_FALSE(decode_password_algorithms(view(from_hex("000100")), out));
  EXPECT_FALSE(decode_password_algorithms(view(from_hex("00010008 0000")), out));
}

TEST(Decoders, PasswordAlgorithmsWithParameters) {
  // An algorithm with 2 parameter bytes (padded to 4), then SHA-256.
  const auto value = from_hex("00030002 abcd0000 00020000");
  std::array<std::uint16_t, 4> out{};
  auto n = decode_password_algorithms(attribute_view{attr::password_algorithms, value, 0}, out);
  ASSERT_TRUE(n);
  ASSERT_EQ(*n, 2U);
  EXPECT_EQ(out[0], 3);
  EXPECT_EQ(out[1], 2);
  std::array<std::uint16_t, 1> one{};
  EXPECT_EQ(*decode_password_algorithms(attribute_view{attr::password_algorithms, value, 0}, one), 1U);
  // Last entry's padding may be left to the attribute padding.
  const auto unpadded = from_hex("00020000 00030002 abcd");
  EXPECT_EQ(*decode_password_algorithms(attribute_view{attr::password_algorithms, unpadded, 0}, out), 2U);
}

// ---- round trips through the builder ----
using test::round_trip_tid;

class RoundTrip : public ::testing::TestWithParam<endpoint> {};

TEST_P(RoundTrip, EveryAttributeType) {
  const endpoint ep = GetParam();
  const endpoint other = ep.is_v4() ? *endpoint::parse("[2001:db8::7]:1") : endpoint::v4(0x0A000001, 65535);
  const std::array<std::uint16_t, 3> unknown_types{0x0003, 0x7F00, 0x0031};
  const std::array<password_algorithm, 2> algs{password_algorithm::md5, password_algorithm::sha256};
  const std::string payload = "payload-of-13";
  const auto key = digest("MD5", "u:r:p");
  const auto key256 = digest("SHA256", "u:r:p");

  std::vector<std::byte> buf(2048);
  message_builder b(buf, m(method::allocate), message_class::success_response, round_trip_tid);
  b.add_address(attr::xor_relayed_address, ep, true)
      .add_address(attr::xor_mapped_address, other, true)
      .add_address(attr::xor_peer_address, ep, true)
      .add_address(attr::mapped_address, ep, false)
      .add_address(attr::alternate_server, other, false)
      .add_string(attr::username, "user\xc3\xa9")
      .add_string(attr::realm, "example.org")
      .add_string(attr::nonce, "nonce-123")
      .add_string(attr::software, "anyturn")
      .add_string(attr::alternate_domain, "turn.example.org")
      .add_u32(attr::lifetime, 3600)
      .add_u32(attr::icmp, 0x00000301)
      .add_error_code(438, "Stale Nonce")
      .add_unknown_attributes(unknown_types)
      .add_channel_number(0x4001)
      .add_requested_transport(17)
      .add_address_family(attr::requested_address_family, address_family::ipv6)
      .add_address_family(attr::additional_address_family, address_family::ipv4)
      .add_even_port(true)
      .add_reservation_token(0x0123456789ABCDEFULL)
      .add_address_error_code(address_family::ipv6, 440, "Address Family not Supported")
      .add_password_algorithm(password_algorithm::sha256)
      .add_password_algorithms(algs)
      .add_flag(attr::dont_fragment);
  auto slot = b.add_data_slot(payload.size());
  ASSERT_EQ(slot.size(), payload.size());
  std::memcpy(slot.data(), payload.data(), payload.size());
  b.add_message_integrity(key).add_message_integrity_sha256(key256).add_fingerprint();
  auto built = b.finish();
  ASSERT_TRUE(built) << built.error.message();
  ASSERT_EQ(built->size(), b.size());
  ASSERT_EQ(built->size() % 4, 0U);

  auto msg = parse_message(*built);
  ASSERT_TRUE(msg) << msg.error.message();
  EXPECT_EQ(msg->method(), m(method::allocate));
  EXPECT_EQ(msg->cls(), message_class::success_response);
  EXPECT_EQ(msg->tid(), round_trip_tid);

  auto addr = [&](std::uint16_t type, bool xored) { return *decode_address(*msg->find(type), msg->tid(), xored); };
  EXPECT_EQ(addr(attr::xor_relayed_address, true), ep);
  EXPECT_EQ(addr(attr::xor_mapped_address, true), other);
  EXPECT_EQ(addr(attr::xor_peer_address, true), ep);
  EXPECT_EQ(addr(attr::mapped_address, false), ep);
  EXPECT_EQ(addr(attr::alternate_server, false), other);
  // XOR really happened: decoding without XOR gives something else.
  EXPECT_NE(*decode_address(*msg->find(attr::xor_peer_address), msg->tid(), false), ep);

  EXPECT_EQ(*decode_string(*msg->find(attr::username), 513), "user\xc3\xa9");
  EXPECT_EQ(*decode_string(*msg->find(attr::realm), 763), "example.org");
  EXPECT_EQ(*decode_string(*msg->find(attr::nonce), 763), "nonce-123");
  EXPECT_EQ(*decode_string(*msg->find(attr::software), 763), "anyturn");
  EXPECT_EQ(*decode_string(*msg->find(attr::alternate_domain), 255), "turn.example.org");
  EXPECT_EQ(*decode_u32(*msg->find(attr::lifetime)), 3600U);
  EXPECT_EQ(*decode_u32(*msg->find(attr::icmp)), 0x301U);
  auto err = *decode_error_code(*msg->find(attr::error_code));
  EXPECT_EQ(err.code, 438);
  EXPECT_EQ(err.reason, "Stale Nonce");
  std::array<std::uint16_t, 8> types{};
  ASSERT_EQ(*decode_unknown_attributes(*msg->find(attr::unknown_attributes), types), 3U);
  EXPECT_TRUE(std::equal(unknown_types.begin(), unknown_types.end(), types.begin()));
  EXPECT_EQ(*decode_channel_number(*msg->find(attr::channel_number)), 0x4001);
  EXPECT_EQ(*decode_requested_transport(*msg->find(attr::requested_transport)), 17);
  EXPECT_EQ(*decode_address_family(*msg->find(attr::requested_address_family)), address_family::ipv6);
  EXPECT_EQ(*decode_address_family(*msg->find(attr::additional_address_family)), address_family::ipv4);
  EXPECT_TRUE(*decode_even_port(*msg->find(attr::even_port)));
  EXPECT_EQ(*decode_reservation_token(*msg->find(attr::reservation_token)), 0x0123456789ABCDEFULL);
  auto aerr = *decode_address_error_code(*msg->find(attr::address_error_code));
  EXPECT_EQ(aerr.family, address_family::ipv6);
  EXPECT_EQ(aerr.code, 440);
  EXPECT_EQ(aerr.reason, "Address Family not Supported");
  EXPECT_EQ(*decode_password_algorithm(*msg->find(attr::password_algorithm)), password_algorithm::sha256);
  std::array<std::uint16_t, 4> alg_out{};
  ASSERT_EQ(*decode_password_algorithms(*msg->find(attr::password_algorithms), alg_out), 2U);
  EXPECT_EQ(alg_out[0], 1);
  EXPECT_EQ(alg_out[1], 2);
  auto flag = msg->find(attr::dont_fragment);
  ASSERT_TRUE(flag);
  EXPECT_TRUE(flag->value.empty());
  EXPECT_EQ(to_string(msg->find(attr::data)->value), payload);
  EXPECT_TRUE(check_message_integrity(*msg, key));
  EXPECT_TRUE(check_message_integrity_sha256(*msg, key256));
  EXPECT_FALSE(check_message_integrity(*msg, key256));
  EXPECT_TRUE(msg->has_fingerprint());
  std::array<std::uint16_t, 4> unknown{};
  EXPECT_EQ(msg->unknown_required(unknown), 0U);

  // Attribute offsets point at their headers; padding is zero.
  for (const auto& a : msg->attributes()) {
    const auto* base = msg->raw().data();
    EXPECT_EQ(a.value.data(), base + a.offset + 4);
    const std::size_t padded = (a.value.size() + 3) & ~std::size_t{3};
    for (std::size_t i = a.value.size(); i < padded; ++i) EXPECT_EQ(base[a.offset + 4 + i], std::byte{0});
  }
}

INSTANTIATE_TEST_SUITE_P(Families, RoundTrip,
                         ::testing::Values(endpoint::v4(0xC0000201, 32853),
                                           endpoint::v4(0xFFFFFFFF, 0),
                                           *endpoint::parse("[2001:db8:1234:5678:11:2233:4455:6677]:32853"),
                                           *endpoint::parse("[::ffff:1.2.3.4]:65535")));

TEST(RoundTrip, ErrorCodesAllClasses) {
  for (int code = 300; code <= 699; ++code) {
    std::array<std::byte, 64> buf{};
    auto built = message_builder(buf, m(method::binding), message_class::error_response, round_trip_tid)
                     .add_error_code(code, "r")
                     .finish();
    ASSERT_TRUE(built) << code;
    auto msg = parse_message(*built);
    ASSERT_TRUE(msg);
    auto err = decode_error_code(*msg->find(attr::error_code));
    ASSERT_TRUE(err);
    EXPECT_EQ(err->code, code);
  }
}

// ---- fingerprint / CRC-32 ----
TEST(Fingerprint, Crc32CheckValue) {
  // CRC-32/ISO-HDLC check value of "123456789" is 0xCBF43926.
  EXPECT_EQ(fingerprint_of(as_bytes("123456789")), 0xCBF43926U ^ fingerprint_xor);
  EXPECT_EQ(fingerprint_of({}), 0x00000000U ^ fingerprint_xor);
}

// ---- error category ----
TEST(Errors, CategoryAndConversion) {
  std::error_code ec = codec_error::need_more;
  EXPECT_EQ(ec.category(), codec_category());
  EXPECT_EQ(ec, codec_error::need_more);
  EXPECT_NE(ec, codec_error::not_stun);
  EXPECT_STREQ(codec_category().name(), "anyturn.stun");
  for (int e = 1; e <= static_cast<int>(codec_error::too_large); ++e) {
    EXPECT_FALSE(make_error_code(static_cast<codec_error>(e)).message().empty());
  }
}

}  // namespace
}  // namespace anyturn::stun

// ---- the codec never touches the heap ----
//
// operator new is counted (tests/support/allocation_counter), and OpenSSL's
// allocator is hooked too.

namespace {

std::atomic<bool> counting{false};
std::atomic<std::size_t> openssl_calls{0};

void* counting_malloc(std::size_t n, const char*, int) {
  if (counting.load(std::memory_order_relaxed)) openssl_calls.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n);
}
void* counting_realloc(void* p, std::size_t n, const char*, int) {
  if (counting.load(std::memory_order_relaxed)) openssl_calls.fetch_add(1, std::memory_order_relaxed);
  return std::realloc(p, n);
}
void counting_free(void* p, const char*, int) { std::free(p); }

// Runs before main, hence before OpenSSL allocates anything.
const bool openssl_hooked = CRYPTO_set_mem_functions(counting_malloc, counting_realloc, counting_free) == 1;

}  // namespace

namespace anyturn::stun {
namespace {

class NoAllocation : public ::testing::Test {
 protected:
  template <typename F>
  void measure(F&& body, std::size_t iterations) {
    openssl_calls = 0;
    counting = true;
    new_calls = anyturn::test::allocations_in([&] {
      for (std::size_t i = 0; i < iterations; ++i) body();
    });
    counting = false;
  }

  const std::vector<std::byte> key = test::digest("MD5", "alice:example.org:secret");
  const std::vector<std::byte> key256 = test::digest("SHA256", "alice:example.org:secret");
  const std::vector<std::byte> request = test::load_hex("coturn_allocate_request_auth.hex");
  const std::vector<std::byte> success = test::load_hex("coturn_allocate_success.hex");
  const std::vector<std::byte> refresh = test::load_hex("coturn_refresh_request.hex");
  const std::vector<std::byte> channel_data = test::from_hex("4001 0001 aa");
  std::vector<std::byte> out = std::vector<std::byte>(512);
  std::size_t new_calls = 0;  // operator new calls in the last measure()
};

TEST_F(NoAllocation, ParseFindDecodeFrameAndBuild) {
  // No HMAC here, so neither operator new nor OpenSSL may allocate.
  std::size_t checks = 0;
  measure([&] {
    for (const auto* bytes : {&request, &success}) {
      auto msg = parse_message(*bytes);
      if (!msg) return;
      for (const auto& a : msg->attributes()) {
        if (msg->find(a.type)) ++checks;
        if (decode_address(a, msg->tid(), true)) ++checks;
        if (decode_u32(a)) ++checks;
        if (decode_string(a, 763)) ++checks;
        if (decode_error_code(a)) ++checks;
      }
      std::array<std::uint16_t, 8> unknown{};
      checks += msg->unknown_required(unknown);
      if (stream_frame_length(*bytes, 1500)) ++checks;
    }
    if (parse_channel_data(channel_data)) ++checks;
    if (stream_frame_length(channel_data, 1500).error == codec_error::need_more) ++checks;
    auto built = message_builder(out, 0x003, message_class::success_response, transaction_id{})
                     .add_address(attr::xor_relayed_address, endpoint::v4(0x7F000001, 49172), true)
                     .add_u32(attr::lifetime, 600)
                     .add_error_code(437, "Allocation Mismatch")
                     .add_fingerprint()
                     .finish();
    if (built && parse_message(*built)) ++checks;
  }, 100);
  EXPECT_GT(checks, 100U * 20);
  EXPECT_EQ(new_calls, 0U);
  if (openssl_hooked) {
    EXPECT_EQ(openssl_calls.load(), 0U);
  }
}

TEST_F(NoAllocation, IntegrityChecksUseNoOperatorNew) {
  // check_message_integrity feeds the header copy and the message to the
  // HMAC in place: no heap copy of the message. OpenSSL 3.0's EVP_MAC
  // re-keying allocates its digest state internally (malloc, not operator
  // new); that count is reported, not asserted.
  std::vector<std::byte> signed256(512);
  {
    message_builder b(signed256, 0x003, message_class::request, transaction_id{});
    b.add_string(attr::username, "alice").add_message_integrity_sha256(key256).add_fingerprint();
    ASSERT_TRUE(b.ok());
    signed256.resize(b.size());
  }
  std::size_t verified = 0;
  auto body = [&] {
    for (const auto* bytes : {&request, &success, &refresh}) {
      auto msg = parse_message(*bytes);
      if (msg && check_message_integrity(*msg, key)) ++verified;
    }
    auto msg = parse_message(signed256);
    if (msg && check_message_integrity_sha256(*msg, key256)) ++verified;
    auto built = message_builder(out, 0x003, message_class::success_response, transaction_id{})
                     .add_u32(attr::lifetime, 600)
                     .add_message_integrity(key)
                     .add_fingerprint()
                     .finish();
    if (built) ++verified;
  };
  body();  // the first use on a thread creates its MAC contexts
  verified = 0;
  measure(body, 100);
  EXPECT_EQ(verified, 500U);
  EXPECT_EQ(new_calls, 0U);
  RecordProperty("openssl_mallocs_per_hmac", std::to_string(openssl_calls.load() / 500));
}

}  // namespace
}  // namespace anyturn::stun
