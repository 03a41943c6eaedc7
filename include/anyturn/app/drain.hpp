// anyturn::app — the drain of one node (docs/fleet.md, "Drain").
//
// A drain steers new clients away and keeps the old ones: from its start
// the workers answer new Allocates with 300 Try Alternate (or 508), /readyz
// answers 503, and existing allocations go on relaying. The process ends,
// with exit code 0, when the last allocation is gone or when the drain
// timeout passes, whichever comes first. Undrain ends a drain.
//
// Started by SIGUSR1 (main thread), POST /admin/drain (HTTP thread) or a
// Redis command (fleet thread); the state itself is the shared
// turn::fleet_signals flag the workers read. on_tick runs on the main
// thread only.
#pragma once

#include <anyturn/turn/fleet_signals.hpp>

#include <atomic>
#include <cstdint>
#include <memory>

namespace anyturn::app {

class drain_controller {
 public:
  drain_controller(std::shared_ptr<turn::fleet_signals> signals, std::uint32_t timeout_s);

  // Any thread. Starts a drain at `now_ms` (monotonic). Returns false when
  // the node was already draining (the first start's clock runs on).
  bool start(std::int64_t now_ms);
  // Any thread. Ends a drain. Returns false when there was none.
  bool stop();
  [[nodiscard]] bool draining() const { return signals_->draining(); }

  enum class verdict {
    keep_running,  // not draining, or allocations left and time left
    done,          // draining and the last allocation is gone
    timed_out,     // draining for longer than the timeout
  };
  // Main thread, on a timer: `allocations` live on this node now.
  verdict on_tick(std::int64_t now_ms, std::uint64_t allocations) const;
  // Milliseconds since the current drain started (0 when not draining).
  [[nodiscard]] std::int64_t elapsed_ms(std::int64_t now_ms) const;

 private:
  std::shared_ptr<turn::fleet_signals> signals_;
  std::int64_t timeout_ms_;
  std::atomic<std::int64_t> started_ms_{0};
};

}  // namespace anyturn::app
