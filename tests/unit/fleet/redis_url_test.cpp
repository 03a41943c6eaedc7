// The fleet.redis URL (src/fleet/redis_url.cpp).
#include <anyturn/fleet/redis_url.hpp>

#include <gtest/gtest.h>

namespace anyturn::fleet {
namespace {

std::optional<redis_url> parse(std::string_view s, std::string* err = nullptr) {
  std::string e;
  auto u = parse_redis_url(s, e);
  if (err) *err = e;
  return u;
}

TEST(redis_url, DefaultsPortAndDatabase) {
  auto u = parse("redis://redis.internal");
  ASSERT_TRUE(u);
  EXPECT_FALSE(u->tls);
  EXPECT_EQ(u->host, "redis.internal");
  EXPECT_EQ(u->port, 6379);
  EXPECT_EQ(u->db, 0u);
  EXPECT_TRUE(u->password.empty());
}

TEST(redis_url, ReadsPasswordUserPortAndDatabase) {
  auto u = parse("redis://:s3cr%40t@10.0.0.5:7000/3");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->password, "s3cr@t");
  EXPECT_TRUE(u->user.empty());
  EXPECT_EQ(u->host, "10.0.0.5");
  EXPECT_EQ(u->port, 7000);
  EXPECT_EQ(u->db, 3u);
  u = parse("redis://anyturn:pw@[::1]:6380/1");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->user, "anyturn");
  EXPECT_EQ(u->password, "pw");
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 6380);
  EXPECT_EQ(u->redacted(), "redis://***@[::1]:6380/1") << "the password never reaches a log";
}

TEST(redis_url, MarksRedissAsTls) {
  auto u = parse("rediss://cache.example.com:6380");
  ASSERT_TRUE(u);
  EXPECT_TRUE(u->tls);
  EXPECT_FALSE(tls_supported) << "Debian's libhiredis-dev ships no hiredis_ssl";
}

TEST(redis_url, RefusesMistakesWithAClearMessage) {
  std::string e;
  EXPECT_FALSE(parse("http://x", &e));
  EXPECT_NE(e.find("redis://"), std::string::npos);
  EXPECT_FALSE(parse("redis://", &e));
  EXPECT_EQ(e, "no host");
  EXPECT_FALSE(parse("redis://h:0", &e));
  EXPECT_NE(e.find("port"), std::string::npos);
  EXPECT_FALSE(parse("redis://h:70000", &e));
  EXPECT_FALSE(parse("redis://h:", &e));
  EXPECT_FALSE(parse("redis://h/x", &e));
  EXPECT_NE(e.find("database"), std::string::npos);
  EXPECT_FALSE(parse("redis://:%zz@h", &e));
  EXPECT_FALSE(parse("redis://:%4@h", &e));
  EXPECT_FALSE(parse("redis://[::1", &e));
  EXPECT_FALSE(parse("redis://user:@h", &e));
}

}  // namespace
}  // namespace anyturn::fleet
