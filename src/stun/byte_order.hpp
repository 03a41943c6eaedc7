// Big-endian loads and stores over std::byte, for the STUN wire format.
#pragma once

#include <cstddef>
#include <cstdint>

namespace anyturn::stun::detail {

inline std::uint16_t load16(const std::byte* p) {
  return static_cast<std::uint16_t>((std::to_integer<unsigned>(p[0]) << 8) |
                                    std::to_integer<unsigned>(p[1]));
}
inline std::uint32_t load32(const std::byte* p) {
  return (static_cast<std::uint32_t>(load16(p)) << 16) | load16(p + 2);
}
inline std::uint64_t load64(const std::byte* p) {
  return (static_cast<std::uint64_t>(load32(p)) << 32) | load32(p + 4);
}
inline void store16(std::byte* p, std::uint16_t v) {
  p[0] = static_cast<std::byte>(v >> 8);
  p[1] = static_cast<std::byte>(v);
}
inline void store32(std::byte* p, std::uint32_t v) {
  store16(p, static_cast<std::uint16_t>(v >> 16));
  store16(p + 2, static_cast<std::uint16_t>(v));
}
inline void store64(std::byte* p, std::uint64_t v) {
  store32(p, static_cast<std::uint32_t>(v >> 32));
  store32(p + 4, static_cast<std::uint32_t>(v));
}

constexpr std::size_t pad4(std::size_t n) { return (n + 3) & ~std::size_t{3}; }

}  // namespace anyturn::stun::detail
