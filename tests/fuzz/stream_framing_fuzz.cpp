// libFuzzer target: stream framing (stun::stream_frame_length, RFC 8656
// §12.5) of a TCP/TLS byte stream, fed in pieces the way the net layer's
// stream sessions feed it (src/net/stream_session.cpp: append what the
// socket gave, frame everything complete, keep the rest for the next read).
//
// The input is a little program that writes a stream: well-formed STUN
// messages, padded ChannelData frames, raw garbage, and cut marks. The
// stream is then framed
//   - all at once (the reference),
//   - cut in two at every offset (every third one past 64 bytes of a
//     stream longer than 256),
//   - in the pieces between the input's cut marks,
//   - one byte at a time,
// and every way must give the same frames and the same final state (an
// error at the same offset, or the same unframed tail). While the stream is
// clean (no garbage yet, every frame within the size limit), the reference
// frames must be exactly the messages the program wrote. Any broken
// invariant traps.
#include <anyturn/stun/message.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <system_error>
#include <vector>

namespace {

using namespace anyturn::stun;

#define FUZZ_CHECK(cond) \
  do {                   \
    if (!(cond)) __builtin_trap(); \
  } while (0)

constexpr std::size_t max_stream = 1024;
constexpr std::array<std::size_t, 4> frame_limits{548, 1500, 4096, max_message_size};

struct framing {
  std::vector<std::pair<std::size_t, std::size_t>> frames;  // offset, length
  std::error_code error;  // need_more (a tail waits) or the error that ends the stream
  std::size_t consumed = 0;  // bytes framed before the error / the tail
  friend bool operator==(const framing&, const framing&) = default;
};

// One connection's reader: what stream_session::on_read does, minus sockets.
class reader {
 public:
  explicit reader(std::size_t max_frame) : max_frame_(max_frame) {}
  // Returns false once the stream is dead (framing error): the net layer
  // closes the connection and reads nothing more.
  bool feed(bytes_view piece) {
    if (dead_) return false;
    pending_.insert(pending_.end(), piece.begin(), piece.end());
    while (begin_ < pending_.size()) {
      const bytes_view rest(pending_.data() + begin_, pending_.size() - begin_);
      const auto len = stream_frame_length(rest, max_frame_);
      if (!len) {
        if (len.error == codec_error::need_more) return true;
        out_.error = len.error;
        dead_ = true;
        return false;
      }
      FUZZ_CHECK(*len >= channel_data_header_size && *len <= rest.size() && *len <= max_frame_);
      out_.frames.emplace_back(base_ + begin_, *len);
      begin_ += *len;
    }
    // Everything framed: drop it (the session moves the tail to the front).
    base_ += begin_;
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(begin_));
    begin_ = 0;
    return true;
  }
  framing finish() {
    if (!dead_) out_.error = make_error_code(codec_error::need_more);
    out_.consumed = out_.frames.empty() ? 0 : out_.frames.back().first + out_.frames.back().second;
    return out_;
  }

 private:
  std::size_t max_frame_;
  std::vector<std::byte> pending_;
  std::size_t begin_ = 0, base_ = 0;
  bool dead_ = false;
  framing out_;
};

class input {
 public:
  input(const std::uint8_t* d, std::size_t n) : d_(d), n_(n) {}
  bool empty() const { return i_ >= n_; }
  std::uint8_t byte() { return i_ < n_ ? d_[i_++] : 0; }
  std::uint16_t u16() {
    const unsigned hi = byte();  // two statements: the order is defined
    return static_cast<std::uint16_t>(hi << 8 | byte());
  }

 private:
  const std::uint8_t* d_;
  std::size_t n_, i_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  input in(data, size);
  const std::size_t max_frame = frame_limits[in.byte() % frame_limits.size()];

  // ---- write the stream ----
  std::vector<std::byte> stream;
  std::vector<std::pair<std::size_t, std::size_t>> written;  // frames while clean
  std::vector<std::size_t> cuts;
  bool clean = true;
  auto put = [&](std::uint8_t b) { stream.push_back(static_cast<std::byte>(b)); };
  while (!in.empty() && stream.size() < max_stream) {
    const std::size_t start = stream.size();
    const std::uint8_t op = in.byte();
    switch (op % 4) {
      case 0: {  // a STUN message: any type whose first byte is 0-3 (RFC 7983), attributes as raw bytes
        const std::uint16_t type = in.u16() & 0x03FF;
        const std::size_t body = std::size_t{in.byte()} % 64 * 4;
        put(static_cast<std::uint8_t>(type >> 8));
        put(static_cast<std::uint8_t>(type));
        put(static_cast<std::uint8_t>(body >> 8));
        put(static_cast<std::uint8_t>(body));
        for (int s = 24; s >= 0; s -= 8) put(static_cast<std::uint8_t>(magic_cookie >> s));
        for (int i = 0; i < 12; ++i) put(in.byte());
        for (std::size_t i = 0; i < body; ++i) put(in.byte());
        break;
      }
      case 1: {  // ChannelData, padded to 4 bytes as streams require
        const std::uint16_t channel = 0x4000 | (in.u16() & 0x3FFF);
        const std::size_t len = in.u16() % 600;
        put(static_cast<std::uint8_t>(channel >> 8));
        put(static_cast<std::uint8_t>(channel));
        put(static_cast<std::uint8_t>(len >> 8));
        put(static_cast<std::uint8_t>(len));
        for (std::size_t i = 0; i < len; ++i) put(in.byte());
        while (stream.size() % 4 != start % 4) put(0);
        break;
      }
      case 2: {  // garbage: whatever bytes follow
        const std::size_t len = 1 + op / 4 % 8;
        for (std::size_t i = 0; i < len; ++i) put(in.byte());
        clean = false;
        break;
      }
      case 3:  // a cut mark: the next read ends here
        cuts.push_back(stream.size());
        continue;
    }
    const std::size_t len = stream.size() - start;
    if (clean && len > max_frame) clean = false;
    if (clean) written.emplace_back(start, len);
  }
  const bytes_view all(stream.data(), stream.size());

  // ---- the reference: all of it at once ----
  reader whole_reader(max_frame);
  whole_reader.feed(all);
  const framing whole = whole_reader.finish();
  FUZZ_CHECK(whole.consumed <= stream.size());
  if (whole.error == codec_error::need_more) {
    // What is left is a prefix of a frame, never a frame.
    const auto tail = all.subspan(whole.consumed);
    const auto r = stream_frame_length(tail, max_frame);
    FUZZ_CHECK(!r && r.error == codec_error::need_more);
  }
  // Frames tile the stream from the start, and each one parses as its kind.
  std::size_t expect = 0;
  for (const auto& [off, len] : whole.frames) {
    FUZZ_CHECK(off == expect);
    expect = off + len;
    const auto frame = all.subspan(off, len);
    if (classify(frame) == frame_kind::channel_data) {
      const auto cd = parse_channel_data(frame);
      FUZZ_CHECK(cd && channel_data_header_size + ((cd->payload.size() + 3) & ~std::size_t{3}) == len);
    } else {
      FUZZ_CHECK(classify(frame) == frame_kind::stun && len >= header_size);
      const auto msg = parse_message(frame);
      FUZZ_CHECK(msg || (msg.error != codec_error::bad_length && msg.error != codec_error::not_stun));
    }
  }
  // A clean stream frames exactly as written.
  if (clean) {
    FUZZ_CHECK(whole.frames == written);
    FUZZ_CHECK(whole.error == codec_error::need_more && whole.consumed == stream.size());
  } else {
    FUZZ_CHECK(whole.frames.size() >= written.size() &&
               std::equal(written.begin(), written.end(), whole.frames.begin()));
  }

  // ---- cut in two at every offset (every few offsets in a long stream,
  // to keep the run fast; every offset within the first frames) ----
  const std::size_t stride = stream.size() <= 256 ? 1 : 3;
  for (std::size_t cut = 0; cut <= stream.size(); cut += cut < 64 ? 1 : stride) {
    reader r(max_frame);
    if (r.feed(all.first(cut))) r.feed(all.subspan(cut));
    FUZZ_CHECK(r.finish() == whole);
  }
  // ---- in the pieces between the cut marks ----
  {
    reader r(max_frame);
    std::size_t from = 0;
    for (std::size_t cut : cuts) {
      r.feed(all.subspan(from, cut - from));
      from = cut;
    }
    r.feed(all.subspan(from));
    FUZZ_CHECK(r.finish() == whole);
  }
  // ---- one byte at a time ----
  {
    reader r(max_frame);
    for (std::size_t i = 0; i < stream.size(); ++i) r.feed(all.subspan(i, 1));
    FUZZ_CHECK(r.finish() == whole);
  }
  return 0;
}
