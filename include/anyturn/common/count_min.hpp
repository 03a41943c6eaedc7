// anyturn::common — bounded counts per key, shared by every worker, without a lock.
//
// A count-min sketch of atomic counters: two rows, each indexed by its own
// half of one keyed hash of the key (the caller hashes with keyed_hasher, so
// nobody can aim collisions at another key). Workers add and subtract with
// atomic read-modify-write. A collision can only make a count too high, so
// a limit is never exceeded; with 65,536 buckets per row two keys sharing
// both buckets is rare. Used for connections per client address
// (net::connection_limiter) and allocations per user (turn::user_quota).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace anyturn::common {

class count_min {
 public:
  explicit count_min(std::size_t buckets_per_row = 1u << 16);

  // Counts one more for the key whose keyed hash is `hash`, or returns false
  // (and counts nothing) when the estimate would pass `limit`. A limit of 0
  // means no limit: nothing is counted, so release() must get 0 too.
  bool try_acquire(std::uint64_t hash, std::uint32_t limit);
  // Undoes one try_acquire that returned true with the same limit.
  void release(std::uint64_t hash, std::uint32_t limit);
  // The estimate (never below the true count).
  [[nodiscard]] std::uint32_t count(std::uint64_t hash) const;

 private:
  [[nodiscard]] std::size_t index(std::uint64_t hash, int row) const {
    const auto half = row == 0 ? static_cast<std::uint32_t>(hash) : static_cast<std::uint32_t>(hash >> 32);
    return static_cast<std::size_t>(row) * buckets_ + half % buckets_;
  }
  std::size_t buckets_;
  std::unique_ptr<std::atomic<std::uint32_t>[]> rows_;  // 2 * buckets_
};

}  // namespace anyturn::common
