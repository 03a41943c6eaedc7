// CreatePermission (RFC 8656 §10.2) and ChannelBind (§11.2).
#include "context.hpp"

#include <algorithm>
#include <array>

namespace anyturn::turn::detail {

namespace attr = stun::attr;
using stun::message_class;

namespace {

// limits.allocation for `fresh` new peer IPs: max_peers, then the rate of
// new permissions. Returns 0, or 508 (RFC 8656 allows it for
// CreatePermission and ChannelBind), counted per reason and tenant.
int admit_new_permissions(context& ctx, relay::allocation& a, std::size_t fresh,
                          std::int64_t now_ms) {
  if (fresh == 0) return 0;
  if (a.permission_count() + fresh > a.max_peers) {
    a.drop_expired_permissions(now_ms);  // expired ones do not count
    if (a.permission_count() + fresh > a.max_peers) {
      bump(ctx.counters.limit_rejected_peers);
      bump(ctx.tenant_stats(a.tenant).limit_rejected_peers);
      return 508;
    }
  }
  if (!a.permission_rate.take(fresh, now_ms)) {
    bump(ctx.counters.limit_rejected_permission_rate);
    bump(ctx.tenant_stats(a.tenant).limit_rejected_permission_rate);
    return 508;
  }
  return 0;
}

void install_permission(context& ctx, const owned_allocation& o, const stun::endpoint& peer,
                        std::int64_t now_ms) {
  const std::int64_t expires = now_ms + std::int64_t{ctx.shared->permission_lifetime} * 1000;
  o.fwd.permit(peer, expires);
  ctx.schedule(o.slot, expires);
}

}  // namespace

// Peer address checks shared by CreatePermission and ChannelBind: family
// (443), the server's own addresses and the operator's peer policy (403).
// Returns 0 when the peer may be used; `own` says it is an own address.
// An own address (not opened by peers.allow: those are not in the set) is
// a peer only where another allocation of this server can be: with the port
// known (ChannelBind), a live relay port; for a permission (per IP), a relay
// IP. Then the built-in denies do not apply (a loopback or private relay
// address still relays between allocations); the operator's deny list does.
int check_peer(context& ctx, const relay::allocation& a, const stun::endpoint& peer,
               bool port_known, bool& own) {
  if (a.relay_for(peer.family) == nullptr) return 443;
  const auto verdict = ctx.shared->peers->check(peer);
  const auto* self = ctx.shared->own.get();
  if (self != nullptr && verdict != auth::peer_verdict::denied_operator && self->contains(peer)) {
    if (!(port_known ? self->is_relay_port(peer) : self->is_relay_ip(peer))) {
      bump(ctx.counters.peer_denied_self);
      return 403;
    }
    own = true;
    return 0;
  }
  if (!auth::is_allowed(verdict)) {
    bump(ctx.counters.peer_denied);
    return 403;
  }
  return 0;
}

// ------------------------------------------------------ RFC 8656 §10.2
void on_create_permission(context& ctx, request& r) {
  const auto owned = ctx.owned(r);
  if (!owned) return;
  std::array<stun::endpoint, 16> peers{};
  std::size_t n = 0;
  std::size_t fresh = 0;  // peer IPs with no permission entry yet
  for (const auto& at : r.msg.attributes()) {
    if (at.type != attr::xor_peer_address) continue;
    const auto peer = stun::decode_address(at, r.msg.tid(), true);
    if (!peer) return ctx.send_error(r, 400);
    if (n == peers.size()) return ctx.send_error(r, 400);
    bool own = false;
    if (const int code = check_peer(ctx, owned->fwd, *peer, false, own); code != 0)
      return ctx.send_error(r, code);
    const bool repeated = std::any_of(peers.begin(), peers.begin() + static_cast<std::ptrdiff_t>(n),
                                      [&](const stun::endpoint& p) { return p.same_ip(*peer); });
    if (!repeated && owned->fwd.find_permission(*peer) == nullptr) ++fresh;
    peers[n++] = *peer;
  }
  if (n == 0) return ctx.send_error(r, 400);
  if (const int code = admit_new_permissions(ctx, owned->fwd, fresh, r.now.mono_ms); code != 0)
    return ctx.send_error(r, code);
  // Every address passed: install them all, or none (§10.2).
  for (std::size_t i = 0; i < n; ++i) install_permission(ctx, *owned, peers[i], r.now.mono_ms);
  ctx.offload_sync(owned->slot, r.now);  // a refreshed permission extends its channel's entry
  auto b = ctx.begin(r, message_class::success_response);
  ctx.send_success(r, b);
}

// ------------------------------------------------------ RFC 8656 §11.2
void on_channel_bind(context& ctx, request& r) {
  const auto owned = ctx.owned(r);
  if (!owned) return;
  const auto num_attr = r.msg.find(attr::channel_number);
  const auto peer_attr = r.msg.find(attr::xor_peer_address);
  if (!num_attr || !peer_attr) return ctx.send_error(r, 400);
  const auto number = stun::decode_channel_number(*num_attr);
  if (!number || !stun::valid_channel(*number)) return ctx.send_error(r, 400);
  const auto peer = stun::decode_address(*peer_attr, r.msg.tid(), true);
  if (!peer) return ctx.send_error(r, 400);
  relay::allocation& a = owned->fwd;
  // The number is bound (or cooling down) to another peer, or the peer to
  // another number: 400.
  const relay::channel* by_number = a.channel_by_number(*number);
  if (by_number != nullptr && by_number->peer != *peer) return ctx.send_error(r, 400);
  if (const auto* c = a.channel_by_peer(*peer); c != nullptr && c->number != *number)
    return ctx.send_error(r, 400);
  bool own = false;
  if (const int code = check_peer(ctx, a, *peer, true, own); code != 0) return ctx.send_error(r, code);
  if (by_number == nullptr && a.channel_count() >= a.max_channels) {
    bump(ctx.counters.limit_rejected_channels);
    bump(ctx.tenant_stats(a.tenant).limit_rejected_channels);
    return ctx.send_error(r, 508);
  }
  // Binding installs a permission: a new peer IP counts against the limits.
  const std::size_t fresh = a.find_permission(*peer) == nullptr ? 1 : 0;
  if (const int code = admit_new_permissions(ctx, a, fresh, r.now.mono_ms); code != 0)
    return ctx.send_error(r, code);
  const std::int64_t expires = r.now.mono_ms + std::int64_t{ctx.shared->channel_lifetime} * 1000;
  a.bind_channel(*number, *peer, expires, own);
  ctx.schedule(owned->slot, expires);
  install_permission(ctx, *owned, *peer, r.now.mono_ms);
  ctx.offload_sync(owned->slot, r.now);  // installed in the fast path before the answer
  auto b = ctx.begin(r, message_class::success_response);
  ctx.send_success(r, b);
}

}  // namespace anyturn::turn::detail
