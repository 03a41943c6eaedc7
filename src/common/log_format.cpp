#include <anyturn/common/log_format.hpp>

#include <anyturn/common/log_context.hpp>

#include <spdlog/pattern_formatter.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace anyturn::common {

namespace {

void append(spdlog::memory_buf_t& out, std::string_view s) { out.append(s.data(), s.data() + s.size()); }

// Length of the well-formed UTF-8 sequence at s[i], or 0 (RFC 3629 §4).
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  const auto at = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = at(i);
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the second byte's range
  if (c >= 0xC2 && c <= 0xDF) n = 2;
  else if (c == 0xE0) n = 3, lo = 0xA0;
  else if (c == 0xED) n = 3, hi = 0x9F;  // no surrogates
  else if (c >= 0xE1 && c <= 0xEF) n = 3;
  else if (c == 0xF0) n = 4, lo = 0x90;
  else if (c == 0xF4) n = 4, hi = 0x8F;
  else if (c >= 0xF1 && c <= 0xF3) n = 4;
  else return 0;
  if (i + n > s.size()) return 0;
  if (at(i + 1) < lo || at(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k)
    if (at(i + k) < 0x80 || at(i + k) > 0xBF) return 0;
  return n;
}

std::string_view level_name(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace: return "trace";
    case spdlog::level::debug: return "debug";
    case spdlog::level::info: return "info";
    case spdlog::level::warn: return "warn";
    case spdlog::level::err: return "error";
    case spdlog::level::critical: return "critical";
    default: return "off";
  }
}

void append_hex16(spdlog::memory_buf_t& out, std::uint64_t v) {
  static constexpr char hex[] = "0123456789abcdef";
  std::array<char, 16> text{};
  for (int i = 15; i >= 0; --i, v >>= 4) text[static_cast<std::size_t>(i)] = hex[v & 0xF];
  out.append(text.data(), text.data() + text.size());
}

// ,"name":"value" (JSON) for a set field.
void json_field(spdlog::memory_buf_t& out, std::string_view name, std::string_view value) {
  append(out, ",\"");
  append(out, name);
  append(out, "\":\"");
  append_json_escaped(value, out);
  append(out, "\"");
}

class json_formatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    using namespace std::chrono;
    const auto since = msg.time.time_since_epoch();
    const auto secs = duration_cast<seconds>(since);
    const auto ms = duration_cast<milliseconds>(since - secs).count();
    const std::time_t t = static_cast<std::time_t>(secs.count());
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::array<char, 40> ts{};
    const int n = std::snprintf(ts.data(), ts.size(), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                                tm.tm_sec, static_cast<int>(ms));
    append(dest, "{\"ts\":\"");
    dest.append(ts.data(), ts.data() + n);
    append(dest, "\",\"level\":\"");
    append(dest, level_name(msg.level));
    append(dest, "\",\"msg\":\"");
    append_json_escaped(std::string_view(msg.payload.data(), msg.payload.size()), dest);
    append(dest, "\"");
    const log_fields& f = this_thread_log_fields();
    if (f.worker >= 0) {
      std::array<char, 16> w{};
      const int wn = std::snprintf(w.data(), w.size(), "%d", f.worker);
      append(dest, ",\"worker\":");
      dest.append(w.data(), w.data() + wn);
    }
    if (f.has_session) {
      append(dest, ",\"session\":\"");
      append_hex16(dest, f.session);
      append(dest, "\"");
    }
    if (!f.user.empty()) json_field(dest, "user", f.user);
    if (!f.tenant.empty()) json_field(dest, "tenant", f.tenant);
    if (!f.client.empty()) json_field(dest, "client", f.client);
    if (!f.relay.empty()) json_field(dest, "relay", f.relay);
    if (!f.peer.empty()) json_field(dest, "peer", f.peer);
    append(dest, "}\n");
  }

  [[nodiscard]] std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<json_formatter>();
  }
};

// %* in the text pattern: " session=... user=..." for the fields that are
// set (the worker is not repeated: the messages name it where it matters).
class text_fields_flag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg&, const std::tm&, spdlog::memory_buf_t& dest) override {
    const log_fields& f = this_thread_log_fields();
    if (f.has_session) {
      append(dest, " session=");
      append_hex16(dest, f.session);
    }
    const auto field = [&](std::string_view name, std::string_view value) {
      if (value.empty()) return;
      append(dest, " ");
      append(dest, name);
      append(dest, "=");
      // Control characters would split the line; the text format shows
      // them escaped as JSON does.
      append_json_escaped(value, dest);
    };
    field("user", f.user);
    field("tenant", f.tenant);
    field("client", f.client);
    field("relay", f.relay);
    field("peer", f.peer);
  }

  [[nodiscard]] std::unique_ptr<spdlog::custom_flag_formatter> clone() const override {
    return std::make_unique<text_fields_flag>();
  }
};

}  // namespace

std::optional<log_format> parse_log_format(std::string_view name) {
  if (name == "text") return log_format::text;
  if (name == "json") return log_format::json;
  return std::nullopt;
}

std::unique_ptr<spdlog::formatter> make_log_formatter(log_format format) {
  if (format == log_format::json) return std::make_unique<json_formatter>();
  auto f = std::make_unique<spdlog::pattern_formatter>();
  f->add_flag<text_fields_flag>('*').set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %l [%t] %v%*");
  return f;
}

void append_json_escaped(std::string_view s, spdlog::memory_buf_t& out) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      if (const std::size_t n = utf8_sequence(s, i); n != 0) {
        out.append(s.data() + i, s.data() + i + n);
        i += n;
      } else {
        append(out, "\\ufffd");
        ++i;
      }
      continue;
    }
    switch (c) {
      case '"': append(out, "\\\""); break;
      case '\\': append(out, "\\\\"); break;
      case '\n': append(out, "\\n"); break;
      case '\r': append(out, "\\r"); break;
      case '\t': append(out, "\\t"); break;
      default:
        if (c < 0x20 || c == 0x7F) {
          std::array<char, 8> esc{};
          std::snprintf(esc.data(), esc.size(), "\\u%04x", c);
          out.append(esc.data(), esc.data() + 6);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
}

}  // namespace anyturn::common
