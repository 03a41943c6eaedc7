// The snapshot board of config reloads (see config_board.hpp).
#include <anyturn/turn/config_board.hpp>

#include <anyturn/turn/worker_core.hpp>

#include <algorithm>

namespace anyturn::turn {

config_board::config_board(std::shared_ptr<const shared_state> initial, std::size_t workers)
    : current_(std::move(initial)),
      acknowledged_(std::make_unique<std::atomic<std::uint64_t>[]>(std::max<std::size_t>(workers, 1))),
      workers_(workers) {
  for (std::size_t i = 0; i < std::max<std::size_t>(workers, 1); ++i) {
    acknowledged_[i].store(1, std::memory_order_relaxed);
  }
}

std::uint64_t config_board::publish(std::shared_ptr<const shared_state> next) {
  const std::lock_guard lock(mutex_);
  current_ = std::move(next);
  const std::uint64_t g = generation_.load(std::memory_order_relaxed) + 1;
  generation_.store(g, std::memory_order_release);
  return g;
}

config_board::current config_board::snapshot() const {
  const std::lock_guard lock(mutex_);
  return {current_, generation_.load(std::memory_order_relaxed)};
}

void config_board::acknowledge(std::size_t worker, std::uint64_t generation) noexcept {
  if (worker < workers_) acknowledged_[worker].store(generation, std::memory_order_release);
}

std::uint64_t config_board::switched() const noexcept {
  if (workers_ == 0) return generation();
  std::uint64_t oldest = UINT64_MAX;
  for (std::size_t i = 0; i < workers_; ++i) {
    oldest = std::min(oldest, acknowledged_[i].load(std::memory_order_acquire));
  }
  return oldest;
}

}  // namespace anyturn::turn
