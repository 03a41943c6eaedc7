// What the TLS (tls.cpp) and DTLS (dtls_server.cpp) contexts share:
// ALPN selection and OpenSSL's error text. Private to src/net/.
#pragma once

#include <openssl/ssl.h>

#include <string>
#include <string_view>

namespace anyturn::net::detail {

// SSL_CTX_set_alpn_select_cb's callback: "stun.turn" when the client offers
// it (select_alpn), else no ALPN (the handshake goes on without it).
int on_alpn(SSL* ssl, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
            unsigned int inlen, void* arg);

// The newest OpenSSL error as text (and the queue cleared), or `fallback`.
std::string openssl_error(std::string_view fallback);

}  // namespace anyturn::net::detail
