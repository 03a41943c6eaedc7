// Test frames for the XDP program: Ethernet + IPv4/IPv6 + UDP, built and
// checked byte by byte, with the checksums computed here independently of
// the program's incremental updates.
#pragma once

#include <anyturn/stun/endpoint.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

namespace anyturn::xdp::test {

using frame = std::vector<std::uint8_t>;
using mac = std::array<std::uint8_t, 6>;

inline std::uint32_t sum16(const std::uint8_t* p, std::size_t n, std::uint32_t sum = 0) {
  for (std::size_t i = 0; i + 1 < n; i += 2) sum += static_cast<std::uint32_t>(p[i] << 8 | p[i + 1]);
  if (n % 2 != 0) sum += static_cast<std::uint32_t>(p[n - 1] << 8);
  return sum;
}
inline std::uint16_t finish16(std::uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum & 0xffff);
}
inline std::uint16_t get16(const frame& f, std::size_t at) {
  return static_cast<std::uint16_t>(f.at(at) << 8 | f.at(at + 1));
}
inline void put16(frame& f, std::size_t at, std::uint16_t v) {
  f.at(at) = static_cast<std::uint8_t>(v >> 8);
  f.at(at + 1) = static_cast<std::uint8_t>(v);
}

inline std::size_t l4_offset(const frame& f) { return get16(f, 12) == 0x0800 ? 34 : 54; }

// The UDP checksum over the pseudo-header and the datagram, as a receiver
// verifies it: 0 (or 0xffff before the final complement) when correct.
inline std::uint16_t udp_checksum_of(const frame& f) {
  const bool v4 = get16(f, 12) == 0x0800;
  const std::size_t l4 = l4_offset(f);
  const std::size_t udp_len = get16(f, l4 + 4);
  std::uint32_t sum = 0;
  if (v4) {
    sum = sum16(&f.at(26), 8);
  } else {
    sum = sum16(&f.at(22), 32);
  }
  sum += 17 + static_cast<std::uint32_t>(udp_len);
  frame copy(f.begin() + static_cast<long>(l4), f.begin() + static_cast<long>(l4 + udp_len));
  copy[6] = copy[7] = 0;
  const std::uint16_t c = finish16(sum16(copy.data(), copy.size(), sum));
  return c == 0 ? 0xffff : c;
}

struct udp_frame {
  mac dst_mac{0x02, 0, 0, 0, 0, 0xaa};
  mac src_mac{0x02, 0, 0, 0, 0, 0xbb};
  stun::endpoint src, dst;
  std::vector<std::uint8_t> payload;
  bool checksum = true;   // false: UDP checksum 0
  std::uint8_t tos = 0;
  std::uint16_t ip_id = 0x1234;
  std::uint16_t frag_off = 0;  // IPv4 flags and offset (host order)
  bool ip_options = false;     // IPv4: a 4-byte NOP option (ihl 6)
  std::size_t trailer = 0;     // Ethernet trailer bytes beyond the IP packet

  [[nodiscard]] frame build() const {
    const bool v4 = src.is_v4();
    const std::size_t ip_hdr = v4 ? (ip_options ? 24 : 20) : 40;
    const std::size_t udp_len = 8 + payload.size();
    frame f(14 + ip_hdr + udp_len + trailer, 0);
    std::copy(dst_mac.begin(), dst_mac.end(), f.begin());
    std::copy(src_mac.begin(), src_mac.end(), f.begin() + 6);
    put16(f, 12, v4 ? 0x0800 : 0x86dd);
    if (v4) {
      f[14] = static_cast<std::uint8_t>(0x40 | ip_hdr / 4);
      f[15] = tos;
      put16(f, 16, static_cast<std::uint16_t>(ip_hdr + udp_len));
      put16(f, 18, ip_id);
      put16(f, 20, frag_off);
      f[22] = 64;
      f[23] = 17;
      std::memcpy(&f[26], src.ip.data(), 4);
      std::memcpy(&f[30], dst.ip.data(), 4);
      if (ip_options) f[34] = f[35] = f[36] = f[37] = 1;  // NOP
      put16(f, 24, finish16(sum16(&f[14], ip_hdr)));
    } else {
      f[14] = 0x60;
      put16(f, 18, static_cast<std::uint16_t>(udp_len));
      f[20] = 17;
      f[21] = 64;
      std::memcpy(&f[22], src.ip.data(), 16);
      std::memcpy(&f[38], dst.ip.data(), 16);
    }
    const std::size_t l4 = 14 + ip_hdr;
    put16(f, l4, src.port);
    put16(f, l4 + 2, dst.port);
    put16(f, l4 + 4, static_cast<std::uint16_t>(udp_len));
    if (!payload.empty()) std::memcpy(&f[l4 + 8], payload.data(), payload.size());
    if (checksum && !ip_options) put16(f, l4 + 6, udp_checksum_of(f));
    return f;
  }
};

// ChannelData: number, length, data, then `padding` bytes of value `pad`.
inline std::vector<std::uint8_t> channel_data(std::uint16_t number, const std::vector<std::uint8_t>& data,
                                              std::size_t padding = 0, std::uint8_t pad = 0,
                                              int length_override = -1) {
  std::vector<std::uint8_t> out(4 + data.size() + padding, pad);
  const auto len = length_override >= 0 ? static_cast<std::uint16_t>(length_override)
                                        : static_cast<std::uint16_t>(data.size());
  out[0] = static_cast<std::uint8_t>(number >> 8);
  out[1] = static_cast<std::uint8_t>(number);
  out[2] = static_cast<std::uint8_t>(len >> 8);
  out[3] = static_cast<std::uint8_t>(len);
  std::copy(data.begin(), data.end(), out.begin() + 4);
  return out;
}

inline std::vector<std::uint8_t> pattern(std::size_t n, std::uint8_t seed = 1) {
  std::vector<std::uint8_t> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::uint8_t>(seed + i * 7);
  return out;
}

}  // namespace anyturn::xdp::test
