// Flat-object parsing on Boost.JSON's basic_parser, and JSON string output.
#include <anyturn/http/json.hpp>

#include <boost/json/basic_parser_impl.hpp>

#include <charconv>
#include <cstdint>
#include <string>

namespace anyturn::http::json {
namespace {

namespace bj = boost::json;

constexpr const char* nested_refused = "nested objects and arrays are not accepted here";

// Decodes one UTF-8 sequence at s[i]; returns its length, or 0 if invalid.
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return 1;
  std::size_t len = 0;
  std::uint32_t cp = 0;
  std::uint32_t min = 0;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2, cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

// Builds the flat object from basic_parser's events. basic_parser checks
// the grammar and the UTF-8, and max_depth 1 refuses a nested object or array
// before its event; parse_flat_object() has already checked that the text
// starts with '{'. So every scalar event is the value of the last key seen.
// What is left to refuse here: duplicate keys and out-of-range numbers.
class flat_handler {
 public:
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);

  // Why the handler stopped the parser, or null. The parser stops at the
  // end of the refused token; rewind() bytes back is its start.
  [[nodiscard]] const char* refusal() const { return refusal_; }
  [[nodiscard]] std::size_t rewind() const { return rewind_; }
  object take() { return std::move(obj_); }

  bool on_document_begin(bj::error_code&) { return true; }
  bool on_document_end(bj::error_code&) { return true; }
  bool on_object_begin(bj::error_code&) { return true; }
  bool on_object_end(std::size_t, bj::error_code&) { return true; }
  bool on_array_begin(bj::error_code& ec) { return refuse(ec, nested_refused); }
  bool on_array_end(std::size_t, bj::error_code&) { return true; }
  bool on_comment_part(bj::string_view, bj::error_code& ec) { return refuse(ec, no_comments); }
  bool on_comment(bj::string_view, bj::error_code& ec) { return refuse(ec, no_comments); }

  bool on_key_part(bj::string_view s, std::size_t, bj::error_code&) { return append(s); }
  bool on_key(bj::string_view s, std::size_t, bj::error_code& ec) {
    append(s);
    if (obj_.find(part_) != nullptr) return refuse(ec, "duplicate key");
    obj_.members.push_back(member{std::move(part_), {}});
    part_.clear();
    return true;
  }

  bool on_string_part(bj::string_view s, std::size_t, bj::error_code&) { return append(s); }
  bool on_string(bj::string_view s, std::size_t, bj::error_code&) {
    append(s);
    value& v = last_value();
    v.type = value::kind::string;
    v.text = std::move(part_);
    part_.clear();
    return true;
  }

  bool on_number_part(bj::string_view s, bj::error_code&) { return append(s); }
  bool on_int64(std::int64_t, bj::string_view s, bj::error_code& ec) { return on_number(s, ec); }
  bool on_uint64(std::uint64_t, bj::string_view s, bj::error_code& ec) { return on_number(s, ec); }
  bool on_double(double, bj::string_view s, bj::error_code& ec) { return on_number(s, ec); }

  bool on_bool(bool b, bj::error_code&) {
    value& v = last_value();
    v.type = value::kind::boolean;
    v.boolean = b;
    return true;
  }
  bool on_null(bj::error_code&) {
    last_value().type = value::kind::null;
    return true;
  }

 private:
  static constexpr const char* no_comments = "comments are not accepted";

  value& last_value() { return obj_.members.back().val; }

  bool append(bj::string_view s) {
    part_.append(s.data(), s.size());
    return true;
  }

  bool refuse(bj::error_code& ec, const char* why, std::size_t rewind = 0) {
    refusal_ = why;
    rewind_ = rewind;
    ec = bj::error::syntax;  // any error stops the parser; refusal_ says why
    return false;
  }

  // The number's source text is kept. Boost's int64/uint64/double split is
  // not used: from_chars gives one correctly rounded double for all three,
  // and reports out-of-range magnitudes instead of a silent infinity.
  bool on_number(bj::string_view s, bj::error_code& ec) {
    append(s);
    value& v = last_value();
    v.type = value::kind::number;
    v.text = std::move(part_);
    part_.clear();
    const char* first = v.text.data();
    const auto r = std::from_chars(first, first + v.text.size(), v.number);
    if (r.ec == std::errc{} && r.ptr == first + v.text.size()) return true;
    return refuse(ec, r.ec == std::errc::result_out_of_range ? "number out of range" : "invalid number",
                  v.text.size());
  }

  object obj_;
  std::string part_;  // the key, string or number being received in parts
  const char* refusal_ = nullptr;
  std::size_t rewind_ = 0;
};

// Boost says only "syntax error"; the byte it stopped at says more.
std::string describe(bj::error_code ec, std::string_view text, std::size_t offset) {
  if (ec == bj::error::too_deep) return nested_refused;
  if (ec == bj::error::incomplete) return "unexpected end of input";
  if (ec == bj::error::exponent_overflow) return "number out of range";
  if (ec != bj::error::syntax || offset >= text.size()) return ec.message();
  const auto c = static_cast<unsigned char>(text[offset]);
  // Valid UTF-8 is accepted in strings, so an error at a valid sequence is
  // one outside a string.
  if (c >= 0x80) return utf8_sequence(text, offset) == 0 ? "invalid UTF-8" : "unexpected character";
  if (c < 0x20 || c == 0x7F) return "unexpected control character";
  return std::string("unexpected '") + static_cast<char>(c) + "'";
}

}  // namespace

const value* object::find(std::string_view key) const {
  for (const member& m : members) {
    if (m.key == key) return &m.val;
  }
  return nullptr;
}

std::optional<object> parse_flat_object(std::string_view text, parse_error& error) {
  auto fail = [&](std::size_t offset, std::string message) -> std::optional<object> {
    error.offset = offset;
    error.message = std::move(message);
    return std::nullopt;
  };
  if (text.size() > max_object_bytes) {
    return fail(max_object_bytes, "longer than " + std::to_string(max_object_bytes) + " bytes");
  }
  const std::size_t first = text.find_first_not_of(" \t\n\r");
  if (first == std::string_view::npos || text[first] != '{') {
    return fail(first == std::string_view::npos ? text.size() : first, "expected '{'");
  }

  bj::parse_options options;
  options.max_depth = 1;
  options.allow_comments = false;
  options.allow_trailing_commas = false;
  options.allow_invalid_utf8 = false;
  bj::basic_parser<flat_handler> parser(options);
  bj::error_code ec;
  // One call with more=false: the whole document or an error. Trailing
  // whitespace is consumed; anything after it is left unconsumed.
  const std::size_t used = parser.write_some(false, text.data(), text.size(), ec);
  if (ec) {
    const flat_handler& h = parser.handler();
    if (h.refusal() != nullptr) return fail(used - h.rewind(), h.refusal());
    return fail(used, describe(ec, text, used));
  }
  if (used != text.size()) return fail(used, "trailing characters after the object");
  return parser.handler().take();
}

bool is_valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t len = utf8_sequence(s, i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

void append_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out += '"';
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const std::size_t len = utf8_sequence(s, i);
      if (len == 0) {
        out += "\xEF\xBF\xBD";  // U+FFFD for each invalid byte
        ++i;
      } else {
        out.append(s.substr(i, len));
        i += len;
      }
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7F) {
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 0xF];
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
  out += '"';
}

std::string quote(std::string_view s) {
  std::string out;
  append_string(out, s);
  return out;
}

}  // namespace anyturn::http::json
