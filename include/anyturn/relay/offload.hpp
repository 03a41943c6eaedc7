// anyturn::relay — which of an allocation's channels the kernel fast path
// may forward, and folding what it forwarded back into the relay core.
//
// The relay core stays the authority (relay/fast_path.hpp). A channel may be
// offloaded while: the client reached us over UDP, the channel is bound
// (expires > now), the peer's IP has a live permission, the allocation has
// a relayed address of the peer's family, and the peer is not one of this
// server's own addresses. Its entry expires at the earliest of the
// channel's, the permission's and the caller's `not_after` (the
// allocation's lifetime): the program passes a packet of an expired entry
// up even before user space removes it.
//
// `sync` diffs that set with what the allocation's offload_state says is
// installed and calls put/remove; the allocation is added to the fast path
// lazily, when its first channel qualifies, with the limits of its buckets.
// A channel the fast path refuses (map full) stays with user space, which
// forwards it as before; it is tried again when its entry changes (a
// refresh). `fold` returns what the fast path forwarded since the last
// fold; `end` removes the allocation and returns the rest. `account` adds
// such a delta to the allocation, the worker's and the tenant's counters
// and charges the user-space buckets, so counts, usage records and limits
// do not depend on which path a packet took.
//
// Worker thread, control path only (control events, the tick, the end of
// an allocation): these calls may allocate; the forwarding path never
// calls them.
#pragma once

#include <anyturn/relay/allocation.hpp>
#include <anyturn/relay/counters.hpp>
#include <anyturn/relay/fast_path.hpp>

#include <cstdint>
#include <vector>

namespace anyturn::relay::offload {

// The limits `a` runs under, as the fast path applies them.
fast_limits limits_of(const allocation& a);

// The channels of `a` that may be offloaded at `now_ms`, sorted by number,
// each expiring at the latest at `not_after_ms`.
std::vector<fast_channel> offloadable(const allocation& a, std::int64_t now_ms,
                                      std::int64_t not_after_ms);

// What one sync did (for tests and logs).
struct sync_result {
  bool added = false;        // the allocation was added to the fast path now
  std::uint32_t put = 0;     // channels installed or updated
  std::uint32_t removed = 0; // channels removed
  std::uint32_t refused = 0; // channels (or the allocation) the fast path refused
};

// Brings the fast path in line with offloadable(a, now_ms, not_after_ms).
sync_result sync(allocation& a, fast_path& fp, std::int64_t now_ms, std::int64_t not_after_ms);

// The fast path's traffic of `a` since the last fold (zero without a handle).
fast_counts fold(allocation& a, fast_path& fp);

// Removes `a` and its channels from the fast path; returns the traffic not
// folded yet. Afterwards `a` holds nothing there.
fast_counts end(allocation& a, fast_path& fp);

// Counts `delta` as if user space had forwarded (or dropped) it: the
// allocation's counts (its usage record), the worker's and the tenant's
// counters (packets_received for the client->peer packets), and the
// allocation's user-space buckets (charged, never failing).
void account(allocation& a, const fast_counts& delta, worker_counters& counters, std::int64_t now_ms);

// Whether `c` is all zeros.
bool empty(const fast_counts& c);

}  // namespace anyturn::relay::offload
