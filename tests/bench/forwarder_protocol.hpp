// The bare forwarder's tiny control protocol, shared by the forwarder and
// the load generator's `--raw` mode.
//
// The forwarder is the benchmark's ceiling reference: it relays datagrams
// between a client and a peer through one relay socket per client, like a
// TURN server with one channel, but parses nothing. Its data packets use
// the same wire format as TURN ChannelData, so the load generator sends the
// very same bytes to it as to a TURN server:
//
//   client -> forwarder   [4-byte header][payload]  first byte 0x40-0x7F
//   forwarder -> peer     [payload]                 (header stripped, not read)
//   peer -> forwarder     [payload]
//   forwarder -> client   [4-byte header][payload]  (a fixed header per client)
//
// Before sending data, a client registers its peer (the TURN equivalent is
// Allocate + ChannelBind, outside the measurement):
//
//   client -> forwarder   AB 'T' 'B' 'F' 01 00 00 00  peer-ip(4) peer-port(2) 00 00
//   forwarder -> client   AB 'T' 'B' 'F' 02 00 00 00  relay-ip(4) relay-port(2) 00 00
//
// The first byte 0xAB is outside the ChannelData range, so one byte tells
// control from data.
// A retransmitted registration gets the same answer. Addresses are in
// network byte order.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace anyturn::bench::forwarder {

inline constexpr std::size_t control_size = 16;
inline constexpr std::array<unsigned char, 4> control_magic = {0xAB, 'T', 'B', 'F'};
inline constexpr std::uint8_t op_register = 1;
inline constexpr std::uint8_t op_registered = 2;
// The channel number written in the header of packets towards the client.
inline constexpr std::uint16_t channel = 0x4000;

struct control {
  std::uint8_t op = 0;
  std::uint32_t ip_be = 0;    // network order
  std::uint16_t port_be = 0;  // network order
};

inline void write_control(std::byte* out, const control& c) {
  std::memset(out, 0, control_size);
  std::memcpy(out, control_magic.data(), 4);
  out[4] = std::byte{c.op};
  std::memcpy(out + 8, &c.ip_be, 4);
  std::memcpy(out + 12, &c.port_be, 2);
}

inline bool read_control(const std::byte* in, std::size_t len, control& c) {
  if (len != control_size || std::memcmp(in, control_magic.data(), 4) != 0) return false;
  c.op = static_cast<std::uint8_t>(in[4]);
  std::memcpy(&c.ip_be, in + 8, 4);
  std::memcpy(&c.port_be, in + 12, 2);
  return true;
}

}  // namespace anyturn::bench::forwarder
