// The Data indication prefix of src/stun/builder.cpp (the builder's other
// attributes are checked by round trips in message_test.cpp).
#include <anyturn/stun/message.hpp>

#include <gtest/gtest.h>

#include <array>
#include <vector>

#include "stun_bytes.hpp"

namespace anyturn::stun {
namespace {

using test::tid_from;

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

}  // namespace
}  // namespace anyturn::stun
