// anyturn::turn — what the rest of the fleet tells this node's workers.
//
// One object per process, shared by the workers (readers, at Allocate) and
// the threads that change it: the main thread (drain on SIGUSR1), the HTTP
// thread (POST /admin/drain, /admin/undrain) and the fleet thread (a Redis
// command; the directory's choice of a node to send new clients to).
// Readers never take a lock: the flag is an atomic, the target a seqlock
// over atomic words.
#pragma once

#include <anyturn/stun/endpoint.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <optional>

namespace anyturn::turn {

// A node new clients may be sent to (300 Try Alternate): its unicast
// address of each family and the port of each client transport.
struct alternate_node {
  std::optional<stun::endpoint> v4;  // port ignored
  std::optional<stun::endpoint> v6;  // port ignored
  std::uint16_t udp_port = 0;        // 0: that transport is not offered
  std::uint16_t tcp_port = 0;
  std::uint16_t tls_port = 0;

  friend bool operator==(const alternate_node&, const alternate_node&) = default;
};

class fleet_signals {
 public:
  // Draining: new Allocates go to drain_target(), or get 508; everything
  // else is served as usual.
  [[nodiscard]] bool draining() const noexcept { return draining_.load(std::memory_order_acquire); }
  // Returns the previous state.
  bool set_draining(bool on) noexcept { return draining_.exchange(on, std::memory_order_acq_rel); }

  // Any thread. nullopt: no target (a draining node answers 508).
  void set_drain_target(const std::optional<alternate_node>& target) noexcept;
  // Worker threads, lock-free (retries while a writer is mid-update).
  [[nodiscard]] std::optional<alternate_node> drain_target() const noexcept;

 private:
  std::atomic<bool> draining_{false};
  // Seqlock: odd while a writer updates `words_`. Writers are serialised by
  // `writer_` (a spin flag; writers are rare and quick).
  std::atomic<std::uint32_t> sequence_{0};
  std::atomic_flag writer_ = ATOMIC_FLAG_INIT;
  // The target, packed (layout in fleet_signals.cpp).
  std::array<std::atomic<std::uint64_t>, 6> words_{};
};

}  // namespace anyturn::turn
