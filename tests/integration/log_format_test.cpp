// --log-format json against the real daemon (src/common/log_format.cpp,
// the log scopes of src/turn/): every line it writes is one JSON object with
// ts, level and msg, and the lines about an allocation carry its session id,
// the same id as its usage record, with its user, client and relay.
#include "daemon.hpp"
#include "turn_client.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace anyturn::itest {
namespace {

namespace fs = std::filesystem;
constexpr const char* realm = "log.test";

std::string read_file(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(l);
  return out;
}

template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = std::chrono::seconds{3}) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  return pred();
}

std::string member(const boost::json::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string("<missing>");
}

class LogFormat : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/anyturn-logfmt-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (daemon_ && daemon_->running()) daemon_->stop();
    std::error_code ignored;
    if (std::getenv("ANYTURN_KEEP_LOGS") == nullptr) fs::remove_all(dir_, ignored);
  }

  [[nodiscard]] ::testing::AssertionResult start(unsigned slot, const std::string& format) {
    const fs::path cfg = dir_ / "anyturn.yaml";
    std::ofstream(cfg) << "usage_log: \"" << (dir_ / "usage.jsonl").string() << "\"\n";
    std::vector<std::string> args = {"--config", cfg.string(), "--relay-ip", "127.0.0.1",
                                     "--relay-ports", relay_ports_for_slot(slot).flag(),
                                     "--realm", realm, "--allow-peer", "127.0.0.1/32",
                                     "--threads", "2", "--log-level", "debug",
                                     "--log-format", format, "--user", "alice:wonderland"};
    daemon_ = std::make_unique<daemon>(daemon::options{false, args});
    if (!daemon_->start()) return ::testing::AssertionFailure() << "not ready\n" << daemon_->log();
    return ::testing::AssertionSuccess();
  }

  // One allocation with a permission and one datagram each way, then a
  // Refresh 0: its usage record's session id.
  std::string allocate_relay_and_delete(stun::endpoint& client_addr, stun::endpoint& relayed) {
    udp_socket peer(v4_loopback());
    turn_client c(daemon_->address());
    c.set_credentials({"alice", "wonderland"});
    auto a = c.allocate();
    EXPECT_TRUE(a && a->is_success()) << describe(a);
    if (!a || !a->is_success()) return {};
    relayed = a->address(stun::attr::xor_relayed_address).value_or(stun::endpoint{});
    client_addr = c.local();
    auto perm = c.create_permission({peer.local()});
    EXPECT_TRUE(perm && perm->is_success()) << describe(perm);
    c.send_indication(peer.local(), to_bytes("hello peer"));
    EXPECT_TRUE(peer.recv(response_timeout).has_value());
    peer.send_to(relayed, to_bytes("hello client"));
    EXPECT_TRUE(c.recv_data().has_value());
    auto del = c.refresh(0);
    EXPECT_TRUE(del && del->is_success()) << describe(del);
    const fs::path usage = dir_ / "usage.jsonl";
    EXPECT_TRUE(eventually([&] { return lines_of(read_file(usage)).size() == 1; })) << read_file(usage);
    const auto records = lines_of(read_file(usage));
    if (records.size() != 1) return {};
    boost::system::error_code ec;
    const auto rec = boost::json::parse(records[0], ec);
    EXPECT_FALSE(ec) << records[0];
    if (ec || !rec.is_object()) return {};
    return member(rec.as_object(), "session");
  }

  fs::path dir_;
  std::unique_ptr<daemon> daemon_;
};

TEST_F(LogFormat, JsonLinesParseAndCarryTheAllocationsSessionId) {
  ASSERT_TRUE(start(90, "json"));
  stun::endpoint client_addr, relayed;
  const std::string session = allocate_relay_and_delete(client_addr, relayed);
  ASSERT_TRUE(std::regex_match(session, std::regex("[0-9a-f]{16}"))) << "usage record session: " << session;
  ASSERT_EQ(daemon_->stop(), 0);

  // daemon::log() starts with one "---- <command line>" header of its own.
  std::vector<std::string> lines = lines_of(daemon_->log());
  ASSERT_FALSE(lines.empty());
  ASSERT_EQ(lines.front().rfind("---- ", 0), 0u) << lines.front();
  lines.erase(lines.begin());
  ASSERT_GE(lines.size(), 3u) << daemon_->log();

  const std::regex ts_format(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)");
  const std::vector<std::string> levels = {"trace", "debug", "info", "warn", "error", "critical"};
  int start_lines = 0, end_lines = 0, with_session = 0;
  for (const auto& line : lines) {
    boost::system::error_code ec;
    const auto v = boost::json::parse(line, ec);
    ASSERT_FALSE(ec) << "not JSON: " << line;
    ASSERT_TRUE(v.is_object()) << line;
    const auto& o = v.as_object();
    EXPECT_TRUE(std::regex_match(member(o, "ts"), ts_format)) << line;
    EXPECT_NE(std::find(levels.begin(), levels.end(), member(o, "level")), levels.end()) << line;
    EXPECT_NE(member(o, "msg"), "<missing>") << line;
    for (const auto& [key, value] : o) {
      static const std::vector<std::string> known = {"ts",     "level", "msg",    "worker", "session",
                                                     "user",   "tenant", "client", "relay",  "peer"};
      EXPECT_NE(std::find(known.begin(), known.end(), std::string(key)), known.end())
          << "unknown field " << key << ": " << line;
      (void)value;
    }
    const std::string msg = member(o, "msg");
    const bool about_it = msg.rfind("allocation start", 0) == 0 || msg.rfind("allocation end", 0) == 0;
    if (o.contains("session")) {
      ++with_session;
      EXPECT_EQ(member(o, "session"), session) << line;  // the only allocation of this run
    }
    if (!about_it) continue;
    start_lines += msg.rfind("allocation start", 0) == 0;
    end_lines += msg.rfind("allocation end", 0) == 0;
    EXPECT_EQ(member(o, "session"), session) << line;
    EXPECT_EQ(member(o, "user"), "alice") << line;
    EXPECT_EQ(member(o, "client"), client_addr.to_string()) << line;
    EXPECT_EQ(member(o, "relay"), relayed.to_string()) << line;
    EXPECT_FALSE(o.contains("tenant")) << "the default tenant has no id: " << line;
    ASSERT_TRUE(o.contains("worker")) << line;
    EXPECT_TRUE(o.at("worker").is_int64()) << line;
  }
  EXPECT_EQ(start_lines, 1) << daemon_->log();
  EXPECT_EQ(end_lines, 1) << daemon_->log();
  EXPECT_GE(with_session, start_lines + end_lines) << daemon_->log();
}

TEST_F(LogFormat, TextLinesEndWithTheAllocationsFields) {
  ASSERT_TRUE(start(91, "text"));
  stun::endpoint client_addr, relayed;
  const std::string session = allocate_relay_and_delete(client_addr, relayed);
  ASSERT_FALSE(session.empty());
  ASSERT_EQ(daemon_->stop(), 0);
  int found = 0;
  for (const auto& line : lines_of(daemon_->log())) {
    EXPECT_NE(line.front(), '{') << line;
    if (line.find("allocation start") == std::string::npos && line.find("allocation end") == std::string::npos)
      continue;
    ++found;
    EXPECT_NE(line.find(" session=" + session + " user=alice client=" + client_addr.to_string() +
                        " relay=" + relayed.to_string()),
              std::string::npos)
        << line;
  }
  EXPECT_EQ(found, 2) << daemon_->log();
}

}  // namespace
}  // namespace anyturn::itest
