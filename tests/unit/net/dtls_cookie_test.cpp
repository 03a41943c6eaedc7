// The DTLS listeners' stateless cookies (src/net/dtls_cookie.hpp).
#include "../../../src/net/dtls_cookie.hpp"

#include <gtest/gtest.h>

#include <array>
#include <vector>

namespace anyturn::net::detail {
namespace {

using cookie = std::array<unsigned char, dtls_cookie_jar::cookie_size>;

cookie make(const dtls_cookie_jar& jar, const stun::endpoint& client) {
  cookie c{};
  EXPECT_EQ(jar.make(client, c), dtls_cookie_jar::cookie_size);
  return c;
}

const stun::endpoint alice = stun::endpoint::v4(0xC0000201u, 40000);  // 192.0.2.1:40000

TEST(dtls_cookie, verifies_for_its_address_and_is_a_function_of_address_and_secret) {
  const dtls_cookie_jar jar;
  const cookie c = make(jar, alice);
  EXPECT_TRUE(jar.verify(alice, c));
  // Stateless: asking again gives the same cookie (nothing was recorded
  // per client), and a const jar verifies it.
  EXPECT_EQ(make(jar, alice), c);
  // Another jar (another worker or a restarted server) has another secret.
  const dtls_cookie_jar other;
  EXPECT_FALSE(other.verify(alice, c));
}

TEST(dtls_cookie, rejects_another_address_port_or_family) {
  const dtls_cookie_jar jar;
  const cookie c = make(jar, alice);
  EXPECT_FALSE(jar.verify(stun::endpoint::v4(0xC0000202u, 40000), c));  // other address
  EXPECT_FALSE(jar.verify(stun::endpoint::v4(0xC0000201u, 40001), c));  // other port
  std::array<std::uint8_t, 16> v6{};
  v6[0] = 0xC0;
  v6[1] = 0x00;
  v6[2] = 0x02;
  v6[3] = 0x01;
  EXPECT_FALSE(jar.verify(stun::endpoint::v6(v6, 40000), c));  // same bytes, other family
}

TEST(dtls_cookie, rejects_tampered_truncated_and_empty_cookies) {
  const dtls_cookie_jar jar;
  cookie c = make(jar, alice);
  for (std::size_t i = 0; i < c.size(); ++i) {
    cookie bad = c;
    bad[i] ^= 0x01;
    EXPECT_FALSE(jar.verify(alice, bad)) << "byte " << i;
  }
  EXPECT_FALSE(jar.verify(alice, std::span(c.data(), c.size() - 1)));
  EXPECT_FALSE(jar.verify(alice, {}));
  std::vector<unsigned char> longer(c.begin(), c.end());
  longer.push_back(0);
  EXPECT_FALSE(jar.verify(alice, longer));
  std::array<unsigned char, 4> short_out{};
  EXPECT_EQ(jar.make(alice, short_out), 0u);
}

TEST(dtls_cookie, survives_one_rotation_and_not_two) {
  dtls_cookie_jar jar;
  const cookie c = make(jar, alice);
  jar.rotate();
  EXPECT_TRUE(jar.verify(alice, c)) << "the previous secret still verifies";
  EXPECT_NE(make(jar, alice), c) << "new cookies come from the new secret";
  jar.rotate();
  EXPECT_FALSE(jar.verify(alice, c)) << "a secret two rotations old is gone";
}

TEST(dtls_cookie, rotates_on_the_clock) {
  dtls_cookie_jar jar(1000);
  const cookie c = make(jar, alice);
  jar.maybe_rotate(5000);  // starts the clock
  jar.maybe_rotate(5999);
  EXPECT_EQ(make(jar, alice), c);
  jar.maybe_rotate(6000);  // one period: rotated
  EXPECT_NE(make(jar, alice), c);
  EXPECT_TRUE(jar.verify(alice, c));
  jar.maybe_rotate(7000);  // two periods: the old secret is gone
  EXPECT_FALSE(jar.verify(alice, c));
}

}  // namespace
}  // namespace anyturn::net::detail
