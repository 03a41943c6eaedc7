// anyturn::net — conversions between `stun::endpoint` and the kernel's socket
// addresses, and the ancillary data (cmsg) the UDP path reads and writes.
//
// Pure functions over caller-provided buffers: no allocation, no syscalls,
// so the receive and send paths can use them per packet.
#pragma once

#include <anyturn/stun/endpoint.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include <netinet/in.h>
#include <sys/socket.h>

namespace anyturn::net {

// A sockaddr big enough for either family, with its length.
struct socket_address {
  sockaddr_storage storage{};
  socklen_t size = 0;

  [[nodiscard]] sockaddr* data() { return reinterpret_cast<sockaddr*>(&storage); }
  [[nodiscard]] const sockaddr* data() const { return reinterpret_cast<const sockaddr*>(&storage); }
};

// endpoint -> sockaddr_in / sockaddr_in6.
socket_address to_sockaddr(const stun::endpoint& ep);
// The same into `out`, which has room for a sockaddr_in6; returns the length.
socklen_t write_sockaddr(const stun::endpoint& ep, void* out);

// sockaddr_in / sockaddr_in6 -> endpoint; nullopt for other families or a
// short length. IPv4-mapped IPv6 addresses stay IPv6 (see unmap_v4).
std::optional<stun::endpoint> from_sockaddr(const sockaddr* sa, socklen_t len);

// ::ffff:a.b.c.d -> a.b.c.d (same port); anything else unchanged.
using stun::unmap_v4;

// 0.0.0.0 or :: (a wildcard bind).
bool is_unspecified(const stun::endpoint& ep);

// Room for the control data of one received datagram (PKTINFO of either
// family plus SO_RXQ_OVFL) or one sent datagram (PKTINFO).
inline constexpr std::size_t control_buffer_size = 128;

struct alignas(cmsghdr) control_buffer {
  std::byte bytes[control_buffer_size];
};

// What the kernel told us about one received datagram.
struct receive_info {
  std::optional<stun::endpoint> local;   // destination address (IP_PKTINFO/IPV6_PKTINFO), port 0
  std::optional<std::uint32_t> drops;    // SO_RXQ_OVFL: socket's cumulative drop count
};
receive_info parse_control(const msghdr& msg);

// Writes an IP_PKTINFO / IPV6_PKTINFO control message that makes sendmsg use
// `source` as the datagram's source address. Returns the msg_controllen to
// use, or 0 if `buffer` is too small.
std::size_t write_source_control(const stun::endpoint& source, std::span<std::byte> buffer);

}  // namespace anyturn::net
