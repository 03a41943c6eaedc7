#include "hmac.hpp"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

namespace anyturn::stun::detail {
namespace {

// One keyed-per-call HMAC context for one digest, owned by one thread.
class mac_context {
 public:
  explicit mac_context(const char* digest_name) {
    EVP_MAC* mac = EVP_MAC_fetch(nullptr, OSSL_MAC_NAME_HMAC, nullptr);
    if (mac == nullptr) return;
    ctx_ = EVP_MAC_CTX_new(mac);  // holds its own reference to `mac`
    EVP_MAC_free(mac);
    if (ctx_ == nullptr) return;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>(digest_name), 0),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_MAC_CTX_set_params(ctx_, params) != 1) {
      EVP_MAC_CTX_free(ctx_);
      ctx_ = nullptr;
    }
  }
  ~mac_context() { EVP_MAC_CTX_free(ctx_); }
  mac_context(const mac_context&) = delete;
  mac_context& operator=(const mac_context&) = delete;

  EVP_MAC_CTX* get() const { return ctx_; }

 private:
  EVP_MAC_CTX* ctx_ = nullptr;
};

EVP_MAC_CTX* context_for(hmac_digest digest) {
  if (digest == hmac_digest::sha1) {
    thread_local mac_context sha1{"SHA1"};
    return sha1.get();
  }
  thread_local mac_context sha256{"SHA256"};
  return sha256.get();
}

}  // namespace

std::optional<std::size_t> hmac(hmac_digest digest, std::span<const std::byte> key,
                                std::initializer_list<std::span<const std::byte>> parts,
                                std::array<std::byte, sha256_size>& out) {
  EVP_MAC_CTX* ctx = context_for(digest);
  if (ctx == nullptr) return std::nullopt;
  // A null key would mean "keep the previous key"; an empty key must still
  // be an explicit (empty) key.
  static constexpr unsigned char empty_key[1] = {0};
  const auto* key_data =
      key.empty() ? empty_key : reinterpret_cast<const unsigned char*>(key.data());
  if (EVP_MAC_init(ctx, key_data, key.size(), nullptr) != 1) return std::nullopt;
  for (auto part : parts) {
    if (part.empty()) continue;
    if (EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(part.data()), part.size()) != 1) {
      return std::nullopt;
    }
  }
  std::size_t len = 0;
  if (EVP_MAC_final(ctx, reinterpret_cast<unsigned char*>(out.data()), &len, out.size()) != 1) {
    return std::nullopt;
  }
  return len;
}

}  // namespace anyturn::stun::detail
