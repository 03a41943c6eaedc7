// anyturn::relay — the relay port range, shared by all workers.
//
// One atomic bitmap per relay address; workers claim and release ports with
// compare-and-swap, so no worker ever waits for another, and the range is
// global: when every port is taken, every worker answers 508.
//
// EVEN-PORT with the R bit (RFC 8656 §7.2) reserves the next port and hands
// out a RESERVATION-TOKEN that any worker can redeem: the token carries the
// port and a per-port nonce, claimed by CAS.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

namespace anyturn::relay {

class port_pool {
 public:
  // One pool per relay address, over [low, high].
  port_pool(std::uint16_t low, std::uint16_t high);
  port_pool(const port_pool&) = delete;
  port_pool& operator=(const port_pool&) = delete;

  [[nodiscard]] std::uint16_t low() const { return low_; }
  [[nodiscard]] std::uint16_t high() const { return high_; }
  [[nodiscard]] std::size_t capacity() const { return std::size_t{high_} - low_ + 1; }
  [[nodiscard]] std::size_t in_use() const;

  // Claims any free port, starting near `hint` (spreads workers apart).
  std::optional<std::uint16_t> acquire(std::uint32_t hint);
  // Claims a free even port whose successor is free too; with `reserve_next`
  // the successor stays claimed and a token for it is returned in `token`.
  std::optional<std::uint16_t> acquire_even(std::uint32_t hint, bool reserve_next,
                                            std::uint64_t& token);
  // Redeems a token: returns the reserved port, or nullopt if the token is
  // unknown, already used or expired.
  std::optional<std::uint16_t> redeem(std::uint64_t token);
  // Drops a reservation that was never redeemed (its timer ran out).
  void cancel(std::uint64_t token);
  // Claims exactly `port` (used when a bind failed elsewhere and for tests).
  bool acquire_exact(std::uint16_t port);
  void release(std::uint16_t port);

 private:
  bool try_set(std::uint32_t index);
  std::uint16_t low_, high_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> bits_;
  std::unique_ptr<std::atomic<std::uint32_t>[]> reservation_;  // nonce per port, 0 = none
  std::size_t words_;
  std::atomic<std::uint32_t> nonce_counter_{1};
};

}  // namespace anyturn::relay
