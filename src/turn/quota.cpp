#include <anyturn/turn/quota.hpp>

#include "context.hpp"

#include <anyturn/common/keyed_hash.hpp>

#include <algorithm>

namespace anyturn::turn {

namespace {
bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

user_quota::user_quota(std::uint32_t limit, std::size_t buckets_per_row)
    : limit_(limit), counts_(buckets_per_row) {}

bool user_quota::try_acquire(std::string_view user, std::uint32_t limit) {
  return counts_.try_acquire(common::keyed_hash(user), limit);
}

void user_quota::release(std::string_view user, std::uint32_t limit) {
  counts_.release(common::keyed_hash(user), limit);
}

std::uint32_t user_quota::count(std::string_view user) const {
  return counts_.count(common::keyed_hash(user));
}

std::string_view user_quota::key_of(std::string_view username) {
  const auto first = username.find(':');
  if (first == std::string_view::npos) return username;
  if (all_digits(username.substr(0, first))) return username.substr(first + 1);
  const auto last = username.rfind(':');
  if (all_digits(username.substr(last + 1))) return username.substr(0, last);
  return username;
}

tenant_quota::tenant_quota(std::size_t tenants)
    : count_(std::max<std::size_t>(tenants, 1)),
      active_(std::make_unique<std::atomic<std::uint32_t>[]>(count_)),
      fleet_limit_(std::make_unique<std::atomic<std::uint32_t>[]>(count_)),
      fleet_refused_(std::make_unique<std::atomic<std::uint64_t>[]>(count_)) {
  for (std::size_t i = 0; i < count_; ++i) {
    active_[i].store(0, std::memory_order_relaxed);
    fleet_limit_[i].store(use_node_limit, std::memory_order_relaxed);
    fleet_refused_[i].store(0, std::memory_order_relaxed);
  }
}

bool tenant_quota::try_acquire(std::size_t tenant, std::uint32_t limit) {
  if (tenant >= count_) return false;
  bool leased = false;
  if (limit != 0) {
    // A lease never exceeds the configured limit (it is the fleet's total).
    const std::uint32_t fleet = fleet_limit_[tenant].load(std::memory_order_acquire);
    if (fleet != use_node_limit) {
      leased = true;
      if (fleet == 0) {
        fleet_refused_[tenant].fetch_add(1, std::memory_order_relaxed);
        return false;
      }
      limit = std::min(limit, fleet);
    }
  }
  auto& a = active_[tenant];
  const std::uint32_t n = a.fetch_add(1, std::memory_order_acq_rel) + 1;
  if (limit != 0 && n > limit) {
    a.fetch_sub(1, std::memory_order_acq_rel);
    if (leased) fleet_refused_[tenant].fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

void tenant_quota::release(std::size_t tenant) {
  if (tenant < count_) active_[tenant].fetch_sub(1, std::memory_order_acq_rel);
}

std::uint32_t tenant_quota::active(std::size_t tenant) const {
  return tenant < count_ ? active_[tenant].load(std::memory_order_relaxed) : 0;
}

void tenant_quota::set_fleet_limit(std::size_t tenant, std::uint32_t limit) noexcept {
  if (tenant < count_) fleet_limit_[tenant].store(limit, std::memory_order_release);
}

std::uint32_t tenant_quota::fleet_limit(std::size_t tenant) const noexcept {
  return tenant < count_ ? fleet_limit_[tenant].load(std::memory_order_acquire) : use_node_limit;
}

std::uint64_t tenant_quota::fleet_refused(std::size_t tenant) const noexcept {
  return tenant < count_ ? fleet_refused_[tenant].load(std::memory_order_relaxed) : 0;
}

}  // namespace anyturn::turn

// ---- the handlers' side: one allocation counted against both quotas ----

namespace anyturn::turn::detail {

std::uint32_t context::user_limit(auth::tenant_index t) const {
  const auto* p = policy_of(t);
  if (p != nullptr && p->max_allocations_per_user != 0) return p->max_allocations_per_user;
  if (shared->max_allocations_per_user) return *shared->max_allocations_per_user;
  return shared->user_quotas ? shared->user_quotas->limit() : 0;
}

// The tenant's concurrent allocations across workers, then the user's
// (RFC 8656 §7.2 step 8's "allocation quota"), before any resource is taken.
bool acquire_quotas(context& ctx, const request& r, quota_hold& hold) {
  const tenant_policy* policy = ctx.policy_of(r.tenant);
  const auto& tenants = ctx.shared->tenant_usage;
  const auto& users = ctx.shared->user_quotas;
  hold = {};
  bool ok = !tenants || tenants->try_acquire(r.tenant, policy ? policy->max_allocations : 0);
  const std::uint32_t user_limit = users ? ctx.user_limit(r.tenant) : 0;
  if (ok && users && !users->try_acquire(user_quota::key_of(r.username), user_limit)) {
    if (tenants) tenants->release(r.tenant);
    ok = false;
  }
  if (ok) {
    hold.tenant = tenants != nullptr;
    hold.user_limit = user_limit;
    return true;
  }
  bump(ctx.counters.allocations_failed_quota);
  bump(ctx.tenant_stats(r.tenant).quota_rejected);
  ctx.send_error(r, 486);
  return false;
}

void release_quotas(context& ctx, auth::tenant_index tenant, std::string_view username,
                    const quota_hold& hold) {
  // A reload keeps the quota objects (the app carries them over), so the
  // ones in force are the ones the allocation was counted in.
  if (ctx.shared->user_quotas && hold.user_limit != 0)
    ctx.shared->user_quotas->release(user_quota::key_of(username), hold.user_limit);
  if (ctx.shared->tenant_usage && hold.tenant) ctx.shared->tenant_usage->release(tenant);
}

}  // namespace anyturn::turn::detail
