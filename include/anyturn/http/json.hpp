// anyturn::http — the little JSON the HTTP API needs.
//
// parse_flat_object() parses one RFC 8259 object whose members are scalars
// (string, number, true, false, null): what the API's request bodies are.
// It is backed by Boost.JSON's basic_parser (depth limit 1, no comments, no
// trailing commas, no invalid UTF-8) with a handler of ours that builds the
// members and refuses duplicate keys. Nested objects and arrays, duplicate
// keys, trailing commas, comments, invalid UTF-8, unpaired surrogates, raw
// control characters, leading zeros, out-of-range numbers, trailing garbage
// and texts longer than max_object_bytes are all errors. Nothing recurses
// deeper than one object.
//
// append_string() writes a JSON string literal for output; it and
// is_valid_utf8() are our own, not Boost.JSON's.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace anyturn::http::json {

// Longer texts are refused before parsing. Above the HTTP server's default
// body limit (http_limits::max_body_bytes), so normally that limit acts first.
inline constexpr std::size_t max_object_bytes = 64 * 1024;

struct value {
  enum class kind { null, boolean, number, string };
  kind type = kind::null;
  bool boolean = false;
  double number = 0;
  std::string text;  // string: decoded UTF-8; number: its source text
};

struct member {
  std::string key;
  value val;
};

struct object {
  std::vector<member> members;  // in source order; keys are unique
  [[nodiscard]] const value* find(std::string_view key) const;
};

struct parse_error {
  std::size_t offset = 0;  // byte offset in the input
  std::string message;
};

// Parses `text` as one JSON object of scalar members. On failure returns
// nullopt and fills `error`: the offset of the offending byte (of an
// out-of-range number, its first byte; of a duplicate key, its closing quote).
std::optional<object> parse_flat_object(std::string_view text, parse_error& error);

// Appends `s` as a quoted JSON string: '"', '\\' and control characters are
// escaped, and invalid UTF-8 is replaced by U+FFFD, so the output is always
// valid JSON.
void append_string(std::string& out, std::string_view s);
[[nodiscard]] std::string quote(std::string_view s);

// True when `s` is well-formed UTF-8 (no overlongs, surrogates, or code
// points above U+10FFFF).
bool is_valid_utf8(std::string_view s);

}  // namespace anyturn::http::json
