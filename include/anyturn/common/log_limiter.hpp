// anyturn::common — rate limiting for log lines the network can trigger.
//
// A peer that floods malformed datagrams must not flood the log: each kind of
// event gets a limiter that lets `burst` lines through per window and counts
// the rest, so the next line that passes can say how many were suppressed.
#pragma once

#include <cstdint>

namespace anyturn::common {

class log_limiter {
 public:
  explicit log_limiter(std::uint32_t burst = 5, std::int64_t window_ms = 10'000)
      : burst_(burst), window_ms_(window_ms) {}

  // True when a line may be logged at `now_ms` (monotonic). `suppressed`
  // receives how many events were refused since the last line that passed.
  bool allow(std::int64_t now_ms, std::uint64_t& suppressed) {
    if (now_ms - window_start_ >= window_ms_ || now_ms < window_start_) {
      window_start_ = now_ms;
      used_ = 0;
    }
    if (used_ >= burst_) {
      ++suppressed_;
      return false;
    }
    ++used_;
    suppressed = suppressed_;
    suppressed_ = 0;
    return true;
  }

 private:
  std::uint32_t burst_;
  std::int64_t window_ms_;
  std::int64_t window_start_ = INT64_MIN / 2;
  std::uint32_t used_ = 0;
  std::uint64_t suppressed_ = 0;
};

}  // namespace anyturn::common
