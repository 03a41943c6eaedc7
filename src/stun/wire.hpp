// What the stun codec's files share: sizes from RFC 8489 and the XOR mask
// of XOR-*-ADDRESS. Private to src/stun/.
#pragma once

#include <anyturn/stun/message.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

namespace anyturn::stun::detail {

inline constexpr std::size_t mi_sha1_size = 20;
inline constexpr std::size_t mi_sha256_min = 16;
inline constexpr std::size_t mi_sha256_max = 32;
inline constexpr std::size_t fingerprint_size = 4;
// RFC 8489 §14.8: reason phrase < 128 characters, at most 763 bytes of UTF-8.
inline constexpr std::size_t max_reason_bytes = 763;
inline constexpr std::size_t max_body = 0xFFFF & ~std::size_t{3};


// Port and address XOR masks of RFC 8489 §14.2: the port with the cookie's
// high 16 bits, IPv4 with the cookie, IPv6 with cookie || transaction id.
inline std::array<std::uint8_t, 16> xor_mask(const transaction_id& tid) {
  std::array<std::uint8_t, 16> mask{};
  mask[0] = static_cast<std::uint8_t>(magic_cookie >> 24);
  mask[1] = static_cast<std::uint8_t>(magic_cookie >> 16);
  mask[2] = static_cast<std::uint8_t>(magic_cookie >> 8);
  mask[3] = static_cast<std::uint8_t>(magic_cookie);
  for (std::size_t i = 0; i < tid.bytes.size(); ++i) {
    mask[4 + i] = std::to_integer<std::uint8_t>(tid.bytes[i]);
  }
  return mask;
}

inline std::optional<address_family> to_family(std::uint8_t v) {
  if (v == static_cast<std::uint8_t>(address_family::ipv4)) return address_family::ipv4;
  if (v == static_cast<std::uint8_t>(address_family::ipv6)) return address_family::ipv6;
  return std::nullopt;
}

inline constexpr bool valid_error_code(int code) { return code >= 300 && code <= 699; }

}  // namespace anyturn::stun::detail
