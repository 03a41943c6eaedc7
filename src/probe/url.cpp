// iceServers URLs (RFC 7064 stun:, RFC 7065 turn:/turns:), the phase names
// and REST credentials for the probe.
#include <anyturn/probe/probe.hpp>

#include <anyturn/auth/credentials.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace anyturn::probe {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool host_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '.' || c == '_';
}

bool ipv6_char(char c) {
  return std::isxdigit(static_cast<unsigned char>(c)) != 0 || c == ':' || c == '.';
}

std::optional<std::uint16_t> parse_port(std::string_view s) {
  if (s.empty() || s.size() > 5) return std::nullopt;
  unsigned v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || v == 0 || v > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(v);
}

std::optional<target> fail(std::string& error, std::string message) {
  error = std::move(message);
  return std::nullopt;
}

}  // namespace

std::optional<target> parse_url(std::string_view url, std::string& error) {
  target t;
  t.url = std::string(url);
  const auto colon = url.find(':');
  if (colon == std::string_view::npos) {
    return fail(error, "not an iceServers URL (expected stun:, turn: or turns:)");
  }
  const std::string sch = lower(url.substr(0, colon));
  if (sch == "stun") {
    t.kind = scheme::stun;
  } else if (sch == "turn") {
    t.kind = scheme::turn;
  } else if (sch == "turns") {
    t.kind = scheme::turns;
    t.port = 5349;
    t.proto = transport::tcp;
  } else {
    return fail(error, "unknown scheme '" + sch + "' (expected stun:, turn: or turns:)");
  }
  std::string_view rest = url.substr(colon + 1);
  if (rest.starts_with("//")) return fail(error, "no '//' after the scheme (turn:host:port)");

  std::string_view query;
  if (const auto q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  if (rest.find('@') != std::string_view::npos) {
    return fail(error, "credentials do not belong in the URL (use --user/--password)");
  }

  std::string_view host;
  std::string_view port_text;
  bool has_port = false;
  if (rest.starts_with('[')) {
    const auto close = rest.find(']');
    if (close == std::string_view::npos) return fail(error, "IPv6 address without a closing ']'");
    host = rest.substr(1, close - 1);
    if (host.empty() || !std::all_of(host.begin(), host.end(), ipv6_char) ||
        host.find(':') == std::string_view::npos) {
      return fail(error, "bad IPv6 address '" + std::string(host) + "'");
    }
    const auto after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return fail(error, "unexpected text after ']'");
      port_text = after.substr(1);
      has_port = true;
    }
  } else {
    const auto c = rest.find(':');
    if (c != std::string_view::npos && rest.find(':', c + 1) != std::string_view::npos) {
      return fail(error, "an IPv6 address must be in brackets ([::1]:3478)");
    }
    host = rest.substr(0, c);
    if (c != std::string_view::npos) {
      port_text = rest.substr(c + 1);
      has_port = true;
    }
    if (host.empty()) return fail(error, "no host");
    if (!std::all_of(host.begin(), host.end(), host_char)) {
      return fail(error, "bad host '" + std::string(host) + "'");
    }
  }
  if (host.empty()) return fail(error, "no host");
  t.host = std::string(host);
  if (has_port) {
    const auto p = parse_port(port_text);
    if (!p) return fail(error, "bad port '" + std::string(port_text) + "'");
    t.port = *p;
  }

  if (!query.empty()) {
    if (!query.starts_with("transport=") || query.find('&') != std::string_view::npos) {
      return fail(error, "only ?transport=udp|tcp is understood, got '?" + std::string(query) + "'");
    }
    const std::string value = lower(query.substr(10));
    if (value == "udp") {
      if (t.kind == scheme::turns) return fail(error, "turns: only transport=tcp");
      t.proto = transport::udp;
    } else if (value == "tcp") {
      t.proto = transport::tcp;
    } else {
      return fail(error, "unknown transport '" + value + "' (udp or tcp)");
    }
  }
  return t;
}

std::string_view phase_name(phase p) {
  switch (p) {
    case phase::resolve: return "resolve";
    case phase::connect: return "connect";
    case phase::tls: return "tls";
    case phase::binding: return "binding";
    case phase::allocate: return "allocate";
    case phase::permission: return "permission";
    case phase::channel: return "channel";
    case phase::relay: return "relay";
    case phase::refresh: return "refresh";
    case phase::deallocate: return "deallocate";
  }
  return "unknown";
}

credentials rest_credentials(std::string_view secret, std::string_view user, std::uint32_t ttl_s,
                             std::int64_t now_unix) {
  credentials c;
  c.username = auth::rest_username(now_unix, ttl_s, user);
  c.password = auth::rest_password(secret, c.username);
  return c;
}

}  // namespace anyturn::probe
