// anyturn::turn — the configuration snapshot the workers switch to on a
// reload (SIGHUP, POST /admin/reload).
//
// The main thread (or the HTTP thread) builds a complete new
// turn::shared_state and publishes it here; the generation moves on. Each
// worker loads the generation on its 250 ms tick (one acquire load; never on
// the forwarding path), and when it moved, takes the snapshot once (a mutex
// held for a shared_ptr copy), keeps its own shared_ptr to it and
// acknowledges the generation. The previous snapshot lives as long as one
// worker still holds it (RCU-style: no lock on the forwarding path, no
// snapshot freed under a reader).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace anyturn::turn {

struct shared_state;

class config_board {
 public:
  // `workers`: how many workers acknowledge generations (switched()).
  explicit config_board(std::shared_ptr<const shared_state> initial, std::size_t workers = 0);

  // Makes `next` the snapshot in force; returns its generation (the initial
  // snapshot is generation 1).
  std::uint64_t publish(std::shared_ptr<const shared_state> next);
  // Cheap: workers poll it on their tick.
  [[nodiscard]] std::uint64_t generation() const noexcept {
    return generation_.load(std::memory_order_acquire);
  }
  // The snapshot in force and its generation (takes the mutex; never per
  // packet).
  struct current {
    std::shared_ptr<const shared_state> state;
    std::uint64_t generation = 0;
  };
  [[nodiscard]] current snapshot() const;

  // Worker `worker` runs on the snapshot of `generation` from now on.
  void acknowledge(std::size_t worker, std::uint64_t generation) noexcept;
  // The oldest generation any worker still runs on (the published one when
  // there are no workers): every worker switched once it equals generation().
  [[nodiscard]] std::uint64_t switched() const noexcept;

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const shared_state> current_;
  std::atomic<std::uint64_t> generation_{1};
  std::unique_ptr<std::atomic<std::uint64_t>[]> acknowledged_;
  std::size_t workers_ = 0;
};

}  // namespace anyturn::turn
