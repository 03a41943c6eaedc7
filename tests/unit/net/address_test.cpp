#include <anyturn/net/address.hpp>

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <cstring>

namespace anyturn::net {
namespace {

stun::endpoint parse(const char* text) {
  auto ep = stun::endpoint::parse(text);
  EXPECT_TRUE(ep.has_value()) << text;
  return ep.value_or(stun::endpoint{});
}

TEST(address, ipv4_to_sockaddr_uses_network_order) {
  const socket_address sa = to_sockaddr(parse("192.0.2.7:3478"));
  ASSERT_EQ(sa.size, sizeof(sockaddr_in));
  sockaddr_in sin;
  std::memcpy(&sin, &sa.storage, sizeof sin);
  EXPECT_EQ(sin.sin_family, AF_INET);
  EXPECT_EQ(ntohs(sin.sin_port), 3478);
  EXPECT_EQ(ntohl(sin.sin_addr.s_addr), 0xC0000207u);
}

TEST(address, ipv6_to_sockaddr) {
  const socket_address sa = to_sockaddr(parse("[2001:db8::1]:49152"));
  ASSERT_EQ(sa.size, sizeof(sockaddr_in6));
  sockaddr_in6 sin6;
  std::memcpy(&sin6, &sa.storage, sizeof sin6);
  EXPECT_EQ(sin6.sin6_family, AF_INET6);
  EXPECT_EQ(ntohs(sin6.sin6_port), 49152);
  in6_addr expected;
  ASSERT_EQ(inet_pton(AF_INET6, "2001:db8::1", &expected), 1);
  EXPECT_EQ(std::memcmp(&sin6.sin6_addr, &expected, 16), 0);
  EXPECT_EQ(sin6.sin6_scope_id, 0u);
}

TEST(address, round_trips_both_families) {
  for (const char* text : {"0.0.0.0:0", "127.0.0.1:1", "255.255.255.255:65535", "[::]:0",
                           "[::1]:3478", "[fe80::1:2:3:4]:9", "[::ffff:10.0.0.1]:80"}) {
    const stun::endpoint ep = parse(text);
    const socket_address sa = to_sockaddr(ep);
    auto back = from_sockaddr(sa.data(), sa.size);
    ASSERT_TRUE(back.has_value()) << text;
    EXPECT_EQ(*back, ep) << text;
    EXPECT_EQ(back->to_string(), ep.to_string());
  }
}

TEST(address, from_sockaddr_rejects_short_and_foreign) {
  const socket_address v4 = to_sockaddr(parse("1.2.3.4:5"));
  EXPECT_FALSE(from_sockaddr(v4.data(), v4.size - 1).has_value());
  const socket_address v6 = to_sockaddr(parse("[::1]:5"));
  EXPECT_FALSE(from_sockaddr(v6.data(), sizeof(sockaddr_in)).has_value());
  EXPECT_FALSE(from_sockaddr(nullptr, 16).has_value());
  sockaddr_storage unix_addr{};
  unix_addr.ss_family = AF_UNIX;
  EXPECT_FALSE(from_sockaddr(reinterpret_cast<sockaddr*>(&unix_addr), sizeof unix_addr).has_value());
}

TEST(address, unmap_v4) {
  EXPECT_EQ(unmap_v4(parse("[::ffff:192.0.2.1]:7")), parse("192.0.2.1:7"));
  EXPECT_EQ(unmap_v4(parse("[::1]:7")), parse("[::1]:7"));
  EXPECT_EQ(unmap_v4(parse("[::192.0.2.1]:7")), parse("[::192.0.2.1]:7"));  // compatible, not mapped
  EXPECT_EQ(unmap_v4(parse("10.1.2.3:4")), parse("10.1.2.3:4"));
}

TEST(address, is_unspecified) {
  EXPECT_TRUE(is_unspecified(parse("0.0.0.0:3478")));
  EXPECT_TRUE(is_unspecified(parse("[::]:3478")));
  EXPECT_FALSE(is_unspecified(parse("0.0.0.1:3478")));
  EXPECT_FALSE(is_unspecified(parse("[::1]:3478")));
}

TEST(address, source_control_ipv4) {
  control_buffer buf;
  const std::size_t len = write_source_control(parse("198.51.100.9:0"), buf.bytes);
  ASSERT_EQ(len, CMSG_SPACE(sizeof(in_pktinfo)));
  msghdr msg{};
  msg.msg_control = buf.bytes;
  msg.msg_controllen = len;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->cmsg_level, IPPROTO_IP);
  EXPECT_EQ(c->cmsg_type, IP_PKTINFO);
  in_pktinfo pi;
  std::memcpy(&pi, CMSG_DATA(c), sizeof pi);
  EXPECT_EQ(ntohl(pi.ipi_spec_dst.s_addr), 0xC6336409u);
  EXPECT_EQ(pi.ipi_addr.s_addr, 0u);
  EXPECT_EQ(pi.ipi_ifindex, 0);
  EXPECT_EQ(CMSG_NXTHDR(&msg, c), nullptr);
}

TEST(address, source_control_ipv6_and_small_buffer) {
  control_buffer buf;
  const stun::endpoint src = parse("[2001:db8::5]:0");
  const std::size_t len = write_source_control(src, buf.bytes);
  ASSERT_EQ(len, CMSG_SPACE(sizeof(in6_pktinfo)));
  msghdr msg{};
  msg.msg_control = buf.bytes;
  msg.msg_controllen = len;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->cmsg_level, IPPROTO_IPV6);
  EXPECT_EQ(c->cmsg_type, IPV6_PKTINFO);
  in6_pktinfo pi;
  std::memcpy(&pi, CMSG_DATA(c), sizeof pi);
  EXPECT_EQ(std::memcmp(&pi.ipi6_addr, src.ip.data(), 16), 0);

  std::byte tiny[8];
  EXPECT_EQ(write_source_control(src, tiny), 0u);
}

// Builds what the kernel hands recvmsg: PKTINFO plus SO_RXQ_OVFL.
TEST(address, parse_control_reads_pktinfo_and_drops) {
  control_buffer buf{};
  msghdr msg{};
  msg.msg_control = buf.bytes;
  msg.msg_controllen = CMSG_SPACE(sizeof(in_pktinfo)) + CMSG_SPACE(sizeof(std::uint32_t));
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = IPPROTO_IP;
  c->cmsg_type = IP_PKTINFO;
  c->cmsg_len = CMSG_LEN(sizeof(in_pktinfo));
  in_pktinfo pi{};
  pi.ipi_addr.s_addr = htonl(0x7F000002);     // header destination
  pi.ipi_spec_dst.s_addr = htonl(0x7F000001); // routing's local address
  std::memcpy(CMSG_DATA(c), &pi, sizeof pi);
  c = CMSG_NXTHDR(&msg, c);
  ASSERT_NE(c, nullptr);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SO_RXQ_OVFL;
  c->cmsg_len = CMSG_LEN(sizeof(std::uint32_t));
  const std::uint32_t drops = 42;
  std::memcpy(CMSG_DATA(c), &drops, sizeof drops);

  const receive_info info = parse_control(msg);
  ASSERT_TRUE(info.local.has_value());
  EXPECT_EQ(*info.local, parse("127.0.0.2:0"));
  ASSERT_TRUE(info.drops.has_value());
  EXPECT_EQ(*info.drops, 42u);
}

TEST(address, parse_control_ipv6_pktinfo_and_empty) {
  control_buffer buf{};
  msghdr msg{};
  msg.msg_control = buf.bytes;
  msg.msg_controllen = CMSG_SPACE(sizeof(in6_pktinfo));
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = IPPROTO_IPV6;
  c->cmsg_type = IPV6_PKTINFO;
  c->cmsg_len = CMSG_LEN(sizeof(in6_pktinfo));
  in6_pktinfo pi{};
  ASSERT_EQ(inet_pton(AF_INET6, "2001:db8::7", &pi.ipi6_addr), 1);
  std::memcpy(CMSG_DATA(c), &pi, sizeof pi);
  receive_info info = parse_control(msg);
  ASSERT_TRUE(info.local.has_value());
  EXPECT_EQ(*info.local, parse("[2001:db8::7]:0"));
  EXPECT_FALSE(info.drops.has_value());

  msghdr none{};
  info = parse_control(none);
  EXPECT_FALSE(info.local.has_value());
  EXPECT_FALSE(info.drops.has_value());
}

TEST(address, parse_control_ignores_short_payloads) {
  control_buffer buf{};
  msghdr msg{};
  msg.msg_control = buf.bytes;
  msg.msg_controllen = CMSG_SPACE(2);
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = IPPROTO_IP;
  c->cmsg_type = IP_PKTINFO;
  c->cmsg_len = CMSG_LEN(2);  // shorter than in_pktinfo: ignored, not read past
  const receive_info info = parse_control(msg);
  EXPECT_FALSE(info.local.has_value());
}

}  // namespace
}  // namespace anyturn::net
