// The PROXY protocol header parser (see the header): v1 text lines and v2
// binary headers, checked byte by byte as they arrive so that a stream which
// is not a PROXY header is refused as early as possible.
#include <anyturn/net/proxy_protocol.hpp>

#include <algorithm>
#include <array>
#include <cstring>
#include <string_view>

#include <arpa/inet.h>

namespace anyturn::net {

namespace {

constexpr std::string_view v1_prefix = "PROXY ";
constexpr std::array<std::uint8_t, 12> v2_signature = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                       0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr std::size_t v2_fixed = 16;

std::uint8_t byte_at(std::span<const std::byte> data, std::size_t i) {
  return std::to_integer<std::uint8_t>(data[i]);
}

proxy_header fail(proxy_problem problem, int version) {
  proxy_header h;
  h.status = proxy_status::malformed;
  h.problem = problem;
  h.version = version;
  return h;
}

proxy_header more(int version) {
  proxy_header h;
  h.status = proxy_status::need_more;
  h.version = version;
  return h;
}

// ---- version 1 ----

bool parse_v1_ip(std::string_view token, bool v6, stun::endpoint& out) {
  std::array<char, 64> text{};
  if (token.empty() || token.size() >= text.size()) return false;
  std::memcpy(text.data(), token.data(), token.size());
  if (v6) {
    std::array<std::uint8_t, 16> ip{};
    if (::inet_pton(AF_INET6, text.data(), ip.data()) != 1) return false;
    out = stun::endpoint::v6(ip, 0);
  } else {
    in_addr a{};
    if (::inet_pton(AF_INET, text.data(), &a) != 1) return false;
    out = stun::endpoint::v4(ntohl(a.s_addr), 0);
  }
  return true;
}

bool parse_v1_port(std::string_view token, std::uint16_t& out) {
  if (token.empty() || token.size() > 5) return false;
  std::uint32_t v = 0;
  for (char c : token) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<std::uint32_t>(c - '0');
  }
  if (v > 65535) return false;
  out = static_cast<std::uint16_t>(v);
  return true;
}

// Splits off the next space-separated token (exactly one space between).
bool next_token(std::string_view& rest, std::string_view& token) {
  if (rest.empty()) return false;
  const auto sp = rest.find(' ');
  token = rest.substr(0, sp);
  rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
  return !token.empty();
}

proxy_header parse_v1(std::span<const std::byte> data) {
  const std::size_t seen = std::min(data.size(), max_proxy_v1_line);
  std::size_t end = 0;  // index of '\n'
  for (std::size_t i = 0; i < seen; ++i) {
    const std::uint8_t c = byte_at(data, i);
    if (c == '\n') {
      if (i == 0 || byte_at(data, i - 1) != '\r') return fail(proxy_problem::bad_v1, 1);
      end = i;
      break;
    }
    if (c == '\r') {
      if (i + 1 < seen && byte_at(data, i + 1) != '\n') return fail(proxy_problem::bad_v1, 1);
      continue;
    }
    if (c < 0x20 || c > 0x7E) return fail(proxy_problem::bad_v1, 1);
  }
  if (end == 0) {
    if (seen >= max_proxy_v1_line) return fail(proxy_problem::bad_v1, 1);
    return more(1);
  }
  const std::string_view line(reinterpret_cast<const char*>(data.data()), end - 1);  // without CRLF
  std::string_view rest = line.substr(v1_prefix.size());
  std::string_view proto;
  if (!next_token(rest, proto)) return fail(proxy_problem::bad_v1, 1);
  proxy_header h;
  h.version = 1;
  h.size = end + 1;
  if (proto == "UNKNOWN") {
    // Whatever follows is to be ignored (RFC-less, but the spec says so).
    h.status = proxy_status::complete;
    return h;
  }
  if (proto != "TCP4" && proto != "TCP6") return fail(proxy_problem::bad_v1, 1);
  const bool v6 = proto == "TCP6";
  std::string_view src;
  std::string_view dst;
  std::string_view sport;
  std::string_view dport;
  if (!next_token(rest, src) || !next_token(rest, dst) || !next_token(rest, sport) ||
      !next_token(rest, dport) || !rest.empty()) {
    return fail(proxy_problem::bad_v1, 1);
  }
  if (!parse_v1_ip(src, v6, h.source) || !parse_v1_ip(dst, v6, h.destination) ||
      !parse_v1_port(sport, h.source.port) || !parse_v1_port(dport, h.destination.port)) {
    return fail(proxy_problem::bad_v1, 1);
  }
  h.has_address = true;
  h.status = proxy_status::complete;
  return h;
}

// ---- version 2 ----

proxy_header parse_v2(std::span<const std::byte> data) {
  for (std::size_t i = 0; i < std::min(data.size(), v2_signature.size()); ++i) {
    if (byte_at(data, i) != v2_signature[i]) return fail(proxy_problem::bad_signature, 0);
  }
  if (data.size() <= 12) return more(2);
  const std::uint8_t ver_cmd = byte_at(data, 12);
  const unsigned command = ver_cmd & 0x0Fu;
  if ((ver_cmd >> 4) != 2 || command > 1) return fail(proxy_problem::bad_version, 2);
  const bool local = command == 0;
  if (data.size() <= 13) return more(2);
  const std::uint8_t fam = byte_at(data, 13);
  const unsigned family = fam >> 4;       // 0 UNSPEC, 1 INET, 2 INET6, 3 UNIX
  const unsigned protocol = fam & 0x0Fu;  // 0 UNSPEC, 1 STREAM, 2 DGRAM
  // LOCAL: the family is to be ignored. PROXY: only streams over IP (or UNSPEC).
  if (!local && (family > 2 || protocol > 1)) return fail(proxy_problem::bad_family, 2);
  if (data.size() < v2_fixed) return more(2);
  const std::size_t length = (std::size_t{byte_at(data, 14)} << 8) | byte_at(data, 15);
  const std::size_t total = v2_fixed + length;
  if (total > max_proxy_header) return fail(proxy_problem::bad_length, 2);
  std::size_t needed = 0;  // the address block
  if (!local && family == 1) needed = 12;
  if (!local && family == 2) needed = 36;
  if (length < needed) return fail(proxy_problem::bad_length, 2);
  if (data.size() < total) return more(2);

  proxy_header h;
  h.version = 2;
  h.size = total;
  h.status = proxy_status::complete;
  if (local || family == 0) return h;  // the connection's own addresses count
  const std::byte* a = data.data() + v2_fixed;
  auto u8 = [&](std::size_t i) { return std::to_integer<std::uint8_t>(a[i]); };
  auto port_at = [&](std::size_t i) { return static_cast<std::uint16_t>((u8(i) << 8) | u8(i + 1)); };
  if (family == 1) {
    auto ip_at = [&](std::size_t i) {
      return (std::uint32_t{u8(i)} << 24) | (std::uint32_t{u8(i + 1)} << 16) |
             (std::uint32_t{u8(i + 2)} << 8) | u8(i + 3);
    };
    h.source = stun::endpoint::v4(ip_at(0), port_at(8));
    h.destination = stun::endpoint::v4(ip_at(4), port_at(10));
  } else {
    std::array<std::uint8_t, 16> src{};
    std::array<std::uint8_t, 16> dst{};
    for (std::size_t i = 0; i < 16; ++i) {
      src[i] = u8(i);
      dst[i] = u8(16 + i);
    }
    h.source = stun::endpoint::v6(src, port_at(32));
    h.destination = stun::endpoint::v6(dst, port_at(34));
  }
  // Anything after the address block is TLVs: skipped.
  h.has_address = true;
  return h;
}

}  // namespace

const char* to_string(proxy_problem p) {
  switch (p) {
    case proxy_problem::none: return "none";
    case proxy_problem::bad_signature: return "not a PROXY protocol header";
    case proxy_problem::bad_v1: return "malformed PROXY v1 line";
    case proxy_problem::bad_version: return "PROXY v2: unknown version or command";
    case proxy_problem::bad_family: return "PROXY v2: not a TCP address family";
    case proxy_problem::bad_length: return "PROXY v2: bad length";
  }
  return "?";
}

proxy_header parse_proxy_header(std::span<const std::byte> data) noexcept {
  if (data.empty()) return more(0);
  if (byte_at(data, 0) == v2_signature[0]) return parse_v2(data);
  const std::size_t n = std::min(data.size(), v1_prefix.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (byte_at(data, i) != static_cast<std::uint8_t>(v1_prefix[i])) {
      return fail(proxy_problem::bad_signature, 0);
    }
  }
  if (data.size() <= v1_prefix.size()) return more(1);
  return parse_v1(data);
}

}  // namespace anyturn::net
