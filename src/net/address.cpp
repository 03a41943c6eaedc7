#include <anyturn/net/address.hpp>

#include <algorithm>
#include <cstring>

#include <arpa/inet.h>

namespace anyturn::net {

socklen_t write_sockaddr(const stun::endpoint& ep, void* out) {
  if (ep.is_v4()) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(ep.port);
    std::memcpy(&sin.sin_addr, ep.ip.data(), 4);
    std::memcpy(out, &sin, sizeof sin);
    return sizeof sin;
  }
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(ep.port);
  std::memcpy(&sin6.sin6_addr, ep.ip.data(), 16);
  std::memcpy(out, &sin6, sizeof sin6);
  return sizeof sin6;
}

socket_address to_sockaddr(const stun::endpoint& ep) {
  socket_address out;
  out.size = write_sockaddr(ep, &out.storage);
  return out;
}

std::optional<stun::endpoint> from_sockaddr(const sockaddr* sa, socklen_t len) {
  if (sa == nullptr || len < static_cast<socklen_t>(sizeof(sa_family_t))) return std::nullopt;
  stun::endpoint ep;
  if (sa->sa_family == AF_INET) {
    if (len < static_cast<socklen_t>(sizeof(sockaddr_in))) return std::nullopt;
    sockaddr_in sin;
    std::memcpy(&sin, sa, sizeof sin);
    ep.family = stun::address_family::ipv4;
    std::memcpy(ep.ip.data(), &sin.sin_addr, 4);
    ep.port = ntohs(sin.sin_port);
    return ep;
  }
  if (sa->sa_family == AF_INET6) {
    if (len < static_cast<socklen_t>(sizeof(sockaddr_in6))) return std::nullopt;
    sockaddr_in6 sin6;
    std::memcpy(&sin6, sa, sizeof sin6);
    ep.family = stun::address_family::ipv6;
    std::memcpy(ep.ip.data(), &sin6.sin6_addr, 16);
    ep.port = ntohs(sin6.sin6_port);
    return ep;
  }
  return std::nullopt;
}

bool is_unspecified(const stun::endpoint& ep) {
  return std::all_of(ep.ip.begin(), ep.ip.begin() + static_cast<std::ptrdiff_t>(ep.ip_size()),
                     [](std::uint8_t b) { return b == 0; });
}

receive_info parse_control(const msghdr& msg) {
  receive_info info;
  // CMSG_NXTHDR takes a non-const msghdr; it only reads it.
  auto* m = const_cast<msghdr*>(&msg);
  for (cmsghdr* c = CMSG_FIRSTHDR(m); c != nullptr; c = CMSG_NXTHDR(m, c)) {
    const auto payload = c->cmsg_len - CMSG_LEN(0);
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO && payload >= sizeof(in_pktinfo)) {
      in_pktinfo pi;
      std::memcpy(&pi, CMSG_DATA(c), sizeof pi);
      stun::endpoint ep;
      ep.family = stun::address_family::ipv4;
      // ipi_addr is the header's destination: the address the client
      // targeted (an anycast address included), which is what we answer from.
      std::memcpy(ep.ip.data(), &pi.ipi_addr, 4);
      info.local = ep;
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
               payload >= sizeof(in6_pktinfo)) {
      in6_pktinfo pi;
      std::memcpy(&pi, CMSG_DATA(c), sizeof pi);
      stun::endpoint ep;
      ep.family = stun::address_family::ipv6;
      std::memcpy(ep.ip.data(), &pi.ipi6_addr, 16);
      info.local = ep;
    } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL &&
               payload >= sizeof(std::uint32_t)) {
      std::uint32_t drops;
      std::memcpy(&drops, CMSG_DATA(c), sizeof drops);
      info.drops = drops;
    }
  }
  return info;
}

std::size_t write_source_control(const stun::endpoint& source, std::span<std::byte> buffer) {
  const std::size_t payload = source.is_v4() ? sizeof(in_pktinfo) : sizeof(in6_pktinfo);
  const std::size_t space = CMSG_SPACE(payload);
  if (buffer.size() < space) return 0;
  std::memset(buffer.data(), 0, space);
  msghdr msg{};
  msg.msg_control = buffer.data();
  msg.msg_controllen = space;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_len = CMSG_LEN(payload);
  if (source.is_v4()) {
    c->cmsg_level = IPPROTO_IP;
    c->cmsg_type = IP_PKTINFO;
    in_pktinfo pi{};
    std::memcpy(&pi.ipi_spec_dst, source.ip.data(), 4);  // source address; ifindex 0: route decides
    std::memcpy(CMSG_DATA(c), &pi, sizeof pi);
  } else {
    c->cmsg_level = IPPROTO_IPV6;
    c->cmsg_type = IPV6_PKTINFO;
    in6_pktinfo pi{};
    std::memcpy(&pi.ipi6_addr, source.ip.data(), 16);
    std::memcpy(CMSG_DATA(c), &pi, sizeof pi);
  }
  return space;
}

}  // namespace anyturn::net
