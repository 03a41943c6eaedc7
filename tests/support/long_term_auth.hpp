// The long-term credential mechanism (RFC 8489 §9.2) as the stream and DTLS
// test clients use it: MD5 keys only, a request signed once a challenge gave
// the realm and nonce, and the retry after a 401 or 438.
#pragma once

#include "turn_client.hpp"

#include <anyturn/auth/credentials.hpp>
#include <anyturn/stun/message.hpp>

#include <optional>
#include <string>
#include <utility>

namespace anyturn::itest {

class long_term_auth {
 public:
  void set_credentials(credentials c) { credentials_ = std::move(c); }

  // USERNAME, REALM, NONCE and MESSAGE-INTEGRITY, once a challenge was
  // learned; nothing before (or without credentials).
  void sign(stun::message_builder& b) const {
    if (!can_sign()) return;
    b.add_string(stun::attr::username, credentials_->username);
    b.add_string(stun::attr::realm, realm_);
    b.add_string(stun::attr::nonce, nonce_);
    b.add_message_integrity(
        stun::bytes_view(reinterpret_cast<const std::byte*>(md5_key_->data()), md5_key_->size()));
  }

  // send(signed) sends a new request (a new transaction) and returns the
  // answer. A 401 to an unsigned request, or a 438, teaches the realm and
  // nonce; the request is sent again, signed (twice at most, §9.2.5).
  template <typename Send>
  std::optional<stun_message> request(Send&& send) {
    bool signed_request = can_sign();
    auto response = send(signed_request);
    for (int retry = 0; retry < 2 && response && credentials_ && response->is_error(); ++retry) {
      const int code = response->error_code();
      if (!((code == 401 && !signed_request) || code == 438)) break;
      auto realm = response->string(stun::attr::realm);
      auto nonce = response->string(stun::attr::nonce);
      if (!realm || !nonce) break;
      realm_ = *realm;
      nonce_ = *nonce;
      md5_key_ = auth::derive_md5_key(credentials_->username, realm_, credentials_->password);
      signed_request = true;
      response = send(true);
    }
    return response;
  }

 private:
  [[nodiscard]] bool can_sign() const { return credentials_ && md5_key_; }

  std::optional<credentials> credentials_;
  std::string realm_;
  std::string nonce_;
  std::optional<auth::md5_key> md5_key_;
};

}  // namespace anyturn::itest
