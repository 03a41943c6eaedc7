// Token buckets per network-chosen key in a table of fixed size (private to
// turn/): the limits on unauthenticated answers per source and on failed
// authentications per source and per user.
//
// A table per worker, sized once at construction: a spoofed-source flood
// cannot grow it, and nothing is allocated per packet. Keys are keyed
// hashes (common::keyed_hasher, random per process), so nobody can aim a
// key at another key's buckets.
//
// It is a count-min sketch of token buckets: two rows, each indexed by its
// own half of the 64-bit key hash. Taking a token charges the key's bucket
// in both rows; a key is refused only when both of its buckets are empty.
// Every row holds at least its own key's charges, so one key never gets
// more than burst + rate * t tokens over t seconds. Keys that share buckets
// share tokens: an attacker sharing both buckets with a victim can make the
// victim's tokens rarer, never more plentiful than the limit.
//
// Each bucket is one 64-bit word, its "theoretical arrival time" in
// microseconds (the GCRA form of a token bucket): the bucket is full when
// it lies in the past, and has no token when it lies more than
// (burst - 1) / rate seconds in the future. Refill needs no timer.
#pragma once

#include <anyturn/stun/endpoint.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace anyturn::turn::detail {

class bucket_table {
 public:
  // `per_second` tokens a second (0: no limit, every key always has a
  // token), at most `burst` (at least 1) at once. `buckets_per_row` is
  // rounded up to a power of two; the table holds 2 * that many 8-byte
  // buckets, allocated here and never again.
  bucket_table(double per_second, std::uint32_t burst, std::size_t buckets_per_row);

  [[nodiscard]] bool enabled() const { return interval_us_ > 0; }
  // Whether the key has a token at `now_ms` (spends nothing).
  [[nodiscard]] bool has_token(std::uint64_t key, std::int64_t now_ms) const;
  // Spends one of the key's tokens (in both rows), whether it had one or not.
  void charge(std::uint64_t key, std::int64_t now_ms);
  // has_token, then charge when it had one.
  bool try_take(std::uint64_t key, std::int64_t now_ms);

  [[nodiscard]] std::size_t buckets_per_row() const { return mask_ + 1; }
  [[nodiscard]] std::size_t memory_bytes() const { return tat_.size() * sizeof(std::int64_t); }

 private:
  [[nodiscard]] std::size_t index(std::uint64_t key, int row) const {
    const auto half = row == 0 ? static_cast<std::uint32_t>(key) : static_cast<std::uint32_t>(key >> 32);
    return static_cast<std::size_t>(row) * (mask_ + 1) + (half & mask_);
  }
  [[nodiscard]] bool bucket_has_token(std::size_t i, std::int64_t now_us) const {
    return tat_[i] - now_us <= tolerance_us_;
  }

  std::int64_t interval_us_ = 0;   // one token per interval; 0: no limit
  std::int64_t tolerance_us_ = 0;  // (burst - 1) intervals
  std::size_t mask_ = 0;
  std::vector<std::int64_t> tat_;  // 2 rows
};

// The key of a client's source: its IPv4 address (/32) or its IPv6 /64 (one
// subscriber's prefix: a host can pick any address in it).
std::uint64_t source_key(const stun::endpoint& source);
// The key of a username.
std::uint64_t name_key(std::string_view name);

}  // namespace anyturn::turn::detail
