// anyturn::net (internal) — the stateless cookies of the DTLS listeners
// (RFC 6347 §4.2.1, HelloVerifyRequest).
//
// A cookie is HMAC-SHA256(secret, family | address | port) of the client,
// truncated to 16 bytes: the server answers a ClientHello without a valid
// cookie with one and remembers nothing, so a spoofed source gets one small
// datagram back (no amplification) and no state is kept before the client
// proves that it receives at its address. The secret is drawn at random and
// rotated; a cookie verifies under the current and the previous secret, so
// one lives for between one and two rotation periods.
//
// One jar per worker (SO_REUSEPORT keeps a client on one worker). Worker
// thread only; the control path (handshakes), so it may allocate.
#pragma once

#include <anyturn/stun/endpoint.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace anyturn::net::detail {

class dtls_cookie_jar {
 public:
  static constexpr std::size_t cookie_size = 16;
  static constexpr std::int64_t default_rotation_ms = 30'000;

  // Draws a first secret.
  explicit dtls_cookie_jar(std::int64_t rotation_ms = default_rotation_ms);

  // A new random secret; the current one becomes the previous one.
  void rotate();
  // Rotates when `rotation_ms` passed since the last rotation (the first
  // call only starts the clock).
  void maybe_rotate(std::int64_t mono_ms);

  // The cookie of `client` under the current secret: cookie_size bytes
  // written to `out` (at least that long). Returns the size, 0 if `out` is short.
  std::size_t make(const stun::endpoint& client, std::span<unsigned char> out) const;
  // True when `cookie` is the cookie of `client` under the current or the
  // previous secret (compared in constant time).
  [[nodiscard]] bool verify(const stun::endpoint& client, std::span<const unsigned char> cookie) const;

 private:
  using secret = std::array<unsigned char, 32>;
  // False when HMAC failed (then nothing verifies).
  static bool compute(const secret& key, const stun::endpoint& client,
                      std::array<unsigned char, 32>& mac);

  secret current_{};
  secret previous_{};
  bool has_previous_ = false;
  std::int64_t rotation_ms_;
  std::int64_t rotated_ms_ = -1;
};

}  // namespace anyturn::net::detail
