#include <anyturn/relay/forwarder.hpp>

#include <anyturn/common/log_context.hpp>

#include <spdlog/spdlog.h>

#include <array>
#include <cstring>
#include <string>

namespace anyturn::relay {

namespace attr = stun::attr;
using stun::bytes_view;

namespace {
// Longest payload that still fits a ChannelData or Data indication back to
// the client (a 16-bit length, less our headers).
constexpr std::size_t max_payload_to_client = 0xFFFF - 64;
constexpr std::array<std::byte, 3> zeros{};
}  // namespace

forwarder::forwarder(allocation_table& table, io_port& io, worker_counters& counters,
                     std::uint64_t seed, const own_addresses* own)
    : table_(table), io_(io), counters_(counters), own_(own), rng_{seed | 1} {}

void forwarder::on_channel_data(const client_ref& from, bytes_view data, const now_t& now) {
  const auto cd = stun::parse_channel_data(data);
  if (!cd) {
    bump(counters_.malformed_dropped);
    return;
  }
  auto* a = table_.find_allocation(from);
  if (a == nullptr) {
    // Worker hand-off: another worker may own the 5-tuple.
    if (from.proto == transport::udp && io_.hand_off(from, data, now)) return;
    bump(counters_.no_allocation_dropped);
    return;
  }
  const auto* ch = a->channel_by_number(cd->channel);
  if (ch == nullptr || ch->expires_ms <= now.mono_ms) {
    bump(counters_.unbound_channel_dropped);
    return;
  }
  const auto* side = a->relay_for(ch->peer.family);
  if (side == nullptr || !a->has_permission(ch->peer, now.mono_ms)) {
    bump(counters_.no_permission_dropped);
    return;
  }
  // Flagged at ChannelBind: the server's own address, reachable only while
  // the port is a live allocation's relay port (issue 12, hole 1.3).
  if (ch->own_peer && (own_ == nullptr || !own_->is_relay_port(ch->peer))) {
    bump(counters_.self_peer_dropped);
    return;
  }
  forward_to_peer(*a, *side, ch->peer, cd->payload, false, now);
}

void forwarder::on_send_indication(const client_ref& from, const stun::message_view& msg,
                                   bytes_view raw, const now_t& now) {
  auto* a = table_.find_allocation(from);
  if (a == nullptr) {
    // Worker hand-off: another worker may own the 5-tuple.
    if (from.proto == transport::udp && io_.hand_off(from, raw, now)) return;
    bump(counters_.send_indications);
    bump(counters_.no_allocation_dropped);
    return;
  }
  bump(counters_.send_indications);
  const auto peer_attr = msg.find(attr::xor_peer_address);
  const auto data_attr = msg.find(attr::data);
  if (!peer_attr || !data_attr) {
    bump(counters_.malformed_dropped);
    return;
  }
  const auto peer = stun::decode_address(*peer_attr, msg.tid(), true);
  if (!peer) {
    bump(counters_.malformed_dropped);
    return;
  }
  const auto* side = a->relay_for(peer->family);
  if (side == nullptr || !a->has_permission(*peer, now.mono_ms)) {
    bump(counters_.no_permission_dropped);
    return;
  }
  // A permission for an own address (a relay IP) reaches only the relay
  // ports of live allocations, never a listener or another service.
  if (own_ != nullptr && own_->contains(*peer) && !own_->is_relay_port(*peer)) {
    bump(counters_.self_peer_dropped);
    return;
  }
  forward_to_peer(*a, *side, *peer, data_attr->value, msg.has(attr::dont_fragment), now);
}

void forwarder::forward_to_peer(allocation& a, const relay_side& side, const stun::endpoint& peer,
                                bytes_view payload, bool dont_fragment, const now_t& now) {
  if (!within_limits(a, a.to_peer_limit, payload.size(), now.mono_ms)) return;
  const std::array<bytes_view, 1> parts{payload};
  if (!io_.send_to_peer(side.id, peer, parts, dont_fragment)) {
    bump(counters_.relay_send_failed);
    std::uint64_t suppressed = 0;
    if (relay_send_log_.allow(now.mono_ms, suppressed)) {
      const std::string client = a.client.remote.to_string(), relay = side.address.to_string(),
                        to = peer.to_string();
      common::log_scope scope;
      if (a.log_session != 0) scope.session(a.log_session);
      scope.client(client).relay(relay).peer(to);
      spdlog::warn("relay: relay socket {} refused a datagram to {} ({} similar suppressed)", relay,
                   to, suppressed);
    }
    return;
  }
  ++a.packets_to_peer;
  a.bytes_to_peer += payload.size();
  bump(counters_.packets_to_peer);
  bump(counters_.bytes_to_peer, payload.size());
  auto& ts = tenant_block(counters_, a.tenant);
  bump(ts.packets_to_peer);
  bump(ts.bytes_to_peer, payload.size());
}

void forwarder::on_peer_packet(relay_id id, const stun::endpoint& peer, bytes_view data,
                               const now_t& now) {
  auto* a = table_.by_relay(id);
  if (a == nullptr) return;
  if (!a->has_permission(peer, now.mono_ms)) {
    bump(counters_.no_permission_dropped);
    return;
  }
  if (data.size() > max_payload_to_client) {
    bump(counters_.malformed_dropped);
    return;
  }
  if (!within_limits(*a, a->to_client_limit, data.size(), now.mono_ms)) return;
  const auto* ch = a->channel_by_peer(peer);
  if (ch != nullptr && ch->expires_ms > now.mono_ms) {
    // ChannelData: a 4-byte header in front of the payload, padded to 4
    // bytes on streams (§12.5); over UDP and DTLS the padding is not needed.
    std::array<std::byte, stun::channel_data_header_size> header{};
    stun::write_channel_data_header(header, ch->number, static_cast<std::uint16_t>(data.size()));
    const bool datagram = a->client.proto == transport::udp || a->client.proto == transport::dtls;
    const std::size_t pad = datagram ? 0 : stun::padding_of(data.size());
    const std::array<bytes_view, 3> parts{bytes_view(header), data, bytes_view(zeros.data(), pad)};
    io_.send_to_client(a->client, std::span(parts.data(), pad ? 3 : 2));
  } else {
    // Data indication: STUN header, XOR-PEER-ADDRESS, DATA (§11.3).
    std::array<std::byte, stun::max_data_indication_prefix> header{};
    stun::transaction_id tid;
    const std::uint64_t r1 = rng_.next();
    const auto r2 = static_cast<std::uint32_t>(rng_.next());
    std::memcpy(tid.bytes.data(), &r1, 8);
    std::memcpy(tid.bytes.data() + 8, &r2, 4);
    const std::size_t prefix = stun::write_data_indication_prefix(header, tid, peer, data.size());
    if (prefix == 0) {
      bump(counters_.malformed_dropped);
      return;
    }
    const std::size_t pad = stun::padding_of(data.size());
    const std::array<bytes_view, 3> parts{bytes_view(header.data(), prefix), data,
                                          bytes_view(zeros.data(), pad)};
    io_.send_to_client(a->client, std::span(parts.data(), pad ? 3 : 2));
  }
  ++a->packets_to_client;
  a->bytes_to_client += data.size();
  bump(counters_.packets_to_client);
  bump(counters_.bytes_to_client, data.size());
  auto& ts = tenant_block(counters_, a->tenant);
  bump(ts.packets_to_client);
  bump(ts.bytes_to_client, data.size());
}

bool forwarder::within_limits(allocation& a, direction_limit& d, std::size_t bytes,
                              std::int64_t now_ms) {
  if (!d.packets.take(1, now_ms)) {
    bump(counters_.packet_rate_dropped);
    bump(tenant_block(counters_, a.tenant).packet_rate_dropped);
    return false;
  }
  if (!d.bytes.take(bytes, now_ms)) {
    bump(counters_.byte_rate_dropped);
    bump(tenant_block(counters_, a.tenant).byte_rate_dropped);
    return false;
  }
  if (a.bandwidth.take(bytes, now_ms)) return true;
  bump(counters_.bandwidth_dropped);
  bump(tenant_block(counters_, a.tenant).bandwidth_dropped);
  return false;
}

}  // namespace anyturn::relay
