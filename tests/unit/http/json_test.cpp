#include <anyturn/http/json.hpp>

#include <gtest/gtest.h>

namespace anyturn::http::json {
namespace {

object parse_ok(std::string_view text) {
  parse_error err;
  auto obj = parse_flat_object(text, err);
  EXPECT_TRUE(obj) << text << " -> " << err.message << " at " << err.offset;
  return obj ? *obj : object{};
}

parse_error parse_bad(std::string_view text) {
  parse_error err;
  EXPECT_FALSE(parse_flat_object(text, err)) << text;
  EXPECT_FALSE(err.message.empty()) << text;
  return err;
}

TEST(json, parses_scalar_members) {
  const object o = parse_ok(
      " {\"ttl\": 3600, \"user\" : \"alice\", \"f\": -1.5e2, \"t\": true, \"n\": null, \"z\": 0} \n");
  ASSERT_EQ(o.members.size(), 6u);
  ASSERT_NE(o.find("ttl"), nullptr);
  EXPECT_EQ(o.find("ttl")->type, value::kind::number);
  EXPECT_EQ(o.find("ttl")->number, 3600);
  EXPECT_EQ(o.find("ttl")->text, "3600");
  EXPECT_EQ(o.find("user")->text, "alice");
  EXPECT_EQ(o.find("f")->number, -150);
  EXPECT_TRUE(o.find("t")->boolean);
  EXPECT_EQ(o.find("n")->type, value::kind::null);
  EXPECT_EQ(o.find("z")->number, 0);
  EXPECT_EQ(o.find("missing"), nullptr);
  EXPECT_TRUE(parse_ok("{}").members.empty());
}

TEST(json, decodes_escapes_and_surrogate_pairs) {
  const object o = parse_ok(R"({"s": "a\"b\\c\/d\b\f\n\r\t\u00e9\u20ac\ud83d\ude00"})");
  EXPECT_EQ(o.find("s")->text, "a\"b\\c/d\b\f\n\r\t\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80");
  EXPECT_EQ(parse_ok("{\"k\": \"h\xC3\xA9llo\"}").find("k")->text, "h\xC3\xA9llo");
}

TEST(json, rejects_malformed_input) {
  for (std::string_view bad : {
           "", " ", "[]", "\"x\"", "{", "}", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{,}",
           "{\"a\":1 \"b\":2}", "{\"a\":1}x", "{\"a\":1}{}", "{a:1}", "{'a':1}",
           "{\"a\":01}", "{\"a\":1.}", "{\"a\":.5}", "{\"a\":+1}", "{\"a\":1e}", "{\"a\":-}",
           "{\"a\":NaN}", "{\"a\":Infinity}", "{\"a\":tru}", "{\"a\":nul}", "{\"a\":True}",
           "{\"a\":{}}", "{\"a\":[1]}", "{\"a\":1,\"a\":2}", "{\"a\":\"x}", "{\"a\":\"\\x\"}",
           "{\"a\":\"\\u12\"}", "{\"a\":\"\\ud83d\"}", "{\"a\":\"\\ude00\"}",
           "{\"a\":\"\\ud83d\\u0041\"}", "{\"a\":\"tab\there\"}", "{\"a\":1e999}",
           "\xEF\xBB\xBF{}",              // BOM
           "{\"a\":\"\xC3\"}",            // truncated UTF-8
           "{\"a\":\"\xC0\xAF\"}",        // overlong
           "{\"a\":\"\xED\xA0\x80\"}",    // UTF-8 encoded surrogate
           "{\"a\":\"\xF4\x90\x80\x80\"}",  // above U+10FFFF
           "{\"a\":1} // comment",
       }) {
    parse_bad(bad);
  }
}

TEST(json, error_offset_points_at_the_problem) {
  EXPECT_EQ(parse_bad("{\"a\": 1, \"b\": x}").offset, 14u);
  EXPECT_EQ(parse_bad("{\"a\":1}  !").offset, 9u);
}

TEST(json, string_output_escapes_and_stays_valid) {
  EXPECT_EQ(quote("plain"), "\"plain\"");
  EXPECT_EQ(quote("q\"b\\s\n\r\t\b\f"), "\"q\\\"b\\\\s\\n\\r\\t\\b\\f\"");
  EXPECT_EQ(quote(std::string_view("\x01\x1f\x7f", 3)), "\"\\u0001\\u001f\\u007f\"");
  EXPECT_EQ(quote("\xC3\xA9"), "\"\xC3\xA9\"");
  EXPECT_EQ(quote("a\xFF" "b"), "\"a\xEF\xBF\xBD" "b\"");  // invalid byte -> U+FFFD
  EXPECT_EQ(quote("</script>"), "\"</script>\"");
}

TEST(json, round_trip_through_parser) {
  const std::string nasty = "k\"\\\n\x01\xE2\x82\xAC end";
  std::string doc = "{\"v\":" + quote(nasty) + "}";
  EXPECT_EQ(parse_ok(doc).find("v")->text, nasty);
}

TEST(json, utf8_validation) {
  EXPECT_TRUE(is_valid_utf8("abc\xC3\xA9\xF0\x9F\x98\x80"));
  EXPECT_FALSE(is_valid_utf8("\x80"));
  EXPECT_FALSE(is_valid_utf8("\xE2\x82"));
}

}  // namespace
}  // namespace anyturn::http::json
