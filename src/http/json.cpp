// Strict RFC 8259 parsing of flat objects, and JSON string output.
#include <anyturn/http/json.hpp>

#include <charconv>
#include <cstdint>
#include <string>

namespace anyturn::http::json {
namespace {

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

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

class parser {
 public:
  parser(std::string_view text, parse_error& error) : s_(text), error_(error) {}

  std::optional<object> parse() {
    object obj;
    skip_ws();
    if (!expect('{', "expected '{'")) return std::nullopt;
    skip_ws();
    if (peek() == '}') {
      ++pos_;
    } else {
      for (;;) {
        skip_ws();
        if (peek() != '"') return fail("expected a string key");
        member m;
        if (!parse_string(m.key)) return std::nullopt;
        if (obj.find(m.key) != nullptr) return fail("duplicate key");
        skip_ws();
        if (!expect(':', "expected ':'")) return std::nullopt;
        skip_ws();
        if (!parse_value(m.val)) return std::nullopt;
        obj.members.push_back(std::move(m));
        skip_ws();
        if (peek() == ',') {
          ++pos_;
          continue;
        }
        if (!expect('}', "expected ',' or '}'")) return std::nullopt;
        break;
      }
    }
    skip_ws();
    if (pos_ != s_.size()) return fail("trailing characters after the object");
    return obj;
  }

 private:
  [[nodiscard]] char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  [[nodiscard]] bool at_end() const { return pos_ >= s_.size(); }

  std::nullopt_t fail(const char* message) {
    error_.offset = pos_;
    error_.message = message;
    return std::nullopt;
  }
  bool fail_bool(const char* message) {
    fail(message);
    return false;
  }

  bool expect(char c, const char* message) {
    if (at_end() || s_[pos_] != c) return fail_bool(message);
    ++pos_;
    return true;
  }

  void skip_ws() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) {
      ++pos_;
    }
  }

  bool literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return fail_bool("invalid literal");
    pos_ += word.size();
    return true;
  }

  bool parse_value(value& v) {
    switch (peek()) {
      case '"':
        v.type = value::kind::string;
        return parse_string(v.text);
      case 't':
        v.type = value::kind::boolean;
        v.boolean = true;
        return literal("true");
      case 'f':
        v.type = value::kind::boolean;
        v.boolean = false;
        return literal("false");
      case 'n':
        v.type = value::kind::null;
        return literal("null");
      case '{':
      case '[':
        return fail_bool("nested objects and arrays are not accepted here");
      default:
        v.type = value::kind::number;
        return parse_number(v);
    }
  }

  // number = [ minus ] int [ frac ] [ exp ]; int = zero / ( digit1-9 *DIGIT )
  bool parse_number(value& v) {
    const std::size_t start = pos_;
    auto digit = [&] { return peek() >= '0' && peek() <= '9'; };
    if (peek() == '-') ++pos_;
    if (peek() == '0') {
      ++pos_;
      if (digit()) return fail_bool("leading zero in number");
    } else if (digit()) {
      while (digit()) ++pos_;
    } else {
      return fail_bool("expected a value");
    }
    if (peek() == '.') {
      ++pos_;
      if (!digit()) return fail_bool("expected a digit after '.'");
      while (digit()) ++pos_;
    }
    if (peek() == 'e' || peek() == 'E') {
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      if (!digit()) return fail_bool("expected a digit in the exponent");
      while (digit()) ++pos_;
    }
    v.text.assign(s_.substr(start, pos_ - start));
    // The grammar is checked; from_chars (locale-free) only converts. Out of
    // range magnitudes are an error rather than a silent infinity.
    const auto r = std::from_chars(v.text.data(), v.text.data() + v.text.size(), v.number);
    if (r.ec == std::errc::result_out_of_range) {
      pos_ = start;
      return fail_bool("number out of range");
    }
    return r.ec == std::errc{} || fail_bool("invalid number");
  }

  bool hex4(std::uint32_t& out) {
    if (pos_ + 4 > s_.size()) return fail_bool("truncated \\u escape");
    out = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = s_[pos_++];
      out <<= 4;
      if (c >= '0' && c <= '9') {
        out |= static_cast<std::uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        out |= static_cast<std::uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        out |= static_cast<std::uint32_t>(c - 'A' + 10);
      } else {
        --pos_;
        return fail_bool("invalid hex digit in \\u escape");
      }
    }
    return true;
  }

  bool parse_string(std::string& out) {
    ++pos_;  // opening quote
    out.clear();
    for (;;) {
      if (at_end()) return fail_bool("unterminated string");
      const char c = s_[pos_];
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (static_cast<unsigned char>(c) < 0x20) return fail_bool("control character in string");
      if (c == '\\') {
        ++pos_;
        if (at_end()) return fail_bool("unterminated escape");
        const char e = s_[pos_++];
        switch (e) {
          case '"': out += '"'; break;
          case '\\': out += '\\'; break;
          case '/': out += '/'; break;
          case 'b': out += '\b'; break;
          case 'f': out += '\f'; break;
          case 'n': out += '\n'; break;
          case 'r': out += '\r'; break;
          case 't': out += '\t'; break;
          case 'u': {
            std::uint32_t cp = 0;
            if (!hex4(cp)) return false;
            if (cp >= 0xDC00 && cp <= 0xDFFF) return fail_bool("unpaired low surrogate");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
              if (s_.substr(pos_, 2) != "\\u") return fail_bool("unpaired high surrogate");
              pos_ += 2;
              std::uint32_t low = 0;
              if (!hex4(low)) return false;
              if (low < 0xDC00 || low > 0xDFFF) return fail_bool("unpaired high surrogate");
              cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            }
            append_utf8(out, cp);
            break;
          }
          default:
            --pos_;
            return fail_bool("invalid escape");
        }
        continue;
      }
      const std::size_t len = utf8_sequence(s_, pos_);
      if (len == 0) return fail_bool("invalid UTF-8");
      out.append(s_.substr(pos_, len));
      pos_ += len;
    }
  }

  std::string_view s_;
  std::size_t pos_ = 0;
  parse_error& error_;
};

}  // namespace

const value* object::find(std::string_view key) const {
  for (const member& m : members) {
    if (m.key == key) return &m.val;
  }
  return nullptr;
}

std::optional<object> parse_flat_object(std::string_view text, parse_error& error) {
  return parser(text, error).parse();
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
