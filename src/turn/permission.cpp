// CreatePermission (RFC 8656 §10.2) and ChannelBind (§11.2).
#include "context.hpp"

#include <array>

namespace anyturn::turn::detail {

namespace attr = stun::attr;
using stun::message_class;

namespace {

// Peer address checks shared by CreatePermission and ChannelBind: family
// (443) and the operator's peer policy (403). Returns 0 when the peer may
// be used.
int check_peer(context& ctx, const relay::allocation& a, const stun::endpoint& peer) {
  if (a.relay_for(peer.family) == nullptr) return 443;
  if (!auth::is_allowed(ctx.shared->peers->check(peer))) {
    bump(ctx.counters.peer_denied);
    return 403;
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

// ------------------------------------------------------ RFC 8656 §10.2
void on_create_permission(context& ctx, request& r) {
  const auto owned = ctx.owned(r);
  if (!owned) return;
  std::array<stun::endpoint, 16> peers{};
  std::size_t n = 0;
  for (const auto& at : r.msg.attributes()) {
    if (at.type != attr::xor_peer_address) continue;
    const auto peer = stun::decode_address(at, r.msg.tid(), true);
    if (!peer) return ctx.send_error(r, 400);
    if (n == peers.size()) return ctx.send_error(r, 400);
    if (const int code = check_peer(ctx, owned->fwd, *peer); code != 0)
      return ctx.send_error(r, code);
    peers[n++] = *peer;
  }
  if (n == 0) return ctx.send_error(r, 400);
  // Every address passed: install them all, or none (§10.2).
  for (std::size_t i = 0; i < n; ++i) install_permission(ctx, *owned, peers[i], r.now.mono_ms);
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
  // The number is bound (or cooling down) to another peer, or the peer to
  // another number: 400.
  for (const auto& c : owned->fwd.channels) {
    if (c.number == *number && c.peer != *peer) return ctx.send_error(r, 400);
    if (c.peer == *peer && c.number != *number) return ctx.send_error(r, 400);
  }
  if (const int code = check_peer(ctx, owned->fwd, *peer); code != 0) return ctx.send_error(r, code);
  const std::int64_t expires = r.now.mono_ms + std::int64_t{ctx.shared->channel_lifetime} * 1000;
  owned->fwd.bind_channel(*number, *peer, expires);
  ctx.schedule(owned->slot, expires);
  install_permission(ctx, *owned, *peer, r.now.mono_ms);  // binding installs a permission
  auto b = ctx.begin(r, message_class::success_response);
  ctx.send_success(r, b);
}

}  // namespace anyturn::turn::detail
