// anyturn::net — TLS for the stream transports (RFC 8656 §3.1, RFC 7443).
//
// Server contexts allow TLS 1.2 and 1.3 only and select the ALPN protocol
// "stun.turn" when a client offers it (a client that offers none, or others
// only, is served all the same). A context is built on the main thread at
// start-up and on SIGHUP, then shared read-only by the workers: each new
// handshake takes the context its worker holds at that moment, and an
// established connection keeps the one it started with.
//
// For development, a self-signed certificate can be generated (EC P-256,
// SHA-256, subjectAltName with the given IPs and DNS names).
//
// Start-up and reload code only: errors are reported as text, nothing throws.
#pragma once

#include <anyturn/stun/endpoint.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace boost::asio::ssl {
class context;
}

namespace anyturn::net {

using tls_context_ptr = std::shared_ptr<boost::asio::ssl::context>;

// RFC 7443: the ALPN protocol id of TURN (and STUN) over (D)TLS.
inline constexpr std::string_view alpn_stun_turn = "stun.turn";

// A server context with the PEM certificate chain (leaf first) and the PEM
// private key from these files; checks that they match. nullptr with a
// one-line reason in `error` when a file is missing, unreadable or wrong.
tls_context_ptr make_server_tls_context(const std::string& cert_chain_file,
                                        const std::string& key_file, std::string& error);

// The same from PEM text in memory (tests, generated certificates).
tls_context_ptr make_server_tls_context_from_pem(std::string_view cert_chain_pem,
                                                 std::string_view key_pem, std::string& error);

struct pem_credentials {
  std::string certificate;  // one PEM certificate
  std::string private_key;  // PKCS#8 PEM, unencrypted
};

// A self-signed certificate for development: a fresh EC P-256 key, valid
// from an hour ago for `valid_for`, subjectAltName = every address in `ips`
// (ports ignored) and every name in `dns_names`, extendedKeyUsage
// serverAuth. nullopt with a reason in `error` if OpenSSL fails.
std::optional<pem_credentials> make_self_signed(std::span<const stun::endpoint> ips,
                                                std::span<const std::string> dns_names,
                                                std::chrono::hours valid_for, std::string& error);

// True when the PEM certificate is valid now, stays valid for at least
// `min_remaining`, and names every address in `ips` and every name in
// `dns_names`. Otherwise false, with the first reason in `why`.
bool certificate_covers(std::string_view cert_pem, std::span<const stun::endpoint> ips,
                        std::span<const std::string> dns_names, std::chrono::seconds min_remaining,
                        std::string& why);

// The protocol ALPN selects among a client's offer (wire format: length-
// prefixed names): "stun.turn" when offered, else nothing (empty view).
std::string_view select_alpn(std::span<const unsigned char> client_offer);

}  // namespace anyturn::net
