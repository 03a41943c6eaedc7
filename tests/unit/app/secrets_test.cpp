// The REST secret and nonce key a server generates when its config has none.
#include <anyturn/app/secrets.hpp>
#include <anyturn/app/startup.hpp>
#include <anyturn/app/state_dir.hpp>
#include <anyturn/auth/credentials.hpp>
#include <anyturn/auth/nonce.hpp>

#include <gtest/gtest.h>

#include "app_config.hpp"
#include "temp_dir.hpp"

#include <filesystem>
#include <string>

#include <sys/stat.h>

namespace anyturn::app {
namespace {

namespace fs = std::filesystem;

config::server_config no_secrets() {
  config::server_config cfg = test::test_config();
  cfg.auth.rest_secrets.clear();
  cfg.auth.nonce_keys.clear();
  return cfg;
}

bool is_hex(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

TEST(secrets, first_start_generates_private_random_files_and_later_starts_reuse_them) {
  ::anyturn::test::temp_dir tmp;
  const fs::path state = tmp.path() / "state";
  config::server_config first = no_secrets();
  provisioned_secrets done;
  std::string error;
  ASSERT_TRUE(provision_secrets(first, state, done, error)) << error;
  EXPECT_TRUE(done.rest_secret.used);
  EXPECT_TRUE(done.rest_secret.generated);
  EXPECT_EQ(done.rest_secret.path, state / "rest-secret");
  EXPECT_TRUE(done.nonce_key.generated);
  ASSERT_EQ(first.auth.rest_secrets.size(), 1u);
  ASSERT_EQ(first.auth.nonce_keys.size(), 1u);
  EXPECT_EQ(first.auth.rest_secrets[0].size(), 64u);
  EXPECT_TRUE(is_hex(first.auth.rest_secrets[0]));
  EXPECT_NE(first.auth.rest_secrets[0], first.auth.nonce_keys[0]);
  for (const char* name : {"rest-secret", "nonce-key"}) {
    struct stat st {};
    ASSERT_EQ(::stat((state / name).c_str(), &st), 0) << name;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << name;
  }
  struct stat dir {};
  ASSERT_EQ(::stat(state.c_str(), &dir), 0);
  EXPECT_EQ(dir.st_mode & 0777, 0700u);

  // A restart reads the same values, so credentials minted before still work.
  config::server_config second = no_secrets();
  ASSERT_TRUE(provision_secrets(second, state, done, error)) << error;
  EXPECT_TRUE(done.rest_secret.used);
  EXPECT_FALSE(done.rest_secret.generated);
  EXPECT_EQ(second.auth.rest_secrets, first.auth.rest_secrets);
  EXPECT_EQ(second.auth.nonce_keys, first.auth.nonce_keys);

  // Another state directory (another node) gets other values.
  config::server_config other = no_secrets();
  ASSERT_TRUE(provision_secrets(other, tmp.path() / "other", done, error)) << error;
  EXPECT_NE(other.auth.rest_secrets, first.auth.rest_secrets);
}

TEST(secrets, configured_values_are_used_and_nothing_is_written) {
  ::anyturn::test::temp_dir tmp;
  config::server_config cfg = no_secrets();
  cfg.auth.rest_secrets = {"configured-secret-0123456789"};
  cfg.auth.nonce_keys = {"configured-nonce-key-0123456789"};
  provisioned_secrets done;
  std::string error;
  ASSERT_TRUE(provision_secrets(cfg, tmp.path() / "state", done, error)) << error;
  EXPECT_FALSE(done.rest_secret.used);
  EXPECT_FALSE(done.nonce_key.used);
  EXPECT_EQ(cfg.auth.rest_secrets, std::vector<std::string>{"configured-secret-0123456789"});
  EXPECT_FALSE(fs::exists(tmp.path() / "state"));
}

TEST(secrets, a_weak_or_published_file_is_an_error_not_a_credential) {
  ::anyturn::test::temp_dir tmp;
  std::string error;
  ASSERT_TRUE(write_private(tmp.path() / "rest-secret", "short\n", 0600, error));
  config::server_config cfg = no_secrets();
  provisioned_secrets done;
  EXPECT_FALSE(provision_secrets(cfg, tmp.path(), done, error));
  EXPECT_NE(error.find("rest-secret: holds fewer than 16 characters; delete it"), std::string::npos) << error;

  ASSERT_TRUE(write_private(tmp.path() / "rest-secret", "change-me-rest-secret\n", 0600, error));
  EXPECT_FALSE(provision_secrets(cfg, tmp.path(), done, error));
  EXPECT_NE(error.find("a published example value"), std::string::npos) << error;
  EXPECT_EQ(error.find("change-me-rest-secret\n"), std::string::npos);
}

TEST(secrets, an_unusable_state_directory_is_a_start_up_error) {
  ::anyturn::test::temp_dir tmp;
  std::string error;
  ASSERT_TRUE(write_private(tmp.path() / "file", "x", 0600, error));
  config::server_config cfg = no_secrets();
  provisioned_secrets done;
  EXPECT_FALSE(provision_secrets(cfg, tmp.path() / "file" / "state", done, error));
  EXPECT_NE(error.find("cannot create the state directory"), std::string::npos) << error;
  EXPECT_NE(error.find("auth.secrets"), std::string::npos) << error;
}

// The generated values are what the server authenticates with: a REST
// credential signed with the file's secret passes, and the nonce service
// runs on the file's key.
TEST(secrets, the_shared_state_uses_the_generated_values) {
  ::anyturn::test::temp_dir tmp;
  config::server_config cfg = no_secrets();
  provisioned_secrets done;
  std::string error;
  ASSERT_TRUE(provision_secrets(cfg, tmp.path(), done, error)) << error;
  const auto shared = make_shared_state(cfg);
  const std::string username = "4102444800:alice";  // 2100-01-01
  const std::string password = auth::rest_password(cfg.auth.rest_secrets[0], username);
  std::array<auth::key_candidate, auth::max_candidates> candidates{};
  std::size_t count = 0;
  auth::tenant_index tenant = 0;
  ASSERT_EQ(shared->credentials->lookup(username, 1700000000, candidates, count, tenant),
            auth::lookup_status::ok);
  ASSERT_GE(count, 1u);
  EXPECT_EQ(candidates[0].md5, auth::derive_md5_key(username, cfg.auth.realm, password));

  const auth::nonce_service same({std::vector<std::uint8_t>(cfg.auth.nonce_keys[0].begin(),
                                                            cfg.auth.nonce_keys[0].end())},
                                 cfg.lifetimes.nonce, cfg.auth.offer_sha256);
  const auto client = test::ep("192.0.2.1:5000");
  std::array<char, auth::nonce_service::nonce_size> a{}, b{};
  EXPECT_EQ(shared->nonces->mint(client, 1000, a), same.mint(client, 1000, b));
}

}  // namespace
}  // namespace anyturn::app
