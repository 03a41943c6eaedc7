// anyturn::turn — the id of one allocation (a "session" to an operator).
//
// The same id names an allocation everywhere an operator meets it: the
// admin API (GET/DELETE /admin/sessions), `anyturn ctl`, the log lines about
// it and its usage record. It is built from where the allocation lives, so
// the admin API finds it in O(1) without an index: the worker that owns it,
// its slot in that worker's allocation table, and the worker's allocation
// generation (unique per worker for the life of the process, so an id never
// names a later allocation that reused the slot). Printed as 16 lower-case
// hex digits.
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace anyturn::turn {

struct session_id {
  std::uint8_t worker = 0;
  std::uint32_t slot = 0;        // < 2^24
  std::uint32_t generation = 0;  // session::generation

  static constexpr std::uint32_t max_slot = (1u << 24) - 1;

  [[nodiscard]] std::uint64_t packed() const {
    return (std::uint64_t{worker} << 56) | (std::uint64_t{slot & max_slot} << 32) | generation;
  }
  [[nodiscard]] static session_id unpack(std::uint64_t v) {
    return {static_cast<std::uint8_t>(v >> 56), static_cast<std::uint32_t>(v >> 32) & max_slot,
            static_cast<std::uint32_t>(v)};
  }
  [[nodiscard]] std::string str() const {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out(16, '0');
    std::uint64_t v = packed();
    for (int i = 15; i >= 0; --i, v >>= 4) out[static_cast<std::size_t>(i)] = hex[v & 0xF];
    return out;
  }
  // Exactly 16 hex digits (either case); anything else: nullopt.
  [[nodiscard]] static std::optional<session_id> parse(std::string_view text) {
    if (text.size() != 16) return std::nullopt;
    std::uint64_t v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v, 16);
    if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
    return unpack(v);
  }
  friend bool operator==(const session_id&, const session_id&) = default;
};

}  // namespace anyturn::turn
