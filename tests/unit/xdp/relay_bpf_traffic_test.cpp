// The program attached natively to the server's veths, forwarding real
// datagrams between a client namespace and a peer namespace that nothing in
// user space relays: what arrives took the fast path (the receivers' kernels
// verify the UDP checksums). After ~offload nothing is forwarded.
#include <anyturn/xdp/offload.hpp>

#include "frames.hpp"
#include "netns.hpp"

#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>

#include <gtest/gtest.h>

namespace anyturn::xdp {
namespace {

// Locally generated UDP on a veth leaves its checksum to the device
// (CHECKSUM_PARTIAL); an XDP program on the other end would see it
// incomplete. Like `ethtool -K IF tx off`.
bool tx_checksum_off(const char* ifname) {
  const int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return false;
  ethtool_value v{};
  v.cmd = ETHTOOL_STXCSUM;
  v.data = 0;
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
  ifr.ifr_data = reinterpret_cast<char*>(&v);
  const bool ok = ioctl(s, SIOCETHTOOL, &ifr) == 0;
  close(s);
  return ok;
}

socklen_t to_sockaddr(const stun::endpoint& e, sockaddr_storage& ss) {
  ss = {};
  if (e.is_v4()) {
    auto& a = reinterpret_cast<sockaddr_in&>(ss);
    a.sin_family = AF_INET;
    a.sin_port = htons(e.port);
    std::memcpy(&a.sin_addr, e.ip.data(), 4);
    return sizeof(a);
  }
  auto& a = reinterpret_cast<sockaddr_in6&>(ss);
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(e.port);
  std::memcpy(&a.sin6_addr, e.ip.data(), 16);
  return sizeof(a);
}

stun::endpoint from_sockaddr(const sockaddr_storage& ss) {
  stun::endpoint e;
  if (ss.ss_family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(ss);
    e.family = stun::address_family::ipv4;
    std::memcpy(e.ip.data(), &a.sin_addr, 4);
    e.port = ntohs(a.sin_port);
  } else {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(ss);
    e.family = stun::address_family::ipv6;
    std::memcpy(e.ip.data(), &a.sin6_addr, 16);
    e.port = ntohs(a.sin6_port);
  }
  return e;
}

int udp_socket(const stun::endpoint& at) {
  sockaddr_storage ss{};
  const socklen_t len = to_sockaddr(at, ss);
  const int s = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s >= 0 && bind(s, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    close(s);
    return -1;
  }
  return s;
}

void send_to(int s, const stun::endpoint& to, const std::vector<std::uint8_t>& data) {
  sockaddr_storage ss{};
  const socklen_t len = to_sockaddr(to, ss);
  ASSERT_EQ(sendto(s, data.data(), data.size(), 0, reinterpret_cast<sockaddr*>(&ss), len),
            static_cast<ssize_t>(data.size()));
}

// One datagram within `ms`, with its source; empty when none came.
std::vector<std::uint8_t> receive(int s, int ms, stun::endpoint& from) {
  pollfd p{s, POLLIN, 0};
  if (poll(&p, 1, ms) <= 0) return {};
  std::vector<std::uint8_t> buf(2048);
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  const auto n = recvfrom(s, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&ss), &len);
  if (n < 0) return {};
  buf.resize(static_cast<std::size_t>(n));
  from = from_sockaddr(ss);
  return buf;
}

struct traffic_case {
  attach_mode mode;
  bool ipv6;
};

// The addresses of one family: client, listener, relay, peer.
struct addresses {
  stun::endpoint client, listener, relay, peer;
};
addresses addresses_of(bool ipv6) {
  const auto at = [](const char* text) { return *stun::endpoint::parse(text); };
  if (ipv6) return {at("[fd80::2]:40000"), at("[fd80::1]:3478"), at("[fd81::1]:50000"), at("[fd81::2]:60000")};
  return {at("10.80.0.2:40000"), at("10.80.0.1:3478"), at("10.81.0.1:50000"), at("10.81.0.2:60000")};
}

class RelayBpfTraffic : public ::testing::TestWithParam<traffic_case> {
 protected:
  void SetUp() override {
    std::string why;
    if (!can_load(why)) GTEST_SKIP() << why;
    const std::string pass = ANYTURN_XDP_PASS_OBJECT;
    ns_ = std::make_unique<test::scoped_netns>(
        std::vector<std::string>{
            "ip netns add {ns}-c", "ip netns add {ns}-p",
            "ip link add s0 netns {ns} address 02:00:00:00:02:01 type veth peer name c0 netns {ns}-c "
            "address 02:00:00:00:02:02",
            "ip link add s1 netns {ns} address 02:00:00:00:03:01 type veth peer name p0 netns {ns}-p "
            "address 02:00:00:00:03:02",
            "ip -n {ns} addr add 10.80.0.1/24 dev s0", "ip -n {ns} addr add 10.81.0.1/24 dev s1",
            "ip -n {ns}-c addr add 10.80.0.2/24 dev c0", "ip -n {ns}-p addr add 10.81.0.2/24 dev p0",
            "ip -n {ns} addr add fd80::1/64 dev s0 nodad", "ip -n {ns} addr add fd81::1/64 dev s1 nodad",
            "ip -n {ns}-c addr add fd80::2/64 dev c0 nodad", "ip -n {ns}-p addr add fd81::2/64 dev p0 nodad",
            "ip -n {ns} link set s0 up", "ip -n {ns} link set s1 up",
            "ip -n {ns}-c link set c0 up", "ip -n {ns}-p link set p0 up",
            "ip -n {ns} neigh replace 10.80.0.2 lladdr 02:00:00:00:02:02 dev s0 nud permanent",
            "ip -n {ns} neigh replace 10.81.0.2 lladdr 02:00:00:00:03:02 dev s1 nud permanent",
            "ip -n {ns}-c neigh replace 10.80.0.1 lladdr 02:00:00:00:02:01 dev c0 nud permanent",
            "ip -n {ns}-p neigh replace 10.81.0.1 lladdr 02:00:00:00:03:01 dev p0 nud permanent",
            "ip -n {ns} neigh replace fd80::2 lladdr 02:00:00:00:02:02 dev s0 nud permanent",
            "ip -n {ns} neigh replace fd81::2 lladdr 02:00:00:00:03:02 dev s1 nud permanent",
            "ip -n {ns}-c neigh replace fd80::1 lladdr 02:00:00:00:02:01 dev c0 nud permanent",
            "ip -n {ns}-p neigh replace fd81::1 lladdr 02:00:00:00:03:01 dev p0 nud permanent",
            // XDP_TX and redirected frames reach a veth end only through an XDP program.
            "ip -n {ns}-c link set dev c0 xdp obj " + pass + " sec xdp",
            "ip -n {ns}-p link set dev p0 xdp obj " + pass + " sec xdp",
        },
        std::vector<std::string>{"{ns}-c", "{ns}-p"});
    if (!ns_->ok()) GTEST_SKIP() << "cannot set up the test namespaces: " << ns_->failed_command();
    client_ns_ = ns_->name() + "-c";
    peer_ns_ = ns_->name() + "-p";
    ASSERT_TRUE(test::scoped_netns::in(client_ns_, [] { return tx_checksum_off("c0"); }));
    ASSERT_TRUE(test::scoped_netns::in(peer_ns_, [] { return tx_checksum_off("p0"); }));
    a_ = addresses_of(GetParam().ipv6);
    client_ = test::scoped_netns::in(client_ns_, [this] { return udp_socket(a_.client); });
    peer_ = test::scoped_netns::in(peer_ns_, [this] { return udp_socket(a_.peer); });
    ASSERT_GE(client_, 0);
    ASSERT_GE(peer_, 0);
  }
  void TearDown() override {
    if (client_ >= 0) close(client_);
    if (peer_ >= 0) close(peer_);
  }

  std::unique_ptr<test::scoped_netns> ns_;
  std::string client_ns_, peer_ns_;
  addresses a_;
  int client_ = -1, peer_ = -1;
};

TEST_P(RelayBpfTraffic, RelaysBothWaysAndStopsAfterDetach) {
  options opt;
  opt.interfaces = {"s0", "s1"};
  opt.mode = GetParam().mode;
  std::string error;
  auto off = offload::open(opt, error);
  ASSERT_NE(off, nullptr) << error;
  for (const auto& i : off->interfaces()) EXPECT_EQ(i.mode, GetParam().mode) << i.name;
  auto port = off->port();
  relay::fast_channel c;
  c.client.remote = a_.client;
  c.client.local = a_.listener;
  c.relay = a_.relay;
  c.peer = a_.peer;
  c.number = 0x4abc;
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  c.expires_mono_ms = ts.tv_sec * 1000 + ts.tv_nsec / 1'000'000 + 60'000;
  const auto h = port->add_allocation({});
  ASSERT_TRUE(port->put_channel(h, c));

  const int rounds = 20;
  std::uint64_t bytes = 0;
  for (int i = 0; i < rounds; ++i) {
    const auto data = test::pattern(static_cast<std::size_t>(1 + i * 37), static_cast<std::uint8_t>(i));
    bytes += data.size();
    send_to(client_, a_.listener, test::channel_data(0x4abc, data));
    stun::endpoint from;
    EXPECT_EQ(receive(peer_, 1000, from), data) << "round " << i;
    EXPECT_EQ(from, a_.relay);
    send_to(peer_, a_.relay, data);
    EXPECT_EQ(receive(client_, 1000, from), test::channel_data(0x4abc, data)) << "round " << i;
    EXPECT_EQ(from, a_.listener);
  }
  const auto t = port->totals(h);
  EXPECT_EQ(t.packets_to_peer, static_cast<std::uint64_t>(rounds));
  EXPECT_EQ(t.packets_to_client, static_cast<std::uint64_t>(rounds));
  EXPECT_EQ(t.bytes_to_peer, bytes);
  EXPECT_EQ(t.bytes_to_client, bytes);
  const auto s = off->read_stats();
  const auto redirect = static_cast<std::size_t>(action::redirect);
  EXPECT_EQ(s.packets[static_cast<std::size_t>(direction::to_peer)][redirect], static_cast<std::uint64_t>(rounds));
  EXPECT_EQ(s.packets[static_cast<std::size_t>(direction::to_client)][redirect], static_cast<std::uint64_t>(rounds));

  port.reset();
  off.reset();
  send_to(client_, a_.listener, test::channel_data(0x4abc, test::pattern(10)));
  stun::endpoint from;
  EXPECT_TRUE(receive(peer_, 200, from).empty()) << "forwarded after the offload was destroyed";
}

INSTANTIATE_TEST_SUITE_P(Modes, RelayBpfTraffic,
                         ::testing::Values(traffic_case{attach_mode::native, false},
                                           traffic_case{attach_mode::native, true},
                                           traffic_case{attach_mode::generic, false},
                                           traffic_case{attach_mode::generic, true}),
                         [](const auto& info) {
                           return std::string(to_string(info.param.mode)) + (info.param.ipv6 ? "_ipv6" : "_ipv4");
                         });

}  // namespace
}  // namespace anyturn::xdp
