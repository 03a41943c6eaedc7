// The XDP program (src/xdp/bpf/relay.bpf.c) run by BPF_PROG_TEST_RUN on
// crafted frames, with real map entries installed through a port, inside a
// network namespace whose veths and static neighbours make the program's
// FIB lookups succeed. Skipped (with the reason) without BPF or netns.
#include <anyturn/xdp/offload.hpp>

#include "frames.hpp"
#include "netns.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <net/if.h>
#include <time.h>

#include <gtest/gtest.h>

#include <memory>

namespace anyturn::xdp {
namespace {

using test::frame;
using test::get16;
using test::udp_frame;

const test::mac server_mac{0x02, 0, 0, 0, 0x01, 0x01};
const test::mac client_mac{0x02, 0, 0, 0, 0, 0x02};
const test::mac peer_mac{0x02, 0, 0, 0, 0, 0x03};
const test::mac far_peer_mac{0x02, 0, 0, 0, 0, 0x13};

stun::endpoint v4(const char* text) { return *stun::endpoint::parse(text); }

std::int64_t mono_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1'000'000;
}

struct run_result {
  int action = -1;
  frame out;
  friend bool operator==(const run_result&, const run_result&) = default;
};

class RelayBpf : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string why;
    if (!can_load(why)) {
      skip_ = why;
      return;
    }
    ns_ = std::make_unique<test::scoped_netns>(std::vector<std::string>{
        "ip -n {ns} link add xa0 address 02:00:00:00:01:01 type veth peer name xa1",
        "ip -n {ns} link add xb0 address 02:00:00:00:01:11 type veth peer name xb1",
        "ip -n {ns} link set xa0 up", "ip -n {ns} link set xa1 up",
        "ip -n {ns} link add xc0 address 02:00:00:00:01:21 type veth peer name xc1",
        "ip -n {ns} link set xb0 up", "ip -n {ns} link set xb1 up",
        "ip -n {ns} link set xc0 up", "ip -n {ns} link set xc1 up",
        "ip -n {ns} addr add 10.79.0.1/24 dev xc0",
        "ip -n {ns} neigh replace 10.79.0.3 lladdr 02:00:00:00:00:23 dev xc0 nud permanent",
        "ip -n {ns} addr add 10.77.0.1/24 dev xa0",
        "ip -n {ns} addr add fd77::1/64 dev xa0 nodad",
        "ip -n {ns} addr add 10.78.0.1/24 dev xb0",
        "ip -n {ns} neigh replace 10.77.0.2 lladdr 02:00:00:00:00:02 dev xa0 nud permanent",
        "ip -n {ns} neigh replace 10.77.0.3 lladdr 02:00:00:00:00:03 dev xa0 nud permanent",
        "ip -n {ns} neigh replace fd77::2 lladdr 02:00:00:00:00:02 dev xa0 nud permanent",
        "ip -n {ns} neigh replace fd77::3 lladdr 02:00:00:00:00:03 dev xa0 nud permanent",
        "ip -n {ns} neigh replace 10.78.0.3 lladdr 02:00:00:00:00:13 dev xb0 nud permanent",
    });
    if (!ns_->ok()) {
      skip_ = "cannot set up the test namespace: " + ns_->failed_command();
      ns_.reset();
      return;
    }
    ingress_ = static_cast<int>(if_nametoindex("xa0"));
    options opt;
    // xb0 is an egress for redirects (tx_ports); xc0 is not attached.
    opt.interfaces = {"xb0"};
    opt.mode = attach_mode::generic;
    opt.max_channels = 8;
    opt.max_allocations = 8;
    std::string error;
    offload_ = offload::open(opt, error);
    if (!offload_) skip_ = error;
  }
  static void TearDownTestSuite() {
    offload_.reset();
    ns_.reset();
  }
  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    port_ = offload_->port();
  }
  void TearDown() override { port_.reset(); }

  static run_result run(const frame& in) {
    run_result r;
    r.out.assign(in.size() + 64, 0);
    xdp_md ctx{};
    ctx.data_end = static_cast<std::uint32_t>(in.size());
    ctx.ingress_ifindex = static_cast<std::uint32_t>(ingress_);
    LIBBPF_OPTS(bpf_test_run_opts, o);
    o.data_in = in.data();
    o.data_size_in = static_cast<std::uint32_t>(in.size());
    o.data_out = r.out.data();
    o.data_size_out = static_cast<std::uint32_t>(r.out.size());
    o.ctx_in = &ctx;
    o.ctx_size_in = sizeof(ctx);
    o.repeat = 1;
    const int rc = bpf_prog_test_run_opts(offload_->program_fd_for_test(), &o);
    EXPECT_EQ(rc, 0) << "BPF_PROG_TEST_RUN: " << std::strerror(errno);
    r.action = static_cast<int>(o.retval);
    r.out.resize(o.data_size_out);
    return r;
  }

  // A channel 0x4001 of client 10.77.0.2:40000 (listener 10.77.0.1:3478)
  // to peer 10.77.0.3:60000 through relay 10.77.0.1:50000.
  static relay::fast_channel channel(bool ipv6 = false) {
    relay::fast_channel c;
    c.client.proto = relay::transport::udp;
    c.client.remote = v4(ipv6 ? "[fd77::2]:40000" : "10.77.0.2:40000");
    c.client.local = v4(ipv6 ? "[fd77::1]:3478" : "10.77.0.1:3478");
    c.relay = v4(ipv6 ? "[fd77::1]:50000" : "10.77.0.1:50000");
    c.peer = v4(ipv6 ? "[fd77::3]:60000" : "10.77.0.3:60000");
    c.number = 0x4001;
    c.expires_mono_ms = mono_ms() + 600'000;
    return c;
  }
  static udp_frame from_client(const relay::fast_channel& c, std::vector<std::uint8_t> payload) {
    udp_frame f;
    f.dst_mac = server_mac;
    f.src_mac = client_mac;
    f.src = c.client.remote;
    f.dst = c.client.local;
    f.payload = std::move(payload);
    return f;
  }
  static udp_frame from_peer(const relay::fast_channel& c, std::vector<std::uint8_t> payload) {
    udp_frame f;
    f.dst_mac = server_mac;
    f.src_mac = peer_mac;
    f.src = c.peer;
    f.dst = c.relay;
    f.payload = std::move(payload);
    return f;
  }
  relay::fast_path::handle install(const relay::fast_channel& c, const relay::fast_limits& l = {}) {
    const auto h = port_->add_allocation(l);
    EXPECT_NE(h, relay::fast_path::no_handle);
    EXPECT_TRUE(port_->put_channel(h, c));
    return h;
  }
  static std::uint64_t fallbacks(fallback f) {
    return offload_->read_stats().fallbacks[static_cast<std::size_t>(f)];
  }

  // Every byte of a rewritten frame that matters: MACs, addresses, ports,
  // lengths, TTL, the IPv4 header checksum, the UDP checksum (recomputed
  // here) and the payload.
  static void expect_frame(const frame& out, const test::mac& dst_mac, const stun::endpoint& src,
                           const stun::endpoint& dst, const std::vector<std::uint8_t>& payload,
                           bool checksum = true) {
    ASSERT_GE(out.size(), 14u);
    EXPECT_TRUE(std::equal(dst_mac.begin(), dst_mac.end(), out.begin())) << "destination MAC";
    EXPECT_TRUE(std::equal(server_mac.begin(), server_mac.end(), out.begin() + 6)) << "source MAC";
    const bool is_v4 = src.is_v4();
    const std::size_t l4 = is_v4 ? 34 : 54;
    ASSERT_EQ(out.size(), l4 + 8 + payload.size()) << "frame length";
    if (is_v4) {
      EXPECT_EQ(get16(out, 12), 0x0800);
      EXPECT_EQ(out[14], 0x45);
      EXPECT_EQ(get16(out, 16), 20 + 8 + payload.size()) << "IPv4 total length";
      EXPECT_EQ(out[22], 64) << "TTL";
      EXPECT_EQ(out[23], 17);
      EXPECT_EQ(test::finish16(test::sum16(&out[14], 20)), 0) << "IPv4 header checksum";
      EXPECT_EQ(0, std::memcmp(&out[26], src.ip.data(), 4)) << "source address";
      EXPECT_EQ(0, std::memcmp(&out[30], dst.ip.data(), 4)) << "destination address";
    } else {
      EXPECT_EQ(get16(out, 12), 0x86dd);
      EXPECT_EQ(out[14] >> 4, 6);
      EXPECT_EQ(get16(out, 18), 8 + payload.size()) << "IPv6 payload length";
      EXPECT_EQ(out[20], 17);
      EXPECT_EQ(out[21], 64) << "hop limit";
      EXPECT_EQ(0, std::memcmp(&out[22], src.ip.data(), 16)) << "source address";
      EXPECT_EQ(0, std::memcmp(&out[38], dst.ip.data(), 16)) << "destination address";
    }
    EXPECT_EQ(get16(out, l4), src.port);
    EXPECT_EQ(get16(out, l4 + 2), dst.port);
    EXPECT_EQ(get16(out, l4 + 4), 8 + payload.size()) << "UDP length";
    if (checksum) {
      EXPECT_EQ(get16(out, l4 + 6), test::udp_checksum_of(out)) << "UDP checksum";
    } else {
      EXPECT_EQ(get16(out, l4 + 6), 0) << "UDP checksum stays 0";
    }
    EXPECT_TRUE(std::equal(payload.begin(), payload.end(), out.begin() + static_cast<long>(l4 + 8)))
        << "payload";
  }

  static inline std::string skip_;
  static inline std::unique_ptr<test::scoped_netns> ns_;
  static inline std::unique_ptr<offload> offload_;
  static inline int ingress_ = 0;
  std::unique_ptr<relay::fast_path> port_;
};

TEST_F(RelayBpf, ForwardsChannelDataToThePeerOverIpv4AtOddLengths) {
  const auto c = channel();
  const auto h = install(c);
  std::uint64_t bytes = 0;
  for (std::size_t n : {1u, 3u, 199u}) {
    SCOPED_TRACE(n);
    const auto data = test::pattern(n);
    const auto r = run(from_client(c, test::channel_data(0x4001, data)).build());
    EXPECT_EQ(r.action, XDP_TX);
    expect_frame(r.out, peer_mac, c.relay, c.peer, data);
    EXPECT_EQ(get16(r.out, 20) & 0x4000, 0) << "no DF unless asked";
    bytes += n;
  }
  const auto t = port_->totals(h);
  EXPECT_EQ(t.packets_to_peer, 3u);
  EXPECT_EQ(t.bytes_to_peer, bytes);
  EXPECT_EQ(t.packets_to_client, 0u);
}

TEST_F(RelayBpf, PrependsTheChannelHeaderToThePeersDatagramOverIpv4) {
  const auto c = channel();
  const auto h = install(c);
  std::uint64_t bytes = 0;
  for (std::size_t n : {1u, 3u, 199u}) {
    SCOPED_TRACE(n);
    const auto data = test::pattern(n, 9);
    const auto r = run(from_peer(c, data).build());
    EXPECT_EQ(r.action, XDP_TX);
    expect_frame(r.out, client_mac, c.client.local, c.client.remote, test::channel_data(0x4001, data));
    bytes += n;
  }
  const auto t = port_->totals(h);
  EXPECT_EQ(t.packets_to_client, 3u);
  EXPECT_EQ(t.bytes_to_client, bytes);
  EXPECT_EQ(t.packets_to_peer, 0u);
}

TEST_F(RelayBpf, ForwardsBothWaysOverIpv6) {
  const auto c = channel(true);
  const auto h = install(c);
  for (std::size_t n : {1u, 3u, 199u}) {
    SCOPED_TRACE(n);
    const auto data = test::pattern(n, 3);
    auto r = run(from_client(c, test::channel_data(0x4001, data)).build());
    EXPECT_EQ(r.action, XDP_TX);
    expect_frame(r.out, peer_mac, c.relay, c.peer, data);
    r = run(from_peer(c, data).build());
    EXPECT_EQ(r.action, XDP_TX);
    expect_frame(r.out, client_mac, c.client.local, c.client.remote, test::channel_data(0x4001, data));
  }
  const auto t = port_->totals(h);
  EXPECT_EQ(t.packets_to_peer, 3u);
  EXPECT_EQ(t.packets_to_client, 3u);
  EXPECT_EQ(t.bytes_to_peer, 203u);
  EXPECT_EQ(t.bytes_to_client, 203u);
}

TEST_F(RelayBpf, SetsDfWhenTheChannelAsksAndTrimsAnEthernetTrailer) {
  auto c = channel();
  c.dont_fragment = true;
  install(c);
  auto f = from_client(c, test::channel_data(0x4001, test::pattern(5)));
  f.trailer = 7;
  const auto r = run(f.build());
  EXPECT_EQ(r.action, XDP_TX);
  expect_frame(r.out, peer_mac, c.relay, c.peer, test::pattern(5));
  EXPECT_EQ(get16(r.out, 20), 0x4000) << "DF, no offset";
}

TEST_F(RelayBpf, PassesUnknownChannelsAndTuplesUntouched) {
  const auto c = channel();
  install(c);
  const auto wrong_channel = from_client(c, test::channel_data(0x4002, test::pattern(10))).build();
  auto r = run(wrong_channel);
  EXPECT_EQ(r.action, XDP_PASS);
  EXPECT_EQ(r.out, wrong_channel);
  auto stranger = from_peer(c, test::pattern(10));
  stranger.src = v4("10.77.0.3:60001");
  const auto unknown_peer = stranger.build();
  r = run(unknown_peer);
  EXPECT_EQ(r.action, XDP_PASS);
  EXPECT_EQ(r.out, unknown_peer);
  // A STUN message from the client (first byte 0x00) is not ChannelData.
  const auto stun = from_client(c, std::vector<std::uint8_t>(20, 0)).build();
  r = run(stun);
  EXPECT_EQ(r.action, XDP_PASS);
  EXPECT_EQ(r.out, stun);
}

TEST_F(RelayBpf, PassesOnceTheChannelOrTheAllocationIsRemoved) {
  const auto c = channel();
  auto h = install(c);
  const auto to_peer = from_client(c, test::channel_data(0x4001, test::pattern(12))).build();
  const auto to_client = from_peer(c, test::pattern(12)).build();
  EXPECT_EQ(run(to_peer).action, XDP_TX);
  port_->remove_channel(h, c);
  EXPECT_EQ(run(to_peer).action, XDP_PASS);
  EXPECT_EQ(run(to_client).action, XDP_PASS);
  ASSERT_TRUE(port_->put_channel(h, c));
  EXPECT_EQ(run(to_client).action, XDP_TX);
  const auto last = port_->remove_allocation(h);
  EXPECT_EQ(last.packets_to_peer, 1u);
  EXPECT_EQ(last.packets_to_client, 1u);
  EXPECT_EQ(last.bytes_to_client, 12u);
  EXPECT_EQ(run(to_peer).action, XDP_PASS);
  EXPECT_EQ(run(to_client), (run_result{XDP_PASS, to_client}));
}

TEST_F(RelayBpf, PassesTruncatedChannelData) {
  const auto c = channel();
  const auto h = install(c);
  const auto before = fallbacks(fallback::padding);
  const auto in = from_client(c, test::channel_data(0x4001, test::pattern(10), 0, 0, 11)).build();
  const auto r = run(in);
  EXPECT_EQ(r.action, XDP_PASS);
  EXPECT_EQ(r.out, in);
  EXPECT_EQ(fallbacks(fallback::padding), before + 1);
  EXPECT_EQ(port_->totals(h).packets_to_peer, 0u);
}

TEST_F(RelayBpf, TrimsZeroPaddingAndPassesNonZeroPadding) {
  const auto c = channel();
  install(c);
  auto r = run(from_client(c, test::channel_data(0x4001, test::pattern(3), 1, 0)).build());
  EXPECT_EQ(r.action, XDP_TX);
  expect_frame(r.out, peer_mac, c.relay, c.peer, test::pattern(3));
  r = run(from_client(c, test::channel_data(0x4001, test::pattern(1), 3, 0)).build());
  EXPECT_EQ(r.action, XDP_TX);
  expect_frame(r.out, peer_mac, c.relay, c.peer, test::pattern(1));

  const auto before = fallbacks(fallback::padding);
  const auto dirty = from_client(c, test::channel_data(0x4001, test::pattern(2), 2, 0x55)).build();
  r = run(dirty);
  EXPECT_EQ(r.action, XDP_PASS);
  EXPECT_EQ(r.out, dirty);
  const auto too_long = from_client(c, test::channel_data(0x4001, test::pattern(2), 4, 0)).build();
  r = run(too_long);
  EXPECT_EQ(r.action, XDP_PASS);
  EXPECT_EQ(fallbacks(fallback::padding), before + 2);
}

TEST_F(RelayBpf, PassesAnExpiredEntry) {
  auto c = channel();
  c.expires_mono_ms = mono_ms() - 1;
  const auto h = install(c);
  const auto before = fallbacks(fallback::expired);
  const auto in = from_client(c, test::channel_data(0x4001, test::pattern(8))).build();
  auto r = run(in);
  EXPECT_EQ(r.action, XDP_PASS);
  EXPECT_EQ(r.out, in);
  r = run(from_peer(c, test::pattern(8)).build());
  EXPECT_EQ(r.action, XDP_PASS);
  EXPECT_EQ(fallbacks(fallback::expired), before + 2);
  // A refresh (put again with a later expiry) forwards again.
  c.expires_mono_ms = mono_ms() + 60'000;
  ASSERT_TRUE(port_->put_channel(h, c));
  EXPECT_EQ(run(in).action, XDP_TX);
  EXPECT_EQ(offload_->read_stats().channel_entries, 1u) << "an update is not a new entry";
}

TEST_F(RelayBpf, KeepsIpv4ChecksumZeroAndPassesIpv6ChecksumZero) {
  const auto c4 = channel();
  install(c4);
  auto f = from_client(c4, test::channel_data(0x4001, test::pattern(7)));
  f.checksum = false;
  auto r = run(f.build());
  EXPECT_EQ(r.action, XDP_TX);
  expect_frame(r.out, peer_mac, c4.relay, c4.peer, test::pattern(7), false);
  auto p = from_peer(c4, test::pattern(7));
  p.checksum = false;
  r = run(p.build());
  EXPECT_EQ(r.action, XDP_TX);
  expect_frame(r.out, client_mac, c4.client.local, c4.client.remote,
               test::channel_data(0x4001, test::pattern(7)), false);

  const auto c6 = channel(true);
  install(c6);
  const auto before = fallbacks(fallback::zero_checksum);
  auto f6 = from_client(c6, test::channel_data(0x4001, test::pattern(7)));
  f6.checksum = false;
  const auto in6 = f6.build();
  r = run(in6);
  EXPECT_EQ(r.action, XDP_PASS);
  EXPECT_EQ(r.out, in6);
  EXPECT_EQ(fallbacks(fallback::zero_checksum), before + 1);
}

TEST_F(RelayBpf, PassesIpOptionsAndFragments) {
  const auto c = channel();
  install(c);
  auto f = from_client(c, test::channel_data(0x4001, test::pattern(8)));
  f.ip_options = true;
  auto in = f.build();
  EXPECT_EQ(run(in).action, XDP_PASS);
  EXPECT_EQ(run(in).out, in);
  f.ip_options = false;
  f.frag_off = 0x2000;  // more fragments
  in = f.build();
  EXPECT_EQ(run(in).action, XDP_PASS);
  EXPECT_EQ(run(in).out, in);
  f.frag_off = 0x0010;  // a later fragment
  in = f.build();
  EXPECT_EQ(run(in).action, XDP_PASS);
}

TEST_F(RelayBpf, RedirectsWhenTheEgressIsAnotherInterface) {
  auto c = channel();
  c.peer = v4("10.78.0.3:60000");
  install(c);
  const auto r = run(from_client(c, test::channel_data(0x4001, test::pattern(20))).build());
  EXPECT_EQ(r.action, XDP_REDIRECT);
  EXPECT_TRUE(std::equal(far_peer_mac.begin(), far_peer_mac.end(), r.out.begin()));
  const auto s = offload_->read_stats();
  EXPECT_GE(s.packets[static_cast<std::size_t>(direction::to_peer)][static_cast<std::size_t>(action::redirect)], 1u);
}

TEST_F(RelayBpf, PassesWhenTheEgressIsNotAnAttachedInterface) {
  auto c = channel();
  c.peer = v4("10.79.0.3:60000");
  install(c);
  const auto before = fallbacks(fallback::no_route);
  const auto in = from_client(c, test::channel_data(0x4001, test::pattern(20))).build();
  const auto r = run(in);
  EXPECT_EQ(r.action, XDP_PASS);
  EXPECT_EQ(r.out, in);
  EXPECT_EQ(fallbacks(fallback::no_route), before + 1);
}

TEST_F(RelayBpf, PassesWhatExceedsTheEgressMtu) {
  auto c = channel();
  c.peer = v4("10.78.0.3:60000");
  const auto h = install(c);
  ASSERT_EQ(std::system("ip link set dev xb0 mtu 120"), 0);
  const auto before = fallbacks(fallback::too_big);
  const auto fits = from_client(c, test::channel_data(0x4001, test::pattern(92))).build();
  const auto big = from_client(c, test::channel_data(0x4001, test::pattern(93))).build();
  const int fits_action = run(fits).action;
  const auto r = run(big);
  ASSERT_EQ(std::system("ip link set dev xb0 mtu 1500"), 0);
  EXPECT_EQ(fits_action, XDP_REDIRECT) << "20 + 8 + 92 = 120 bytes fit";
  EXPECT_EQ(r.action, XDP_PASS);
  EXPECT_EQ(r.out, big);
  EXPECT_EQ(fallbacks(fallback::too_big), before + 1);
  EXPECT_EQ(port_->totals(h).packets_to_peer, 1u);
}

TEST_F(RelayBpf, PassesWithoutANeighbourEntry) {
  auto c = channel();
  c.peer = v4("10.77.0.9:60000");
  install(c);
  const auto before = fallbacks(fallback::no_route);
  const auto in = from_client(c, test::channel_data(0x4001, test::pattern(20))).build();
  const auto r = run(in);
  EXPECT_EQ(r.action, XDP_PASS);
  EXPECT_EQ(r.out, in);
  EXPECT_EQ(fallbacks(fallback::no_route), before + 1);
}

// The route lookups are asked as from loopback, whose forwarding the loader
// turned on; the interfaces' own forwarding stays off (the host routes
// nothing), and without loopback's every packet passes up.
TEST_F(RelayBpf, LooksRoutesUpFromLoopbackWithTheInterfacesForwardingOff) {
  const auto c = channel();
  install(c);
  EXPECT_EQ(test::read_sysctl("net/ipv4/conf/all/forwarding"), "0");
  EXPECT_EQ(test::read_sysctl("net/ipv4/conf/xa0/forwarding"), "0");
  EXPECT_EQ(test::read_sysctl("net/ipv4/conf/lo/forwarding"), "1");
  EXPECT_EQ(test::read_sysctl("net/ipv6/conf/lo/forwarding"), "1");
  ASSERT_EQ(std::system("sysctl -qw net.ipv4.conf.lo.forwarding=0"), 0);
  const auto before = fallbacks(fallback::no_route);
  const auto in = from_client(c, test::channel_data(0x4001, test::pattern(20))).build();
  const auto r = run(in);
  ASSERT_EQ(std::system("sysctl -qw net.ipv4.conf.lo.forwarding=1"), 0);
  EXPECT_EQ(r.action, XDP_PASS);
  EXPECT_EQ(r.out, in);
  EXPECT_EQ(fallbacks(fallback::no_route), before + 1);
  EXPECT_EQ(run(in).action, XDP_TX);
}

TEST_F(RelayBpf, TokenBucketsDropABurstOverTheLimitAndCountIt) {
  const auto c = channel();
  relay::fast_limits l;
  l.packets_per_second = 1;  // refills one packet a second: nothing comes back within the test
  l.packet_burst = 3;
  const auto h = install(c, l);
  int tx = 0, dropped = 0;
  for (int i = 0; i < 5; ++i) {
    const int a = run(from_client(c, test::channel_data(0x4001, test::pattern(10))).build()).action;
    tx += a == XDP_TX;
    dropped += a == XDP_DROP;
  }
  EXPECT_EQ(tx, 3);
  EXPECT_EQ(dropped, 2);
  // The other direction has its own packet bucket.
  EXPECT_EQ(run(from_peer(c, test::pattern(10)).build()).action, XDP_TX);
  const auto t = port_->totals(h);
  EXPECT_EQ(t.packets_to_peer, 3u);
  EXPECT_EQ(t.bytes_to_peer, 30u);
  EXPECT_EQ(t.packet_rate_dropped, 2u);
  EXPECT_EQ(t.byte_rate_dropped, 0u);
}

TEST_F(RelayBpf, ByteAndBandwidthBucketsDropAndCountSeparately) {
  const auto c = channel();
  relay::fast_limits l;
  l.bytes_per_second = 1;
  l.byte_burst = 250;  // two 100-byte packets, not three
  const auto h = install(c, l);
  for (int i = 0; i < 3; ++i) run(from_client(c, test::channel_data(0x4001, test::pattern(100))).build());
  auto t = port_->totals(h);
  EXPECT_EQ(t.packets_to_peer, 2u);
  EXPECT_EQ(t.byte_rate_dropped, 1u);

  relay::fast_limits bw;
  bw.bandwidth_bytes_per_second = 150;  // shared by both directions
  auto c2 = channel();
  c2.number = 0x4002;
  c2.peer = v4("10.77.0.3:60002");
  const auto h2 = install(c2, bw);
  EXPECT_EQ(run(from_client(c2, test::channel_data(0x4002, test::pattern(100))).build()).action, XDP_TX);
  EXPECT_EQ(run(from_peer(c2, test::pattern(100)).build()).action, XDP_DROP);
  t = port_->totals(h2);
  EXPECT_EQ(t.packets_to_peer, 1u);
  EXPECT_EQ(t.packets_to_client, 0u);
  EXPECT_EQ(t.bandwidth_dropped, 1u);
}

}  // namespace
}  // namespace anyturn::xdp
