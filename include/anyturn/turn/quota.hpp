// anyturn::turn — allocation quotas per user and per tenant, counted across workers.
//
// A common::count_min sketch keyed by the process's keyed hash of the user:
// workers add and subtract with atomic read-modify-write, never a lock, and
// a collision can only make the count too high, so the limit is never
// exceeded.
#pragma once

#include <anyturn/common/count_min.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string_view>

namespace anyturn::turn {

class user_quota {
 public:
  explicit user_quota(std::uint32_t limit, std::size_t buckets_per_row = 1u << 16);

  [[nodiscard]] std::uint32_t limit() const { return limit_; }
  // Counts one more allocation for `user`, or returns false (486) when the
  // user is at the limit. A limit of 0 means no limit (and nothing is
  // counted, so release() must be given the same limit).
  bool try_acquire(std::string_view user) { return try_acquire(user, limit_); }
  bool try_acquire(std::string_view user, std::uint32_t limit);
  void release(std::string_view user) { release(user, limit_); }
  void release(std::string_view user, std::uint32_t limit);
  [[nodiscard]] std::uint32_t count(std::string_view user) const;

  // The part of a username that a quota counts: REST usernames
  // "<expiry>:<user>" (or coturn's "<user>:<expiry>") count as <user>, so
  // fresh credentials do not reset the quota.
  static std::string_view key_of(std::string_view username);

 private:
  std::uint32_t limit_;
  common::count_min counts_;
};

// Concurrent allocations per tenant, across workers: one atomic counter per
// tenant.
//
// Fleet quotas (fleet.redis, src/fleet/quota_lease.cpp): a tenant's
// configured max_allocations then counts across the fleet. The fleet thread
// leases units of it from Redis and sets the tenant's fleet limit here to
// what this node holds; workers keep calling try_acquire with the configured
// limit and are held to the lease instead, with no Redis round trip on the
// Allocate path. `use_node_limit` (the initial value, and what the fleet
// thread sets when Redis is unreachable) means "no lease: the configured
// limit applies to this node alone".
class tenant_quota {
 public:
  static constexpr std::uint32_t use_node_limit = UINT32_MAX;

  explicit tenant_quota(std::size_t tenants);
  // limit 0: no limit (the fleet limit is then ignored too). Otherwise the
  // fleet limit, when set, replaces `limit` (a lease of 0 refuses).
  bool try_acquire(std::size_t tenant, std::uint32_t limit);
  void release(std::size_t tenant);
  [[nodiscard]] std::uint32_t active(std::size_t tenant) const;
  [[nodiscard]] std::size_t tenants() const { return count_; }

  // Any thread (the fleet thread); workers see it at their next try_acquire.
  void set_fleet_limit(std::size_t tenant, std::uint32_t limit) noexcept;
  [[nodiscard]] std::uint32_t fleet_limit(std::size_t tenant) const noexcept;
  // Allocations refused while a fleet limit was set (the fleet thread reads
  // it as demand for a larger lease).
  [[nodiscard]] std::uint64_t fleet_refused(std::size_t tenant) const noexcept;

 private:
  std::size_t count_;
  std::unique_ptr<std::atomic<std::uint32_t>[]> active_;
  std::unique_ptr<std::atomic<std::uint32_t>[]> fleet_limit_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> fleet_refused_;
};

}  // namespace anyturn::turn
