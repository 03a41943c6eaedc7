// Where the TLS certificate comes from, and SIGHUP reloading it.
#include <anyturn/app/app.hpp>
#include <anyturn/app/tls_setup.hpp>

#include <anyturn/net/address.hpp>
#include <anyturn/stun/message.hpp>

#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "app_config.hpp"
#include "temp_dir.hpp"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

namespace anyturn::app {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

using test::ep;

using ::anyturn::test::temp_dir;

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// test_config() with a TLS listener, its own relay ports and no peer
// allowances (these tests relay nothing).
config::server_config tls_config() {
  config::server_config cfg = test::test_config();
  cfg.tls.listen = {ep("127.0.0.1:0")};
  cfg.relay.port_min = 62100;
  cfg.relay.port_max = 62199;
  cfg.peers.allow.clear();
  return cfg;
}

TEST(tls_setup, development_certificate_is_created_once_and_reused) {
  temp_dir dir;
  const fs::path state = dir.path() / "state";
  config::server_config cfg = tls_config();
  std::string error;
  tls_material first = load_tls_material(cfg, state, error);
  ASSERT_TRUE(first.context) << error;
  EXPECT_TRUE(first.development);
  EXPECT_TRUE(first.generated);
  const std::string cert = slurp(first.cert_path);
  EXPECT_NE(cert.find("BEGIN CERTIFICATE"), std::string::npos);
  struct stat st {};
  ASSERT_EQ(::stat(first.key_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u) << "the private key is private";

  const auto names = development_certificate_names(cfg);
  std::string why;
  EXPECT_TRUE(net::certificate_covers(cert, names.ips, names.dns, 24h, why)) << why;

  tls_material second = load_tls_material(cfg, state, error);
  ASSERT_TRUE(second.context) << error;
  EXPECT_FALSE(second.generated) << "reused";
  EXPECT_EQ(slurp(second.cert_path), cert);

  // A new address to serve: the old certificate does not name it.
  cfg.relay.ips = {ep("192.0.2.77")};
  tls_material third = load_tls_material(cfg, state, error);
  ASSERT_TRUE(third.context) << error;
  EXPECT_TRUE(third.generated);
  EXPECT_NE(third.note.find("192.0.2.77"), std::string::npos) << third.note;
}

TEST(tls_setup, development_certificate_names_the_dtls_listeners) {
  config::server_config cfg = test::test_config();
  cfg.dtls.listen = {ep("192.0.2.55:5349")};
  const auto names = development_certificate_names(cfg);
  EXPECT_NE(std::find(names.ips.begin(), names.ips.end(), ep("192.0.2.55:0")), names.ips.end())
      << "a DTLS client checks the same certificate";
}

TEST(tls_setup, configured_files_are_used_and_errors_reported) {
  temp_dir dir;
  std::string error;
  auto pem = net::make_self_signed(std::vector{ep("127.0.0.1")}, {}, 24h, error);
  ASSERT_TRUE(pem) << error;
  std::ofstream(dir.path() / "c.pem") << pem->certificate;
  std::ofstream(dir.path() / "k.pem") << pem->private_key;
  config::server_config cfg = tls_config();
  cfg.tls.cert = (dir.path() / "c.pem").string();
  cfg.tls.key = (dir.path() / "k.pem").string();
  tls_material m = load_tls_material(cfg, dir.path() / "unused", error);
  ASSERT_TRUE(m.context) << error;
  EXPECT_FALSE(m.development);
  EXPECT_FALSE(fs::exists(dir.path() / "unused")) << "no state written for configured files";

  cfg.tls.key = (dir.path() / "missing.pem").string();
  m = load_tls_material(cfg, dir.path(), error);
  EXPECT_FALSE(m.context);
  EXPECT_NE(error.find("missing.pem"), std::string::npos) << error;
}

// DER of the certificate a TLS server at `server` presents, or empty.
// One STUN Binding over `ssl`; true when the success answer came back. The
// server answers only once its side of the handshake is done too.
bool binding_round_trip(SSL* ssl) {
  std::array<std::byte, 20> binding{};
  stun::transaction_id tid;
  tid.bytes[0] = std::byte{9};
  stun::message_builder mb(binding, static_cast<std::uint16_t>(stun::method::binding),
                           stun::message_class::request, tid);
  auto req = mb.finish();
  if (!req || SSL_write(ssl, req->data(), static_cast<int>(req->size())) != static_cast<int>(req->size()))
    return false;
  std::array<std::byte, 512> in{};
  const int n = SSL_read(ssl, in.data(), static_cast<int>(in.size()));
  if (n <= 0) return false;
  auto reply = stun::parse_message(stun::bytes_view(in.data(), static_cast<std::size_t>(n)));
  return reply.has_value() && reply->cls() == stun::message_class::success_response;
}

// The DER certificate `server` presents, after a Binding round trip (so the
// server has counted the handshake before the connection closes).
std::string served_certificate(const stun::endpoint& server, int* fd_out = nullptr, SSL** ssl_out = nullptr) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const net::socket_address sa = net::to_sockaddr(server);
  if (::connect(fd, sa.data(), sa.size) != 0) {
    ::close(fd);
    return {};
  }
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL* ssl = SSL_new(ctx);
  SSL_CTX_free(ctx);  // the SSL keeps its reference
  SSL_set_fd(ssl, fd);
  std::string der;
  if (SSL_connect(ssl) == 1) {
    if (X509* cert = SSL_get1_peer_certificate(ssl)) {
      unsigned char* out = nullptr;
      const int n = i2d_X509(cert, &out);
      der.assign(reinterpret_cast<char*>(out), static_cast<std::size_t>(n));
      OPENSSL_free(out);
      X509_free(cert);
    }
    if (!binding_round_trip(ssl)) der.clear();
  }
  if (ssl_out != nullptr && fd_out != nullptr) {
    *ssl_out = ssl;
    *fd_out = fd;
  } else {
    SSL_free(ssl);
    ::close(fd);
  }
  return der;
}

TEST(tls_setup, sighup_reloads_the_certificate_for_new_handshakes) {
  temp_dir dir;
  std::string error;
  auto a = net::make_self_signed(std::vector{ep("127.0.0.1")}, {}, 24h, error);
  auto b = net::make_self_signed(std::vector{ep("127.0.0.1")}, {}, 24h, error);
  ASSERT_TRUE(a && b) << error;
  const fs::path cert = dir.path() / "cert.pem";
  const fs::path key = dir.path() / "key.pem";
  std::ofstream(cert) << a->certificate;
  std::ofstream(key) << a->private_key;

  config::server_config cfg = tls_config();
  cfg.tls.cert = cert.string();
  cfg.tls.key = key.string();
  server_app app(cfg);
  ASSERT_TRUE(app.start(error)) << error;
  int rc = -1;
  std::thread waiter([&] { rc = app.wait(); });
  const stun::endpoint tls = app.tls_listeners().at(0);

  int old_fd = -1;
  SSL* old_ssl = nullptr;
  const std::string served_a = served_certificate(tls, &old_fd, &old_ssl);
  ASSERT_FALSE(served_a.empty());

  // A broken file on reload: the old certificate stays.
  std::ofstream(cert) << "not a certificate";
  std::raise(SIGHUP);
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(served_certificate(tls), served_a);

  std::ofstream(cert) << b->certificate;
  std::ofstream(key) << b->private_key;
  std::raise(SIGHUP);
  std::string served_b;
  for (int i = 0; i < 100 && (served_b.empty() || served_b == served_a); ++i) {
    std::this_thread::sleep_for(20ms);
    served_b = served_certificate(tls);
  }
  EXPECT_FALSE(served_b.empty());
  EXPECT_NE(served_b, served_a) << "SIGHUP did not reload the certificate";

  // The connection made before the reload still works.
  EXPECT_TRUE(binding_round_trip(old_ssl));
  SSL_free(old_ssl);
  ::close(old_fd);

  app.request_stop();
  waiter.join();
  EXPECT_EQ(rc, 0);
  EXPECT_GE(app.stream_totals().tls_handshakes, 3u);
}

}  // namespace
}  // namespace anyturn::app
