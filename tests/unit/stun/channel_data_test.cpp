// ChannelData parsing (RFC 8656 §12) and stream framing.
#include <anyturn/stun/message.hpp>

#include <gtest/gtest.h>

#include <vector>

#include "stun_bytes.hpp"

namespace anyturn::stun {
namespace {

using test::from_hex;

TEST(ChannelData, ParsesWithAndWithoutPadding) {
  const auto unpadded = from_hex("4001 0005 68656c6c6f");
  auto cd = parse_channel_data(unpadded);
  ASSERT_TRUE(cd) << cd.error.message();
  EXPECT_EQ(cd->channel, 0x4001);
  EXPECT_EQ(test::to_string(cd->payload), "hello");

  auto padded = unpadded;
  padded.resize(12);
  cd = parse_channel_data(padded);
  ASSERT_TRUE(cd);
  EXPECT_EQ(cd->payload.size(), 5U);
  EXPECT_EQ(cd->payload.data(), padded.data() + 4);

  for (std::size_t extra : {1U, 2U}) {  // partial padding is fine too
    auto partial = unpadded;
    partial.resize(9 + extra);
    EXPECT_TRUE(parse_channel_data(partial)) << extra;
  }
}

TEST(ChannelData, EmptyPayload) {
  const auto empty = from_hex("7fff 0000");
  auto cd = parse_channel_data(empty);
  ASSERT_TRUE(cd);
  EXPECT_EQ(cd->channel, 0x7FFF);
  EXPECT_TRUE(cd->payload.empty());
}

TEST(ChannelData, RejectsBadLengths) {
  EXPECT_EQ(parse_channel_data(from_hex("4001 00")).error, codec_error::bad_length);
  EXPECT_EQ(parse_channel_data(from_hex("4001 0005 68656c6c")).error, codec_error::bad_length);
  // more than the padding after the payload
  EXPECT_EQ(parse_channel_data(from_hex("4001 0005 68656c6c6f 000000 00")).error, codec_error::bad_length);
  EXPECT_EQ(parse_channel_data(from_hex("4001 0004 01020304 00")).error, codec_error::bad_length);
}

TEST(ChannelData, ChannelRange) {
  EXPECT_TRUE(valid_channel(0x4000));
  EXPECT_TRUE(valid_channel(0x7FFF));
  EXPECT_FALSE(valid_channel(0x3FFF));
  EXPECT_FALSE(valid_channel(0x8000));
  EXPECT_FALSE(valid_channel(0x0000));
  EXPECT_FALSE(valid_channel(0xFFFF));
  for (const char* hex : {"3fff 0000", "8000 0000", "0001 0000", "ffff 0000"}) {
    EXPECT_EQ(parse_channel_data(from_hex(hex)).error, codec_error::not_channel_data) << hex;
  }
  EXPECT_TRUE(parse_channel_data(from_hex("4000 0000")));
}

TEST(ChannelData, WriteHeaderRoundTrip) {
  std::vector<std::byte> frame(4 + 7);
  write_channel_data_header(frame, 0x4ABC, 7);
  for (std::size_t i = 0; i < 7; ++i) frame[4 + i] = static_cast<std::byte>(i);
  auto cd = parse_channel_data(frame);
  ASSERT_TRUE(cd);
  EXPECT_EQ(cd->channel, 0x4ABC);
  EXPECT_EQ(cd->payload.size(), 7U);
  EXPECT_EQ(cd->payload[6], std::byte{6});
  auto framed = stream_frame_length(frame, 1500);
  ASSERT_FALSE(framed);  // a stream frame is padded: 12 bytes needed
  EXPECT_EQ(framed.error, codec_error::need_more);
  frame.resize(12);
  EXPECT_EQ(*stream_frame_length(frame, 1500), 12U);
}

TEST(Classify, FirstByte) {
  EXPECT_EQ(classify({}), frame_kind::other);
  EXPECT_EQ(classify(from_hex("00")), frame_kind::stun);
  EXPECT_EQ(classify(from_hex("03")), frame_kind::stun);
  EXPECT_EQ(classify(from_hex("04")), frame_kind::other);
  EXPECT_EQ(classify(from_hex("16")), frame_kind::other);  // DTLS/TLS handshake
  EXPECT_EQ(classify(from_hex("40")), frame_kind::channel_data);
  EXPECT_EQ(classify(from_hex("7f")), frame_kind::channel_data);
  EXPECT_EQ(classify(from_hex("80")), frame_kind::other);  // RTP
}

TEST(StreamFrame, Stun) {
  std::vector<std::byte> buf(64);
  auto built = message_builder(buf, 0x003, message_class::request, test::tid_from("000102030405060708090a0b"))
                   .add_u32(attr::lifetime, 600)
                   .finish();
  ASSERT_TRUE(built);
  std::vector<std::byte> stream(built->begin(), built->end());
  const std::size_t size = stream.size();  // 28
  for (std::size_t n = 0; n < size; ++n) {
    auto r = stream_frame_length(bytes_view{stream}.first(n), 1500);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error, codec_error::need_more) << n;
  }
  // followed by the start of the next frame
  stream.push_back(std::byte{0x40});
  EXPECT_EQ(*stream_frame_length(stream, 1500), size);
  EXPECT_EQ(stream_frame_length(stream, size - 1).error, codec_error::too_large);
  EXPECT_EQ(*stream_frame_length(stream, size), size);
}

TEST(StreamFrame, RejectsEarly) {
  // Bad cookie as soon as 8 bytes are there.
  EXPECT_EQ(stream_frame_length(from_hex("0001 0004 2112a443"), 1500).error, codec_error::not_stun);
  // Length not a multiple of 4 as soon as 4 bytes are there.
  EXPECT_EQ(stream_frame_length(from_hex("0001 0005"), 1500).error, codec_error::bad_length);
  // Too large before the body arrives.
  EXPECT_EQ(stream_frame_length(from_hex("0001 fffc"), 1500).error, codec_error::too_large);
  EXPECT_EQ(stream_frame_length(from_hex("4001 ffff"), 1500).error, codec_error::too_large);
  // Neither STUN nor ChannelData
  EXPECT_EQ(stream_frame_length(from_hex("16 0301"), 1500).error, codec_error::not_stun);
  EXPECT_EQ(stream_frame_length(from_hex("80"), 1500).error, codec_error::not_stun);
  EXPECT_EQ(stream_frame_length({}, 1500).error, codec_error::need_more);
  EXPECT_EQ(stream_frame_length(from_hex("00"), 1500).error, codec_error::need_more);
  EXPECT_EQ(stream_frame_length(from_hex("40"), 1500).error, codec_error::need_more);
}

TEST(StreamFrame, ChannelDataPadding) {
  EXPECT_EQ(stream_frame_length(from_hex("4001 0000"), 1500).value, 4U);
  EXPECT_EQ(stream_frame_length(from_hex("4001 0001 aa"), 1500).error, codec_error::need_more);
  EXPECT_EQ(stream_frame_length(from_hex("4001 0001 aa000000"), 1500).value, 8U);
  EXPECT_EQ(stream_frame_length(from_hex("4001 0004 aabbccdd 4002"), 1500).value, 8U);
  EXPECT_EQ(stream_frame_length(from_hex("4001 0004 aabbccdd"), 7).error, codec_error::too_large);
}

}  // namespace
}  // namespace anyturn::stun
