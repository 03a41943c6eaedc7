// The relay core's forwarding decision, on its own: an allocation table
// filled by hand, a recording io_port, no TURN handlers and no sockets.
#include <anyturn/relay/forwarder.hpp>

#include "allocation_counter.hpp"
#include "fake_io.hpp"
#include "stun_bytes.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string_view>

namespace anyturn::relay {
namespace {

using test::bytes;

stun::endpoint ep(const char* text) { return *stun::endpoint::parse(text); }

bytes text(std::string_view s) {
  bytes b(s.size());
  std::memcpy(b.data(), s.data(), s.size());
  return b;
}

bytes channel_data(std::uint16_t number, std::string_view payload) {
  bytes out(4 + payload.size());
  stun::write_channel_data_header(out, number, static_cast<std::uint16_t>(payload.size()));
  std::memcpy(out.data() + 4, payload.data(), payload.size());
  return out;
}

class Forwarder : public ::testing::Test {
 protected:
  Forwarder() { counters_.tenants = std::vector<tenant_counters>(2); }

  // An allocation for `client` with one IPv4 relay socket (relay id 0).
  allocation& add(const client_ref& client) {
    const auto slot = table_.reserve();
    auto a = std::make_unique<allocation>();
    a->client = client;
    a->tenant = 1;
    a->relays[0] = relay_side{table_.take_relay_id(slot), ep("198.51.100.7:50000"), 0};
    a->relay_count = 1;
    allocation& ref = *a;
    table_.insert(slot, std::move(a));
    return ref;
  }

  client_ref client(transport proto = transport::udp) {
    client_ref c;
    c.proto = proto;
    c.remote = ep("203.0.113.10:40000");
    c.local = ep("192.0.2.1:3478");
    if (proto != transport::udp) c.connection = 7;
    return c;
  }

  bytes send_indication(const stun::endpoint& peer, std::string_view payload) {
    std::array<std::byte, 512> buf{};
    stun::message_builder b(buf, static_cast<std::uint16_t>(stun::method::send),
                            stun::message_class::indication, {});
    b.add_address(stun::attr::xor_peer_address, peer, true);
    b.add_bytes(stun::attr::data, text(payload));
    return bytes(b.finish()->begin(), b.finish()->end());
  }

  test::fake_io io_;
  worker_counters counters_;
  allocation_table table_;
  forwarder fwd_{table_, io_, counters_, 42};
  now_t now_{1'000'000, 1'800'000'000};
  const stun::endpoint peer_ = ep("93.184.216.34:5000");
};

TEST_F(Forwarder, ChannelDataGoesToTheBoundPeerOnlyWithAPermission) {
  auto& a = add(client());
  a.bind_channel(0x4000, peer_, now_.mono_ms + 600'000);
  fwd_.on_channel_data(client(), channel_data(0x4000, "hello"), now_);
  EXPECT_TRUE(io_.to_peer.empty());
  EXPECT_EQ(counters_.no_permission_dropped.load(), 1u);

  a.permit(peer_, now_.mono_ms + 300'000);
  fwd_.on_channel_data(client(), channel_data(0x4000, "hello"), now_);
  ASSERT_EQ(io_.to_peer.size(), 1u);
  EXPECT_EQ(io_.to_peer[0].peer, peer_);
  EXPECT_EQ(io_.to_peer[0].data, text("hello"));
  EXPECT_EQ(a.packets_to_peer, 1u);
  EXPECT_EQ(a.bytes_to_peer, 5u);
  EXPECT_EQ(counters_.tenants[1].bytes_to_peer.load(), 5u);

  fwd_.on_channel_data(client(), channel_data(0x4001, "x"), now_);  // not bound
  EXPECT_EQ(counters_.unbound_channel_dropped.load(), 1u);
  fwd_.on_channel_data(client(), text("\x40\x00\x00\x09short"), now_);  // length past the end
  EXPECT_EQ(counters_.malformed_dropped.load(), 1u);
}

TEST_F(Forwarder, AnUnknownFiveTupleThatNoWorkerTakesIsCounted) {
  fwd_.on_channel_data(client(), channel_data(0x4000, "hello"), now_);
  EXPECT_EQ(counters_.no_allocation_dropped.load(), 1u);
  EXPECT_TRUE(io_.to_peer.empty());
}

TEST_F(Forwarder, SendIndicationNeedsAPermissionAndKeepsDontFragment) {
  auto& a = add(client());
  const auto ind = send_indication(peer_, "payload");
  const auto msg = stun::parse_message(ind);
  ASSERT_TRUE(msg);
  fwd_.on_send_indication(client(), *msg, ind, now_);
  EXPECT_EQ(counters_.no_permission_dropped.load(), 1u);
  a.permit(peer_, now_.mono_ms + 300'000);
  fwd_.on_send_indication(client(), *msg, ind, now_);
  ASSERT_EQ(io_.to_peer.size(), 1u);
  EXPECT_EQ(io_.to_peer[0].data, text("payload"));
  EXPECT_FALSE(io_.to_peer[0].dont_fragment);
  EXPECT_EQ(counters_.send_indications.load(), 2u);
}

TEST_F(Forwarder, PeerDatagramsBecomeChannelDataOrDataIndications) {
  auto& a = add(client());
  const relay_id id = a.relays[0].id;
  a.permit(peer_, now_.mono_ms + 300'000);
  // No channel: a Data indication carrying the peer and the payload.
  fwd_.on_peer_packet(id, peer_, text("abcde"), now_);
  ASSERT_EQ(io_.to_client.size(), 1u);
  const auto ind = stun::parse_message(io_.to_client[0].data);
  ASSERT_TRUE(ind);
  EXPECT_EQ(ind->method(), static_cast<std::uint16_t>(stun::method::data));
  EXPECT_EQ(*stun::decode_address(*ind->find(stun::attr::xor_peer_address), ind->tid(), true), peer_);
  EXPECT_EQ(ind->find(stun::attr::data)->value.size(), 5u);
  // A channel: ChannelData, unpadded over UDP.
  a.bind_channel(0x4001, peer_, now_.mono_ms + 600'000);
  fwd_.on_peer_packet(id, peer_, text("abcde"), now_);
  ASSERT_EQ(io_.to_client.size(), 2u);
  EXPECT_EQ(io_.to_client[1].data, channel_data(0x4001, "abcde"));
  // Another peer without a permission: dropped and counted.
  fwd_.on_peer_packet(id, ep("93.184.216.35:5000"), text("x"), now_);
  EXPECT_EQ(io_.to_client.size(), 2u);
  EXPECT_EQ(counters_.no_permission_dropped.load(), 1u);
  EXPECT_EQ(a.packets_to_client, 2u);
}

TEST_F(Forwarder, ChannelDataToStreamClientsIsPadded) {
  auto& a = add(client(transport::tcp));
  a.permit(peer_, now_.mono_ms + 300'000);
  a.bind_channel(0x4002, peer_, now_.mono_ms + 600'000);
  fwd_.on_peer_packet(a.relays[0].id, peer_, text("abcde"), now_);
  ASSERT_EQ(io_.to_client.size(), 1u);
  EXPECT_EQ(io_.to_client[0].data.size(), 4u + 8u);  // 5 bytes padded to 8
}

TEST_F(Forwarder, TheBandwidthBucketDropsTheExcess) {
  auto& a = add(client());
  a.permit(peer_, now_.mono_ms + 300'000);
  a.bind_channel(0x4000, peer_, now_.mono_ms + 600'000);
  a.bandwidth.start(10, now_.mono_ms);  // 10 bytes a second
  fwd_.on_channel_data(client(), channel_data(0x4000, "12345678"), now_);
  fwd_.on_channel_data(client(), channel_data(0x4000, "12345678"), now_);
  EXPECT_EQ(io_.to_peer.size(), 1u);
  EXPECT_EQ(counters_.bandwidth_dropped.load(), 1u);
  EXPECT_EQ(counters_.tenants[1].bandwidth_dropped.load(), 1u);
  now_.mono_ms += 1000;  // refilled
  fwd_.on_channel_data(client(), channel_data(0x4000, "12345678"), now_);
  EXPECT_EQ(io_.to_peer.size(), 2u);
}

TEST_F(Forwarder, ForwardingAllocatesNothing) {
  auto& a = add(client());
  a.permit(peer_, now_.mono_ms + 300'000);
  a.bind_channel(0x4000, peer_, now_.mono_ms + 600'000);
  const auto cd = channel_data(0x4000, std::string(200, 'x'));
  const auto ind = send_indication(peer_, std::string(200, 'y'));
  const auto msg = stun::parse_message(ind);
  ASSERT_TRUE(msg);
  const auto payload = text(std::string(200, 'z'));
  auto other = peer_;
  other.port = 5002;  // no channel: Data indications
  const relay_id id = a.relays[0].id;
  io_.record = false;
  ASSERT_EQ(test::allocations_in([] { ::operator delete(::operator new(8)); }), 1u);
  const std::size_t allocations = test::allocations_in([&] {
    for (int i = 0; i < 1000; ++i) {
      fwd_.on_channel_data(client(), cd, now_);
      fwd_.on_send_indication(client(), *msg, ind, now_);
      fwd_.on_peer_packet(id, peer_, payload, now_);
      fwd_.on_peer_packet(id, other, payload, now_);
    }
  });
  EXPECT_EQ(allocations, 0u);
  EXPECT_EQ(io_.peer_sends, 2000u);
  EXPECT_EQ(io_.client_sends, 2000u);
}

// Send indications are not authenticated (RFC 8656 §11.4: an indication has
// no transaction to challenge; the 5-tuple and the permission are what
// admit it). One that carries MESSAGE-INTEGRITY anyway is cut there like
// any message: DATA, XOR-PEER-ADDRESS or DONT-FRAGMENT after it do not
// count.
TEST_F(Forwarder, SendIndicationAttributesAfterIntegrityDoNotCount) {
  auto& a = add(client());
  a.permit(peer_, now_.mono_ms + 300'000);
  const std::vector<std::byte> key(16, std::byte{9});
  std::array<std::byte, 512> buf{};
  stun::message_builder b(buf, static_cast<std::uint16_t>(stun::method::send),
                          stun::message_class::indication, {});
  b.add_address(stun::attr::xor_peer_address, peer_, true).add_message_integrity(key);
  bytes ind(b.finish()->begin(), b.finish()->end());
  stun::test::append_attribute(ind, stun::attr::data, text("smuggled"));
  auto msg = stun::parse_message(ind);
  ASSERT_TRUE(msg);
  fwd_.on_send_indication(client(), *msg, ind, now_);
  EXPECT_TRUE(io_.to_peer.empty());
  EXPECT_EQ(counters_.malformed_dropped.load(), 1u);

  // DATA before the integrity, DONT-FRAGMENT after it: sent, without DF.
  stun::message_builder b2(buf, static_cast<std::uint16_t>(stun::method::send),
                           stun::message_class::indication, {});
  b2.add_address(stun::attr::xor_peer_address, peer_, true)
      .add_bytes(stun::attr::data, text("payload"))
      .add_message_integrity(key);
  bytes ind2(b2.finish()->begin(), b2.finish()->end());
  stun::test::append_attribute(ind2, stun::attr::dont_fragment, {});
  msg = stun::parse_message(ind2);
  ASSERT_TRUE(msg);
  fwd_.on_send_indication(client(), *msg, ind2, now_);
  ASSERT_EQ(io_.to_peer.size(), 1u);
  EXPECT_EQ(io_.to_peer[0].data, text("payload"));
  EXPECT_FALSE(io_.to_peer[0].dont_fragment);
}

TEST_F(Forwarder, ThePacketRateDropsTheExcessInEachDirection) {
  auto& a = add(client());
  a.permit(peer_, now_.mono_ms + 300'000);
  a.bind_channel(0x4000, peer_, now_.mono_ms + 600'000);
  allocation_limits l;
  l.packets_per_second = 5;
  a.start_limits(l, now_.mono_ms);
  const relay_id id = a.relays[0].id;
  for (int i = 0; i < 8; ++i) {
    fwd_.on_channel_data(client(), channel_data(0x4000, "x"), now_);
    fwd_.on_peer_packet(id, peer_, text("y"), now_);
  }
  // Five a second each way: the other direction has its own bucket.
  EXPECT_EQ(io_.to_peer.size(), 5u);
  EXPECT_EQ(io_.to_client.size(), 5u);
  EXPECT_EQ(counters_.packet_rate_dropped.load(), 6u);
  EXPECT_EQ(counters_.tenants[1].packet_rate_dropped.load(), 6u);
  EXPECT_EQ(counters_.byte_rate_dropped.load(), 0u);
  now_.mono_ms += 200;  // one more packet's worth each way
  fwd_.on_channel_data(client(), channel_data(0x4000, "x"), now_);
  fwd_.on_channel_data(client(), channel_data(0x4000, "x"), now_);
  EXPECT_EQ(io_.to_peer.size(), 6u);
  EXPECT_EQ(counters_.packet_rate_dropped.load(), 7u);
}

TEST_F(Forwarder, TheByteRateDropsTheExcessInEachDirection) {
  auto& a = add(client());
  a.permit(peer_, now_.mono_ms + 300'000);
  a.bind_channel(0x4000, peer_, now_.mono_ms + 600'000);
  allocation_limits l;
  l.bytes_per_second = 65536;
  a.start_limits(l, now_.mono_ms);
  const relay_id id = a.relays[0].id;
  const std::string big(40'000, 'b');
  for (int i = 0; i < 2; ++i) {
    fwd_.on_channel_data(client(), channel_data(0x4000, big), now_);
    fwd_.on_peer_packet(id, peer_, text(big), now_);
  }
  EXPECT_EQ(io_.to_peer.size(), 1u);
  EXPECT_EQ(io_.to_client.size(), 1u);
  EXPECT_EQ(counters_.byte_rate_dropped.load(), 2u);
  EXPECT_EQ(counters_.tenants[1].byte_rate_dropped.load(), 2u);
  EXPECT_EQ(counters_.packet_rate_dropped.load(), 0u);
  now_.mono_ms += 1000;  // refilled
  fwd_.on_channel_data(client(), channel_data(0x4000, big), now_);
  EXPECT_EQ(io_.to_peer.size(), 2u);
}

TEST_F(Forwarder, TheDefaultLimitsPassAVideoCallsTraffic) {
  auto& a = add(client());
  a.permit(peer_, now_.mono_ms + 300'000);
  a.start_limits(allocation_limits{}, now_.mono_ms);
  const relay_id id = a.relays[0].id;
  a.bind_channel(0x4000, peer_, now_.mono_ms + 600'000);
  // 10 seconds of 1,000 packets of 1,200 bytes a second each way (~10 Mbit/s).
  const auto payload = text(std::string(1200, 'v'));
  const auto cd = channel_data(0x4000, std::string(1200, 'v'));
  io_.record = false;
  for (int ms = 0; ms < 10'000; ++ms) {
    ++now_.mono_ms;
    fwd_.on_channel_data(client(), cd, now_);
    fwd_.on_peer_packet(id, peer_, payload, now_);
  }
  EXPECT_EQ(io_.peer_sends, 10'000u);
  EXPECT_EQ(io_.client_sends, 10'000u);
  EXPECT_EQ(counters_.packet_rate_dropped.load() + counters_.byte_rate_dropped.load(), 0u);
}

// Lookups stay exact (and the forwarding path allocation-free) with 10,000
// permissions and 10,000 channels on one allocation, far past the scan.
TEST_F(Forwarder, TenThousandPeersAndChannelsAreFoundWithoutAllocating) {
  auto& a = add(client());
  const std::int64_t later = now_.mono_ms + 300'000;
  const auto peer_at = [](std::uint32_t i) {
    return stun::endpoint::v4(0x5D000000u + i * 7919u, static_cast<std::uint16_t>(1000 + i % 50000));
  };
  for (std::uint32_t i = 0; i < 10'000; ++i) {
    a.permit(peer_at(i), later);
    a.bind_channel(static_cast<std::uint16_t>(0x4000 + (i * 37) % 0x4000), peer_at(i), later);
  }
  ASSERT_EQ(a.permission_count(), 10'000u);
  ASSERT_EQ(a.channel_count(), 10'000u);
  for (std::uint32_t i = 0; i < 10'000; ++i) {
    const auto number = static_cast<std::uint16_t>(0x4000 + (i * 37) % 0x4000);
    ASSERT_TRUE(a.has_permission(peer_at(i), now_.mono_ms)) << i;
    const channel* by_number = a.channel_by_number(number);
    ASSERT_NE(by_number, nullptr) << i;
    EXPECT_EQ(by_number->peer, peer_at(i));
    const channel* by_peer = a.channel_by_peer(peer_at(i));
    ASSERT_NE(by_peer, nullptr) << i;
    EXPECT_EQ(by_peer->number, number);
  }
  EXPECT_FALSE(a.has_permission(ep("93.184.216.34:1"), now_.mono_ms));
  EXPECT_EQ(a.channel_by_peer(ep("93.184.216.34:1")), nullptr);
  auto other_port = peer_at(5);
  ++other_port.port;
  EXPECT_TRUE(a.has_permission(other_port, now_.mono_ms)) << "permissions are per IP";
  EXPECT_EQ(a.channel_by_peer(other_port), nullptr) << "channels are per transport address";

  const relay_id id = a.relays[0].id;
  const auto payload = text("p");
  std::vector<bytes> data(10'000);
  for (std::uint32_t i = 0; i < 10'000; ++i)
    data[i] = channel_data(static_cast<std::uint16_t>(0x4000 + (i * 37) % 0x4000), "c");
  io_.record = false;
  const std::size_t allocations = test::allocations_in([&] {
    for (std::uint32_t i = 0; i < 10'000; ++i) {
      fwd_.on_channel_data(client(), data[i], now_);
      fwd_.on_peer_packet(id, peer_at(i), payload, now_);
    }
  });
  EXPECT_EQ(io_.peer_sends, 10'000u);
  EXPECT_EQ(io_.client_sends, 10'000u);
  EXPECT_EQ(counters_.no_permission_dropped.load(), 0u);

  // Expiry keeps both lookups consistent as entries go.
  a.permit(peer_at(0), later + channel_cooldown_ms + 1000);
  a.bind_channel(0x4000, peer_at(0), later + channel_cooldown_ms + 1000);
  a.expire(later + channel_cooldown_ms, later + 10'000'000);
  EXPECT_EQ(a.permission_count(), 1u);
  EXPECT_EQ(a.channel_count(), 1u);
  EXPECT_NE(a.channel_by_peer(peer_at(0)), nullptr);
  EXPECT_EQ(a.channel_by_peer(peer_at(1)), nullptr);
  EXPECT_EQ(allocations, 0u);
}

}  // namespace
}  // namespace anyturn::relay
