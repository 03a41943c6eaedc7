#include <anyturn/auth/credentials.hpp>

#include <gtest/gtest.h>

#include <array>
#include <stdexcept>
#include <optional>
#include <string>
#include <vector>

namespace anyturn::auth {
namespace {

// Expected values below were computed outside this code base with coreutils
// and the openssl CLI, e.g.
//   printf 'user:realm:pass' | md5sum
//   printf user | openssl dgst -sha1 -hmac secret -binary | base64

template <std::size_t N>
std::string hex(const std::array<std::uint8_t, N>& bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (const auto b : bytes) {
    out += digits[b >> 4];
    out += digits[b & 0xf];
  }
  return out;
}

constexpr std::int64_t now = 1700000000;
constexpr const char* realm = "example.org";
// "1700000600:alice" under secret1 and secret2 in realm example.org:
//   password  kjCydOCIWn3IzCbK5Zoeh+y7KP0=  /  v778owZQnI3Q/AnckseULg/3Tz4=
constexpr const char* rest_md5_secret1 = "b0399acb1fcec050dbd704243b8e654b";
constexpr const char* rest_sha256_secret1 =
    "f4118d7d96ce3fc2b65d9b5fd89e4cd1b6d8a922770eb86c0fa174e187113a09";
constexpr const char* rest_md5_secret2 = "d0cb305308e09402a15ec4637e4ad365";
constexpr const char* rest_sha256_secret2 =
    "d11bd5999056226a62d30e0f799f4f98ec680d14600385c9cccb6ecd6e5d8f8c";

TEST(credentials, md5_key_matches_md5sum) {
  EXPECT_EQ(hex(derive_md5_key("user", "realm", "pass")), "8493fbc53ba582fb4c044c456bdc40eb");
}

TEST(credentials, sha256_key_matches_sha256sum) {
  EXPECT_EQ(hex(derive_sha256_key("user", "realm", "pass")),
            "07e934117abd40836e7c6329b54731b2b2d2a5f9a71f544922d75e0730d8251b");
}

TEST(credentials, md5_key_of_rfc5769_credentials) {
  // RFC 5769 §2.4 long-term credentials: username "evtj:h6vY", realm
  // "example.org", password "VOkJxbRl1RmTxUk/WvJxBt".
  EXPECT_EQ(hex(derive_md5_key("evtj:h6vY", "example.org", "VOkJxbRl1RmTxUk/WvJxBt")),
            "4efa518a03441a50e6a7cfc8d936f074");
}

TEST(credentials, rest_password_matches_openssl_cli) {
  EXPECT_EQ(rest_password("secret", "user"), "An2kjIxkLKTFjrmC7sgZFReed6M=");
  EXPECT_EQ(rest_password("secret1", "1700000600:alice"), "kjCydOCIWn3IzCbK5Zoeh+y7KP0=");
  EXPECT_EQ(rest_password("secret", "user").size(), rest_password_size);
}

TEST(credentials, rest_username_format) {
  EXPECT_EQ(rest_username(now, 600, "alice"), "1700000600:alice");
  EXPECT_EQ(rest_username(now, 600, ""), "1700000600");
}

TEST(credentials, static_user_with_password_gets_both_keys) {
  credential_store store("realm", {static_user{"user", "pass", std::nullopt}}, {});
  EXPECT_EQ(store.realm(), "realm");
  EXPECT_FALSE(store.has_rest_secrets());

  std::array<key_candidate, max_candidates> out{};
  std::size_t count = 99;
  ASSERT_EQ(store.lookup("user", now, out, count), lookup_status::ok);
  ASSERT_EQ(count, 1u);
  EXPECT_EQ(hex(out[0].md5), "8493fbc53ba582fb4c044c456bdc40eb");
  ASSERT_TRUE(out[0].sha256.has_value());
  EXPECT_EQ(hex(*out[0].sha256),
            "07e934117abd40836e7c6329b54731b2b2d2a5f9a71f544922d75e0730d8251b");
}

TEST(credentials, md5_key_only_user_has_no_sha256) {
  const md5_key key = derive_md5_key("bob", realm, "hunter2");
  credential_store store(realm, {static_user{"bob", std::nullopt, key}}, {});

  std::array<key_candidate, 2> out{};
  out[0].sha256 = sha256_key{};  // must be cleared by lookup
  std::size_t count = 0;
  ASSERT_EQ(store.lookup("bob", now, out, count), lookup_status::ok);
  ASSERT_EQ(count, 1u);
  EXPECT_EQ(out[0].md5, key);
  EXPECT_FALSE(out[0].sha256.has_value());
}

TEST(credentials, static_users_found_among_many) {
  std::vector<static_user> users;
  for (int i = 0; i < 200; ++i) {
    users.push_back({"user" + std::to_string(i), "pw" + std::to_string(i), std::nullopt});
  }
  credential_store store(realm, users, {});
  std::array<key_candidate, 1> out{};
  std::size_t count = 0;
  for (const int i : {0, 1, 57, 150, 199}) {
    const std::string name = "user" + std::to_string(i);
    ASSERT_EQ(store.lookup(name, now, out, count), lookup_status::ok) << name;
    ASSERT_EQ(count, 1u);
    EXPECT_EQ(out[0].md5, derive_md5_key(name, realm, "pw" + std::to_string(i)));
  }
  EXPECT_EQ(store.lookup("user200", now, out, count), lookup_status::unknown_user);
  EXPECT_EQ(count, 0u);
  EXPECT_EQ(store.lookup("", now, out, count), lookup_status::unknown_user);
}

TEST(credentials, unknown_user_without_rest_secrets) {
  credential_store store(realm, {}, {});
  std::array<key_candidate, 1> out{};
  std::size_t count = 5;
  EXPECT_EQ(store.lookup("1700000600:alice", now, out, count), lookup_status::unknown_user);
  EXPECT_EQ(count, 0u);
}

TEST(credentials, rest_several_secrets_give_several_candidates) {
  credential_store store(realm, {}, {"secret1", "secret2"});
  EXPECT_TRUE(store.has_rest_secrets());

  std::array<key_candidate, max_candidates> out{};
  std::size_t count = 0;
  ASSERT_EQ(store.lookup("1700000600:alice", now, out, count), lookup_status::ok);
  ASSERT_EQ(count, 2u);
  EXPECT_EQ(hex(out[0].md5), rest_md5_secret1);
  ASSERT_TRUE(out[0].sha256.has_value());
  EXPECT_EQ(hex(*out[0].sha256), rest_sha256_secret1);
  EXPECT_EQ(hex(out[1].md5), rest_md5_secret2);
  ASSERT_TRUE(out[1].sha256.has_value());
  EXPECT_EQ(hex(*out[1].sha256), rest_sha256_secret2);
}

TEST(credentials, rest_candidates_limited_by_output_span) {
  credential_store store(realm, {}, {"secret1", "secret2"});
  std::array<key_candidate, 1> out{};
  std::size_t count = 0;
  ASSERT_EQ(store.lookup("1700000600:alice", now, out, count), lookup_status::ok);
  ASSERT_EQ(count, 1u);
  EXPECT_EQ(hex(out[0].md5), rest_md5_secret1);

  ASSERT_EQ(store.lookup("1700000600:alice", now, std::span<key_candidate>{}, count),
            lookup_status::ok);
  EXPECT_EQ(count, 0u);
}

TEST(credentials, rest_keys_match_the_public_helpers) {
  credential_store store(realm, {}, {"s3cr3t"});
  std::array<key_candidate, 1> out{};
  std::size_t count = 0;
  for (const char* name : {"1700000600", "1700000600:alice", "1700000600:a:b", "alice:1700000600",
                           "a:b:1700000600"}) {
    ASSERT_EQ(store.lookup(name, now, out, count), lookup_status::ok) << name;
    ASSERT_EQ(count, 1u);
    const std::string pw = rest_password("s3cr3t", name);
    EXPECT_EQ(out[0].md5, derive_md5_key(name, realm, pw)) << name;
    EXPECT_EQ(out[0].sha256, derive_sha256_key(name, realm, pw)) << name;
  }
}

TEST(credentials, rest_expired) {
  credential_store store(realm, {}, {"secret1"});
  std::array<key_candidate, 1> out{};
  std::size_t count = 7;
  EXPECT_EQ(store.lookup("1699999999:alice", now, out, count), lookup_status::expired);
  EXPECT_EQ(count, 0u);
  EXPECT_EQ(store.lookup("alice:1699999999", now, out, count), lookup_status::expired);
  EXPECT_EQ(store.lookup("0", now, out, count), lookup_status::expired);
  // Valid through the expiry second itself.
  EXPECT_EQ(store.lookup("1700000000:alice", now, out, count), lookup_status::ok);
  EXPECT_EQ(count, 1u);
}

TEST(credentials, rest_malformed_and_unknown) {
  credential_store store(realm, {}, {"secret1"});
  std::array<key_candidate, 1> out{};
  std::size_t count = 3;
  EXPECT_EQ(store.lookup("1700000600:", now, out, count), lookup_status::malformed);
  EXPECT_EQ(count, 0u);
  EXPECT_EQ(store.lookup(":1700000600", now, out, count), lookup_status::malformed);
  EXPECT_EQ(store.lookup("1234567890123456789", now, out, count), lookup_status::malformed);
  EXPECT_EQ(store.lookup("1234567890123456789:alice", now, out, count), lookup_status::malformed);
  EXPECT_EQ(store.lookup("alice:1234567890123456789", now, out, count), lookup_status::malformed);

  EXPECT_EQ(store.lookup("alice", now, out, count), lookup_status::unknown_user);
  EXPECT_EQ(store.lookup("", now, out, count), lookup_status::unknown_user);
  EXPECT_EQ(store.lookup(":", now, out, count), lookup_status::unknown_user);
  EXPECT_EQ(store.lookup("12ab:bob", now, out, count), lookup_status::unknown_user);
  EXPECT_EQ(store.lookup("-1700000600:bob", now, out, count), lookup_status::unknown_user);
  EXPECT_EQ(store.lookup("+1700000600", now, out, count), lookup_status::unknown_user);
  EXPECT_EQ(store.lookup("bob:17000006x0", now, out, count), lookup_status::unknown_user);
  EXPECT_EQ(count, 0u);
}

TEST(credentials, static_and_rest_together_static_wins_on_clash) {
  credential_store store(realm,
                         {static_user{"bob", "bobpw", std::nullopt},
                          static_user{"1700000600:alice", "static-pw", std::nullopt}},
                         {"secret1", "secret2"});
  std::array<key_candidate, max_candidates> out{};
  std::size_t count = 0;

  ASSERT_EQ(store.lookup("bob", now, out, count), lookup_status::ok);
  ASSERT_EQ(count, 1u);
  EXPECT_EQ(out[0].md5, derive_md5_key("bob", realm, "bobpw"));

  // Spelled like a REST username, but a static user: one candidate, static key.
  ASSERT_EQ(store.lookup("1700000600:alice", now, out, count), lookup_status::ok);
  ASSERT_EQ(count, 1u);
  EXPECT_EQ(out[0].md5, derive_md5_key("1700000600:alice", realm, "static-pw"));
  // Static users do not expire.
  ASSERT_EQ(store.lookup("1700000600:alice", now + 100000, out, count), lookup_status::ok);

  ASSERT_EQ(store.lookup("1700000600:carol", now, out, count), lookup_status::ok);
  EXPECT_EQ(count, 2u);
  EXPECT_EQ(store.lookup("carol", now, out, count), lookup_status::unknown_user);
}

TEST(credentials, constructor_rejects_bad_configuration) {
  EXPECT_THROW(credential_store(realm, {static_user{"a", std::nullopt, std::nullopt}}, {}),
               std::invalid_argument);
  EXPECT_THROW(credential_store(realm, {static_user{"a", "pw", md5_key{}}}, {}),
               std::invalid_argument);
  EXPECT_THROW(credential_store(realm,
                                {static_user{"a", "pw", std::nullopt},
                                 static_user{"a", "pw2", std::nullopt}},
                                {}),
               std::invalid_argument);
  EXPECT_THROW(credential_store(realm, {}, {"ok", ""}), std::invalid_argument);
  EXPECT_THROW(credential_store(realm, {}, std::vector<std::string>(max_candidates + 1, "s")),
               std::invalid_argument);
  EXPECT_NO_THROW(credential_store(realm, {}, std::vector<std::string>(max_candidates, "s")));
}

}  // namespace
}  // namespace anyturn::auth

namespace anyturn::auth {
namespace {

std::vector<tenant_credentials> two_tenants() {
  std::vector<tenant_credentials> t(3);
  t[0].secrets = {"default-secret"};
  t[0].users.push_back({"alice", std::string("a-pass"), std::nullopt});
  t[1].id = "acme";
  t[1].secrets = {"acme-old", "acme-new"};
  t[1].users.push_back({"bob", std::string("b-pass"), std::nullopt});
  t[2].id = "globex";  // static users only
  t[2].users.push_back({"carol", std::string("c-pass"), std::nullopt});
  return t;
}

TEST(CredentialTenants, StaticUsersResolveToTheirTenant) {
  credential_store store("realm", two_tenants());
  std::array<key_candidate, max_candidates> out{};
  std::size_t n = 0;
  tenant_index t = 99;
  ASSERT_EQ(store.lookup("bob", 0, out, n, t), lookup_status::ok);
  EXPECT_EQ(t, 1);
  EXPECT_EQ(out[0].md5, derive_md5_key("bob", "realm", "b-pass"));
  ASSERT_EQ(store.lookup("carol", 0, out, n, t), lookup_status::ok);
  EXPECT_EQ(t, 2);
  EXPECT_EQ(store.tenant_id(2), "globex");
  ASSERT_EQ(store.lookup("alice", 0, out, n, t), lookup_status::ok);
  EXPECT_EQ(t, default_tenant);
}

TEST(CredentialTenants, RestUsernamesCarryTheTenantId) {
  credential_store store("realm", two_tenants());
  std::array<key_candidate, max_candidates> out{};
  std::size_t n = 0;
  tenant_index t = 99;
  const std::string acme_user = "2000000000:acme:u1";
  ASSERT_EQ(store.lookup(acme_user, 1000, out, n, t), lookup_status::ok);
  EXPECT_EQ(t, 1);
  ASSERT_EQ(n, 2u) << "one candidate per secret of that tenant only";
  const auto pw = rest_password("acme-new", acme_user);
  EXPECT_EQ(out[1].md5, derive_md5_key(acme_user, "realm", pw));

  // Not a tenant id: the default tenant's secrets.
  ASSERT_EQ(store.lookup("2000000000:nobody:u1", 1000, out, n, t), lookup_status::ok);
  EXPECT_EQ(t, default_tenant);
  ASSERT_EQ(n, 1u);
  EXPECT_EQ(out[0].md5, derive_md5_key("2000000000:nobody:u1", "realm",
                                       rest_password("default-secret", "2000000000:nobody:u1")));
  ASSERT_EQ(store.lookup("2000000000:u2", 1000, out, n, t), lookup_status::ok);
  EXPECT_EQ(t, default_tenant);

  // A tenant without secrets accepts no REST usernames.
  EXPECT_EQ(store.lookup("2000000000:globex:u1", 1000, out, n, t), lookup_status::unknown_user);
  // Expiry still applies.
  EXPECT_EQ(store.lookup("999:acme:u1", 1000, out, n, t), lookup_status::expired);
}

TEST(CredentialTenants, RejectsBadTenantSetups) {
  auto dup_id = two_tenants();
  dup_id[2].id = "acme";
  EXPECT_THROW(credential_store("r", dup_id), std::invalid_argument);
  auto dup_user = two_tenants();
  dup_user[2].users.push_back({"bob", std::string("x"), std::nullopt});
  EXPECT_THROW(credential_store("r", dup_user), std::invalid_argument);
  auto no_id = two_tenants();
  no_id[1].id.clear();
  EXPECT_THROW(credential_store("r", no_id), std::invalid_argument);
  auto colon = two_tenants();
  colon[1].id = "a:b";
  EXPECT_THROW(credential_store("r", colon), std::invalid_argument);
}

TEST(credentials, is_static_user_tells_static_users_from_rest_usernames) {
  credential_store store("realm", {static_user{"alice", "pw", std::nullopt}}, {"secret"});
  EXPECT_TRUE(store.is_static_user("alice"));
  EXPECT_FALSE(store.is_static_user("alic"));
  EXPECT_FALSE(store.is_static_user("1700000000:alice"));  // a REST username
  EXPECT_FALSE(store.is_static_user(""));
}

// The credentials API appends "~<customIdentifier>" to the user part ('~'
// needs no escaping in a URL path, so the username can be pasted into the
// Cloudflare-style revoke route as it is).
TEST(credentials, custom_identifier_of_reads_the_suffix_after_the_last_tilde) {
  EXPECT_EQ(custom_identifier_of("1700000600:acme:3f2a~room-42"), "room-42");
  EXPECT_EQ(custom_identifier_of("1700000600:3f2a~A.b_c-9"), "A.b_c-9");
  EXPECT_EQ(custom_identifier_of("1700000600:a~b~last"), "last");
  EXPECT_EQ(custom_identifier_of("1700000600:alice"), "");
  EXPECT_EQ(custom_identifier_of("1700000600:alice~"), "");          // empty
  EXPECT_EQ(custom_identifier_of("1700000600:alice~a b"), "");       // space
  EXPECT_EQ(custom_identifier_of("1700000600:alice~a/b"), "");       // '/'
  EXPECT_EQ(custom_identifier_of("1700000600:alice~a#b"), "");       // '#'
  EXPECT_EQ(custom_identifier_of("alice~x:1700000600"), "");         // ':' after '~'
  EXPECT_EQ(custom_identifier_of("1700000600:alice~\xc3\xa9"), "");  // non-ASCII
  const std::string longest(max_custom_identifier_bytes, 'x');
  EXPECT_EQ(custom_identifier_of("1700000600:u~" + longest), longest);
  EXPECT_EQ(custom_identifier_of("1700000600:u~" + longest + "x"), "");
  EXPECT_EQ(custom_identifier_of(""), "");
}

}  // namespace
}  // namespace anyturn::auth

namespace anyturn::auth {
namespace {

// The node's own probe credential ("<expiry>:anyturn-probe", GET /probe):
// signed with the internal probe secret, and only with it.
TEST(credentials, probe_username_form) {
  EXPECT_TRUE(is_probe_username("1700000600:anyturn-probe"));
  EXPECT_FALSE(is_probe_username("anyturn-probe"));
  EXPECT_FALSE(is_probe_username("1700000600:anyturn-probe2"));
  EXPECT_FALSE(is_probe_username("1700000600:acme:anyturn-probe"));
  EXPECT_FALSE(is_probe_username("x:anyturn-probe"));
  EXPECT_FALSE(is_probe_username("1234567890123456789:anyturn-probe"));
}

TEST(credentials, probe_secret_signs_the_probe_username_with_only_static_users) {
  std::vector<tenant_credentials> tenants{{"", {{"alice", std::string("pw"), std::nullopt}}, {}}};
  credential_store store(realm, tenants);
  store.set_probe_secret("internal-probe-secret");
  std::array<key_candidate, 4> out{};
  std::size_t count = 0;
  tenant_index tenant = 9;
  const std::string name = "1700000060:anyturn-probe";
  ASSERT_EQ(store.lookup(name, now, out, count, tenant), lookup_status::ok);
  ASSERT_EQ(count, 1u);
  EXPECT_EQ(tenant, default_tenant);
  const std::string pw = rest_password("internal-probe-secret", name);
  EXPECT_EQ(out[0].md5, derive_md5_key(name, realm, pw));
  EXPECT_EQ(out[0].sha256, derive_sha256_key(name, realm, pw));
  // Expired like any REST username; other REST usernames still unknown.
  EXPECT_EQ(store.lookup("1699999999:anyturn-probe", now, out, count), lookup_status::expired);
  EXPECT_EQ(store.lookup("1700000060:bob", now, out, count), lookup_status::unknown_user);
  // The static user is untouched.
  EXPECT_EQ(store.lookup("alice", now, out, count), lookup_status::ok);
}

TEST(credentials, probe_username_is_not_signed_by_the_rest_secrets) {
  std::vector<tenant_credentials> tenants{{"", {}, {"rest1", "rest2"}}};
  credential_store store(realm, tenants);
  store.set_probe_secret("internal-probe-secret");
  std::array<key_candidate, 4> out{};
  std::size_t count = 0;
  const std::string name = "1700000060:anyturn-probe";
  ASSERT_EQ(store.lookup(name, now, out, count), lookup_status::ok);
  ASSERT_EQ(count, 1u);  // one candidate: the probe secret's
  const std::string pw = rest_password("internal-probe-secret", name);
  EXPECT_EQ(out[0].md5, derive_md5_key(name, realm, pw));
  EXPECT_NE(out[0].md5, derive_md5_key(name, realm, rest_password("rest1", name)));
  // Ordinary REST usernames keep using the REST secrets.
  ASSERT_EQ(store.lookup("1700000060:alice", now, out, count), lookup_status::ok);
  EXPECT_EQ(count, 2u);
  // Without a probe secret the form is an ordinary REST username.
  credential_store plain(realm, tenants);
  ASSERT_EQ(plain.lookup(name, now, out, count), lookup_status::ok);
  EXPECT_EQ(count, 2u);
}

}  // namespace
}  // namespace anyturn::auth
