// libFuzzer target: ChannelData parsing and stream framing. Any broken
// invariant traps.
#include <anyturn/stun/message.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace {

using namespace anyturn::stun;

#define FUZZ_CHECK(cond) \
  do {                   \
    if (!(cond)) __builtin_trap(); \
  } while (0)

constexpr std::size_t pad4(std::size_t n) { return (n + 3) & ~std::size_t{3}; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const bytes_view in{reinterpret_cast<const std::byte*>(data), size};

  // As a datagram.
  if (auto cd = parse_channel_data(in)) {
    FUZZ_CHECK(valid_channel(cd->channel));
    FUZZ_CHECK(classify(in) == frame_kind::channel_data);
    FUZZ_CHECK(cd->payload.data() == in.data() + channel_data_header_size);
    FUZZ_CHECK(size >= channel_data_header_size + cd->payload.size());
    FUZZ_CHECK(size <= channel_data_header_size + pad4(cd->payload.size()));

    // Rebuild: header + payload, padded as a stream frame.
    static std::array<std::byte, channel_data_header_size + 65536 + 4> buf;
    const std::size_t len = cd->payload.size();
    write_channel_data_header(buf, cd->channel, static_cast<std::uint16_t>(len));
    if (len != 0) std::memcpy(buf.data() + channel_data_header_size, cd->payload.data(), len);
    std::memset(buf.data() + channel_data_header_size + len, 0, pad4(len) - len);
    const bytes_view rebuilt{buf.data(), channel_data_header_size + pad4(len)};
    FUZZ_CHECK(std::memcmp(rebuilt.data(), in.data(), channel_data_header_size) == 0);
    auto again = parse_channel_data(rebuilt);
    FUZZ_CHECK(again && again->channel == cd->channel && again->payload.size() == len);
    auto framed = stream_frame_length(rebuilt, rebuilt.size());
    FUZZ_CHECK(framed && *framed == rebuilt.size());
  } else {
    FUZZ_CHECK(parse_channel_data(in).error.category() == codec_category());
  }

  // As a byte stream: split it into frames until an error or need_more.
  std::size_t off = 0;
  std::size_t frames = 0;
  while (off < size) {
    const bytes_view rest = in.subspan(off);
    auto len = stream_frame_length(rest, 1500);
    if (!len) {
      const auto e = len.error;
      FUZZ_CHECK(e == codec_error::need_more || e == codec_error::not_stun ||
                 e == codec_error::too_large || e == codec_error::bad_length);
      break;
    }
    FUZZ_CHECK(*len >= channel_data_header_size && *len <= rest.size() && *len <= 1500);
    const bytes_view frame = rest.first(*len);
    if (classify(frame) == frame_kind::channel_data) {
      auto cd = parse_channel_data(frame);
      FUZZ_CHECK(cd.has_value() && pad4(cd->payload.size()) + channel_data_header_size == *len);
    } else {
      FUZZ_CHECK(classify(frame) == frame_kind::stun && *len >= header_size);
      // A framed STUN message parses unless its attributes are malformed.
      auto msg = parse_message(frame);
      FUZZ_CHECK(msg || (msg.error != codec_error::bad_length && msg.error != codec_error::not_stun));
    }
    off += *len;
    ++frames;
  }
  FUZZ_CHECK(off <= size && frames <= size / channel_data_header_size);
  return 0;
}
