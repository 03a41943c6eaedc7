#include <anyturn/net/tls.hpp>

#include <boost/asio/ssl/context.hpp>
#include <gtest/gtest.h>

#include <array>
#include <filesystem>
#include <fstream>

namespace anyturn::net {
namespace {

using namespace std::chrono_literals;

stun::endpoint ip(const char* text) { return *stun::endpoint::parse(text, true); }

std::vector<unsigned char> wire(std::initializer_list<std::string_view> names) {
  std::vector<unsigned char> out;
  for (auto n : names) {
    out.push_back(static_cast<unsigned char>(n.size()));
    out.insert(out.end(), n.begin(), n.end());
  }
  return out;
}

TEST(tls, alpn_selects_stun_turn_only_when_offered) {
  EXPECT_EQ(select_alpn(wire({"h2", "stun.turn"})), "stun.turn");
  EXPECT_EQ(select_alpn(wire({"stun.turn"})), "stun.turn");
  EXPECT_EQ(select_alpn(wire({"h2", "http/1.1"})), "");
  EXPECT_EQ(select_alpn({}), "");
  // Malformed: a length running past the end selects nothing.
  std::vector<unsigned char> bad = wire({"stun.turn"});
  bad[0] = 40;
  EXPECT_EQ(select_alpn(bad), "");
  EXPECT_EQ(select_alpn(wire({"stun.tur"})), "") << "no prefix match";
}

TEST(tls, self_signed_names_what_it_was_asked_to) {
  const std::vector<stun::endpoint> ips{ip("127.0.0.1"), ip("::1"), ip("192.0.2.10")};
  const std::vector<std::string> dns{"localhost", "turn.test"};
  std::string error;
  auto pem = make_self_signed(ips, dns, 24h * 30, error);
  ASSERT_TRUE(pem) << error;
  EXPECT_NE(pem->certificate.find("BEGIN CERTIFICATE"), std::string::npos);
  EXPECT_NE(pem->private_key.find("BEGIN PRIVATE KEY"), std::string::npos);

  std::string why;
  EXPECT_TRUE(certificate_covers(pem->certificate, ips, dns, 24h * 7, why)) << why;
  const std::vector<stun::endpoint> other{ip("192.0.2.11")};
  EXPECT_FALSE(certificate_covers(pem->certificate, other, {}, 0s, why));
  EXPECT_NE(why.find("192.0.2.11"), std::string::npos) << why;
  const std::vector<std::string> other_name{"example.org"};
  EXPECT_FALSE(certificate_covers(pem->certificate, {}, other_name, 0s, why));
  EXPECT_FALSE(certificate_covers(pem->certificate, ips, dns, 24h * 60, why)) << "expires in 30 days";
  EXPECT_FALSE(certificate_covers("not a certificate", ips, dns, 0s, why));

  auto ctx = make_server_tls_context_from_pem(pem->certificate, pem->private_key, error);
  ASSERT_TRUE(ctx) << error;
  // TLS 1.2 and 1.3 only.
  EXPECT_EQ(SSL_CTX_get_min_proto_version(ctx->native_handle()), TLS1_2_VERSION);
}

TEST(tls, mismatched_key_and_missing_files_are_reported) {
  std::string error;
  auto a = make_self_signed(std::vector{ip("127.0.0.1")}, {}, 24h, error);
  auto b = make_self_signed(std::vector{ip("127.0.0.1")}, {}, 24h, error);
  ASSERT_TRUE(a && b) << error;
  EXPECT_FALSE(make_server_tls_context_from_pem(a->certificate, b->private_key, error));
  EXPECT_NE(error.find("does not match"), std::string::npos) << error;
  EXPECT_FALSE(make_server_tls_context_from_pem("garbage", a->private_key, error));
  EXPECT_NE(error.find("certificate"), std::string::npos) << error;

  EXPECT_FALSE(make_server_tls_context("/nonexistent/cert.pem", "/nonexistent/key.pem", error));
  EXPECT_NE(error.find("/nonexistent/cert.pem"), std::string::npos) << error;

  const auto dir = std::filesystem::temp_directory_path();
  const auto cert = (dir / "anyturn-tls-test-cert.pem").string();
  const auto key = (dir / "anyturn-tls-test-key.pem").string();
  std::ofstream(cert) << a->certificate;
  std::ofstream(key) << a->private_key;
  EXPECT_TRUE(make_server_tls_context(cert, key, error)) << error;
  std::filesystem::remove(cert);
  std::filesystem::remove(key);
}

}  // namespace
}  // namespace anyturn::net
