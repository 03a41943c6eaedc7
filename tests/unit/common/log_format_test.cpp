// src/common/log_format.cpp: the text and JSON log formats and the
// per-thread log fields (include/anyturn/common/log_context.hpp).
#include <anyturn/common/log_context.hpp>
#include <anyturn/common/log_format.hpp>

#include <boost/json.hpp>
#include <gtest/gtest.h>
#include <spdlog/details/log_msg.h>

#include <chrono>
#include <string>
#include <thread>

namespace anyturn::common {
namespace {

// 2026-01-02T03:04:05.678Z
spdlog::log_clock::time_point fixed_time() {
  return spdlog::log_clock::time_point(std::chrono::milliseconds(1767323045678LL));
}

std::string format(log_format f, std::string_view text, spdlog::level::level_enum level = spdlog::level::info) {
  const spdlog::details::log_msg msg(fixed_time(), spdlog::source_loc{}, "anyturn", level,
                                     spdlog::string_view_t(text.data(), text.size()));
  spdlog::memory_buf_t buf;
  make_log_formatter(f)->format(msg, buf);
  return std::string(buf.data(), buf.size());
}

// A string member, or "<missing>".
std::string str(const boost::json::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string("<missing>");
}

boost::json::object parse_line(const std::string& line) {
  EXPECT_FALSE(line.empty());
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line per record";
  boost::system::error_code ec;
  auto v = boost::json::parse(line, ec);
  EXPECT_FALSE(ec) << ec.message() << ": " << line;
  if (ec || !v.is_object()) return {};
  return v.as_object();
}

TEST(log_format, parses_the_two_names_and_nothing_else) {
  EXPECT_EQ(parse_log_format("text"), log_format::text);
  EXPECT_EQ(parse_log_format("json"), log_format::json);
  EXPECT_FALSE(parse_log_format("JSON"));
  EXPECT_FALSE(parse_log_format(""));
  EXPECT_FALSE(parse_log_format("logfmt"));
}

TEST(log_format, json_line_without_context_has_ts_level_msg_only) {
  const auto line = format(log_format::json, "hello", spdlog::level::warn);
  EXPECT_EQ(line, "{\"ts\":\"2026-01-02T03:04:05.678Z\",\"level\":\"warn\",\"msg\":\"hello\"}\n");
  const auto o = parse_line(line);
  EXPECT_EQ(o.size(), 3u);
  for (const char* absent : {"worker", "session", "user", "tenant", "client", "relay", "peer"})
    EXPECT_FALSE(o.contains(absent)) << absent;
}

TEST(log_format, json_levels_use_the_config_names) {
  EXPECT_EQ(str(parse_line(format(log_format::json, "x", spdlog::level::err)), "level"), "error");
  EXPECT_EQ(str(parse_line(format(log_format::json, "x", spdlog::level::trace)), "level"), "trace");
  EXPECT_EQ(str(parse_line(format(log_format::json, "x", spdlog::level::critical)), "level"), "critical");
}

TEST(log_format, json_carries_every_field_of_the_scope_and_drops_them_after) {
  this_thread_log_fields().worker = 3;
  {
    log_scope scope;
    scope.session(0x0300000700000002ull).user("1767323045:acme:alice").tenant("acme")
        .client("192.0.2.1:5000").relay("198.51.100.2:49152").peer("203.0.113.9:7000");
    const auto o = parse_line(format(log_format::json, "allocation start"));
    EXPECT_EQ(str(o, "msg"), "allocation start");
    EXPECT_EQ(o.at("worker").as_int64(), 3);
    EXPECT_EQ(str(o, "session"), "0300000700000002");
    EXPECT_EQ(str(o, "user"), "1767323045:acme:alice");
    EXPECT_EQ(str(o, "tenant"), "acme");
    EXPECT_EQ(str(o, "client"), "192.0.2.1:5000");
    EXPECT_EQ(str(o, "relay"), "198.51.100.2:49152");
    EXPECT_EQ(str(o, "peer"), "203.0.113.9:7000");
    {
      log_scope inner;  // nested: adds a field, keeps the rest
      inner.peer("203.0.113.10:1");
      EXPECT_EQ(str(parse_line(format(log_format::json, "x")), "peer"), "203.0.113.10:1");
    }
    EXPECT_EQ(str(parse_line(format(log_format::json, "x")), "peer"), "203.0.113.9:7000");
  }
  const auto after = parse_line(format(log_format::json, "after"));
  EXPECT_EQ(after.at("worker").as_int64(), 3);  // the worker index stays for the thread
  for (const char* absent : {"session", "user", "tenant", "client", "relay", "peer"})
    EXPECT_FALSE(after.contains(absent)) << absent;
  this_thread_log_fields().worker = -1;
}

TEST(log_format, fields_are_per_thread) {
  log_scope scope;
  scope.user("alice");
  std::string other;
  std::thread([&] { other = format(log_format::json, "elsewhere"); }).join();
  EXPECT_FALSE(parse_line(other).contains("user"));
  EXPECT_EQ(str(parse_line(format(log_format::json, "here")), "user"), "alice");
}

TEST(log_format, json_escapes_quotes_backslashes_and_control_characters) {
  const std::string nasty = std::string("a\"b\\c\nd\re\tf") + '\x01' + '\x1f' + '\x7f' + "g";
  log_scope scope;
  scope.user(nasty);
  const auto line = format(log_format::json, nasty);
  EXPECT_NE(line.find(R"(a\"b\\c\nd\re\tf\u0001\u001f\u007fg)"), std::string::npos) << line;
  const auto o = parse_line(line);
  EXPECT_EQ(str(o, "msg"), nasty);
  EXPECT_EQ(str(o, "user"), nasty);
}

TEST(log_format, json_keeps_utf8_and_replaces_invalid_bytes) {
  // "é", "€", "😀" are well formed; a lone continuation byte, a truncated
  // sequence, an overlong form and a surrogate are not.
  const std::string good = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
  EXPECT_EQ(str(parse_line(format(log_format::json, good)), "msg"), good);
  const std::string bad = std::string("x\x80y\xe2\x82z\xc0\xaf\xed\xa0\x80") + "\xff";
  const auto line = format(log_format::json, bad);
  const auto o = parse_line(line);
  const std::string msg = str(o, "msg");
  EXPECT_EQ(msg.substr(0, 1), "x");
  EXPECT_NE(msg.find("\xef\xbf\xbd"), std::string::npos);  // U+FFFD
  EXPECT_EQ(msg.find('\x80', 4), std::string::npos) << "no raw invalid byte survives";
}

TEST(log_format, text_appends_the_fields_that_are_set) {
  EXPECT_EQ(format(log_format::text, "plain").find("session="), std::string::npos);
  log_scope scope;
  scope.session(0x00000001000000ffull).user("bob").client("[2001:db8::1]:3478");
  const auto line = format(log_format::text, "allocation end");
  EXPECT_NE(line.find(" info [") , std::string::npos) << line;
  EXPECT_NE(line.find("allocation end session=00000001000000ff user=bob client=[2001:db8::1]:3478\n"),
            std::string::npos)
      << line;
  EXPECT_EQ(line.find("tenant="), std::string::npos);
  EXPECT_EQ(line.find("relay="), std::string::npos);
}

TEST(log_format, text_escapes_a_newline_in_a_field) {
  log_scope scope;
  scope.user("evil\nforged line");
  const auto line = format(log_format::text, "m");
  EXPECT_EQ(line.find('\n'), line.size() - 1) << line;
  EXPECT_NE(line.find("user=evil\\nforged line"), std::string::npos) << line;
}

}  // namespace
}  // namespace anyturn::common
