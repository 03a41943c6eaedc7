// PROXY protocol v1/v2 header parsing (src/net/proxy_protocol.cpp).
#include <anyturn/net/proxy_protocol.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace anyturn::net {
namespace {

std::vector<std::byte> bytes(std::string_view text) {
  std::vector<std::byte> out;
  for (char c : text) out.push_back(static_cast<std::byte>(c));
  return out;
}

std::vector<std::byte> raw(std::initializer_list<unsigned> values) {
  std::vector<std::byte> out;
  for (unsigned v : values) out.push_back(static_cast<std::byte>(v));
  return out;
}

const std::vector<std::byte> v2_sig = raw({0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A});

// A v2 header: ver_cmd, fam, then `body` as the address block and TLVs.
std::vector<std::byte> v2(unsigned ver_cmd, unsigned fam, const std::vector<std::byte>& body) {
  std::vector<std::byte> out = v2_sig;
  out.push_back(static_cast<std::byte>(ver_cmd));
  out.push_back(static_cast<std::byte>(fam));
  out.push_back(static_cast<std::byte>(body.size() >> 8));
  out.push_back(static_cast<std::byte>(body.size() & 0xFF));
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

std::vector<std::byte> tcp4_block() {
  // 192.0.2.7:40000 -> 198.51.100.1:3478
  return raw({192, 0, 2, 7, 198, 51, 100, 1, 0x9C, 0x40, 0x0D, 0x96});
}

proxy_header parse(const std::vector<std::byte>& data) { return parse_proxy_header(data); }

TEST(proxy_protocol, v1_tcp4_gives_the_client_and_the_header_size) {
  auto data = bytes("PROXY TCP4 192.0.2.7 198.51.100.1 40000 3478\r\n");
  data.push_back(std::byte{0x00});  // the client's first bytes follow
  data.push_back(std::byte{0x01});
  const auto h = parse(data);
  ASSERT_EQ(h.status, proxy_status::complete) << to_string(h.problem);
  EXPECT_EQ(h.version, 1);
  EXPECT_EQ(h.size, data.size() - 2);
  ASSERT_TRUE(h.has_address);
  EXPECT_EQ(h.source.to_string(), "192.0.2.7:40000");
  EXPECT_EQ(h.destination.to_string(), "198.51.100.1:3478");
}

TEST(proxy_protocol, v1_tcp6) {
  const auto h = parse(bytes("PROXY TCP6 2001:db8::7 2001:db8::1 1 65535\r\n"));
  ASSERT_EQ(h.status, proxy_status::complete);
  ASSERT_TRUE(h.has_address);
  EXPECT_EQ(h.source.to_string(), "[2001:db8::7]:1");
  EXPECT_EQ(h.destination.to_string(), "[2001:db8::1]:65535");
}

TEST(proxy_protocol, v1_unknown_has_no_address) {
  for (std::string_view line : {"PROXY UNKNOWN\r\n", "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"}) {
    const auto h = parse(bytes(line));
    ASSERT_EQ(h.status, proxy_status::complete) << line;
    EXPECT_FALSE(h.has_address);
    EXPECT_EQ(h.size, line.size());
  }
}

TEST(proxy_protocol, every_strict_prefix_needs_more_and_the_whole_completes) {
  const std::vector<std::vector<std::byte>> headers = {
      bytes("PROXY TCP4 192.0.2.7 198.51.100.1 40000 3478\r\n"),
      v2(0x21, 0x11, tcp4_block()),
      v2(0x20, 0x00, {}),
  };
  for (const auto& full : headers) {
    for (std::size_t n = 0; n < full.size(); ++n) {
      const auto h = parse_proxy_header(std::span(full.data(), n));
      EXPECT_EQ(h.status, proxy_status::need_more) << "prefix " << n;
    }
    const auto h = parse(full);
    EXPECT_EQ(h.status, proxy_status::complete);
    EXPECT_EQ(h.size, full.size());
  }
}

TEST(proxy_protocol, v1_malformed_lines_are_refused) {
  for (std::string_view line : {
           "PROXY TCP4 192.0.2.7 198.51.100.1 40000\r\n",          // a field missing
           "PROXY TCP4 192.0.2.7 198.51.100.1 40000 3478 9\r\n",   // one too many
           "PROXY TCP4 192.0.2.7  198.51.100.1 40000 3478\r\n",    // two spaces
           "PROXY TCP4 2001:db8::7 198.51.100.1 40000 3478\r\n",   // v6 in TCP4
           "PROXY TCP6 192.0.2.7 2001:db8::1 1 2\r\n",             // v4 in TCP6
           "PROXY TCP4 192.0.2.7 198.51.100.1 70000 3478\r\n",     // port > 65535
           "PROXY TCP4 192.0.2.7 198.51.100.1 -1 3478\r\n",
           "PROXY TCP4 192.0.2 198.51.100.1 1 2\r\n",
           "PROXY UDP4 192.0.2.7 198.51.100.1 1 2\r\n",
           "PROXY TCP4 192.0.2.7 198.51.100.1 1 2\n",              // LF without CR
           "PROXY TCP4 192.0.2.7\r198.51.100.1 1 2\r\n",           // CR alone
           "PROXY \r\n",
       }) {
    const auto h = parse(bytes(line));
    EXPECT_EQ(h.status, proxy_status::malformed) << line;
    EXPECT_EQ(h.problem, proxy_problem::bad_v1) << line;
  }
}

TEST(proxy_protocol, v1_without_crlf_in_107_bytes_is_refused) {
  std::string line = "PROXY TCP6 ";
  line.append(120, 'a');
  const auto h = parse(bytes(line));
  EXPECT_EQ(h.status, proxy_status::malformed);
  // 106 bytes of a line are still a possible header.
  const auto partial = parse_proxy_header(std::span(bytes(line).data(), 106));
  EXPECT_EQ(partial.status, proxy_status::need_more);
}

TEST(proxy_protocol, a_stream_that_is_not_a_header_is_refused_at_its_first_wrong_byte) {
  // A STUN Binding request, a TLS ClientHello, "PROXY" in lower case.
  EXPECT_EQ(parse(raw({0x00, 0x01})).status, proxy_status::malformed);
  EXPECT_EQ(parse(raw({0x16, 0x03, 0x01})).status, proxy_status::malformed);
  EXPECT_EQ(parse(bytes("proxy")).status, proxy_status::malformed);
  EXPECT_EQ(parse(bytes("PROXYX")).problem, proxy_problem::bad_signature);
  EXPECT_EQ(parse(raw({0x0D, 0x0A, 0x0D, 0x0B})).problem, proxy_problem::bad_signature);
  EXPECT_EQ(parse({}).status, proxy_status::need_more);
}

TEST(proxy_protocol, v2_proxy_tcp4_skips_tlvs) {
  auto body = tcp4_block();
  // PP2_TYPE_ALPN "h2" and a NOOP TLV.
  for (unsigned b : {0x01u, 0x00u, 0x02u, unsigned('h'), unsigned('2'), 0x04u, 0x00u, 0x00u}) {
    body.push_back(static_cast<std::byte>(b));
  }
  auto data = v2(0x21, 0x11, body);
  data.push_back(std::byte{0x00});  // the client's first byte
  const auto h = parse(data);
  ASSERT_EQ(h.status, proxy_status::complete) << to_string(h.problem);
  EXPECT_EQ(h.version, 2);
  EXPECT_EQ(h.size, data.size() - 1);
  ASSERT_TRUE(h.has_address);
  EXPECT_EQ(h.source.to_string(), "192.0.2.7:40000");
  EXPECT_EQ(h.destination.to_string(), "198.51.100.1:3478");
}

TEST(proxy_protocol, v2_proxy_tcp6) {
  std::vector<std::byte> body(36);
  body[0] = std::byte{0x20};
  body[1] = std::byte{0x01};
  body[15] = std::byte{0x07};
  body[16] = std::byte{0x20};
  body[17] = std::byte{0x01};
  body[31] = std::byte{0x01};
  body[32] = std::byte{0x12};
  body[33] = std::byte{0x34};
  body[35] = std::byte{0x50};
  const auto h = parse(v2(0x21, 0x21, body));
  ASSERT_EQ(h.status, proxy_status::complete);
  ASSERT_TRUE(h.has_address);
  EXPECT_EQ(h.source.to_string(), "[2001::7]:4660");
  EXPECT_EQ(h.destination.to_string(), "[2001::1]:80");
}

TEST(proxy_protocol, v2_local_and_unspec_carry_no_address) {
  // LOCAL ignores the family, even with an address block.
  const auto local = parse(v2(0x20, 0x11, tcp4_block()));
  ASSERT_EQ(local.status, proxy_status::complete);
  EXPECT_FALSE(local.has_address);
  const auto local_unix = parse(v2(0x20, 0x31, {}));
  EXPECT_EQ(local_unix.status, proxy_status::complete);
  const auto unspec = parse(v2(0x21, 0x00, {}));
  ASSERT_EQ(unspec.status, proxy_status::complete);
  EXPECT_FALSE(unspec.has_address);
}

TEST(proxy_protocol, v2_malformed_headers_are_refused) {
  EXPECT_EQ(parse(v2(0x11, 0x11, tcp4_block())).problem, proxy_problem::bad_version);  // version 1
  EXPECT_EQ(parse(v2(0x22, 0x11, tcp4_block())).problem, proxy_problem::bad_version);  // command 2
  EXPECT_EQ(parse(v2(0x21, 0x12, tcp4_block())).problem, proxy_problem::bad_family);   // DGRAM
  EXPECT_EQ(parse(v2(0x21, 0x31, std::vector<std::byte>(216))).problem, proxy_problem::bad_family);
  EXPECT_EQ(parse(v2(0x21, 0x41, tcp4_block())).problem, proxy_problem::bad_family);
  // Address blocks shorter than the family needs.
  EXPECT_EQ(parse(v2(0x21, 0x11, std::vector<std::byte>(11))).problem, proxy_problem::bad_length);
  EXPECT_EQ(parse(v2(0x21, 0x21, std::vector<std::byte>(35))).problem, proxy_problem::bad_length);
  // The bound is known from the fixed part alone: refused before the body comes.
  auto huge = v2_sig;
  for (unsigned b : {0x21u, 0x11u, 0xFFu, 0xFFu}) huge.push_back(static_cast<std::byte>(b));
  EXPECT_EQ(parse(huge).problem, proxy_problem::bad_length);
  // The largest accepted header, and one byte more.
  EXPECT_EQ(parse(v2(0x21, 0x11, std::vector<std::byte>(max_proxy_header - 16))).status,
            proxy_status::complete);
  EXPECT_EQ(parse(v2(0x21, 0x11, std::vector<std::byte>(max_proxy_header - 15))).status,
            proxy_status::malformed);
}

}  // namespace
}  // namespace anyturn::net
