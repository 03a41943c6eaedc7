// anyturn::xdp — a worker's relay::fast_path over the offload's maps.
//
// Control path only (called when channels and allocations change, never per
// packet). Each port remembers the channel entries it installed per
// allocation, so that remove_allocation removes what is left.
#include "bpf/relay_maps.h"
#include "shared.hpp"

#include <anyturn/common/log_limiter.hpp>

#include <bpf/bpf.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <unordered_map>
#include <vector>

namespace anyturn::xdp::detail {
namespace {

using relay::fast_channel;
using relay::fast_counts;
using relay::fast_limits;
using relay::fast_path;

std::uint8_t family_of(const stun::endpoint& e) { return e.is_v4() ? AT_FAMILY_V4 : AT_FAMILY_V6; }

void copy_ip(std::uint8_t (&to)[16], const stun::endpoint& e) {
  std::memset(to, 0, sizeof(to));
  std::memcpy(to, e.ip.data(), e.ip_size());
}

std::uint16_t be16(std::uint16_t v) { return static_cast<std::uint16_t>((v >> 8) | (v << 8)); }

at_bucket bucket(std::uint64_t rate, std::uint64_t burst, std::uint64_t now) {
  at_bucket b{};
  b.rate = rate;
  b.burst_nano = burst * 1'000'000'000ULL;
  b.nano = b.burst_nano;
  b.last_ns = now;
  return b;
}

struct installed {
  at_c2p_key c2p{};
  at_p2c_key p2c{};
};

class port final : public fast_path {
 public:
  explicit port(std::shared_ptr<shared> s) : s_(std::move(s)) {}

  ~port() override {
    // The relay core removes its allocations first; whatever is left (a
    // worker that stopped abruptly) must not keep forwarding.
    while (!channels_.empty()) remove_allocation(channels_.begin()->first);
  }

  handle add_allocation(const fast_limits& l) override {
    const std::uint64_t now = monotonic_ns();
    at_alloc a{};
    a.pkt[0] = a.pkt[1] = bucket(l.packets_per_second, l.packet_burst, now);
    a.byt[0] = a.byt[1] = bucket(l.bytes_per_second, l.byte_burst, now);
    // quotas.bandwidth holds at most one second of traffic (relay::bandwidth_bucket).
    a.bw = bucket(l.bandwidth_bytes_per_second, l.bandwidth_bytes_per_second, now);
    const handle h = s_->next_handle.fetch_add(1, std::memory_order_relaxed) + 1;
    if (bpf_map_update_elem(s_->allocations, &h, &a, BPF_NOEXIST) != 0) {
      failed(errno, "allocation");
      return no_handle;
    }
    s_->allocation_entries.fetch_add(1, std::memory_order_relaxed);
    channels_[h];
    return h;
  }

  fast_counts remove_allocation(handle h) override {
    auto it = channels_.find(h);
    if (it == channels_.end()) return {};
    for (const auto& e : it->second) erase(e);
    channels_.erase(it);
    fast_counts out = totals(h);
    if (bpf_map_delete_elem(s_->allocations, &h) == 0)
      s_->allocation_entries.fetch_sub(1, std::memory_order_relaxed);
    return out;
  }

  bool put_channel(handle h, const fast_channel& c) override {
    auto it = channels_.find(h);
    if (it == channels_.end()) return false;  // never added (no room): user space forwards
    const auto fam = family_of(c.peer);
    if (c.own_peer || c.client.proto != relay::transport::udp || family_of(c.client.remote) != fam ||
        family_of(c.client.local) != fam || family_of(c.relay) != fam) {
      s_->count(fallback::not_offloadable);
      return false;
    }
    installed e;
    e.c2p.family = fam;
    e.c2p.channel = be16(c.number);
    e.c2p.client_port = be16(c.client.remote.port);
    e.c2p.listener_port = be16(c.client.local.port);
    copy_ip(e.c2p.client_ip, c.client.remote);
    copy_ip(e.c2p.listener_ip, c.client.local);
    e.p2c.family = fam;
    e.p2c.peer_port = be16(c.peer.port);
    e.p2c.relay_port = be16(c.relay.port);
    copy_ip(e.p2c.peer_ip, c.peer);
    copy_ip(e.p2c.relay_ip, c.relay);

    const std::uint64_t expires =
        c.expires_mono_ms <= 0 ? 0 : static_cast<std::uint64_t>(c.expires_mono_ms) * 1'000'000ULL;
    at_chan up{};
    up.alloc = h;
    up.expires_ns = expires;
    copy_ip(up.src_ip, c.relay);
    copy_ip(up.dst_ip, c.peer);
    up.src_port = be16(c.relay.port);
    up.dst_port = be16(c.peer.port);
    up.channel = be16(c.number);
    up.flags = c.dont_fragment ? AT_CHAN_DF : 0;
    up.family = fam;
    at_chan down = up;
    copy_ip(down.src_ip, c.client.local);
    copy_ip(down.dst_ip, c.client.remote);
    down.src_port = be16(c.client.local.port);
    down.dst_port = be16(c.client.remote.port);
    down.flags = 0;

    // An update of an installed channel (refresh; the same client and number).
    installed* old = nullptr;
    for (auto& x : it->second)
      if (std::memcmp(&x.c2p, &e.c2p, sizeof(e.c2p)) == 0) old = &x;
    if (old != nullptr && std::memcmp(&old->p2c, &e.p2c, sizeof(e.p2c)) != 0) {
      erase(*old);
      *old = it->second.back();
      it->second.pop_back();
      old = nullptr;
    }
    if (bpf_map_update_elem(s_->chan_to_peer, &e.c2p, &up, BPF_ANY) != 0) {
      const int err = errno;
      if (old != nullptr) remove_channel(h, c);
      failed(err, "channel");
      return false;
    }
    if (bpf_map_update_elem(s_->chan_to_client, &e.p2c, &down, BPF_ANY) != 0) {
      const int err = errno;
      if (old != nullptr) {
        remove_channel(h, c);
      } else {
        bpf_map_delete_elem(s_->chan_to_peer, &e.c2p);
      }
      failed(err, "channel");
      return false;
    }
    if (old == nullptr) {
      it->second.push_back(e);
      s_->channel_entries.fetch_add(1, std::memory_order_relaxed);
    }
    return true;
  }

  void remove_channel(handle h, const fast_channel& c) override {
    auto it = channels_.find(h);
    if (it == channels_.end()) return;
    at_c2p_key key{};
    key.family = family_of(c.peer);
    key.channel = be16(c.number);
    key.client_port = be16(c.client.remote.port);
    key.listener_port = be16(c.client.local.port);
    copy_ip(key.client_ip, c.client.remote);
    copy_ip(key.listener_ip, c.client.local);
    auto& list = it->second;
    for (std::size_t i = 0; i < list.size(); ++i) {
      if (std::memcmp(&list[i].c2p, &key, sizeof(key)) != 0) continue;
      erase(list[i]);
      list[i] = list.back();
      list.pop_back();
      return;
    }
  }

  fast_counts totals(handle h) override {
    at_alloc a{};
    if (bpf_map_lookup_elem_flags(s_->allocations, &h, &a, BPF_F_LOCK) != 0) return {};
    fast_counts out;
    out.packets_to_peer = a.packets[AT_TO_PEER];
    out.bytes_to_peer = a.bytes[AT_TO_PEER];
    out.packets_to_client = a.packets[AT_TO_CLIENT];
    out.bytes_to_client = a.bytes[AT_TO_CLIENT];
    out.packet_rate_dropped = a.packet_rate_dropped;
    out.byte_rate_dropped = a.byte_rate_dropped;
    out.bandwidth_dropped = a.bandwidth_dropped;
    return out;
  }

 private:
  void erase(const installed& e) {
    bpf_map_delete_elem(s_->chan_to_peer, &e.c2p);
    bpf_map_delete_elem(s_->chan_to_client, &e.p2c);
    s_->channel_entries.fetch_sub(1, std::memory_order_relaxed);
  }

  void failed(int err, const char* what) {
    if (err == E2BIG || err == ENOSPC || err == ENOMEM) {
      s_->count(fallback::map_full);
      return;
    }
    s_->count(fallback::map_error);
    std::uint64_t suppressed = 0;
    if (log_.allow(static_cast<std::int64_t>(monotonic_ns() / 1'000'000), suppressed))
      spdlog::warn("xdp: the kernel refused a {} map update: {} ({} similar suppressed)", what,
                   std::strerror(err), suppressed);
  }

  std::shared_ptr<shared> s_;
  std::unordered_map<handle, std::vector<installed>> channels_;
  common::log_limiter log_;
};

}  // namespace

std::unique_ptr<relay::fast_path> make_port(std::shared_ptr<shared> s) {
  return std::make_unique<port>(std::move(s));
}

}  // namespace anyturn::xdp::detail
