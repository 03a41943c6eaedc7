// anyturn::relay — the relay port range, shared by all workers.
//
// One atomic bitmap per relay address; workers claim and release ports with
// compare-and-swap, so no worker ever waits for another, and the range is
// global: when every port is taken, every worker answers 508.
//
// EVEN-PORT with the R bit (RFC 8656 §7.2) reserves the next port and hands
// out a RESERVATION-TOKEN that any worker can redeem: the token carries the
// port and a per-port nonce, claimed by CAS.
//
// A port the kernel refuses (EADDRINUSE: another socket on the host holds
// it, typically an outgoing connection's ephemeral port) is not handed out
// again for a cool-down (60 s by default): refuse() puts it in a second
// bitmap with a per-port expiry in seconds, so the cost is one bit and four
// bytes per port whatever happens. Cooling ports are skipped by acquire();
// their expiry is checked lazily, when a word of the bitmap has no other
// free port.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

namespace anyturn::relay {

class port_pool {
 public:
  static constexpr std::int64_t default_cooldown_ms = 60'000;

  // One pool per relay address, over [low, high]. A refused port stays out
  // of the pool for `cooldown_ms` (rounded up to whole seconds).
  port_pool(std::uint16_t low, std::uint16_t high, std::int64_t cooldown_ms = default_cooldown_ms);
  port_pool(const port_pool&) = delete;
  port_pool& operator=(const port_pool&) = delete;

  [[nodiscard]] std::uint16_t low() const { return low_; }
  [[nodiscard]] std::uint16_t high() const { return high_; }
  [[nodiscard]] std::size_t capacity() const { return std::size_t{high_} - low_ + 1; }
  [[nodiscard]] std::size_t in_use() const;
  [[nodiscard]] std::int64_t cooldown_ms() const { return cooldown_ms_; }

  // Claims any free port that is not cooling down at `now_ms` (monotonic),
  // starting near `hint` (spreads workers apart).
  std::optional<std::uint16_t> acquire(std::uint32_t hint, std::int64_t now_ms = 0);
  // Claims a free even port whose successor is free too; with `reserve_next`
  // the successor stays claimed and a token for it is returned in `token`.
  std::optional<std::uint16_t> acquire_even(std::uint32_t hint, bool reserve_next,
                                            std::uint64_t& token, std::int64_t now_ms = 0);
  // Redeems a token: returns the reserved port, or nullopt if the token is
  // unknown, already used or expired.
  std::optional<std::uint16_t> redeem(std::uint64_t token);
  // Drops a reservation that was never redeemed (its timer ran out).
  void cancel(std::uint64_t token);
  // Claims exactly `port` (used when a bind failed elsewhere and for tests).
  bool acquire_exact(std::uint16_t port);
  void release(std::uint16_t port);
  // `port` is in the range and claimed (by an allocation or a reservation).
  // A relaxed load: any thread, no lock (own_addresses asks it).
  [[nodiscard]] bool held(std::uint16_t port) const noexcept;
  // Gives back a claimed port that the kernel refused to bind: it is not
  // handed out again before `now_ms` + the cool-down.
  void refuse(std::uint16_t port, std::int64_t now_ms);
  // Ports marked as cooling down (expired ones count until a later acquire
  // clears them).
  [[nodiscard]] std::size_t cooling() const;

 private:
  bool try_set(std::uint32_t index);
  // The cooling-down bits of word `w` whose cool-down has not ended at
  // `now_s`; clears the bits of those that have ended.
  std::uint64_t cooling_mask(std::size_t w, std::uint64_t candidates, std::uint32_t now_s);
  std::uint16_t low_, high_;
  std::int64_t cooldown_ms_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> bits_;
  std::unique_ptr<std::atomic<std::uint32_t>[]> reservation_;  // nonce per port, 0 = none
  std::unique_ptr<std::atomic<std::uint64_t>[]> cooling_;      // refused, out of the pool
  std::unique_ptr<std::atomic<std::uint32_t>[]> cooling_until_s_;  // per port, monotonic s
  std::size_t words_;
  std::atomic<std::uint32_t> nonce_counter_{1};
};

}  // namespace anyturn::relay
