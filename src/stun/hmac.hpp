// HMAC-SHA1 / HMAC-SHA256 over a message fed in pieces, for
// MESSAGE-INTEGRITY(-SHA256) (RFC 8489 §14.5, §14.6).
//
// Each thread keeps one OpenSSL EVP_MAC_CTX per digest, created on first
// use and re-keyed per call, so checking a message costs no context setup
// and no copy of the message.
#pragma once

#include <array>
#include <cstddef>
#include <initializer_list>
#include <optional>
#include <span>

namespace anyturn::stun::detail {

enum class hmac_digest { sha1, sha256 };
inline constexpr std::size_t sha1_size = 20;
inline constexpr std::size_t sha256_size = 32;

// HMAC(key, parts[0] || parts[1] || ...) into `out` (32 bytes; SHA-1 uses
// the first 20). Returns the MAC length, or nullopt if OpenSSL failed.
std::optional<std::size_t> hmac(hmac_digest digest, std::span<const std::byte> key,
                                std::initializer_list<std::span<const std::byte>> parts,
                                std::array<std::byte, sha256_size>& out);

}  // namespace anyturn::stun::detail
