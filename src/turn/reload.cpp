// A worker's switch to a reloaded configuration (docs/configuration.md,
// "Reloading the configuration"). Runs on the worker's 250 ms tick, or at
// once when the app posts worker_core::on_published; never on the
// forwarding path: the generation is one acquire load; only when it
// moved does the worker take the new snapshot (a shared_ptr copy under the
// board's mutex) and walk its allocations once.
#include "context.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace anyturn::turn::detail {

void context::sync_config(const now_t& now) {
  const auto board = shared->config.lock();
  if (!board) return;
  const std::uint64_t generation = board->generation();
  if (generation == config_seen) return;
  config_board::current next = board->snapshot();
  config_seen = next.generation;
  if (!next.state || next.state == shared) {
    board->acknowledge(worker, next.generation);
    return;
  }
  const std::shared_ptr<const shared_state> old = std::move(shared);
  shared = std::move(next.state);
  const bool peers_changed = shared->peers != old->peers;
  const bool credentials_changed = shared->credentials != old->credentials;
  std::size_t ended = 0;
  std::size_t peers_removed = 0;
  for (slot_index s = 0; s < table.slot_count(); ++s) {
    record* rec = record_at(s);
    if (rec == nullptr) continue;
    if (credentials_changed && shared->revoke_removed && !still_accepted(*rec, now)) {
      free_allocation(s, end_reason::reloaded, now);
      ++ended;
      continue;
    }
    if (peers_changed) {
      const std::size_t removed = rec->forget_peers_if(
          [&](const stun::endpoint& peer) { return !peer_still_allowed(*rec, peer); });
      if (removed > 0) offload_sync(s, now);  // out of the fast path at once
      peers_removed += removed;
    }
  }
  if (peers_removed > 0) {
    counters.reload_peers_removed.store(
        counters.reload_peers_removed.load(std::memory_order_relaxed) + peers_removed,
        std::memory_order_relaxed);
  }
  board->acknowledge(worker, next.generation);
  if (ended > 0 || peers_removed > 0) {
    spdlog::info(
        "config reload: worker {} switched to generation {}: ended {} allocation(s) whose credential "
        "was removed, removed {} permission(s)/channel(s) of newly denied peers",
        worker, next.generation, ended, peers_removed);
  } else {
    spdlog::debug("config reload: worker {} switched to generation {}", worker, next.generation);
  }
}

bool context::still_accepted(const record& rec, const now_t& now) const {
  // A REST credential is judged at a time it is still valid: a reload ends
  // an allocation for a removed secret, not for an expiry (that is
  // auth.enforce_expiry's business).
  std::int64_t at = now.unix_s;
  if (const auto expiry = auth::rest_expiry_of(rec.ses.username)) at = std::min(at, *expiry);
  std::array<auth::key_candidate, auth::max_candidates> keys{};
  std::size_t count = 0;
  auth::tenant_index tenant = auth::default_tenant;
  const auto status = shared->credentials->lookup(rec.ses.username, at, keys, count, tenant);
  if (status != auth::lookup_status::ok || tenant != rec.tenant_index()) return false;
  return std::any_of(keys.begin(), keys.begin() + static_cast<std::ptrdiff_t>(count),
                     [&](const auth::key_candidate& k) { return k.md5 == rec.ses.key.md5; });
}

bool context::peer_still_allowed(const relay::allocation& a, const stun::endpoint& peer) const {
  (void)a;
  // As check_peer (permission.cpp) judged it: the operator's deny list wins
  // over everything; an own address keeps the admission it had (the
  // forwarder checks its relay port on every packet).
  const auto verdict = shared->peers->check(peer);
  if (verdict == auth::peer_verdict::denied_operator) return false;
  const auto* self = shared->own.get();
  if (self != nullptr && self->contains(peer)) return true;
  return auth::is_allowed(verdict);
}

}  // namespace anyturn::turn::detail
