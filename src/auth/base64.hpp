// anyturn::auth (private) — base64 into caller buffers, no heap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace anyturn::auth::detail {

inline constexpr char base64_std_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
inline constexpr char base64_url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// Characters base64_encode writes for `n` input bytes.
constexpr std::size_t base64_size(std::size_t n, bool pad) {
  return pad ? (n + 2) / 3 * 4 : (n * 4 + 2) / 3;
}

// Encodes `in` into `out` (which must hold base64_size(in.size(), pad) chars)
// and returns the number of chars written. `url` selects RFC 4648 §5.
constexpr std::size_t base64_encode(std::span<const std::uint8_t> in, char* out, bool url,
                                    bool pad) {
  const char* alphabet = url ? base64_url_alphabet : base64_std_alphabet;
  std::size_t o = 0;
  std::size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const std::uint32_t v = (std::uint32_t{in[i]} << 16) | (std::uint32_t{in[i + 1]} << 8) | in[i + 2];
    out[o++] = alphabet[(v >> 18) & 0x3f];
    out[o++] = alphabet[(v >> 12) & 0x3f];
    out[o++] = alphabet[(v >> 6) & 0x3f];
    out[o++] = alphabet[v & 0x3f];
  }
  const std::size_t rest = in.size() - i;
  if (rest == 1) {
    const std::uint32_t v = std::uint32_t{in[i]} << 16;
    out[o++] = alphabet[(v >> 18) & 0x3f];
    out[o++] = alphabet[(v >> 12) & 0x3f];
    if (pad) {
      out[o++] = '=';
      out[o++] = '=';
    }
  } else if (rest == 2) {
    const std::uint32_t v = (std::uint32_t{in[i]} << 16) | (std::uint32_t{in[i + 1]} << 8);
    out[o++] = alphabet[(v >> 18) & 0x3f];
    out[o++] = alphabet[(v >> 12) & 0x3f];
    out[o++] = alphabet[(v >> 6) & 0x3f];
    if (pad) out[o++] = '=';
  }
  return o;
}

// Value of one base64 character (0..63), or -1 when it is not in the alphabet.
constexpr int base64_value(char c, bool url) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == (url ? '-' : '+')) return 62;
  if (c == (url ? '_' : '/')) return 63;
  return -1;
}

}  // namespace anyturn::auth::detail
