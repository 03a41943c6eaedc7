#include <anyturn/metrics/usage_log.hpp>

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include <unistd.h>

namespace anyturn::metrics {
namespace {

std::string temp_path(const char* name) {
  return (std::filesystem::temp_directory_path() /
          (std::string("anyturn-usage-") + std::to_string(::getpid()) + "-" + name))
      .string();
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

turn::usage_record sample() {
  turn::usage_record r;
  r.tenant = "acme";
  r.user = "1700000000:acme:\"quoted\"\\user";
  r.reason = "expired";
  r.proto = relay::transport::udp;
  r.client = *stun::endpoint::parse("203.0.113.5:40000");
  r.relay = *stun::endpoint::parse("198.51.100.7:50000");
  r.start_unix_ms = 1700000000123;
  r.end_unix_ms = 1700000600456;
  r.packets_to_peer = 3;
  r.bytes_to_peer = 600;
  r.packets_to_client = 4;
  r.bytes_to_client = 800;
  return r;
}

TEST(UsageLog, FormatsOneJsonLine) {
  std::array<char, 1024> buf{};
  const auto n = usage_log::format(sample(), buf.data(), buf.size());
  ASSERT_GT(n, 0u);
  const std::string line(buf.data(), n);
  EXPECT_EQ(line,
            "{\"tenant\":\"acme\",\"user\":\"1700000000:acme:\\\"quoted\\\"\\\\user\","
            "\"transport\":\"udp\",\"client\":\"203.0.113.5:40000\",\"relay\":\"198.51.100.7:50000\","
            "\"start\":\"2023-11-14T22:13:20.123Z\",\"end\":\"2023-11-14T22:23:20.456Z\","
            "\"duration_ms\":600333,\"packets_to_peer\":3,\"bytes_to_peer\":600,"
            "\"packets_to_client\":4,\"bytes_to_client\":800,\"reason\":\"expired\"}\n");
}

// The allocation's id comes first, as the 16 hex digits of session_id::str()
// (the "session" of its log lines); a record without one has no member.
TEST(UsageLog, WritesTheSessionIdFirst) {
  auto r = sample();
  r.session = turn::session_id{3, 0x12345, 0xabcdef01};
  std::array<char, 1024> buf{};
  const std::string line(buf.data(), usage_log::format(r, buf.data(), buf.size()));
  EXPECT_EQ(line.rfind("{\"session\":\"" + r.session->str() + "\",\"tenant\":\"acme\",", 0), 0u) << line;
  EXPECT_NE(line.find("\"session\":\"03012345abcdef01\""), std::string::npos) << line;
}

// A credential minted with a customIdentifier carries it into the record
// (auth::custom_identifier_of); without one the member is left out (above).
TEST(UsageLog, WritesTheCustomIdentifierWhenTheRecordHasOne) {
  auto r = sample();
  r.user = "1700000000:acme:3f2a~room-42";
  r.custom_identifier = "room-42";
  std::array<char, 1024> buf{};
  const std::string line(buf.data(), usage_log::format(r, buf.data(), buf.size()));
  EXPECT_NE(line.find("\"user\":\"1700000000:acme:3f2a~room-42\",\"custom_identifier\":\"room-42\","
                      "\"transport\""),
            std::string::npos)
      << line;
}

TEST(UsageLog, ControlCharactersAreEscapedAndOverflowFails) {
  auto r = sample();
  r.user = std::string_view("a\nb\x01", 4);
  std::array<char, 1024> buf{};
  const std::string line(buf.data(), usage_log::format(r, buf.data(), buf.size()));
  EXPECT_NE(line.find("\"a\\u000ab\\u0001\""), std::string::npos) << line;
  EXPECT_EQ(usage_log::format(r, buf.data(), 40), 0u);
}

TEST(UsageLog, AppendsFromManyThreadsWithoutInterleaving) {
  const auto path = temp_path("threads");
  std::filesystem::remove(path);
  {
    usage_log log(path);
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; ++t)
      ts.emplace_back([&] {
        for (int i = 0; i < 500; ++i) log.record(sample());
      });
    for (auto& t : ts) t.join();
    EXPECT_EQ(log.records_written(), 2000u);
    EXPECT_EQ(log.write_errors(), 0u);
  }
  const auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), 2000u);
  for (const auto& l : lines) {
    ASSERT_EQ(l.front(), '{');
    ASSERT_EQ(l.back(), '}');
  }
  std::filesystem::remove(path);
}

TEST(UsageLog, ReopenFollowsLogRotation) {
  const auto path = temp_path("rotate");
  const auto rotated = path + ".1";
  std::filesystem::remove(path);
  std::filesystem::remove(rotated);
  usage_log log(path);
  log.record(sample());
  std::filesystem::rename(path, rotated);
  log.record(sample());  // still the old (moved) file
  ASSERT_FALSE(log.reopen());
  log.record(sample());
  EXPECT_EQ(read_lines(rotated).size(), 2u);
  EXPECT_EQ(read_lines(path).size(), 1u);
  std::filesystem::remove(path);
  std::filesystem::remove(rotated);
}

TEST(UsageLog, UnwritablePathThrowsAtStartUp) {
  EXPECT_THROW(usage_log("/nonexistent-dir/usage.jsonl"), std::system_error);
}

}  // namespace
}  // namespace anyturn::metrics
