// anyturn::common — the two log formats (log.format / --log-format).
//
// text: "2026-01-01T12:00:00.123+0000 info [1234] msg session=... user=..."
//       (the fields of common::log_fields that are set, after the message).
// json: one object per line, {"ts":"2026-01-01T12:00:00.123Z","level":"info",
//       "msg":"...","worker":0,"session":"...",...}: ts in RFC 3339 UTC with
//       milliseconds, level one of trace debug info warn error critical, and
//       each log_fields member only when it is set. Strings are escaped;
//       bytes that are not UTF-8 become U+FFFD, so every line is valid JSON.
// docs/logging.md is the field reference.
#pragma once

#include <spdlog/formatter.h>

#include <memory>
#include <optional>
#include <string_view>

namespace anyturn::common {

enum class log_format { text, json };

// "text" or "json"; anything else: nullopt.
std::optional<log_format> parse_log_format(std::string_view name);

// A formatter for spdlog's sinks (logger->set_formatter).
std::unique_ptr<spdlog::formatter> make_log_formatter(log_format format);

// Appends `s` as the contents of a JSON string (no quotes): '"', '\\' and
// control characters escaped, invalid UTF-8 replaced by U+FFFD.
void append_json_escaped(std::string_view s, spdlog::memory_buf_t& out);

}  // namespace anyturn::common
