// fleet.redis: the URL's shape, checked at start-up (validate.cpp) and parsed
// again by the fleet module when it connects.
#include <anyturn/config/redis_url.hpp>

#include "values.hpp"

#include <algorithm>

namespace anyturn::config {

namespace {

bool fail(std::string* why, const char* reason) {
  if (why != nullptr) *why = reason;
  return false;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes `in` into `out`; false on a bad escape or a control
// character (decoded or not).
bool decode(std::string_view in, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      const int hi = hex_digit(in[i + 1]);
      const int lo = hex_digit(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      c = static_cast<char>(hi << 4 | lo);
      i += 2;
    }
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return false;
    out.push_back(c);
  }
  return true;
}

}  // namespace

bool is_dns_name(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  std::size_t start = 0;
  std::string_view last;
  while (true) {
    const auto dot = name.find('.', start);
    const std::string_view label =
        name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.size() > 63) return false;
    if (label.front() == '-' || label.back() == '-') return false;
    const bool ok = std::all_of(label.begin(), label.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
    });
    if (!ok) return false;
    last = label;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return !std::all_of(last.begin(), last.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::optional<redis_url> parse_redis_url(std::string_view text, std::string* why) {
  redis_url out;
  if (text.starts_with("redis://")) {
    text.remove_prefix(8);
  } else if (text.starts_with("rediss://")) {
    out.tls = true;
    text.remove_prefix(9);
  } else {
    fail(why, "the scheme must be redis:// or rediss://");
    return std::nullopt;
  }
  // authority [/db]
  const auto slash = text.find('/');
  std::string_view authority = text.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view{} : text.substr(slash + 1);

  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = authority.substr(0, at);
    authority.remove_prefix(at + 1);
    const auto colon = userinfo.find(':');
    if (colon == std::string_view::npos) {
      fail(why, "the credentials before '@' must be :PASSWORD or USER:PASSWORD");
      return std::nullopt;
    }
    if (!decode(userinfo.substr(0, colon), out.username) ||
        !decode(userinfo.substr(colon + 1), out.password)) {
      fail(why, "the user or password has a bad %-escape or a control character");
      return std::nullopt;
    }
    if (out.password.empty()) {
      fail(why, "the password after ':' is empty (leave out ':@' for no password)");
      return std::nullopt;
    }
  }

  // HOST:PORT, IPv6 as [ADDR]:PORT
  std::string_view host;
  std::string_view port;
  if (authority.starts_with('[')) {
    const auto close = authority.find(']');
    if (close == std::string_view::npos || close + 1 >= authority.size() || authority[close + 1] != ':') {
      fail(why, "an IPv6 host must be written [ADDR]:PORT");
      return std::nullopt;
    }
    host = authority.substr(1, close - 1);
    port = authority.substr(close + 2);
    const auto ip = detail::parse_ip(host);
    if (!ip || ip->is_v4()) {
      fail(why, "the host in [...] is not an IPv6 address");
      return std::nullopt;
    }
  } else {
    const auto colon = authority.rfind(':');
    if (colon == std::string_view::npos) {
      fail(why, "HOST:PORT is required (the port too, e.g. :6379)");
      return std::nullopt;
    }
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      fail(why, "an IPv6 host must be written [ADDR]:PORT");
      return std::nullopt;
    }
    if (host.empty()) {
      fail(why, "the host is empty");
      return std::nullopt;
    }
    if (!detail::parse_ip(host) && !is_dns_name(host)) {
      fail(why, "the host is neither an IP address nor a DNS name");
      return std::nullopt;
    }
  }
  const auto p = detail::parse_uint(port, 65535);
  if (!p || *p == 0) {
    fail(why, "the port must be 1..65535");
    return std::nullopt;
  }
  out.host = std::string(host);
  out.port = static_cast<std::uint16_t>(*p);

  if (slash != std::string_view::npos) {
    const auto db = detail::parse_uint(path, max_redis_db);
    if (!db) {
      fail(why, "the database after '/' must be a number, 0..1048576");
      return std::nullopt;
    }
    out.db = static_cast<std::uint32_t>(*db);
  }
  return out;
}

}  // namespace anyturn::config
