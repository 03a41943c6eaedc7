// A worker's fast_path over the maps: entry counts, updates, map-full and
// not-offloadable fallbacks, and the removal of an allocation's channels.
#include <anyturn/xdp/offload.hpp>

#include <gtest/gtest.h>

namespace anyturn::xdp {
namespace {

relay::fast_channel channel(std::uint16_t number, std::uint16_t peer_port) {
  relay::fast_channel c;
  c.client.remote = *stun::endpoint::parse("192.0.2.2:40000");
  c.client.local = *stun::endpoint::parse("192.0.2.1:3478");
  c.relay = *stun::endpoint::parse("192.0.2.1:50000");
  c.peer = *stun::endpoint::parse("198.51.100.3:1");
  c.peer.port = peer_port;
  c.number = number;
  c.expires_mono_ms = 1;
  return c;
}

class port_fixture : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!can_load(why)) GTEST_SKIP() << why;
    options opt;
    opt.max_channels = 2;
    opt.max_allocations = 2;
    std::string error;
    off_ = offload::open(opt, error);
    ASSERT_NE(off_, nullptr) << error;
    port_ = off_->port();
  }
  std::uint64_t fallbacks(fallback f) const {
    return off_->read_stats().fallbacks[static_cast<std::size_t>(f)];
  }
  std::unique_ptr<offload> off_;
  std::unique_ptr<relay::fast_path> port_;
};

TEST_F(port_fixture, counts_entries_and_falls_back_when_a_map_is_full) {
  const auto h = port_->add_allocation({});
  ASSERT_NE(h, relay::fast_path::no_handle);
  EXPECT_TRUE(port_->put_channel(h, channel(0x4000, 1)));
  EXPECT_TRUE(port_->put_channel(h, channel(0x4001, 2)));
  EXPECT_TRUE(port_->put_channel(h, channel(0x4001, 2))) << "an update needs no room";
  EXPECT_EQ(off_->read_stats().channel_entries, 2u);
  EXPECT_FALSE(port_->put_channel(h, channel(0x4002, 3)));
  EXPECT_EQ(fallbacks(fallback::map_full), 1u);
  EXPECT_EQ(off_->read_stats().channel_entries, 2u);

  const auto h2 = port_->add_allocation({});
  ASSERT_NE(h2, relay::fast_path::no_handle);
  EXPECT_EQ(port_->add_allocation({}), relay::fast_path::no_handle);
  EXPECT_EQ(fallbacks(fallback::map_full), 2u);
  EXPECT_EQ(off_->read_stats().allocation_entries, 2u);

  port_->remove_channel(h, channel(0x4000, 1));
  EXPECT_EQ(off_->read_stats().channel_entries, 1u);
  EXPECT_TRUE(port_->put_channel(h, channel(0x4002, 3))) << "room again after a removal";
  port_->remove_allocation(h);
  EXPECT_EQ(off_->read_stats().channel_entries, 0u) << "the allocation's channels go with it";
  EXPECT_EQ(off_->read_stats().allocation_entries, 1u);
  EXPECT_TRUE(port_->put_channel(h2, channel(0x4003, 4)));
  EXPECT_FALSE(port_->put_channel(h, channel(0x4004, 5))) << "a removed allocation takes no channel";
  port_.reset();
  EXPECT_EQ(off_->read_stats().channel_entries, 0u) << "a port removes what is left";
  EXPECT_EQ(off_->read_stats().allocation_entries, 0u);
}

TEST_F(port_fixture, refuses_what_the_program_cannot_forward) {
  const auto h = port_->add_allocation({});
  auto mixed = channel(0x4000, 1);
  mixed.peer = *stun::endpoint::parse("[2001:db8::3]:1");
  mixed.relay = *stun::endpoint::parse("[2001:db8::1]:50000");
  EXPECT_FALSE(port_->put_channel(h, mixed));
  auto own = channel(0x4001, 1);
  own.own_peer = true;
  EXPECT_FALSE(port_->put_channel(h, own));
  auto tcp = channel(0x4002, 1);
  tcp.client.proto = relay::transport::tcp;
  EXPECT_FALSE(port_->put_channel(h, tcp));
  EXPECT_EQ(fallbacks(fallback::not_offloadable), 3u);
  EXPECT_EQ(off_->read_stats().channel_entries, 0u);
}

TEST_F(port_fixture, a_new_allocation_starts_with_zero_totals) {
  const auto h = port_->add_allocation({});
  const auto t = port_->totals(h);
  EXPECT_EQ(t.packets_to_peer + t.packets_to_client + t.bytes_to_peer + t.bytes_to_client, 0u);
  const auto end = port_->remove_allocation(h);
  EXPECT_EQ(end.packets_to_peer, 0u);
  EXPECT_EQ(off_->read_stats().allocation_entries, 0u);
}

}  // namespace
}  // namespace anyturn::xdp
