// The TURN core's side of the kernel fast path (docs/xdp.md): after every
// change to an allocation the relay core re-syncs its channels
// (relay::offload::sync); once a second, and when the allocation ends, what
// the program forwarded is folded into the allocation (its usage record),
// the worker's and the tenant's counters and the buckets.
#include "context.hpp"

#include <anyturn/relay/offload.hpp>

#include <algorithm>

namespace anyturn::turn::detail {

namespace {
// The allocation's entries must not outlive it: they expire with its
// lifetime or its REST credential, whichever ends first.
std::int64_t not_after(const record& rec) {
  return std::min(rec.ses.expires_ms, rec.ses.credential_end_ms);
}
}  // namespace

void context::offload_sync(slot_index slot, const now_t& now) {
  if (fast == nullptr) return;
  record* rec = record_at(slot);
  if (rec == nullptr || rec->ses.tcp_relay) return;  // RFC 6062 relays carry no channels
  const auto r = relay::offload::sync(*rec, *fast, now.mono_ms, not_after(*rec));
  if (r.added) offloaded.push_back({slot, rec->ses.generation});
}

void context::fold_offloaded(const now_t& now) {
  if (fast == nullptr) return;
  const std::int64_t second = now.mono_ms / 1000;
  if (second == folded_s) return;
  folded_s = second;
  std::erase_if(offloaded, [&](const imminent_end& e) {
    record* rec = record_at(e.slot);
    if (rec == nullptr || rec->ses.generation != e.generation ||
        rec->offload.handle == relay::fast_path::no_handle)
      return true;  // ended (folded then) or another allocation in the slot
    relay::offload::account(*rec, relay::offload::fold(*rec, *fast), counters, now.mono_ms);
    return false;
  });
}

void context::offload_end(slot_index slot, const now_t& now) {
  if (fast == nullptr) return;
  record* rec = record_at(slot);
  if (rec == nullptr) return;
  relay::offload::account(*rec, relay::offload::end(*rec, *fast), counters, now.mono_ms);
}

}  // namespace anyturn::turn::detail
