// anyturn::relay — the seam to a kernel fast path (the XDP offload).
//
// The relay core stays the authority over what may be forwarded. A fast
// path is told about an allocation (and the limits the allocation runs
// under) and about each channel that may be forwarded without user space:
// a channel that is bound, whose peer has a live permission, on a UDP
// client. It forwards such a channel's packets both ways until the entry's
// expiry (the earlier of the channel's and the permission's) or until user
// space removes it, whichever comes first; everything else still reaches
// the sockets. It counts what it forwarded and dropped per allocation; the
// relay core reads the totals and folds them into the allocation's counts,
// the worker's counters and the usage record.
//
// Sans-I/O like io_port: the XDP module implements it (src/xdp/), unit
// tests implement it with a recording fake. Each worker has its own
// fast_path object; all of them may share one kernel program and its maps.
// Calls come from the worker's thread only, never per packet.
#pragma once

#include <anyturn/relay/io.hpp>
#include <anyturn/stun/message.hpp>

#include <cstdint>

namespace anyturn::relay {

// One allocation's limits as the fast path applies them: per direction a
// packet and a byte token bucket (limits.allocation; 0: no limit), and the
// tenant's per-allocation bandwidth (quotas.bandwidth; both directions
// share it; 0: no limit). Rates per second; bursts in packets or bytes.
struct fast_limits {
  std::uint64_t packets_per_second = 0;
  std::uint64_t packet_burst = 0;
  std::uint64_t bytes_per_second = 0;
  std::uint64_t byte_burst = 0;
  std::uint64_t bandwidth_bytes_per_second = 0;
};

// A channel the fast path may forward: ChannelData `number` from `client`
// (UDP: remote = the client, local = the listener address it reached) goes
// to `peer` from `relay` (the relay socket's bound address, same family as
// the peer), and datagrams from `peer` to `relay` go to the client as
// ChannelData `number` from client.local.
struct fast_channel {
  client_ref client;
  stun::endpoint relay;
  stun::endpoint peer;
  std::uint16_t number = 0;
  std::int64_t expires_mono_ms = 0;  // CLOCK_MONOTONIC ms (now_t::mono_ms); not forwarded from then on
  bool dont_fragment = false;        // the client asked for DONT-FRAGMENT: set DF toward the peer
  bool own_peer = false;             // the peer is one of this server's addresses: never offloaded
};

// What the fast path did for one allocation, as running totals since
// add_allocation (payload bytes, as user space counts them).
struct fast_counts {
  std::uint64_t packets_to_peer = 0, bytes_to_peer = 0;
  std::uint64_t packets_to_client = 0, bytes_to_client = 0;
  std::uint64_t packet_rate_dropped = 0;  // limits.allocation.packets_per_second
  std::uint64_t byte_rate_dropped = 0;    // limits.allocation.bytes_per_second
  std::uint64_t bandwidth_dropped = 0;    // the tenant's per-allocation bandwidth
};

class fast_path {
 public:
  using handle = std::uint64_t;
  static constexpr handle no_handle = 0;

  virtual ~fast_path() = default;

  // Registers an allocation before any of its channels. no_handle: the
  // fast path has no room (counted as a fallback); the allocation then
  // stays in user space.
  virtual handle add_allocation(const fast_limits& limits) = 0;
  // Removes the allocation and every channel still installed for it.
  // Returns its final totals.
  virtual fast_counts remove_allocation(handle h) = 0;
  // Installs channel `c` of allocation `h`, or updates it (its expiry).
  // false: not installed (map full, or not offloadable; counted as a
  // fallback): user space forwards it.
  virtual bool put_channel(handle h, const fast_channel& c) = 0;
  // Removes channel `c` (the same client, number, relay and peer as put).
  virtual void remove_channel(handle h, const fast_channel& c) = 0;
  // The allocation's running totals.
  virtual fast_counts totals(handle h) = 0;
};

}  // namespace anyturn::relay
