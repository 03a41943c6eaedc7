// anyturn::net — stream connections counted across workers, per client IP and
// in total.
//
// Lock-free: one atomic total and a common::count_min sketch per client
// address, hashed with the process's keyed hash. A worker acquires when it
// accepts a connection and releases when it closes. A collision can only
// make a count too high, so a limit is never exceeded.
//
// IPv6 clients are counted per /64: one subscriber usually holds a whole /64
// and could otherwise open connections from as many addresses as it likes.
//
// Also here: memory_budget, the bytes of connections that have not
// authenticated yet, shared the same way.
#pragma once

#include <anyturn/common/count_min.hpp>
#include <anyturn/stun/endpoint.hpp>

#include <atomic>
#include <cstdint>

namespace anyturn::net {

class connection_limiter {
 public:
  // A limit of 0 means no limit.
  connection_limiter(std::uint32_t max_total, std::uint32_t max_per_ip,
                     std::size_t buckets_per_row = 1u << 16);

  enum class verdict { accepted, over_total, over_ip };

  // Counts one more connection from `client`, or refuses it (nothing is
  // counted then).
  verdict try_acquire(const stun::endpoint& client);
  // Undoes one accepted try_acquire for `client`.
  void release(const stun::endpoint& client);

  [[nodiscard]] std::uint32_t total() const { return total_.load(std::memory_order_relaxed); }
  // The (over-)estimate for `client`'s address.
  [[nodiscard]] std::uint32_t count(const stun::endpoint& client) const;
  [[nodiscard]] std::uint32_t max_total() const { return max_total_; }
  [[nodiscard]] std::uint32_t max_per_ip() const { return max_per_ip_; }

 private:
  static std::uint64_t key_of(const stun::endpoint& client);

  std::uint32_t max_total_;
  std::uint32_t max_per_ip_;
  std::atomic<std::uint32_t> total_{0};
  common::count_min per_ip_;
};

// What accepting a connection charges to the unauthenticated budget: the
// session, its socket and the reactor's state (TCP), plus for TLS the SSL
// object with its handshake state and Asio's and the BIO pair's record
// buffers (4 x 17 KiB). Buffers allocated later are charged when they are.
// Upper estimates, checked against the daemon's RSS with idle connections
// (tests/integration/stream_test.cpp: ~1.5 KiB per silent TCP connection,
// ~67 KiB per silent TLS one after its handshake; the handshake itself
// needs OpenSSL's two record buffers more).
inline constexpr std::uint64_t tcp_connection_cost = 2048;
inline constexpr std::uint64_t tls_connection_cost = 96 * 1024;

// The bytes held by stream connections that have not authenticated yet,
// across workers (streams.unauthenticated_memory). Lock-free: one atomic.
// A connection charges its fixed cost when it is accepted and each buffer
// before it allocates it, and credits everything back when it authenticates
// or goes away. Racing chargers may refuse one too many, never admit more
// than the limit.
class memory_budget {
 public:
  // A limit of 0 means no limit (the bytes are still counted).
  explicit memory_budget(std::uint64_t limit) : limit_(limit) {}
  memory_budget(const memory_budget&) = delete;
  memory_budget& operator=(const memory_budget&) = delete;

  // Charges `bytes`, or nothing when that would pass the limit (false).
  bool try_charge(std::uint64_t bytes);
  // Gives back `bytes` charged before.
  void credit(std::uint64_t bytes);

  [[nodiscard]] std::uint64_t used() const { return used_.load(std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t limit() const { return limit_; }

 private:
  const std::uint64_t limit_;
  std::atomic<std::uint64_t> used_{0};
};

}  // namespace anyturn::net
