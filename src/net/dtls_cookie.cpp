#include "dtls_cookie.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cstring>
#include <stdexcept>

namespace anyturn::net::detail {

dtls_cookie_jar::dtls_cookie_jar(std::int64_t rotation_ms) : rotation_ms_(rotation_ms > 0 ? rotation_ms : default_rotation_ms) {
  if (RAND_bytes(current_.data(), static_cast<int>(current_.size())) != 1) {
    throw std::runtime_error("DTLS cookie secret: RAND_bytes failed");
  }
}

void dtls_cookie_jar::rotate() {
  secret next{};
  // Without fresh randomness keep the current secret (cookies stay valid)
  // rather than use a predictable one.
  if (RAND_bytes(next.data(), static_cast<int>(next.size())) != 1) return;
  previous_ = current_;
  has_previous_ = true;
  current_ = next;
  OPENSSL_cleanse(next.data(), next.size());
}

void dtls_cookie_jar::maybe_rotate(std::int64_t mono_ms) {
  if (rotated_ms_ < 0) {
    rotated_ms_ = mono_ms;
    return;
  }
  if (mono_ms - rotated_ms_ < rotation_ms_) return;
  rotated_ms_ = mono_ms;
  rotate();
}

bool dtls_cookie_jar::compute(const secret& key, const stun::endpoint& client,
                              std::array<unsigned char, 32>& mac) {
  // family, the address bytes of that family, port: one encoding per client.
  std::array<unsigned char, 1 + 16 + 2> input{};
  const std::size_t ip_size = client.ip_size();
  input[0] = static_cast<unsigned char>(client.family);
  std::memcpy(input.data() + 1, client.ip.data(), ip_size);
  input[1 + ip_size] = static_cast<unsigned char>(client.port >> 8);
  input[2 + ip_size] = static_cast<unsigned char>(client.port & 0xFF);
  unsigned int len = 0;
  return HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), input.data(), 3 + ip_size,
              mac.data(), &len) != nullptr &&
         len == mac.size();
}

std::size_t dtls_cookie_jar::make(const stun::endpoint& client, std::span<unsigned char> out) const {
  if (out.size() < cookie_size) return 0;
  std::array<unsigned char, 32> mac{};
  if (!compute(current_, client, mac)) return 0;
  std::memcpy(out.data(), mac.data(), cookie_size);
  return cookie_size;
}

bool dtls_cookie_jar::verify(const stun::endpoint& client, std::span<const unsigned char> cookie) const {
  if (cookie.size() != cookie_size) return false;
  std::array<unsigned char, 32> mac{};
  if (compute(current_, client, mac) && CRYPTO_memcmp(mac.data(), cookie.data(), cookie_size) == 0) {
    return true;
  }
  return has_previous_ && compute(previous_, client, mac) &&
         CRYPTO_memcmp(mac.data(), cookie.data(), cookie_size) == 0;
}

}  // namespace anyturn::net::detail
