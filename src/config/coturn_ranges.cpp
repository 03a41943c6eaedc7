// coturn's peer address ranges ("A-B", a single address, or a CIDR) as the
// smallest list of CIDRs that covers exactly the same addresses.
#include <anyturn/config/coturn_import.hpp>

#include <arpa/inet.h>

#include <array>
#include <cstdint>
#include <optional>

namespace anyturn::config {

namespace {

__extension__ typedef unsigned __int128 u128;

struct ip_value {
  int family = AF_INET;  // AF_INET or AF_INET6
  u128 value = 0;
  unsigned bits() const { return family == AF_INET ? 32 : 128; }
};

std::optional<ip_value> parse_ip(std::string_view text) {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
  const std::string s(text);
  std::array<unsigned char, 16> bytes{};
  ip_value ip;
  if (::inet_pton(AF_INET, s.c_str(), bytes.data()) == 1) {
    ip.family = AF_INET;
    for (int i = 0; i < 4; ++i) ip.value = (ip.value << 8) | bytes[i];
    return ip;
  }
  if (::inet_pton(AF_INET6, s.c_str(), bytes.data()) == 1) {
    ip.family = AF_INET6;
    for (int i = 0; i < 16; ++i) ip.value = (ip.value << 8) | bytes[i];
    return ip;
  }
  return std::nullopt;
}

std::string format_ip(int family, u128 value) {
  std::array<unsigned char, 16> bytes{};
  const int n = family == AF_INET ? 4 : 16;
  for (int i = n - 1; i >= 0; --i) {
    bytes[i] = static_cast<unsigned char>(value & 0xff);
    value >>= 8;
  }
  std::array<char, INET6_ADDRSTRLEN> buf{};
  ::inet_ntop(family, bytes.data(), buf.data(), buf.size());
  return buf.data();
}

// All ones in the low `k` bits (k <= 128).
u128 low_mask(unsigned k) { return k >= 128 ? ~u128{0} : ((u128{1} << k) - 1); }

}  // namespace

std::vector<std::string> coturn_range_to_cidrs(std::string_view text) {
  std::vector<std::string> out;
  if (const auto slash = text.find('/'); slash != std::string_view::npos) {
    const auto ip = parse_ip(text.substr(0, slash));
    const auto len_text = text.substr(slash + 1);
    if (!ip || len_text.empty() || len_text.size() > 3) return out;
    unsigned len = 0;
    for (const char c : len_text) {
      if (c < '0' || c > '9') return out;
      len = len * 10 + static_cast<unsigned>(c - '0');
    }
    if (len > ip->bits()) return out;
    // Normalised: host bits cleared, as anyturn's CIDR parser expects.
    const u128 host = low_mask(ip->bits() - len);
    out.push_back(format_ip(ip->family, ip->value & ~host) + "/" + std::to_string(len));
    return out;
  }
  std::optional<ip_value> lo;
  std::optional<ip_value> hi;
  if (const auto dash = text.find('-'); dash != std::string_view::npos) {
    lo = parse_ip(text.substr(0, dash));
    hi = parse_ip(text.substr(dash + 1));
  } else {
    lo = parse_ip(text);
    hi = lo;
  }
  if (!lo || !hi || lo->family != hi->family || lo->value > hi->value) return out;
  const unsigned bits = lo->bits();
  const u128 top = low_mask(bits);
  u128 cur = lo->value;
  for (;;) {
    // The largest aligned block starting at `cur` that ends at or before hi.
    unsigned k = 0;
    while (k < bits && (cur & low_mask(k + 1)) == 0 && hi->value - cur >= low_mask(k + 1)) ++k;
    out.push_back(format_ip(lo->family, cur) + "/" + std::to_string(bits - k));
    const u128 last = cur + low_mask(k);
    if (last >= hi->value || last == top) break;
    cur = last + 1;
  }
  return out;
}

}  // namespace anyturn::config
