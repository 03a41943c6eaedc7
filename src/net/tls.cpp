#include <anyturn/net/tls.hpp>

#include "tls_common.hpp"

#include <boost/asio/ssl/context.hpp>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace anyturn::net {

namespace ssl = boost::asio::ssl;
using detail::on_alpn;
using detail::openssl_error;

namespace {

struct free_bio {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct free_x509 {
  void operator()(X509* x) const { X509_free(x); }
};
struct free_pkey {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct free_ext {
  void operator()(X509_EXTENSION* e) const { X509_EXTENSION_free(e); }
};
struct free_bn {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
using bio_ptr = std::unique_ptr<BIO, free_bio>;
using x509_ptr = std::unique_ptr<X509, free_x509>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, free_pkey>;
using ext_ptr = std::unique_ptr<X509_EXTENSION, free_ext>;
using bn_ptr = std::unique_ptr<BIGNUM, free_bn>;

// TLS 1.2+ only, forward-secret AEAD suites for 1.2, ALPN, no renegotiation.
tls_context_ptr base_context(std::string& error) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(native, TLS1_3_VERSION) != 1) {
    error = "cannot restrict TLS to 1.2-1.3: " + openssl_error("unknown error");
    return nullptr;
  }
  SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                  SSL_OP_NO_COMPRESSION);
  if (SSL_CTX_set_cipher_list(native, "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20") != 1) {
    error = "cannot set the TLS 1.2 cipher list: " + openssl_error("unknown error");
    return nullptr;
  }
  // No SSL_MODE_RELEASE_BUFFERS: it would free and re-allocate the record
  // buffers around every record, a malloc per relayed packet.
  SSL_CTX_set_alpn_select_cb(native, on_alpn, nullptr);
  return ctx;
}

bool read_file(const std::string& path, std::string& out, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = path + ": cannot open: " + std::strerror(errno);
    return false;
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    error = path + ": cannot read: " + std::strerror(errno);
    return false;
  }
  out = text.str();
  return true;
}

bool add_extension(X509* cert, int nid, const std::string& value) {
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, cert, cert, nullptr, nullptr, 0);
  ext_ptr ext(X509V3_EXT_conf_nid(nullptr, &v3, nid, value.c_str()));
  return ext && X509_add_ext(cert, ext.get(), -1) == 1;
}

std::string bio_text(BIO* b) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(b, &data);
  return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}

}  // namespace

namespace detail {

std::string openssl_error(std::string_view fallback) {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return std::string(fallback);
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

int on_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
            unsigned int inlen, void*) {
  const std::string_view chosen = select_alpn({in, inlen});
  if (chosen.empty()) return SSL_TLSEXT_ERR_NOACK;  // no ALPN: still served
  *out = reinterpret_cast<const unsigned char*>(chosen.data());
  *outlen = static_cast<unsigned char>(chosen.size());
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace detail

std::string_view select_alpn(std::span<const unsigned char> offer) {
  // Wire format (RFC 7301 §3.1): a sequence of length-prefixed names.
  std::size_t i = 0;
  while (i < offer.size()) {
    const std::size_t len = offer[i];
    if (len == 0 || i + 1 + len > offer.size()) break;  // malformed: choose nothing
    const std::string_view name(reinterpret_cast<const char*>(offer.data() + i + 1), len);
    if (name == alpn_stun_turn) return alpn_stun_turn;
    i += 1 + len;
  }
  return {};
}

tls_context_ptr make_server_tls_context_from_pem(std::string_view cert_chain_pem,
                                                 std::string_view key_pem, std::string& error) {
  ERR_clear_error();
  auto ctx = base_context(error);
  if (!ctx) return nullptr;
  boost::system::error_code ec;
  ctx->use_certificate_chain(boost::asio::buffer(cert_chain_pem.data(), cert_chain_pem.size()), ec);
  if (ec) {
    error = "certificate: " + openssl_error(ec.message());
    return nullptr;
  }
  ctx->use_private_key(boost::asio::buffer(key_pem.data(), key_pem.size()), ssl::context::pem, ec);
  if (ec) {
    // Asio took the error off the queue into ec (an OpenSSL error code).
    const bool mismatch = ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_VALUES_MISMATCH;
    error = mismatch ? "the private key does not match the certificate"
                     : "private key: " + openssl_error(ec.message());
    ERR_clear_error();
    return nullptr;
  }
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
    error = "the private key does not match the certificate: " + openssl_error("mismatch");
    return nullptr;
  }
  return ctx;
}

tls_context_ptr make_server_tls_context(const std::string& cert_chain_file,
                                        const std::string& key_file, std::string& error) {
  std::string cert;
  std::string key;
  if (!read_file(cert_chain_file, cert, error) || !read_file(key_file, key, error)) return nullptr;
  std::string why;
  auto ctx = make_server_tls_context_from_pem(cert, key, why);
  if (!ctx) error = cert_chain_file + " / " + key_file + ": " + why;
  // The key stays in memory only inside the context.
  OPENSSL_cleanse(key.data(), key.size());
  return ctx;
}

std::optional<pem_credentials> make_self_signed(std::span<const stun::endpoint> ips,
                                                std::span<const std::string> dns_names,
                                                std::chrono::hours valid_for, std::string& error) {
  ERR_clear_error();
  pkey_ptr key(EVP_EC_gen("P-256"));
  x509_ptr cert(X509_new());
  if (!key || !cert) {
    error = "cannot create a key: " + openssl_error("EVP_EC_gen failed");
    return std::nullopt;
  }
  unsigned char serial_bytes[16];
  if (RAND_bytes(serial_bytes, sizeof serial_bytes) != 1) {
    error = "cannot draw a serial number: " + openssl_error("RAND_bytes failed");
    return std::nullopt;
  }
  serial_bytes[0] &= 0x7F;  // positive
  bn_ptr serial(BN_bin2bn(serial_bytes, sizeof serial_bytes, nullptr));
  X509_NAME* name = X509_get_subject_name(cert.get());
  std::string san;
  for (const auto& ip : ips) san += (san.empty() ? "IP:" : ",IP:") + ip.ip_string();
  for (const auto& dns : dns_names) san += (san.empty() ? "DNS:" : ",DNS:") + dns;
  const long seconds = static_cast<long>(std::chrono::duration_cast<std::chrono::seconds>(valid_for).count());
  const bool ok =
      serial && X509_set_version(cert.get(), X509_VERSION_3) == 1 &&
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) != nullptr &&
      X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) != nullptr &&
      X509_gmtime_adj(X509_getm_notAfter(cert.get()), seconds) != nullptr &&
      X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                 reinterpret_cast<const unsigned char*>("anyturn"), -1, -1, 0) == 1 &&
      X509_NAME_add_entry_by_txt(
          name, "CN", MBSTRING_ASC,
          reinterpret_cast<const unsigned char*>("anyturn development certificate"), -1, -1, 0) == 1 &&
      X509_set_issuer_name(cert.get(), name) == 1 && X509_set_pubkey(cert.get(), key.get()) == 1 &&
      add_extension(cert.get(), NID_basic_constraints, "critical,CA:FALSE") &&
      add_extension(cert.get(), NID_key_usage, "critical,digitalSignature") &&
      add_extension(cert.get(), NID_ext_key_usage, "serverAuth") &&
      add_extension(cert.get(), NID_subject_key_identifier, "hash") &&
      (san.empty() || add_extension(cert.get(), NID_subject_alt_name, san)) &&
      X509_sign(cert.get(), key.get(), EVP_sha256()) > 0;
  if (!ok) {
    error = "cannot build the certificate: " + openssl_error("X509 failed");
    return std::nullopt;
  }
  bio_ptr cert_bio(BIO_new(BIO_s_mem()));
  bio_ptr key_bio(BIO_new(BIO_s_mem()));
  if (!cert_bio || !key_bio || PEM_write_bio_X509(cert_bio.get(), cert.get()) != 1 ||
      PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    error = "cannot write PEM: " + openssl_error("PEM_write failed");
    return std::nullopt;
  }
  pem_credentials out;
  out.certificate = bio_text(cert_bio.get());
  out.private_key = bio_text(key_bio.get());
  return out;
}

bool certificate_covers(std::string_view cert_pem, std::span<const stun::endpoint> ips,
                        std::span<const std::string> dns_names, std::chrono::seconds min_remaining,
                        std::string& why) {
  ERR_clear_error();
  bio_ptr bio(BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())));
  x509_ptr cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!cert) {
    why = "not a PEM certificate: " + openssl_error("unreadable");
    return false;
  }
  if (X509_cmp_current_time(X509_get0_notBefore(cert.get())) >= 0) {
    why = "not valid yet";
    return false;
  }
  const time_t until = time(nullptr) + static_cast<time_t>(min_remaining.count());
  if (X509_cmp_time(X509_get0_notAfter(cert.get()), const_cast<time_t*>(&until)) <= 0) {
    why = "expires within " + std::to_string(min_remaining.count() / 86400) + " days";
    return false;
  }
  for (const auto& ip : ips) {
    if (X509_check_ip(cert.get(), ip.ip.data(), ip.ip_size(), 0) != 1) {
      why = "does not name " + ip.ip_string();
      return false;
    }
  }
  for (const auto& dns : dns_names) {
    if (X509_check_host(cert.get(), dns.data(), dns.size(), 0, nullptr) != 1) {
      why = "does not name " + dns;
      return false;
    }
  }
  return true;
}

}  // namespace anyturn::net
