#include <anyturn/app/app.hpp>
#include <anyturn/auth/credentials.hpp>

#include <gtest/gtest.h>

#include "run_main.hpp"

#include <cstdio>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace anyturn::app {
namespace {

using test::run;
using result = test::run_result;

std::string write_temp(const std::string& text) {
  std::string path = ::testing::TempDir() + "anyturn_entry_test_" + std::to_string(::getpid()) + ".yaml";
  std::ofstream(path) << text;
  return path;
}

TEST(entry, version_and_help) {
  auto r = run({"--version"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out.rfind("anyturn ", 0), 0u) << r.out;
  r = run({"--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("check-config"), std::string::npos);
}

TEST(entry, credentials_command_needs_no_config_or_server) {
  auto r = run({"credentials", "--secret", "s", "--user", "bob", "--ttl", "60"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("username: ", 0), 0u) << r.out;
  const auto user_end = r.out.find('\n');
  const std::string username = r.out.substr(10, user_end - 10);
  EXPECT_TRUE(username.ends_with(":bob")) << username;
  EXPECT_NE(r.out.find("password: " + auth::rest_password("s", username) + "\n"), std::string::npos)
      << r.out;
  r = run({"credentials", "--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("--secret"), std::string::npos);
  r = run({"credentials"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("--secret"), std::string::npos) << r.err;
  r = run({"--help"});
  EXPECT_NE(r.out.find("anyturn credentials"), std::string::npos);
  EXPECT_NE(r.out.find("--http-listen"), std::string::npos);
  EXPECT_NE(r.out.find("--api-key"), std::string::npos);
}

TEST(entry, unknown_flag_is_exit_1) {
  const auto r = run({"--no-such-flag"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("--no-such-flag"), std::string::npos) << r.err;
}

TEST(entry, check_config_ok_prints_warnings_and_binds_nothing) {
  // A port that is taken: check-config must not care, since it binds nothing.
  const std::string path = write_temp("listen: ['127.0.0.1:1']\nrelay:\n  ips: ['127.0.0.1']\n");
  const auto r = run({"check-config", path.c_str(), "--user", "u:p", "--allow-peer", "10.0.0.0/8"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("configuration OK"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("10.0.0.0/8"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("u:p"), std::string::npos);  // never the secret
  std::remove(path.c_str());
}

TEST(entry, check_config_reports_every_error) {
  const std::string path = write_temp("listen: ['127.0.0.1:3478']\n");
  const auto r = run({"check-config", path.c_str(), "--relay-ports", "9-1", "--threads", "x"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("--relay-ports"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--threads"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("configuration OK"), std::string::npos);
  std::remove(path.c_str());
}

TEST(entry, run_with_a_bad_config_is_exit_1) {
  const auto r = run({"--listen", "nonsense"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("--listen"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace anyturn::app
