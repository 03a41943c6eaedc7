#include <anyturn/fleet/redis_url.hpp>

#include <charconv>

namespace anyturn::fleet {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    const int hi = hex_value(s[i + 1]);
    const int lo = hex_value(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

template <typename T>
bool parse_number(std::string_view s, T& out) {
  if (s.empty()) return false;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  return r.ec == std::errc{} && r.ptr == s.data() + s.size();
}

}  // namespace

std::string redis_url::redacted() const {
  std::string s = tls ? "rediss://" : "redis://";
  if (!password.empty()) s += "***@";
  if (host.find(':') != std::string::npos)
    s += "[" + host + "]";
  else
    s += host;
  s += ":" + std::to_string(port) + "/" + std::to_string(db);
  return s;
}

std::optional<redis_url> parse_redis_url(std::string_view text, std::string& error) {
  redis_url u;
  std::string_view rest;
  if (text.starts_with("redis://")) {
    rest = text.substr(8);
  } else if (text.starts_with("rediss://")) {
    rest = text.substr(9);
    u.tls = true;
  } else {
    error = "expected redis://[[user]:password@]host[:port][/db] or rediss://...";
    return std::nullopt;
  }
  // Path: /db
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    const auto db = rest.substr(slash + 1);
    if (!db.empty() && !parse_number(db, u.db)) {
      error = "the database after '/' must be a number";
      return std::nullopt;
    }
    rest = rest.substr(0, slash);
  }
  // Credentials: everything up to the last '@'.
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
    const auto cred = rest.substr(0, at);
    rest = rest.substr(at + 1);
    std::string_view user = cred, pass;
    if (const auto colon = cred.find(':'); colon != std::string_view::npos) {
      user = cred.substr(0, colon);
      pass = cred.substr(colon + 1);
    } else {
      // "redis://secret@host": the password alone.
      pass = cred;
      user = {};
    }
    auto du = percent_decode(user);
    auto dp = percent_decode(pass);
    if (!du || !dp) {
      error = "bad percent-encoding in the credentials";
      return std::nullopt;
    }
    u.user = std::move(*du);
    u.password = std::move(*dp);
    if (!u.user.empty() && u.password.empty()) {
      error = "a user needs a password (redis://user:password@host)";
      return std::nullopt;
    }
  }
  // Host and port.
  std::string_view port;
  if (rest.starts_with("[")) {
    const auto close = rest.find(']');
    if (close == std::string_view::npos) {
      error = "unterminated '[' in the host";
      return std::nullopt;
    }
    u.host = std::string(rest.substr(1, close - 1));
    const auto after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') {
        error = "expected ':' after ']'";
        return std::nullopt;
      }
      port = after.substr(1);
    }
  } else {
    const auto colon = rest.find(':');
    u.host = std::string(rest.substr(0, colon));
    if (colon != std::string_view::npos) port = rest.substr(colon + 1);
  }
  if (u.host.empty()) {
    error = "no host";
    return std::nullopt;
  }
  if (!port.empty() || rest.ends_with(":")) {
    unsigned p = 0;
    if (!parse_number(port, p) || p == 0 || p > 65535) {
      error = "the port must be 1-65535";
      return std::nullopt;
    }
    u.port = static_cast<std::uint16_t>(p);
  }
  return u;
}

}  // namespace anyturn::fleet
