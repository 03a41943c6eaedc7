// parse_url (src/probe/url.cpp): iceServers URLs with their defaults,
// ports, IPv6 brackets and transport rules, and what is refused; the phase
// names; REST credentials.
#include <anyturn/auth/credentials.hpp>
#include <anyturn/probe/probe.hpp>

#include <gtest/gtest.h>

namespace anyturn::probe {
namespace {

target parsed(std::string_view url) {
  std::string error;
  const auto t = parse_url(url, error);
  EXPECT_TRUE(t.has_value()) << url << ": " << error;
  return t.value_or(target{});
}

std::string refused(std::string_view url) {
  std::string error;
  const auto t = parse_url(url, error);
  EXPECT_FALSE(t.has_value()) << url;
  EXPECT_FALSE(error.empty()) << url;
  return error;
}

TEST(parse_url, turn_defaults_to_udp_on_3478) {
  const auto t = parsed("turn:turn.example.com");
  EXPECT_EQ(t.kind, scheme::turn);
  EXPECT_EQ(t.host, "turn.example.com");
  EXPECT_EQ(t.port, 3478);
  EXPECT_EQ(t.proto, transport::udp);
  EXPECT_EQ(t.url, "turn:turn.example.com");
}

TEST(parse_url, turns_defaults_to_tcp_on_5349) {
  const auto t = parsed("turns:turn.example.com");
  EXPECT_EQ(t.kind, scheme::turns);
  EXPECT_EQ(t.port, 5349);
  EXPECT_EQ(t.proto, transport::tcp);
  EXPECT_EQ(parsed("turns:turn.example.com:443?transport=tcp").port, 443);
}

TEST(parse_url, stun_defaults_to_udp_on_3478) {
  const auto t = parsed("stun:127.0.0.1");
  EXPECT_EQ(t.kind, scheme::stun);
  EXPECT_EQ(t.port, 3478);
  EXPECT_EQ(t.proto, transport::udp);
}

TEST(parse_url, ports_and_transports) {
  const auto t = parsed("turn:10.0.0.1:3479?transport=tcp");
  EXPECT_EQ(t.host, "10.0.0.1");
  EXPECT_EQ(t.port, 3479);
  EXPECT_EQ(t.proto, transport::tcp);
  EXPECT_EQ(parsed("turn:h:1?transport=udp").proto, transport::udp);
  EXPECT_EQ(parsed("turn:h:65535").port, 65535);
  EXPECT_EQ(parsed("TURN:h?transport=TCP").proto, transport::tcp);  // case-insensitive
}

TEST(parse_url, ipv6_literals_in_brackets) {
  const auto t = parsed("turn:[::1]:3478?transport=tcp");
  EXPECT_EQ(t.host, "::1");
  EXPECT_EQ(t.port, 3478);
  const auto d = parsed("turns:[2001:db8::5]");
  EXPECT_EQ(d.host, "2001:db8::5");
  EXPECT_EQ(d.port, 5349);
  EXPECT_NE(refused("turn:::1:3478").find("brackets"), std::string::npos);
  EXPECT_NE(refused("turn:[::1").find("']'"), std::string::npos);
  refused("turn:[]:3478");
  refused("turn:[::1]x");
  refused("turn:[example.com]:3478");
}

TEST(parse_url, transport_rules) {
  EXPECT_EQ(refused("turns:h?transport=udp"), "turns: only transport=tcp");
  EXPECT_NE(refused("turn:h?transport=sctp").find("sctp"), std::string::npos);
  refused("turn:h?transport=udp&x=1");
  refused("turn:h?foo=bar");
}

TEST(parse_url, errors) {
  EXPECT_NE(refused("http://example.com").find("scheme"), std::string::npos);
  refused("example.com");
  refused("turn:");
  refused("turn::3478");
  EXPECT_NE(refused("turn:h:0").find("port"), std::string::npos);
  refused("turn:h:65536");
  refused("turn:h:abc");
  refused("turn:h:");
  refused("turn://h:3478");
  EXPECT_NE(refused("turn:user@h").find("--user"), std::string::npos);
  refused("turn:bad host");
}

TEST(phase_name, every_phase_has_its_name) {
  EXPECT_EQ(phase_name(phase::resolve), "resolve");
  EXPECT_EQ(phase_name(phase::connect), "connect");
  EXPECT_EQ(phase_name(phase::tls), "tls");
  EXPECT_EQ(phase_name(phase::binding), "binding");
  EXPECT_EQ(phase_name(phase::allocate), "allocate");
  EXPECT_EQ(phase_name(phase::permission), "permission");
  EXPECT_EQ(phase_name(phase::channel), "channel");
  EXPECT_EQ(phase_name(phase::relay), "relay");
  EXPECT_EQ(phase_name(phase::refresh), "refresh");
  EXPECT_EQ(phase_name(phase::deallocate), "deallocate");
}

TEST(rest_credentials, username_is_expiry_and_user_and_password_the_mac) {
  const auto c = rest_credentials("s3cret", "probe", 600, 1'700'000'000);
  EXPECT_EQ(c.username, "1700000600:probe");
  EXPECT_EQ(c.password, auth::rest_password("s3cret", "1700000600:probe"));
  EXPECT_EQ(c.password.size(), auth::rest_password_size);
  // A fixed vector: base64(HMAC-SHA1("secret", "1700000600:probe")), computed
  // with `printf %s 1700000600:probe | openssl dgst -sha1 -hmac secret -binary | base64`.
  EXPECT_EQ(rest_credentials("secret", "probe", 600, 1'700'000'000).password, "rEVClWCq4zUVxuC2DsvVh2srr2Q=");
  EXPECT_EQ(rest_credentials("s3cret", "", 60, 100).username, "160");
}

}  // namespace
}  // namespace anyturn::probe
