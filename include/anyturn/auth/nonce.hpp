// anyturn::auth — stateless nonces.
//
// A nonce is an HMAC-SHA256 over (timestamp, client IP) under a key from
// config, so any node that shares the key accepts it: an anycast fleet needs
// no shared state. It starts with RFC 8489's "obMatJos2" cookie and the
// security-feature bits (§9.2), so RFC 8489 clients know PASSWORD-ALGORITHMS
// is offered; older clients treat it as opaque.
//
// Layout (37 characters):
//   "obMatJos2"   nonce cookie (RFC 8489 §9.2)
//   4 chars       standard base64 of the 24-bit security feature set. Bit 0 is
//                 the least significant bit (verified erratum 6290; matches the
//                 §B.1 test vector), so "Password algorithms" alone is "AAAB"
//                 and no features is "AAAA".
//   8 chars       lowercase hex of the 32-bit unix timestamp of minting
//   16 chars      base64url (no padding) of the first 12 bytes of
//                 HMAC-SHA256(key, ts[4, big-endian] || features[3] ||
//                 client ip[4 or 16] || family[1])
// The MAC also covers the feature bits so a middlebox cannot bid them down.
//
// Key rotation: the service holds a list of keys. The first mints and
// verifies; the others only recognise nonces they minted, which are answered
// as stale (438 with a fresh nonce under the first key) rather than invalid
// (401), so rotating the fleet's key costs a client one round trip, not a
// failed call.
#pragma once

#include <anyturn/stun/endpoint.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace anyturn::auth {

enum class nonce_status { valid, stale, invalid };

// `n` bytes from the OpenSSL CSPRNG (RAND_bytes), for a per-process nonce key
// when config has none. Start-up only: throws std::runtime_error on failure.
std::vector<std::uint8_t> random_key(std::size_t n = 32);

// RFC 8489 security feature bits (bit 0 = least significant, erratum 6290).
inline constexpr std::uint32_t feature_password_algorithms = 1u << 0;
inline constexpr std::uint32_t feature_username_anonymity = 1u << 1;

class nonce_service {
 public:
  static constexpr std::size_t nonce_size = 9 + 4 + 8 + 16;  // cookie, features, ts, mac
  // Default allowance for nonces dated in the future: the clocks of a fleet's
  // nodes differ, and a nonce minted by a node ahead of this one is good.
  static constexpr std::int64_t default_max_future_skew = 60;

  // keys[0] mints; every key verifies (the others answer stale). Throws
  // std::invalid_argument when there is no key, a key is empty,
  // lifetime_seconds <= 0 or max_future_skew < 0.
  nonce_service(std::vector<std::vector<std::uint8_t>> keys, std::int64_t lifetime_seconds,
                bool offer_password_algorithms,
                std::int64_t max_future_skew = default_max_future_skew);
  // One key.
  nonce_service(std::vector<std::uint8_t> key, std::int64_t lifetime_seconds,
                bool offer_password_algorithms);

  // Writes a nonce for `client` at `now` into `out` and returns a view of it.
  // The timestamp field holds `now` modulo 2^32.
  std::string_view mint(const stun::endpoint& client, std::int64_t now,
                        std::array<char, nonce_size>& out) const;
  // valid; stale (well-formed, MAC good under the current key but older than
  // the lifetime, or MAC good under a previous key: answer 438 with a fresh
  // nonce); or invalid (forged, another client's, dated further ahead than
  // the skew allowance, or garbage: answer 401).
  [[nodiscard]] nonce_status verify(std::string_view nonce, const stun::endpoint& client,
                                    std::int64_t now) const;

  // The security feature bits a nonce of ours carries (0 when it is not
  // one). Meaningful only after verify() returned valid or stale: the MAC
  // covers the bits, so a middlebox cannot clear them to bid a client down.
  [[nodiscard]] static std::uint32_t features_of(std::string_view nonce) noexcept;

  [[nodiscard]] std::uint32_t feature_bits() const {
    return offer_password_algorithms_ ? feature_password_algorithms : 0u;
  }

 private:
  std::vector<std::vector<std::uint8_t>> keys_;
  std::int64_t lifetime_;
  std::int64_t max_future_skew_;
  bool offer_password_algorithms_;
};

}  // namespace anyturn::auth
