// Peer address policy (RFC 8656 §21.4 "relaying to internal hosts"; IANA
// IPv4/IPv6 Special-Purpose Address Registries, RFC 6890).
#include <anyturn/auth/peer_policy.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace anyturn::auth {
namespace {

using bytes16 = std::array<std::uint8_t, 16>;

// True when the first `prefix` bits of a and b agree.
constexpr bool prefix_equal(const bytes16& a, const bytes16& b, unsigned prefix) noexcept {
  const unsigned full = prefix / 8;
  for (unsigned i = 0; i < full; ++i) {
    if (a[i] != b[i]) return false;
  }
  const unsigned rest = prefix % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (a[full] & mask) == (b[full] & mask);
}

struct range {
  bytes16 ip;
  std::uint8_t prefix;
};

constexpr range v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d,
                   std::uint8_t prefix) {
  return {bytes16{a, b, c, d}, prefix};
}

// IPv6 range from its first four 16-bit groups (all the defaults need).
constexpr range v6(std::uint16_t g0, std::uint16_t g1, std::uint16_t g2, std::uint16_t g3,
                   std::uint8_t prefix) {
  bytes16 ip{};
  const std::uint16_t groups[4] = {g0, g1, g2, g3};
  for (int i = 0; i < 4; ++i) {
    ip[2 * i] = static_cast<std::uint8_t>(groups[i] >> 8);
    ip[2 * i + 1] = static_cast<std::uint8_t>(groups[i] & 0xff);
  }
  return {ip, prefix};
}

// IANA IPv4 Special-Purpose Address Registry plus multicast and class E.
constexpr std::array default_deny_v4{
    v4(0, 0, 0, 0, 8),        // "this network" (RFC 791)
    v4(10, 0, 0, 0, 8),       // private (RFC 1918)
    v4(100, 64, 0, 0, 10),    // shared address space / CGNAT (RFC 6598)
    v4(127, 0, 0, 0, 8),      // loopback (RFC 1122)
    v4(169, 254, 0, 0, 16),   // link local (RFC 3927)
    v4(172, 16, 0, 0, 12),    // private (RFC 1918)
    v4(192, 0, 0, 0, 24),     // IETF protocol assignments (RFC 6890)
    v4(192, 0, 2, 0, 24),     // TEST-NET-1 (RFC 5737)
    v4(192, 88, 99, 0, 24),   // 6to4 relay anycast (RFC 7526)
    v4(192, 168, 0, 0, 16),   // private (RFC 1918)
    v4(198, 18, 0, 0, 15),    // benchmarking (RFC 2544)
    v4(198, 51, 100, 0, 24),  // TEST-NET-2 (RFC 5737)
    v4(203, 0, 113, 0, 24),   // TEST-NET-3 (RFC 5737)
    v4(224, 0, 0, 0, 4),      // multicast (RFC 5771)
    v4(240, 0, 0, 0, 4),      // reserved (RFC 1112), incl. 255.255.255.255 broadcast
};

// IANA IPv6 Special-Purpose Address Registry and other non-unicast space.
// Forms that embed an IPv4 address are not listed: check() unwraps them.
constexpr std::array default_deny_v6{
    v6(0, 0, 0, 0, 128),               // :: unspecified (RFC 4291)
    range{bytes16{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128},  // ::1 loopback
    v6(0x0064, 0xff9b, 0x0001, 0, 48),  // local-use IPv4/IPv6 translation (RFC 8215)
    v6(0x0100, 0, 0, 0, 64),            // discard-only (RFC 6666)
    v6(0x2001, 0, 0, 0, 23),            // IETF protocol assignments (RFC 2928), incl. Teredo
    v6(0x2001, 0x0db8, 0, 0, 32),       // documentation (RFC 3849)
    v6(0x3fff, 0, 0, 0, 20),            // documentation (RFC 9637)
    v6(0x5f00, 0, 0, 0, 16),            // SRv6 SIDs (RFC 9602)
    v6(0xfc00, 0, 0, 0, 7),             // unique local (RFC 4193)
    v6(0xfe80, 0, 0, 0, 10),            // link local (RFC 4291)
    v6(0xfec0, 0, 0, 0, 10),            // site local, deprecated (RFC 3879)
    v6(0xff00, 0, 0, 0, 8),             // multicast (RFC 4291)
};

template <std::size_t N>
bool in_ranges(const std::array<range, N>& ranges, const bytes16& ip) noexcept {
  return std::any_of(ranges.begin(), ranges.end(),
                     [&](const range& r) { return prefix_equal(r.ip, ip, r.prefix); });
}

bool default_denied(const stun::endpoint& ep) noexcept {
  return ep.is_v4() ? in_ranges(default_deny_v4, ep.ip) : in_ranges(default_deny_v6, ep.ip);
}

bool all_zero(const bytes16& ip, std::size_t from, std::size_t to) noexcept {
  return std::all_of(ip.begin() + static_cast<std::ptrdiff_t>(from),
                     ip.begin() + static_cast<std::ptrdiff_t>(to),
                     [](std::uint8_t b) { return b == 0; });
}

// If `ep` is an IPv6 form that carries an IPv4 address, writes that address
// (same port) to `out`.
bool embedded_v4(const stun::endpoint& ep, stun::endpoint& out) noexcept {
  if (ep.is_v4()) return false;
  const bytes16& ip = ep.ip;
  std::size_t at = 0;
  if (all_zero(ip, 0, 10) && ip[10] == 0xff && ip[11] == 0xff) {
    at = 12;  // ::ffff:0:0/96 IPv4-mapped (RFC 4291)
  } else if (all_zero(ip, 0, 8) && ip[8] == 0xff && ip[9] == 0xff && ip[10] == 0 && ip[11] == 0) {
    at = 12;  // ::ffff:0:0:0/96 IPv4-translated (RFC 2765)
  } else if (all_zero(ip, 0, 12)) {
    // ::/96 IPv4-compatible (deprecated, RFC 4291); :: and ::1 are IPv6 proper.
    if (all_zero(ip, 12, 15) && ip[15] <= 1) return false;
    at = 12;
  } else if (ip[0] == 0x00 && ip[1] == 0x64 && ip[2] == 0xff && ip[3] == 0x9b &&
             all_zero(ip, 4, 12)) {
    at = 12;  // 64:ff9b::/96 NAT64 well-known prefix (RFC 6052)
  } else if (ip[0] == 0x20 && ip[1] == 0x02) {
    at = 2;  // 2002::/16 6to4 (RFC 3056)
  } else {
    return false;
  }
  out = stun::endpoint{};
  out.family = stun::address_family::ipv4;
  std::copy_n(ip.begin() + static_cast<std::ptrdiff_t>(at), 4, out.ip.begin());
  out.port = ep.port;
  return true;
}

bool any_contains(const std::vector<cidr>& list, const stun::endpoint& ep) noexcept {
  return std::any_of(list.begin(), list.end(), [&](const cidr& c) { return c.contains(ep); });
}

}  // namespace

std::optional<cidr> cidr::parse(std::string_view text) {
  std::string_view addr = text;
  std::optional<unsigned> prefix;
  if (const auto slash = text.find('/'); slash != std::string_view::npos) {
    addr = text.substr(0, slash);
    const std::string_view digits = text.substr(slash + 1);
    if (digits.empty() || digits.size() > 3) return std::nullopt;
    unsigned value = 0;
    for (const char c : digits) {
      if (c < '0' || c > '9') return std::nullopt;
      value = value * 10 + static_cast<unsigned>(c - '0');
    }
    prefix = value;
  }

  // inet_pton wants a NUL-terminated string; the longest valid text form is
  // INET6_ADDRSTRLEN - 1 characters.
  std::array<char, INET6_ADDRSTRLEN> buf{};
  if (addr.empty() || addr.size() >= buf.size() || addr.find('\0') != std::string_view::npos) {
    return std::nullopt;
  }
  std::memcpy(buf.data(), addr.data(), addr.size());

  cidr out;
  unsigned max_prefix = 0;
  if (inet_pton(AF_INET, buf.data(), out.ip.data()) == 1) {
    out.family = stun::address_family::ipv4;
    max_prefix = 32;
  } else if (inet_pton(AF_INET6, buf.data(), out.ip.data()) == 1) {
    out.family = stun::address_family::ipv6;
    max_prefix = 128;
  } else {
    return std::nullopt;
  }
  const unsigned p = prefix.value_or(max_prefix);
  if (p > max_prefix) return std::nullopt;
  out.prefix = static_cast<std::uint8_t>(p);

  // Clear host bits so contains() and to_string() see the network address.
  for (unsigned bit = p; bit < 128; ++bit) {
    if (bit % 8 == 0) {
      std::fill(out.ip.begin() + bit / 8, out.ip.end(), std::uint8_t{0});
      break;
    }
    out.ip[bit / 8] &= static_cast<std::uint8_t>(~(0x80u >> (bit % 8)));
  }
  return out;
}

bool cidr::contains(const stun::endpoint& ep) const {
  return ep.family == family && prefix_equal(ip, ep.ip, prefix);
}

std::string cidr::to_string() const {
  std::array<char, INET6_ADDRSTRLEN> buf{};
  const int af = family == stun::address_family::ipv4 ? AF_INET : AF_INET6;
  if (inet_ntop(af, ip.data(), buf.data(), static_cast<socklen_t>(buf.size())) == nullptr) {
    return {};
  }
  std::string out(buf.data());
  out += '/';
  out += std::to_string(prefix);
  return out;
}

peer_policy::peer_policy(std::vector<cidr> allow, std::vector<cidr> deny)
    : allow_(std::move(allow)), deny_(std::move(deny)) {}

peer_verdict peer_policy::check(const stun::endpoint& peer) const noexcept {
  // Operator lists on the address as written.
  if (any_contains(allow_, peer)) return peer_verdict::allowed_explicitly;
  if (any_contains(deny_, peer)) return peer_verdict::denied_operator;

  // IPv6 forms that carry an IPv4 address are judged by that address, so
  // ::ffff:127.0.0.1 or 2002:7f00:1:: cannot reach loopback.
  stun::endpoint inner;
  if (embedded_v4(peer, inner)) {
    if (any_contains(allow_, inner)) return peer_verdict::allowed_explicitly;
    if (any_contains(deny_, inner)) return peer_verdict::denied_operator;
    return default_denied(inner) ? peer_verdict::denied_default : peer_verdict::allowed;
  }
  return default_denied(peer) ? peer_verdict::denied_default : peer_verdict::allowed;
}

}  // namespace anyturn::auth
