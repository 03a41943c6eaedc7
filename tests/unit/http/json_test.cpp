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

TEST(json, numbers_keep_their_source_text) {
  const object o = parse_ok(
      R"({"a": 1.50, "b": -0, "c": 1E+2, "d": 123456789012345678901234567890,)"
      R"( "e": 18446744073709551615, "f": -9223372036854775808, "g": 0.1})");
  EXPECT_EQ(o.find("a")->text, "1.50");
  EXPECT_EQ(o.find("a")->number, 1.5);
  EXPECT_EQ(o.find("b")->text, "-0");
  EXPECT_EQ(o.find("c")->text, "1E+2");
  EXPECT_EQ(o.find("c")->number, 100);
  EXPECT_EQ(o.find("d")->text, "123456789012345678901234567890");
  EXPECT_EQ(o.find("d")->number, 123456789012345678901234567890.0);
  EXPECT_EQ(o.find("e")->number, 18446744073709551615.0);
  EXPECT_EQ(o.find("f")->number, -9223372036854775808.0);
  EXPECT_EQ(o.find("g")->number, 0.1);
  for (const member& m : o.members) EXPECT_EQ(m.val.type, value::kind::number) << m.key;
}

TEST(json, out_of_range_numbers_are_refused_at_their_start) {
  for (std::string_view bad : {"{\"a\":1e999}", "{\"a\":-1e999}", "{\"a\":1e-999}"}) {
    const parse_error err = parse_bad(bad);
    EXPECT_EQ(err.offset, 5u) << bad;
    EXPECT_EQ(err.message, "number out of range") << bad;
  }
  // An exponent too long for Boost to count stops it inside the number.
  EXPECT_EQ(parse_bad("{\"a\":1e99999999999999999999}").message, "number out of range");
}

TEST(json, members_keep_source_order_and_escaped_keys_decode) {
  const object o = parse_ok(R"({"z": 1, "a\nb": 2, "\u00e9": "x", "": null})");
  ASSERT_EQ(o.members.size(), 4u);
  EXPECT_EQ(o.members[0].key, "z");
  EXPECT_EQ(o.members[1].key, "a\nb");
  EXPECT_EQ(o.members[2].key, "\xC3\xA9");
  EXPECT_EQ(o.members[3].key, "");
}

TEST(json, long_escaped_strings_arrive_whole) {
  // Escaped strings reach the handler in pieces; they must be joined.
  std::string expected;
  std::string doc = "{\"k\":\"";
  for (int i = 0; i < 3000; ++i) {
    doc += "\\u00e9\\n";
    expected += "\xC3\xA9\n";
  }
  doc += "\"}";
  EXPECT_EQ(parse_ok(doc).find("k")->text, expected);
}

TEST(json, duplicate_keys_are_refused) {
  const parse_error err = parse_bad(R"({"a":1,"a":2})");
  EXPECT_EQ(err.message, "duplicate key");
  EXPECT_EQ(err.offset, 9u);  // the second key's closing quote
  // Keys are compared decoded: "a\u0062" is "ab".
  EXPECT_EQ(parse_bad(R"({"ab":1,"a\u0062":2})").message, "duplicate key");
  EXPECT_EQ(parse_bad(R"({"a":1,"b":2,"a":null})").message, "duplicate key");
  EXPECT_EQ(parse_ok(R"({"a":1,"A":2})").members.size(), 2u);
}

TEST(json, nesting_is_refused_at_the_nested_value) {
  for (std::string_view bad : {R"({"a":{}})", R"({"a":[]})", R"({"a":{"b":{"c":[1]}}})",
                               R"({"a":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]})"}) {
    const parse_error err = parse_bad(bad);
    EXPECT_EQ(err.offset, 5u) << bad;
    EXPECT_EQ(err.message, "nested objects and arrays are not accepted here") << bad;
  }
  const parse_error top = parse_bad(" [{}]");
  EXPECT_EQ(top.offset, 1u);
  EXPECT_EQ(top.message, "expected '{'");
  EXPECT_EQ(parse_bad("\"x\"").message, "expected '{'");
  EXPECT_EQ(parse_bad("").offset, 0u);
  EXPECT_EQ(parse_bad(" \n").offset, 2u);
}

TEST(json, size_is_limited) {
  // {"k":"xx...x"} of exactly max_object_bytes is accepted; one byte more is not.
  std::string doc = "{\"k\":\"" + std::string(max_object_bytes - 8, 'x') + "\"}";
  ASSERT_EQ(doc.size(), max_object_bytes);
  EXPECT_EQ(parse_ok(doc).find("k")->text.size(), max_object_bytes - 8);
  doc += ' ';
  const parse_error err = parse_bad(doc);
  EXPECT_EQ(err.offset, max_object_bytes);
  EXPECT_NE(err.message.find("longer than"), std::string::npos) << err.message;
}

TEST(json, trailing_garbage_is_refused_after_whitespace) {
  EXPECT_EQ(parse_bad("{}x").offset, 2u);
  EXPECT_EQ(parse_bad("{} {}").offset, 3u);
  EXPECT_EQ(parse_bad("{}\n\t,").offset, 4u);
  EXPECT_EQ(parse_bad("{} /**/").offset, 3u);
  EXPECT_EQ(parse_bad(std::string_view("{}\0", 3)).offset, 2u);
  EXPECT_EQ(parse_bad("{\"a\":1}x").message, "trailing characters after the object");
  EXPECT_TRUE(parse_ok("\r\n\t {} \r\n\t").members.empty());
}

TEST(json, invalid_utf8_is_refused_in_keys_and_values) {
  for (std::string_view bad : {"{\"a\":\"\xFF\"}", "{\"a\":\"\xC3\"}", "{\"a\":\"\xC0\xAF\"}",
                               "{\"a\":\"\xED\xA0\x80\"}", "{\"a\":\"\xF4\x90\x80\x80\"}",
                               "{\"a\":\"\xE2\x82\"}", "{\"a\":\"\x80\"}"}) {
    const parse_error err = parse_bad(bad);
    EXPECT_EQ(err.offset, 6u) << bad;
    EXPECT_EQ(err.message, "invalid UTF-8") << bad;
  }
  const parse_error key = parse_bad("{\"k\xC3\":1}");
  EXPECT_EQ(key.offset, 3u);
  EXPECT_EQ(key.message, "invalid UTF-8");
  // Valid UTF-8 outside a string is a syntax error, not an encoding one.
  EXPECT_EQ(parse_bad("{\"a\":\xC3\xA9}").message, "unexpected character");
  EXPECT_EQ(parse_ok("{\"\xF0\x9F\x98\x80\":\"\xF4\x8F\xBF\xBF\"}").members[0].key, "\xF0\x9F\x98\x80");
}

TEST(json, syntax_errors_name_what_was_found) {
  EXPECT_EQ(parse_bad("{\"a\":1 \"b\":2}").message, "unexpected '\"'");
  EXPECT_EQ(parse_bad("{\"a\":1,}").message, "unexpected '}'");
  EXPECT_EQ(parse_bad("{\"a\":\"tab\there\"}").message, "unexpected control character");
  const parse_error eof = parse_bad("{\"a\":\"x");
  EXPECT_EQ(eof.message, "unexpected end of input");
  EXPECT_EQ(eof.offset, 7u);
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
