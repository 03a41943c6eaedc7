// Stateless nonces with the RFC 8489 §9.2 nonce cookie. Layout in nonce.hpp.
#include <anyturn/auth/nonce.hpp>

#include "base64.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <limits>
#include <stdexcept>

namespace anyturn::auth {
namespace {

constexpr std::string_view cookie = "obMatJos2";
constexpr std::size_t features_offset = 9;
constexpr std::size_t features_chars = 4;
constexpr std::size_t ts_offset = features_offset + features_chars;
constexpr std::size_t ts_chars = 8;
constexpr std::size_t mac_offset = ts_offset + ts_chars;
constexpr std::size_t mac_bytes = 12;
constexpr std::size_t mac_chars = detail::base64_size(mac_bytes, /*pad=*/false);
static_assert(cookie.size() == features_offset);
static_assert(mac_offset + mac_chars == nonce_service::nonce_size);
static_assert(detail::base64_size(3, true) == features_chars);

constexpr char hex_digits[] = "0123456789abcdef";

// HMAC-SHA256(key, ts || features || ip || family), truncated and base64url
// encoded into `out` (mac_chars chars). False if OpenSSL fails.
bool compute_mac(const std::vector<std::uint8_t>& key, std::uint32_t ts, std::uint32_t features,
                 const stun::endpoint& client, char* out) noexcept {
  std::array<std::uint8_t, 4 + 3 + 16 + 1> msg{};
  std::size_t n = 0;
  msg[n++] = static_cast<std::uint8_t>(ts >> 24);
  msg[n++] = static_cast<std::uint8_t>(ts >> 16);
  msg[n++] = static_cast<std::uint8_t>(ts >> 8);
  msg[n++] = static_cast<std::uint8_t>(ts);
  msg[n++] = static_cast<std::uint8_t>(features >> 16);
  msg[n++] = static_cast<std::uint8_t>(features >> 8);
  msg[n++] = static_cast<std::uint8_t>(features);
  const std::size_t ip_len = client.ip_size();
  std::copy_n(client.ip.begin(), ip_len, msg.begin() + static_cast<std::ptrdiff_t>(n));
  n += ip_len;
  msg[n++] = static_cast<std::uint8_t>(client.family);

  std::array<std::uint8_t, EVP_MAX_MD_SIZE> mac{};
  unsigned mac_len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), msg.data(), n, mac.data(),
           &mac_len) == nullptr ||
      mac_len < mac_bytes) {
    return false;
  }
  detail::base64_encode(std::span<const std::uint8_t>(mac.data(), mac_bytes), out, /*url=*/true,
                        /*pad=*/false);
  return true;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // uppercase is rejected: mint writes lowercase, one spelling only
}

// The minting time closest to `now` whose low 32 bits are `ts` (survives 2106).
std::int64_t widen_timestamp(std::uint32_t ts, std::int64_t now) {
  constexpr std::int64_t span = std::int64_t{1} << 32;
  std::int64_t t = (now & ~(span - 1)) | static_cast<std::int64_t>(ts);
  if (t - now > span / 2) t -= span;
  if (now - t > span / 2) t += span;
  return t;
}

}  // namespace

std::vector<std::uint8_t> random_key(std::size_t n) {
  if (n == 0 || n > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    throw std::invalid_argument("auth: random_key size must be positive");
  }
  std::vector<std::uint8_t> key(n);
  if (RAND_bytes(key.data(), static_cast<int>(n)) != 1) {
    throw std::runtime_error("auth: RAND_bytes failed");
  }
  return key;
}

nonce_service::nonce_service(std::vector<std::vector<std::uint8_t>> keys,
                             std::int64_t lifetime_seconds, bool offer_password_algorithms,
                             std::int64_t max_future_skew)
    : keys_(std::move(keys)),
      lifetime_(lifetime_seconds),
      max_future_skew_(max_future_skew),
      offer_password_algorithms_(offer_password_algorithms) {
  if (keys_.empty()) throw std::invalid_argument("auth: at least one nonce key is needed");
  for (const auto& key : keys_) {
    if (key.empty()) throw std::invalid_argument("auth: nonce key must not be empty");
    if (key.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
      throw std::invalid_argument("auth: nonce key too long");
    }
  }
  if (lifetime_ <= 0) throw std::invalid_argument("auth: nonce lifetime must be positive");
  if (max_future_skew_ < 0) throw std::invalid_argument("auth: nonce skew must not be negative");
}

nonce_service::nonce_service(std::vector<std::uint8_t> key, std::int64_t lifetime_seconds,
                             bool offer_password_algorithms)
    : nonce_service(std::vector<std::vector<std::uint8_t>>{std::move(key)}, lifetime_seconds,
                    offer_password_algorithms) {}

std::string_view nonce_service::mint(const stun::endpoint& client, std::int64_t now,
                                     std::array<char, nonce_size>& out) const {
  char* p = out.data();
  std::copy(cookie.begin(), cookie.end(), p);

  const std::uint32_t features = feature_bits();
  const std::array<std::uint8_t, 3> feature_bytes{static_cast<std::uint8_t>(features >> 16),
                                                  static_cast<std::uint8_t>(features >> 8),
                                                  static_cast<std::uint8_t>(features)};
  detail::base64_encode(feature_bytes, p + features_offset, /*url=*/false, /*pad=*/true);

  const auto ts = static_cast<std::uint32_t>(now);
  for (std::size_t i = 0; i < ts_chars; ++i) {
    p[ts_offset + i] = hex_digits[(ts >> (28 - 4 * i)) & 0xf];
  }

  if (!compute_mac(keys_.front(), ts, features, client, p + mac_offset)) {
    // Cannot happen short of OpenSSL failing; verify() fails the same way, so
    // this nonce is simply never accepted.
    std::fill_n(p + mac_offset, mac_chars, 'A');
  }
  return {out.data(), out.size()};
}

std::uint32_t nonce_service::features_of(std::string_view nonce) noexcept {
  if (nonce.size() != nonce_size || nonce.substr(0, cookie.size()) != cookie) return 0;
  std::uint32_t features = 0;
  for (std::size_t i = 0; i < features_chars; ++i) {
    const int v = detail::base64_value(nonce[features_offset + i], /*url=*/false);
    if (v < 0) return 0;
    features = (features << 6) | static_cast<std::uint32_t>(v);
  }
  return features;
}

nonce_status nonce_service::verify(std::string_view nonce, const stun::endpoint& client,
                                   std::int64_t now) const {
  if (nonce.size() != nonce_size || nonce.substr(0, cookie.size()) != cookie) {
    return nonce_status::invalid;
  }

  std::uint32_t features = 0;
  for (std::size_t i = 0; i < features_chars; ++i) {
    const int v = detail::base64_value(nonce[features_offset + i], /*url=*/false);
    if (v < 0) return nonce_status::invalid;
    features = (features << 6) | static_cast<std::uint32_t>(v);
  }

  std::uint32_t ts = 0;
  for (std::size_t i = 0; i < ts_chars; ++i) {
    const int v = hex_value(nonce[ts_offset + i]);
    if (v < 0) return nonce_status::invalid;
    ts = (ts << 4) | static_cast<std::uint32_t>(v);
  }

  // The MAC is checked before the clock so that only our own nonces can be
  // called stale (438); anything forged is 401. Keys after the first are
  // tried only when the first fails: the common case costs one HMAC.
  std::size_t signer = keys_.size();
  for (std::size_t k = 0; k < keys_.size() && signer == keys_.size(); ++k) {
    std::array<char, mac_chars> expected{};
    if (compute_mac(keys_[k], ts, features, client, expected.data()) &&
        CRYPTO_memcmp(expected.data(), nonce.data() + mac_offset, mac_chars) == 0) {
      signer = k;
    }
  }
  if (signer == keys_.size()) return nonce_status::invalid;

  const std::int64_t minted = widen_timestamp(ts, now);
  if (minted - now > max_future_skew_) return nonce_status::invalid;
  if (signer != 0) return nonce_status::stale;  // a retired key: re-challenge under the current one
  if (now - minted > lifetime_) return nonce_status::stale;
  return nonce_status::valid;
}

}  // namespace anyturn::auth
