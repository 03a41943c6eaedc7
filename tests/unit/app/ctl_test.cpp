// `anyturn ctl` (src/app/ctl.cpp) against a real side HTTP server on
// loopback whose hooks are fakes: arguments, the key's sources, the
// requests it sends, its table and --json output, and its exit codes.
#include <anyturn/app/ctl.hpp>
#include <anyturn/http/server.hpp>

#include "temp_dir.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <mutex>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace anyturn::app {
namespace {

constexpr const char* key = "ctl-admin-key-0123456789";

struct seen {
  std::mutex m;
  std::vector<turn::session_query> queries;
  std::vector<turn::session_id> ended;
  std::vector<turn::session_filter> bulk;
  std::vector<auth::revocation> revoked;
  bool draining = false;
};

turn::session_info session(std::uint32_t slot, const char* user, const char* client) {
  turn::session_info s;
  s.id = turn::session_id{0, slot, 1};
  s.user = user;
  s.client = *stun::endpoint::parse(client);
  s.server = *stun::endpoint::parse("127.0.0.1:3478");
  s.relayed = {*stun::endpoint::parse("127.0.0.1:50001")};
  s.bytes_to_peer = 1234;
  s.packets_to_peer = 2;
  s.age_s = 75;
  s.expires_in_s = 525;
  return s;
}

class Ctl : public ::testing::Test {
 protected:
  void SetUp() override {
    http::server_config cfg;
    cfg.port = 0;
    cfg.admin_keys = {key};
    cfg.list_sessions = [this](const turn::session_query& q) {
      std::lock_guard lock(seen_.m);
      seen_.queries.push_back(q);
      turn::session_listing l;
      if (q.from.worker == 0) {
        l.sessions.push_back(session(1, "alice", "127.0.0.1:40000"));
        l.sessions.push_back(session(2, "a-much-longer-user-name", "127.0.0.1:40001"));
        l.next = turn::session_cursor{1, 0};
      } else {
        l.sessions.push_back(session(3, "bob", "127.0.0.1:40002"));
      }
      return l;
    };
    cfg.end_session = [this](const turn::session_id& id) {
      std::lock_guard lock(seen_.m);
      seen_.ended.push_back(id);
      return id.slot == 1;
    };
    cfg.end_sessions = [this](const turn::session_filter& f) {
      std::lock_guard lock(seen_.m);
      seen_.bulk.push_back(f);
      return std::size_t{2};
    };
    cfg.revoke = [this](const auth::revocation& r) {
      std::lock_guard lock(seen_.m);
      seen_.revoked.push_back(r);
    };
    cfg.drain = [this] {
      std::lock_guard lock(seen_.m);
      const bool changed = !seen_.draining;
      seen_.draining = true;
      return changed;
    };
    cfg.draining = [this] {
      std::lock_guard lock(seen_.m);
      return seen_.draining;
    };
    cfg.allocations = [] { return std::uint64_t{3}; };
    server_ = std::make_unique<http::server>(cfg);
    server_->start();
    url_ = "http://127.0.0.1:" + std::to_string(server_->port());
  }

  // Runs `anyturn ctl ARGS` with --url and, unless `with_key` is false, --key.
  int ctl(std::vector<std::string> args, bool with_key = true, const char* env_key = nullptr) {
    std::vector<std::string> all{"anyturn", "ctl", "--url", url_};
    if (with_key) {
      all.push_back("--key");
      all.push_back(key);
    }
    all.insert(all.end(), args.begin(), args.end());
    std::vector<const char*> argv;
    for (const auto& a : all) argv.push_back(a.c_str());
    out_.str({});
    err_.str({});
    return run_ctl(static_cast<int>(argv.size()), argv.data(), env_key, out_, err_);
  }

  seen seen_;
  std::unique_ptr<http::server> server_;
  std::string url_;
  std::ostringstream out_, err_;
};

TEST_F(Ctl, SessionsTableLinesUp) {
  ASSERT_EQ(ctl({"sessions"}), 0) << err_.str();
  const std::string text = out_.str();
  std::istringstream lines(text);
  std::string header, row1, row2, total;
  std::getline(lines, header);
  std::getline(lines, row1);
  std::getline(lines, row2);
  std::getline(lines, total);
  EXPECT_TRUE(header.starts_with("ID                USER")) << text;
  // Every column starts at the same offset on every line.
  for (const char* column : {"USER", "CLIENT", "RELAYED", "AGE", "EXPIRES"}) {
    const auto at = header.find(column);
    ASSERT_NE(at, std::string::npos) << column;
    EXPECT_EQ(row1[at - 1], ' ') << column << "\n" << text;
    EXPECT_EQ(row2[at - 1], ' ') << column << "\n" << text;
    EXPECT_NE(row1[at], ' ') << column << "\n" << text;
    EXPECT_NE(row2[at], ' ') << column << "\n" << text;
  }
  EXPECT_NE(row1.find("0000000100000001"), std::string::npos);
  EXPECT_NE(row1.find("2/1234"), std::string::npos);
  EXPECT_NE(row1.find(" 75s "), std::string::npos);
  EXPECT_NE(row1.find("8m45s"), std::string::npos);
  EXPECT_EQ(total, "2 sessions");
  EXPECT_NE(err_.str().find("--cursor 010000000000"), std::string::npos) << err_.str();
}

TEST_F(Ctl, SessionsPassesFiltersAndAllFollowsTheCursor) {
  ASSERT_EQ(ctl({"sessions", "--user", "al ice", "--transport", "udp", "--client", "127.0.0.1", "--limit", "5",
                 "--all"}),
            0)
      << err_.str();
  std::lock_guard lock(seen_.m);
  ASSERT_EQ(seen_.queries.size(), 2u);
  EXPECT_EQ(seen_.queries[0].filter.user, "al ice");
  EXPECT_EQ(seen_.queries[0].filter.transport, relay::transport::udp);
  EXPECT_EQ(seen_.queries[0].filter.client, stun::endpoint::parse("127.0.0.1:0"));
  EXPECT_EQ(seen_.queries[0].limit, 5u);
  EXPECT_EQ(seen_.queries[1].from, (turn::session_cursor{1, 0}));
  EXPECT_NE(out_.str().find("3 sessions"), std::string::npos) << out_.str();
}

TEST_F(Ctl, JsonPrintsTheServersAnswer) {
  ASSERT_EQ(ctl({"--json", "status"}), 0) << err_.str();
  EXPECT_EQ(out_.str().substr(0, 11), "{\"version\":");
  EXPECT_NE(out_.str().find("\"allocations\":3"), std::string::npos);
  ASSERT_EQ(ctl({"sessions", "--json"}), 0);
  EXPECT_EQ(out_.str().substr(0, 13), "{\"sessions\":[");
  EXPECT_NE(out_.str().find("\"next\":\"010000000000\""), std::string::npos);
}

TEST_F(Ctl, StatusDrainDisconnectRevoke) {
  ASSERT_EQ(ctl({"status"}), 0) << err_.str();
  // One column: the values start where the longest key ends.
  EXPECT_TRUE(std::regex_search(out_.str(), std::regex("\ndraining: +false\n"))) << out_.str();
  EXPECT_TRUE(std::regex_search(out_.str(), std::regex("\nconfig_generation: +-\n"))) << out_.str();
  ASSERT_EQ(ctl({"drain"}), 0) << err_.str();
  EXPECT_NE(out_.str().find("changed:   true"), std::string::npos) << out_.str();

  ASSERT_EQ(ctl({"disconnect", "0000000100000001"}), 0) << err_.str();
  EXPECT_EQ(ctl({"disconnect", "0000000200000001"}), 1);
  EXPECT_NE(err_.str().find("404"), std::string::npos) << err_.str();
  EXPECT_NE(err_.str().find("no such session"), std::string::npos);
  ASSERT_EQ(ctl({"disconnect", "--user", "bob", "--tenant", "acme"}), 0) << err_.str();
  EXPECT_NE(out_.str().find("ended:  2"), std::string::npos) << out_.str();

  ASSERT_EQ(ctl({"revoke", "--user", "carol", "--tenant", "acme", "--ttl", "60"}), 0) << err_.str();
  ASSERT_EQ(ctl({"revoke", "static-user"}), 0) << err_.str();
  std::lock_guard lock(seen_.m);
  ASSERT_EQ(seen_.ended.size(), 2u);
  EXPECT_EQ(seen_.ended[0], (turn::session_id{0, 1, 1}));
  ASSERT_EQ(seen_.bulk.size(), 1u);
  EXPECT_EQ(seen_.bulk[0].user, "bob");
  EXPECT_EQ(seen_.bulk[0].tenant, "acme");
  ASSERT_EQ(seen_.revoked.size(), 2u);
  EXPECT_EQ(seen_.revoked[0].tenant, "acme");
  EXPECT_EQ(seen_.revoked[0].user, "carol");
  EXPECT_EQ(seen_.revoked[1].username, "static-user");
}

TEST_F(Ctl, KeyComesFromFlagFileOrEnvironment) {
  EXPECT_EQ(ctl({"status"}, false), 1);
  EXPECT_NE(err_.str().find("401"), std::string::npos) << err_.str();
  EXPECT_NE(err_.str().find("missing admin key"), std::string::npos) << err_.str();
  EXPECT_EQ(ctl({"status"}, false, key), 0) << err_.str();
  EXPECT_EQ(ctl({"status", "--key", "wrong"}, false), 1);
  EXPECT_NE(err_.str().find("invalid admin key"), std::string::npos);
  test::temp_dir dir;
  const std::string file = (dir.path() / "key").string();
  std::ofstream(file) << key << "\n";
  EXPECT_EQ(ctl({"status", "--key-file", file}, false), 0) << err_.str();
}

TEST_F(Ctl, BadArgumentsExit2AndUnreachableExits1) {
  EXPECT_EQ(ctl({}), 2);
  EXPECT_EQ(ctl({"frobnicate"}), 2);
  EXPECT_EQ(ctl({"status", "--colour"}), 2);
  EXPECT_EQ(ctl({"status", "extra"}), 2);
  EXPECT_EQ(ctl({"disconnect"}), 2);
  EXPECT_EQ(ctl({"revoke"}), 2);
  EXPECT_EQ(ctl({"status", "--key-file", "/nonexistent/key"}, false), 2);
  EXPECT_EQ(ctl({"status", "--key", "a", "--key-file", "b"}, false), 2);
  EXPECT_EQ(ctl({"status", "--url", "ftp://x"}), 2);
  EXPECT_EQ(ctl({"--help"}), 0);
  EXPECT_NE(out_.str().find("Usage: anyturn ctl"), std::string::npos);
  const std::uint16_t port = server_->port();
  server_->stop();
  url_ = "http://127.0.0.1:" + std::to_string(port);
  EXPECT_EQ(ctl({"status"}), 1);
  EXPECT_NE(err_.str().find("cannot connect"), std::string::npos) << err_.str();
}

TEST(CtlUrl, ParsesHostsPortsAndSchemes) {
  const auto a = parse_ctl_url("http://127.0.0.1:9641");
  ASSERT_TRUE(a);
  EXPECT_FALSE(a->tls);
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, "9641");
  const auto b = parse_ctl_url("https://[::1]:8443/prefix/");
  ASSERT_TRUE(b);
  EXPECT_TRUE(b->tls);
  EXPECT_EQ(b->host, "::1");
  EXPECT_EQ(b->port, "8443");
  EXPECT_EQ(b->base_path, "/prefix");
  EXPECT_EQ(parse_ctl_url("https://turn.example.com")->port, "443");
  EXPECT_FALSE(parse_ctl_url("127.0.0.1:9641"));
  EXPECT_FALSE(parse_ctl_url("http://:80"));
  EXPECT_FALSE(parse_ctl_url("http://h:0"));
  EXPECT_FALSE(parse_ctl_url("http://h:99999"));
  EXPECT_FALSE(parse_ctl_url("http://[::1"));
}

TEST(CtlTable, ColumnsAreAsWideAsTheirWidestCell) {
  EXPECT_EQ(format_table({{"A", "BB", "C"}, {"long", "x", "y"}}), "A     BB  C\nlong  x   y\n");
  EXPECT_EQ(format_table({}), "");
}

}  // namespace
}  // namespace anyturn::app
