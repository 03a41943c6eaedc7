#include <anyturn/app/drain.hpp>

#include <utility>

namespace anyturn::app {

drain_controller::drain_controller(std::shared_ptr<turn::fleet_signals> signals, std::uint32_t timeout_s)
    : signals_(std::move(signals)), timeout_ms_(std::int64_t{timeout_s} * 1000) {}

bool drain_controller::start(std::int64_t now_ms) {
  if (signals_->draining()) return false;
  // The start time is written before the flag, so a tick that sees the
  // flag sees this drain's start (or a later one).
  started_ms_.store(now_ms, std::memory_order_release);
  return !signals_->set_draining(true);
}

bool drain_controller::stop() { return signals_->set_draining(false); }

std::int64_t drain_controller::elapsed_ms(std::int64_t now_ms) const {
  if (!signals_->draining()) return 0;
  const std::int64_t d = now_ms - started_ms_.load(std::memory_order_acquire);
  return d < 0 ? 0 : d;
}

drain_controller::verdict drain_controller::on_tick(std::int64_t now_ms, std::uint64_t allocations) const {
  if (!signals_->draining()) return verdict::keep_running;
  if (allocations == 0) return verdict::done;
  if (elapsed_ms(now_ms) >= timeout_ms_) return verdict::timed_out;
  return verdict::keep_running;
}

}  // namespace anyturn::app
