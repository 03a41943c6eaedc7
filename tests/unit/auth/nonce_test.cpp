#include <anyturn/auth/nonce.hpp>

#include "endpoints.hpp"

#include <gtest/gtest.h>

#include <cctype>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

namespace anyturn::auth {
namespace {

using test::ep;

constexpr std::int64_t now = 1700000000;  // 0x6553f100
constexpr std::int64_t lifetime = 600;

std::vector<std::uint8_t> key_a() { return std::vector<std::uint8_t>(32, 0xa5); }
std::vector<std::uint8_t> key_b() { return std::vector<std::uint8_t>(32, 0x5a); }

// A key list for the rotation constructor (braces alone would pick the
// one-key constructor).
std::vector<std::vector<std::uint8_t>> keys(std::initializer_list<std::vector<std::uint8_t>> list) {
  return {list};
}

std::string mint(const nonce_service& svc, const stun::endpoint& client, std::int64_t at) {
  std::array<char, nonce_service::nonce_size> buf{};
  return std::string(svc.mint(client, at, buf));
}

TEST(nonce, round_trip_is_valid) {
  const nonce_service svc(key_a(), lifetime, true);
  const auto client = ep("203.0.113.7", 50000);
  const std::string n = mint(svc, client, now);
  EXPECT_EQ(n.size(), nonce_service::nonce_size);
  EXPECT_EQ(svc.verify(n, client, now), nonce_status::valid);
  EXPECT_EQ(svc.verify(n, client, now + 10), nonce_status::valid);

  const auto client6 = ep("2001:4860:4860::8888", 1234);
  const std::string n6 = mint(svc, client6, now);
  EXPECT_EQ(svc.verify(n6, client6, now), nonce_status::valid);
}

TEST(nonce, same_inputs_give_same_nonce) {
  const nonce_service svc(key_a(), lifetime, true);
  EXPECT_EQ(mint(svc, ep("198.51.100.1"), now), mint(svc, ep("198.51.100.1"), now));
  EXPECT_NE(mint(svc, ep("198.51.100.1"), now), mint(svc, ep("198.51.100.1"), now + 1));
}

TEST(nonce, cookie_feature_bits_and_timestamp_layout) {
  const nonce_service with_algorithms(key_a(), lifetime, true);
  const std::string n = mint(with_algorithms, ep("192.0.2.1"), now);
  EXPECT_EQ(n.substr(0, 9), "obMatJos2");
  // 24-bit feature set 0x000001 (bit 0 = Password algorithms, least
  // significant per RFC 8489 erratum 6290): printf '\x00\x00\x01' | base64
  EXPECT_EQ(n.substr(9, 4), "AAAB");
  EXPECT_EQ(with_algorithms.feature_bits(), feature_password_algorithms);
  EXPECT_EQ(n.substr(13, 8), "6553f100");  // printf '%08x' 1700000000
  for (const char c : n.substr(21)) {
    EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') << n;
  }

  const nonce_service without(key_a(), lifetime, false);
  const std::string m = mint(without, ep("192.0.2.1"), now);
  EXPECT_EQ(m.substr(0, 9), "obMatJos2");
  EXPECT_EQ(m.substr(9, 4), "AAAA");
  EXPECT_EQ(without.feature_bits(), 0u);
}

TEST(nonce, features_of_reads_the_bits_back) {
  const nonce_service with_algorithms(key_a(), lifetime, true);
  const nonce_service without(key_a(), lifetime, false);
  EXPECT_EQ(nonce_service::features_of(mint(with_algorithms, ep("192.0.2.1"), now)),
            feature_password_algorithms);
  EXPECT_EQ(nonce_service::features_of(mint(without, ep("192.0.2.1"), now)), 0u);
  // Not one of ours: no features.
  EXPECT_EQ(nonce_service::features_of("obMatJos2AAAB"), 0u);
  EXPECT_EQ(nonce_service::features_of(std::string(nonce_service::nonce_size, 'x')), 0u);
  std::string bad = mint(with_algorithms, ep("192.0.2.1"), now);
  bad[10] = '*';
  EXPECT_EQ(nonce_service::features_of(bad), 0u);
}

TEST(nonce, other_client_ip_is_invalid) {
  const nonce_service svc(key_a(), lifetime, true);
  const std::string n = mint(svc, ep("203.0.113.7", 50000), now);
  EXPECT_EQ(svc.verify(n, ep("203.0.113.8", 50000), now), nonce_status::invalid);
  EXPECT_EQ(svc.verify(n, ep("::ffff:203.0.113.7", 50000), now), nonce_status::invalid);
  // The port is not bound: a NAT rebinding keeps the nonce usable.
  EXPECT_EQ(svc.verify(n, ep("203.0.113.7", 50001), now), nonce_status::valid);

  const std::string n6 = mint(svc, ep("2001:db8::1"), now);
  EXPECT_EQ(svc.verify(n6, ep("2001:db8::2"), now), nonce_status::invalid);
}

TEST(nonce, stale_after_lifetime) {
  const nonce_service svc(key_a(), lifetime, true);
  const auto client = ep("203.0.113.7");
  const std::string n = mint(svc, client, now);
  EXPECT_EQ(svc.verify(n, client, now + lifetime), nonce_status::valid);
  EXPECT_EQ(svc.verify(n, client, now + lifetime + 1), nonce_status::stale);
  EXPECT_EQ(svc.verify(n, client, now + 100 * lifetime), nonce_status::stale);
  // A stale verdict needs a good MAC: another client's old nonce is invalid.
  EXPECT_EQ(svc.verify(n, ep("203.0.113.9"), now + lifetime + 1), nonce_status::invalid);
}

TEST(nonce, too_far_in_future_is_invalid) {
  const nonce_service svc(key_a(), lifetime, true);
  const auto client = ep("203.0.113.7");
  const std::string n = mint(svc, client, now);
  constexpr auto skew = nonce_service::default_max_future_skew;
  EXPECT_EQ(svc.verify(n, client, now - skew), nonce_status::valid);
  EXPECT_EQ(svc.verify(n, client, now - skew - 1), nonce_status::invalid);
}

// A node whose clock is ahead mints a nonce dated in this node's future; the
// configured allowance decides how far ahead is still good.
TEST(nonce, future_skew_allowance_is_configurable) {
  const nonce_service ahead(keys({key_a()}), lifetime, true);
  const nonce_service strict(keys({key_a()}), lifetime, true, 0);
  const nonce_service lenient(keys({key_a()}), lifetime, true, 300);
  const auto client = ep("203.0.113.7");
  const std::string n = mint(ahead, client, now + 120);  // the minting node is 2 min ahead
  EXPECT_EQ(strict.verify(n, client, now), nonce_status::invalid);
  EXPECT_EQ(strict.verify(n, client, now + 120), nonce_status::valid);
  EXPECT_EQ(lenient.verify(n, client, now), nonce_status::valid);
  EXPECT_EQ(lenient.verify(n, client, now - 180), nonce_status::valid);
  EXPECT_EQ(lenient.verify(n, client, now - 181), nonce_status::invalid);
}

// Rotation: the new key goes first and mints; a nonce minted under the old
// one is answered 438 (so the client retries with a fresh nonce at once), not
// 401, even while it is young.
TEST(nonce, previous_key_gives_stale_and_current_key_mints) {
  const nonce_service old_node(key_a(), lifetime, true);
  const nonce_service rotated(keys({key_b(), key_a()}), lifetime, true);
  const auto client = ep("203.0.113.7");
  const std::string old_nonce = mint(old_node, client, now);
  EXPECT_EQ(rotated.verify(old_nonce, client, now), nonce_status::stale);
  EXPECT_EQ(rotated.verify(old_nonce, ep("203.0.113.9"), now), nonce_status::invalid);

  const std::string fresh = mint(rotated, client, now);
  EXPECT_EQ(rotated.verify(fresh, client, now), nonce_status::valid);
  EXPECT_EQ(fresh, mint(nonce_service(key_b(), lifetime, true), client, now));
  // A node that has not rotated yet sees the new key's nonce as foreign.
  EXPECT_EQ(old_node.verify(fresh, client, now), nonce_status::invalid);
  // A key that was never in the list is 401.
  const nonce_service other(key_b(), lifetime, true);
  EXPECT_EQ(other.verify(old_nonce, client, now), nonce_status::invalid);
}

TEST(nonce, any_tampered_character_is_invalid) {
  const nonce_service svc(key_a(), lifetime, true);
  const auto client = ep("203.0.113.7");
  const std::string n = mint(svc, client, now);
  for (std::size_t i = 0; i < n.size(); ++i) {
    // Replace with another character that is valid in the same field.
    for (const char replacement : {'A', 'b', '0', 'f'}) {
      if (n[i] == replacement) continue;
      std::string t = n;
      t[i] = replacement;
      EXPECT_EQ(svc.verify(t, client, now), nonce_status::invalid) << "position " << i << ": " << t;
    }
  }
  // Timestamp hex is lowercase only; uppercase is not an alternative spelling.
  std::string upper = n;
  ASSERT_EQ(upper[13 + 4], 'f');  // "6553f100"
  upper[13 + 4] = 'F';
  EXPECT_EQ(svc.verify(upper, client, now), nonce_status::invalid);
}

TEST(nonce, garbage_is_invalid) {
  const nonce_service svc(key_a(), lifetime, true);
  const auto client = ep("203.0.113.7");
  const std::string n = mint(svc, client, now);
  EXPECT_EQ(svc.verify("", client, now), nonce_status::invalid);
  EXPECT_EQ(svc.verify("obMatJos2", client, now), nonce_status::invalid);
  EXPECT_EQ(svc.verify(n.substr(0, n.size() - 1), client, now), nonce_status::invalid);
  EXPECT_EQ(svc.verify(n + "A", client, now), nonce_status::invalid);
  EXPECT_EQ(svc.verify(std::string(nonce_service::nonce_size, 'x'), client, now),
            nonce_status::invalid);
  std::string bad_char = n;
  bad_char[9] = '*';  // not base64
  EXPECT_EQ(svc.verify(bad_char, client, now), nonce_status::invalid);
  std::string bad_hex = n;
  bad_hex[14] = 'g';
  EXPECT_EQ(svc.verify(bad_hex, client, now), nonce_status::invalid);
}

TEST(nonce, another_node_with_the_same_key_accepts) {
  // The anycast property: no shared state beyond the key.
  const nonce_service node1(key_a(), lifetime, true);
  const nonce_service node2(key_a(), lifetime, true);
  const auto client = ep("2606:4700::1111", 40000);
  const std::string n = mint(node1, client, now);
  EXPECT_EQ(node2.verify(n, client, now + 5), nonce_status::valid);
  EXPECT_EQ(node2.verify(n, client, now + lifetime + 1), nonce_status::stale);
}

TEST(nonce, a_different_key_rejects) {
  const nonce_service node1(key_a(), lifetime, true);
  const nonce_service other(key_b(), lifetime, true);
  const auto client = ep("203.0.113.7");
  const std::string n = mint(node1, client, now);
  EXPECT_EQ(other.verify(n, client, now), nonce_status::invalid);
}

TEST(nonce, feature_bits_are_covered_by_the_mac) {
  const nonce_service svc(key_a(), lifetime, true);
  const auto client = ep("203.0.113.7");
  std::string n = mint(svc, client, now);
  ASSERT_EQ(n.substr(9, 4), "AAAB");
  n.replace(9, 4, "AAAA");  // bid-down attempt
  EXPECT_EQ(svc.verify(n, client, now), nonce_status::invalid);
}

TEST(nonce, constructor_rejects_empty_key_and_bad_lifetime) {
  EXPECT_THROW(nonce_service(std::vector<std::uint8_t>{}, lifetime, true), std::invalid_argument);
  EXPECT_THROW(nonce_service(std::vector<std::vector<std::uint8_t>>{}, lifetime, true),
               std::invalid_argument);
  EXPECT_THROW(nonce_service(keys({key_a(), {}}), lifetime, true), std::invalid_argument);
  EXPECT_THROW(nonce_service(keys({key_a()}), lifetime, true, -1), std::invalid_argument);
  EXPECT_THROW(nonce_service(key_a(), 0, true), std::invalid_argument);
  EXPECT_THROW(nonce_service(key_a(), -5, true), std::invalid_argument);
}

TEST(nonce, random_key_has_requested_size_and_varies) {
  const auto a = random_key(32);
  const auto b = random_key(32);
  EXPECT_EQ(a.size(), 32u);
  EXPECT_NE(a, b);
  EXPECT_EQ(random_key(16).size(), 16u);
  EXPECT_EQ(random_key().size(), 32u);
  EXPECT_THROW(random_key(0), std::invalid_argument);
  const nonce_service svc(random_key(), lifetime, false);
  const auto client = ep("203.0.113.7");
  EXPECT_EQ(svc.verify(mint(svc, client, now), client, now), nonce_status::valid);
}

}  // namespace
}  // namespace anyturn::auth
