// ChannelData (RFC 8656 §12.4) and framing: what a datagram is (RFC 7983),
// and where a message ends on a stream (§12.5).
#include <anyturn/stun/message.hpp>

#include <array>
#include <cstring>

#include "byte_order.hpp"
#include "wire.hpp"

namespace anyturn::stun {

using detail::load16;
using detail::load32;
using detail::pad4;
using detail::store16;

// ---- framing ----
frame_kind classify(bytes_view data) {
  if (data.empty()) return frame_kind::other;
  const auto first = std::to_integer<unsigned>(data[0]);
  if (first <= 3) return frame_kind::stun;
  if (first >= 64 && first <= 127) return frame_kind::channel_data;
  return frame_kind::other;
}

result<std::size_t> stream_frame_length(bytes_view data, std::size_t max_frame) {
  switch (classify(data)) {
    case frame_kind::stun: {
      // Reject as early as the bytes allow, so a garbage stream is dropped
      // without waiting for a full header.
      if (data.size() >= 4) {
        const std::size_t len = load16(data.data() + 2);
        if (len % 4 != 0) return codec_error::bad_length;
        if (header_size + len > max_frame) return codec_error::too_large;
      }
      if (data.size() >= 8 && load32(data.data() + 4) != magic_cookie) {
        return codec_error::not_stun;
      }
      if (data.size() < header_size) return codec_error::need_more;
      const std::size_t frame = header_size + load16(data.data() + 2);
      if (data.size() < frame) return codec_error::need_more;
      return frame;
    }
    case frame_kind::channel_data: {
      if (data.size() < channel_data_header_size) return codec_error::need_more;
      // RFC 8656 §12.5: over streams ChannelData is padded to 4 bytes.
      const std::size_t frame = channel_data_header_size + pad4(load16(data.data() + 2));
      if (frame > max_frame) return codec_error::too_large;
      if (data.size() < frame) return codec_error::need_more;
      return frame;
    }
    case frame_kind::other:
      if (data.empty()) return codec_error::need_more;
      return codec_error::not_stun;
  }
  return codec_error::not_stun;
}

// ---- ChannelData ----
result<channel_data_view> parse_channel_data(bytes_view data) {
  // RFC 8656 §12.4/12.5: channel number, length, data; padding to 4 bytes
  // is optional over UDP and always present in stream frames.
  if (data.size() < channel_data_header_size) return codec_error::bad_length;
  const std::uint16_t channel = load16(data.data());
  if (!valid_channel(channel)) return codec_error::not_channel_data;
  const std::size_t len = load16(data.data() + 2);
  if (data.size() < channel_data_header_size + len ||
      data.size() > channel_data_header_size + pad4(len)) {
    return codec_error::bad_length;
  }
  return channel_data_view{channel, data.subspan(channel_data_header_size, len)};
}

void write_channel_data_header(mutable_bytes out, std::uint16_t channel, std::uint16_t payload_len) {
  if (out.size() < channel_data_header_size) return;
  store16(out.data(), channel);
  store16(out.data() + 2, payload_len);
}

}  // namespace anyturn::stun
