#include <anyturn/relay/offload.hpp>

#include <algorithm>

namespace anyturn::relay::offload {

namespace {

// Whether `a` and `b` name the same kernel entries (only the expiry may differ).
bool same_entry(const fast_channel& a, const fast_channel& b) {
  return a.number == b.number && a.client == b.client && a.relay == b.relay && a.peer == b.peer &&
         a.dont_fragment == b.dont_fragment;
}

// An address the program cannot key or rewrite with (a wildcard the net
// layer could not resolve to the datagram's destination).
bool unspecified(const stun::endpoint& e) {
  const std::size_t n = e.is_v4() ? 4 : 16;
  return std::all_of(e.ip.begin(), e.ip.begin() + static_cast<std::ptrdiff_t>(n),
                     [](std::uint8_t b) { return b == 0; });
}

fast_counts minus(const fast_counts& now, const fast_counts& before) {
  // A fast path that restarted its counters (never expected) folds nothing
  // negative: what it reports below the folded total is taken as new.
  const auto d = [](std::uint64_t n, std::uint64_t b) { return n >= b ? n - b : n; };
  fast_counts out;
  out.packets_to_peer = d(now.packets_to_peer, before.packets_to_peer);
  out.bytes_to_peer = d(now.bytes_to_peer, before.bytes_to_peer);
  out.packets_to_client = d(now.packets_to_client, before.packets_to_client);
  out.bytes_to_client = d(now.bytes_to_client, before.bytes_to_client);
  out.packet_rate_dropped = d(now.packet_rate_dropped, before.packet_rate_dropped);
  out.byte_rate_dropped = d(now.byte_rate_dropped, before.byte_rate_dropped);
  out.bandwidth_dropped = d(now.bandwidth_dropped, before.bandwidth_dropped);
  return out;
}

}  // namespace

bool empty(const fast_counts& c) {
  return c.packets_to_peer == 0 && c.bytes_to_peer == 0 && c.packets_to_client == 0 &&
         c.bytes_to_client == 0 && c.packet_rate_dropped == 0 && c.byte_rate_dropped == 0 &&
         c.bandwidth_dropped == 0;
}

fast_limits limits_of(const allocation& a) {
  // start_limits gives both directions the same rates; the program applies
  // them per direction, like the forwarder.
  fast_limits l;
  l.packets_per_second = static_cast<std::uint64_t>(a.to_peer_limit.packets.rate);
  l.packet_burst = static_cast<std::uint64_t>(a.to_peer_limit.packets.burst_milli / 1000);
  l.bytes_per_second = static_cast<std::uint64_t>(a.to_peer_limit.bytes.rate);
  l.byte_burst = static_cast<std::uint64_t>(a.to_peer_limit.bytes.burst_milli / 1000);
  l.bandwidth_bytes_per_second = static_cast<std::uint64_t>(a.bandwidth.rate);
  return l;
}

std::vector<fast_channel> offloadable(const allocation& a, std::int64_t now_ms,
                                      std::int64_t not_after_ms) {
  std::vector<fast_channel> out;
  if (a.client.proto != transport::udp || not_after_ms <= now_ms || unspecified(a.client.local)) return out;
  for (const channel& ch : a.channels) {
    if (ch.expires_ms <= now_ms || ch.own_peer) continue;  // cooling down; own address: user space checks it per packet
    const permission* p = a.find_permission(ch.peer);
    if (p == nullptr || p->expires_ms <= now_ms) continue;
    const relay_side* side = a.relay_for(ch.peer.family);
    if (side == nullptr || unspecified(side->address)) continue;
    fast_channel c;
    c.client = a.client;
    c.relay = side->address;
    c.peer = ch.peer;
    c.number = ch.number;
    c.expires_mono_ms = std::min({ch.expires_ms, p->expires_ms, not_after_ms});
    c.dont_fragment = false;  // ChannelData carries no DONT-FRAGMENT (the forwarder sends it without DF)
    c.own_peer = false;
    out.push_back(c);
  }
  return out;  // a.channels is sorted by number, so is `out`
}

sync_result sync(allocation& a, fast_path& fp, std::int64_t now_ms, std::int64_t not_after_ms) {
  sync_result r;
  offload_state& st = a.offload;
  const std::vector<fast_channel> want = offloadable(a, now_ms, not_after_ms);
  if (st.handle == fast_path::no_handle) {
    if (want.empty()) return r;
    st.handle = fp.add_allocation(limits_of(a));
    if (st.handle == fast_path::no_handle) {
      ++r.refused;  // no room: the whole allocation stays in user space (tried again on its next change)
      return r;
    }
    r.added = true;
    st.folded = {};
    st.channels.clear();
  }
  std::vector<offload_state::entry> next;
  next.reserve(want.size());
  auto have = st.channels.begin();
  const auto drop = [&](const offload_state::entry& e) {
    if (!e.installed) return;
    fp.remove_channel(st.handle, e.channel);
    ++r.removed;
  };
  for (const fast_channel& w : want) {
    while (have != st.channels.end() && have->channel.number < w.number) drop(*have++);
    const offload_state::entry* old = nullptr;
    if (have != st.channels.end() && have->channel.number == w.number) {
      if (same_entry(have->channel, w)) {
        old = &*have;
      } else {
        drop(*have);  // the number now leads elsewhere (rebound after its cool-down)
      }
      ++have;
    }
    if (old != nullptr && old->channel.expires_mono_ms == w.expires_mono_ms) {
      next.push_back(*old);  // unchanged (installed, or refused until it changes)
      continue;
    }
    offload_state::entry e{w, fp.put_channel(st.handle, w)};
    if (e.installed) {
      ++r.put;
    } else {
      ++r.refused;
      if (old != nullptr && old->installed) {
        fp.remove_channel(st.handle, old->channel);  // do not leave the old expiry forwarding
        ++r.removed;
      }
    }
    next.push_back(e);
  }
  while (have != st.channels.end()) drop(*have++);
  st.channels = std::move(next);
  return r;
}

fast_counts fold(allocation& a, fast_path& fp) {
  offload_state& st = a.offload;
  if (st.handle == fast_path::no_handle) return {};
  const fast_counts now = fp.totals(st.handle);
  const fast_counts delta = minus(now, st.folded);
  st.folded = now;
  return delta;
}

fast_counts end(allocation& a, fast_path& fp) {
  offload_state& st = a.offload;
  if (st.handle == fast_path::no_handle) return {};
  const fast_counts last = fp.remove_allocation(st.handle);
  const fast_counts delta = minus(last, st.folded);
  st = offload_state{};
  return delta;
}

void account(allocation& a, const fast_counts& d, worker_counters& counters, std::int64_t now_ms) {
  if (empty(d)) return;
  a.packets_to_peer += d.packets_to_peer;
  a.bytes_to_peer += d.bytes_to_peer;
  a.packets_to_client += d.packets_to_client;
  a.bytes_to_client += d.bytes_to_client;
  bump(counters.packets_received, d.packets_to_peer);
  bump(counters.packets_to_peer, d.packets_to_peer);
  bump(counters.bytes_to_peer, d.bytes_to_peer);
  bump(counters.packets_to_client, d.packets_to_client);
  bump(counters.bytes_to_client, d.bytes_to_client);
  bump(counters.packet_rate_dropped, d.packet_rate_dropped);
  bump(counters.byte_rate_dropped, d.byte_rate_dropped);
  bump(counters.bandwidth_dropped, d.bandwidth_dropped);
  tenant_counters& t = tenant_block(counters, a.tenant);
  bump(t.packets_to_peer, d.packets_to_peer);
  bump(t.bytes_to_peer, d.bytes_to_peer);
  bump(t.packets_to_client, d.packets_to_client);
  bump(t.bytes_to_client, d.bytes_to_client);
  bump(t.packet_rate_dropped, d.packet_rate_dropped);
  bump(t.byte_rate_dropped, d.byte_rate_dropped);
  bump(t.bandwidth_dropped, d.bandwidth_dropped);
  // The program applied the same limits; user space's buckets learn what
  // it spent, so the two paths together stay within them.
  a.to_peer_limit.packets.charge(d.packets_to_peer, now_ms);
  a.to_peer_limit.bytes.charge(d.bytes_to_peer, now_ms);
  a.to_client_limit.packets.charge(d.packets_to_client, now_ms);
  a.to_client_limit.bytes.charge(d.bytes_to_client, now_ms);
  a.bandwidth.charge(d.bytes_to_peer + d.bytes_to_client, now_ms);
}

}  // namespace anyturn::relay::offload
