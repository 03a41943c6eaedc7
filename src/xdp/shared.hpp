// anyturn::xdp — internal: the state the offload and its ports share.
#pragma once

#include <anyturn/xdp/offload.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>

struct anyturn_relay_bpf;

namespace anyturn::xdp::detail {

// The loaded program and its maps. The offload holds it with the links; each
// port holds it too, so a port that outlives the offload (its links gone,
// nothing forwarded) still finds valid map descriptors.
struct shared {
  ~shared();
  anyturn_relay_bpf* skel = nullptr;
  int chan_to_peer = -1;
  int chan_to_client = -1;
  int allocations = -1;
  int stats = -1;
  std::atomic<std::uint64_t> next_handle{0};
  std::atomic<std::int64_t> channel_entries{0};  // entries in chan_to_peer (= chan_to_client)
  std::atomic<std::int64_t> allocation_entries{0};
  std::array<std::atomic<std::uint64_t>, fallback_count> fallbacks{};  // user-space reasons

  void count(fallback f) { fallbacks[static_cast<std::size_t>(f)].fetch_add(1, std::memory_order_relaxed); }
};

// A worker's fast_path over the shared maps (port.cpp).
std::unique_ptr<relay::fast_path> make_port(std::shared_ptr<shared> s);

// CLOCK_MONOTONIC in ns: the clock of bpf_ktime_get_ns and now_t::mono_ms.
std::uint64_t monotonic_ns();

}  // namespace anyturn::xdp::detail
