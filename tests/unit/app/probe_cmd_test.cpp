// `anyturn probe` (src/app/probe_cmd.cpp): the argument checks (exit 2
// with a message), REST credentials from --secret, the defaults, and the
// exit code and output of a run against a closed loopback port.
#include <anyturn/app/probe_cmd.hpp>
#include <anyturn/auth/credentials.hpp>

#include "loopback_socket.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sstream>

namespace anyturn::app {
namespace {

std::optional<probe_invocation> parse(std::vector<const char*> args, std::string& error) {
  args.insert(args.begin(), {"anyturn", "probe"});
  return parse_probe_cli(static_cast<int>(args.size()), args.data(), 1'700'000'000, error);
}

std::string refused(std::vector<const char*> args) {
  std::string error;
  EXPECT_FALSE(parse(args, error).has_value()) << (args.empty() ? "" : args[0]);
  EXPECT_FALSE(error.empty());
  return error;
}

int exit_code(std::vector<const char*> args, std::string& out, std::string& err) {
  args.insert(args.begin(), {"anyturn", "probe"});
  std::ostringstream o, e;
  const int rc = run_probe(static_cast<int>(args.size()), args.data(), o, e);
  out = o.str();
  err = e.str();
  return rc;
}

TEST(probe_cmd, recognises_the_subcommand) {
  const char* yes[] = {"anyturn", "probe", "turn:h"};
  const char* no[] = {"anyturn", "--config", "x"};
  EXPECT_TRUE(is_probe_command(3, yes));
  EXPECT_FALSE(is_probe_command(3, no));
  EXPECT_FALSE(is_probe_command(1, yes));
}

TEST(probe_cmd, defaults_and_every_flag) {
  std::string error;
  auto inv = parse({"turn:a", "turns:b:443"}, error);
  ASSERT_TRUE(inv) << error;
  EXPECT_EQ(inv->targets.size(), 2u);
  EXPECT_EQ(inv->opts.count, 10u);
  EXPECT_EQ(inv->opts.size, 100u);
  EXPECT_EQ(inv->opts.interval, std::chrono::milliseconds(20));
  EXPECT_EQ(inv->opts.timeout, std::chrono::milliseconds(5000));
  EXPECT_FALSE(inv->opts.auth);
  EXPECT_FALSE(inv->json);

  inv = parse({"turn:a", "--user", "alice", "--password=pw", "--count", "40", "--interval-ms", "0",
               "--size", "1200", "--timeout-s", "2.5", "--ca", "/tmp/ca.pem", "--json"},
              error);
  ASSERT_TRUE(inv) << error;
  EXPECT_EQ(inv->opts.auth->username, "alice");
  EXPECT_EQ(inv->opts.auth->password, "pw");
  EXPECT_EQ(inv->opts.count, 40u);
  EXPECT_EQ(inv->opts.interval, std::chrono::milliseconds(0));
  EXPECT_EQ(inv->opts.size, 1200u);
  EXPECT_EQ(inv->opts.timeout, std::chrono::milliseconds(2500));
  EXPECT_EQ(inv->opts.ca_file, "/tmp/ca.pem");
  EXPECT_TRUE(inv->json);

  inv = parse({"--insecure", "turns:a"}, error);
  ASSERT_TRUE(inv) << error;
  EXPECT_TRUE(inv->opts.insecure);
  EXPECT_TRUE(parse({"--help"}, error)->help);
}

TEST(probe_cmd, secret_mints_rest_credentials) {
  std::string error;
  auto inv = parse({"turn:a", "--secret", "s3cret"}, error);
  ASSERT_TRUE(inv) << error;
  EXPECT_EQ(inv->opts.auth->username, "1700000600:probe");
  EXPECT_EQ(inv->opts.auth->password, auth::rest_password("s3cret", "1700000600:probe"));
  inv = parse({"turn:a", "--secret", "s3cret", "--user", "ops", "--ttl", "60"}, error);
  ASSERT_TRUE(inv) << error;
  EXPECT_EQ(inv->opts.auth->username, "1700000060:ops");
}

TEST(probe_cmd, bad_arguments_are_refused_with_a_message) {
  EXPECT_NE(refused({}).find("no URL"), std::string::npos);
  EXPECT_NE(refused({"turn:a", "--count", "x"}).find("--count: not a number"), std::string::npos);
  EXPECT_NE(refused({"turn:a", "--count", "0"}).find("out of range"), std::string::npos);
  EXPECT_NE(refused({"turn:a", "--count", "1001"}).find("out of range"), std::string::npos);
  EXPECT_NE(refused({"turn:a", "--size", "15"}).find("--size"), std::string::npos);
  EXPECT_NE(refused({"turn:a", "--size", "1201"}).find("--size"), std::string::npos);
  refused({"turn:a", "--interval-ms", "-1"});
  refused({"turn:a", "--timeout-s", "0"});
  refused({"turn:a", "--timeout-s", "abc"});
  refused({"turn:a", "--ttl", "0", "--secret", "s"});
  EXPECT_NE(refused({"turn:a", "--user", "u"}).find("--password"), std::string::npos);
  EXPECT_NE(refused({"turn:a", "--password", "p"}).find("--user"), std::string::npos);
  EXPECT_NE(refused({"turn:a", "--secret", "s", "--user", "u", "--password", "p"}).find("exclude"),
            std::string::npos);
  EXPECT_NE(refused({"turns:a", "--ca", "f", "--insecure"}).find("exclude"), std::string::npos);
  EXPECT_NE(refused({"turn:a", "--ttl", "60"}).find("--secret"), std::string::npos);
  EXPECT_NE(refused({"turn:a", "--bogus"}).find("unknown flag '--bogus'"), std::string::npos);
  EXPECT_NE(refused({"turn:a", "--count"}).find("needs a value"), std::string::npos);
  EXPECT_NE(refused({"turn:a", "--json=1"}).find("takes no value"), std::string::npos);
  EXPECT_NE(refused({"http://a"}).find("bad URL 'http://a'"), std::string::npos);
  EXPECT_NE(refused({"turns:a?transport=udp"}).find("turns: only transport=tcp"), std::string::npos);
}

TEST(probe_cmd, exit_codes) {
  std::string out, err;
  EXPECT_EQ(exit_code({"--bogus", "turn:a"}, out, err), probe_bad_arguments);
  EXPECT_NE(err.find("unknown flag"), std::string::npos);
  EXPECT_EQ(exit_code({"--help"}, out, err), probe_passed);
  EXPECT_NE(out.find("--timeout-s"), std::string::npos);

  // A closed TCP port on loopback: exit 1, phase connect, in text and JSON.
  const test::loopback_socket closed(SOCK_STREAM);
  const std::string url = "turn:127.0.0.1:" + closed.port_text() + "?transport=tcp";
  EXPECT_EQ(exit_code({url.c_str(), "--timeout-s", "2"}, out, err), probe_failed);
  EXPECT_NE(out.find("FAIL"), std::string::npos) << out;
  EXPECT_NE(out.find("connect: connection refused"), std::string::npos) << out;
  EXPECT_EQ(exit_code({url.c_str(), url.c_str(), "--json"}, out, err), probe_failed);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 2) << out;
  EXPECT_NE(out.find("\"error\":\"connect: connection refused\""), std::string::npos) << out;
}

}  // namespace
}  // namespace anyturn::app
