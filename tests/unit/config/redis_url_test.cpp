// src/config/redis_url.cpp: parse_redis_url (fleet.redis / --redis) and
// is_dns_name (fleet.alternate_domain, the URL's host).
#include <anyturn/config/redis_url.hpp>

#include <gtest/gtest.h>

#include <string>

namespace anyturn::config {
namespace {

TEST(RedisUrl, PlainHostPortAndDatabase) {
  auto u = parse_redis_url("redis://10.0.0.5:6379/2");
  ASSERT_TRUE(u);
  EXPECT_FALSE(u->tls);
  EXPECT_EQ(u->host, "10.0.0.5");
  EXPECT_EQ(u->port, 6379);
  EXPECT_EQ(u->db, 2u);
  EXPECT_TRUE(u->username.empty());
  EXPECT_TRUE(u->password.empty());

  u = parse_redis_url("redis://redis.fleet.internal:6380");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "redis.fleet.internal");
  EXPECT_EQ(u->port, 6380);
  EXPECT_EQ(u->db, 0u);
}

TEST(RedisUrl, TlsPasswordUserAndIpv6) {
  auto u = parse_redis_url("rediss://:s3%40cr%2Ft@[2001:db8::7]:6379/0");
  ASSERT_TRUE(u);
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->password, "s3@cr/t");  // percent-decoded
  EXPECT_TRUE(u->username.empty());
  EXPECT_EQ(u->host, "2001:db8::7");
  EXPECT_EQ(u->port, 6379);

  u = parse_redis_url("redis://anyturn:pw-for-acl@127.0.0.1:6379");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->username, "anyturn");
  EXPECT_EQ(u->password, "pw-for-acl");
}

// Each shape mistake is refused with a reason that never repeats the URL.
TEST(RedisUrl, EachMistakeHasAReasonWithoutThePassword) {
  const struct {
    const char* url;
    const char* reason;
  } cases[] = {
      {"http://h:1", "scheme"},
      {"redis:/h:1", "scheme"},
      {"redis://h", "HOST:PORT is required"},
      {"redis://h:", "port must be 1..65535"},
      {"redis://h:0", "port must be 1..65535"},
      {"redis://h:65536", "port must be 1..65535"},
      {"redis://:1", "the host is empty"},
      {"redis://bad_host:1", "neither an IP address nor a DNS name"},
      {"redis://2001:db8::1:6379", "[ADDR]:PORT"},
      {"redis://[10.0.0.1]:6379", "not an IPv6 address"},
      {"redis://[::1]6379", "[ADDR]:PORT"},
      {"redis://h:1/x", "database"},
      {"redis://h:1/", "database"},
      {"redis://secret-pw@h:1", "before '@'"},
      {"redis://:@h:1", "password after ':' is empty"},
      {"redis://:bad%zzpw@h:1", "%-escape"},
      {"redis://:bad%0apw@h:1", "%-escape or a control character"},
  };
  for (const auto& c : cases) {
    std::string why;
    EXPECT_FALSE(parse_redis_url(c.url, &why)) << c.url;
    EXPECT_NE(why.find(c.reason), std::string::npos) << c.url << ": " << why;
    EXPECT_EQ(why.find("secret-pw"), std::string::npos) << why;
    EXPECT_EQ(why.find("zz"), std::string::npos) << why;
    EXPECT_EQ(why.find("bad_host"), std::string::npos) << why;
  }
  EXPECT_FALSE(parse_redis_url("redis://h:1/x"));  // `why` is optional
}

TEST(DnsName, LabelsLengthsAndIpLiterals) {
  EXPECT_TRUE(is_dns_name("turn1.example.com"));
  EXPECT_TRUE(is_dns_name("node-3.eu-west.turn.example"));
  EXPECT_TRUE(is_dns_name("localhost"));
  EXPECT_TRUE(is_dns_name("a1.b2.c3.x9"));
  EXPECT_TRUE(is_dns_name(std::string(63, 'a') + ".example"));
  EXPECT_FALSE(is_dns_name(std::string(64, 'a') + ".example"));
  std::string name;
  while (name.size() < 250) name += "abcdefghi.";
  name += "com";
  ASSERT_EQ(name.size(), 253u);
  EXPECT_TRUE(is_dns_name(name));
  EXPECT_FALSE(is_dns_name("x" + name));  // 254 bytes
  EXPECT_FALSE(is_dns_name(""));
  EXPECT_FALSE(is_dns_name("turn.example.com."));  // no trailing dot
  EXPECT_FALSE(is_dns_name(".example.com"));
  EXPECT_FALSE(is_dns_name("a..b"));
  EXPECT_FALSE(is_dns_name("-turn.example.com"));
  EXPECT_FALSE(is_dns_name("turn-.example.com"));
  EXPECT_FALSE(is_dns_name("turn_1.example.com"));
  EXPECT_FALSE(is_dns_name("*.example.com"));
  EXPECT_FALSE(is_dns_name("turn.example.com:443"));
  EXPECT_FALSE(is_dns_name("192.0.2.1"));  // an IP address is not a name
  EXPECT_FALSE(is_dns_name("2001:db8::1"));
}

}  // namespace
}  // namespace anyturn::config
