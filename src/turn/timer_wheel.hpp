// A hashed timing wheel with one-second slots.
//
// Expiry must scale to 100,000 allocations without a timer per object: each
// allocation has at most one live entry, placed in the slot of its next
// deadline. A tick walks only the slots whose second has passed. Entries
// past the wheel's span fire early and are rescheduled by their owner, and
// entries whose owner moved on (freed, or rescheduled earlier) are skipped
// by the owner's generation/deadline check.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace anyturn::turn::detail {

class timer_wheel {
 public:
  struct entry {
    std::uint32_t slot;        // allocation slot
    std::uint32_t generation;  // allocation generation when scheduled
    std::int64_t at_s;         // the deadline this entry stands for
  };
  static constexpr std::int64_t span_s = 4096;
  // Storage firing_ keeps between ticks (entries).
  static constexpr std::size_t keep_capacity = 256;

  timer_wheel() : wheel_(span_s) {}

  // The entry keeps `at_s` as its deadline; one already past goes into the
  // slot the next advance visits first.
  void schedule(std::int64_t at_s, std::uint32_t slot, std::uint32_t generation) {
    if (!advanced_ && (current_s_ < 0 || at_s < current_s_)) current_s_ = at_s;
    const std::int64_t bucket = at_s < current_s_ ? current_s_ : at_s;
    wheel_[static_cast<std::size_t>(bucket % span_s)].push_back({slot, generation, at_s});
  }

  // Calls fire(entry) for every entry due at or before now_s.
  template <typename F>
  void advance(std::int64_t now_s, F&& fire) {
    if (current_s_ < 0 || current_s_ > now_s) return;
    advanced_ = true;
    // After a stall longer than the wheel, one lap visits every slot.
    if (now_s - current_s_ >= span_s) current_s_ = now_s - span_s + 1;
    while (current_s_ <= now_s) {
      auto& bucket = wheel_[static_cast<std::size_t>(current_s_ % span_s)];
      if (!bucket.empty()) {
        firing_.swap(bucket);  // the bucket gets firing_'s small storage back
        for (const entry& e : firing_) {
          if (e.at_s > now_s) {
            bucket.push_back(e);  // a later lap of the wheel
          } else {
            fire(e);
          }
        }
        firing_.clear();
        // A burst (many deadlines in one second) leaves its capacity here.
        // Kept, the next swap would hand it to another bucket, and bursts
        // in different seconds would leave every bucket at its peak: give
        // it back instead.
        if (firing_.capacity() > keep_capacity) std::vector<entry>().swap(firing_);
      }
      ++current_s_;
    }
  }

  [[nodiscard]] std::int64_t current() const { return current_s_; }

  // Entries the wheel has room for without allocating (all slots): for tests.
  [[nodiscard]] std::size_t capacity() const {
    std::size_t n = firing_.capacity();
    for (const auto& b : wheel_) n += b.capacity();
    return n;
  }

 private:
  std::vector<std::vector<entry>> wheel_;
  std::vector<entry> firing_;
  std::int64_t current_s_ = -1;  // the next second to visit
  bool advanced_ = false;
};

}  // namespace anyturn::turn::detail
