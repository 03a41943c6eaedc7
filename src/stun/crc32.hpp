// CRC-32 (ISO-HDLC / IEEE 802.3, reflected polynomial 0xEDB88320) used by
// the STUN FINGERPRINT attribute (RFC 8489 §14.7). Table-driven, constexpr
// table, no state.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace anyturn::stun::detail {

inline constexpr std::array<std::uint32_t, 256> crc32_table = [] {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int bit = 0; bit < 8; ++bit) {
      c = (c & 1U) != 0 ? 0xEDB88320U ^ (c >> 1) : c >> 1;
    }
    table[i] = c;
  }
  return table;
}();

// Feeds `data` into a running CRC. Start with crc32_init, end with crc32_final.
inline constexpr std::uint32_t crc32_init = 0xFFFFFFFFU;
constexpr std::uint32_t crc32_update(std::uint32_t crc, std::span<const std::byte> data) {
  for (std::byte b : data) {
    crc = crc32_table[(crc ^ static_cast<std::uint32_t>(b)) & 0xFFU] ^ (crc >> 8);
  }
  return crc;
}
constexpr std::uint32_t crc32_final(std::uint32_t crc) { return crc ^ 0xFFFFFFFFU; }

constexpr std::uint32_t crc32(std::span<const std::byte> data) {
  return crc32_final(crc32_update(crc32_init, data));
}

}  // namespace anyturn::stun::detail
