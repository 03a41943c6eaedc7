// TCP relay allocations (RFC 6062): Connect (§5.2), ConnectionBind (§5.4),
// the ConnectionAttempt of a peer-initiated connection (§5.3) and the byte
// counts of data connections. The sockets and the table of peer
// connections are the net layer's (io_port's TCP relay operations); the
// decisions (permission, peer policy, credentials) and the answers are here.
#include "context.hpp"
#include "log_scope.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>

namespace anyturn::turn::detail {

namespace attr = stun::attr;
using stun::message_class;

namespace {

// The owning worker of a CONNECTION-ID (see relay::io_port).
unsigned owner_of(std::uint32_t cid) { return cid >> 24; }

std::optional<std::uint32_t> connection_id_of(const stun::message_view& msg) {
  const auto a = msg.find(attr::connection_id);
  if (!a) return std::nullopt;
  const auto v = stun::decode_u32(*a);
  if (!v || *v == 0) return std::nullopt;
  return *v;
}

}  // namespace

// ------------------------------------------------------ RFC 6062 §5.2
void on_connect(context& ctx, request& r) {
  const auto owned = ctx.owned(r);
  if (!owned) return;
  relay::allocation& a = owned->fwd;
  if (!owned->ses.tcp_relay) return ctx.send_error(r, 400);  // a UDP allocation
  const auto peer_attr = r.msg.find(attr::xor_peer_address);
  if (!peer_attr) return ctx.send_error(r, 400);
  const auto peer = stun::decode_address(*peer_attr, r.msg.tid(), true);
  if (!peer || peer->port == 0) return ctx.send_error(r, 400);
  bool own = false;
  if (const int code = check_peer(ctx, a, *peer, true, own); code != 0) {
    bump(ctx.counters.tcp_relay_no_permission);
    return ctx.send_error(r, code);
  }
  if (!a.has_permission(*peer, r.now.mono_ms)) {  // §5.2: 403 without a permission
    bump(ctx.counters.tcp_relay_no_permission);
    return ctx.send_error(r, 403);
  }
  const relay::relay_side* side = a.relay_for(peer->family);
  if (ctx.io.tcp_peer_exists(side->id, *peer)) {
    bump(ctx.counters.tcp_relay_exists);
    return ctx.send_error(r, 446);
  }
  const std::uint32_t cid = ctx.io.tcp_connect(side->id, *peer);
  if (cid == 0) {
    bump(ctx.counters.tcp_relay_connect_failed);
    return ctx.send_error(r, 447);
  }
  pending_connect p;
  p.cid = cid;
  p.from = r.from;
  const auto raw = r.msg.raw();
  p.message.assign(raw.begin(), raw.end());
  p.key = *r.key;
  p.sha256 = r.sha256;
  p.sha256_key = r.sha256_key;
  p.username = std::string(r.username);
  p.tenant = r.tenant;
  ctx.connects.push_back(std::move(p));
}

// ------------------------------------------------------ RFC 6062 §5.4
bool hand_off_connection_bind(context& ctx, const client_ref& from, const stun::message_view& msg) {
  if (from.proto != transport::tcp) return false;  // only plain TCP moves (TLS and datagrams answer here)
  const auto cid = connection_id_of(msg);
  if (!cid || owner_of(*cid) == ctx.worker) return false;
  if (!ctx.io.hand_off_stream(from, owner_of(*cid), msg.raw())) return false;
  bump(ctx.counters.tcp_relay_handed_off);
  return true;
}

void on_connection_bind(context& ctx, request& r) {
  auto refuse = [&](int code, const char* why) {
    bump(ctx.counters.tcp_relay_bind_failed);
    spdlog::debug("turn: ConnectionBind from {} refused ({}): {}", r.from.remote.to_string(), code, why);
    ctx.send_error(r, code);
  };
  // §5.4: on a new connection, never on the control connection (nor UDP or DTLS).
  const bool stream = r.from.proto == transport::tcp || r.from.proto == transport::tls;
  if (!stream || ctx.table.contains(r.from))
    return refuse(400, "not on a new TCP connection");
  // Data connections are spliced between plain sockets; a TLS session
  // cannot leave its stream (docs/architecture.md, "TCP relay").
  if (r.from.proto == transport::tls) return refuse(400, "TLS data connections are not supported");
  const auto cid = connection_id_of(r.msg);
  if (!cid) return refuse(400, "no CONNECTION-ID");
  const relay::relay_id id = ctx.io.tcp_unbound(*cid);
  const record* rec = id == relay::no_relay ? nullptr : static_cast<const record*>(ctx.table.by_relay(id));
  if (rec == nullptr) return refuse(400, "unknown, expired or already bound CONNECTION-ID");
  if (rec->ses.username != r.username || rec->tenant_index() != r.tenant)
    return refuse(441, "not the allocation's credentials");
  auto b = ctx.begin(r, message_class::success_response);
  ctx.send_success(r, b);
  // After this answer the connection carries the peer's bytes, no STUN.
  if (ctx.io.tcp_bind(*cid, r.from)) {
    bump(ctx.counters.tcp_relay_bound);
  } else {
    bump(ctx.counters.tcp_relay_bind_failed);
  }
}

}  // namespace anyturn::turn::detail

namespace anyturn::turn {

using detail::context;

bool worker_core::on_peer_connection(relay::relay_id id, const stun::endpoint& peer, std::uint32_t cid,
                                     const relay::now_t& now) {
  context& ctx = *impl_;
  auto* rec = static_cast<detail::record*>(ctx.table.by_relay(id));
  if (rec == nullptr || !rec->ses.tcp_relay) return false;
  bool own = false;
  // §5.3: a permission for the peer's IP, and the operator's policy.
  if (detail::check_peer(ctx, *rec, peer, true, own) != 0 || !rec->has_permission(peer, now.mono_ms)) {
    relay::bump(ctx.counters.tcp_relay_no_permission);
    return false;
  }
  stun::transaction_id tid;
  for (auto& b : tid.bytes) b = static_cast<std::byte>(ctx.next_random());
  stun::message_builder b(ctx.scratch, static_cast<std::uint16_t>(stun::method::connection_attempt),
                          stun::message_class::indication, tid);
  b.add_address(stun::attr::xor_peer_address, peer, true);
  b.add_u32(stun::attr::connection_id, cid);
  const auto out = b.finish();
  if (!out) return false;
  ctx.send_to_client(rec->client, *out);
  relay::bump(ctx.counters.tcp_relay_accepted);
  return true;
}

bool worker_core::on_tcp_connected(std::uint32_t cid, bool ok, const relay::now_t& now) {
  context& ctx = *impl_;
  const auto it = std::find_if(ctx.connects.begin(), ctx.connects.end(),
                               [&](const detail::pending_connect& p) { return p.cid == cid; });
  if (it == ctx.connects.end()) return false;
  const detail::pending_connect p = std::move(*it);
  ctx.connects.erase(it);
  const auto parsed = stun::parse_message(p.message);
  // The allocation must still be there (and the same user's) to answer.
  const auto slot = ctx.table.find(p.from);
  if (!parsed || !slot || ctx.record_at(*slot)->ses.username != p.username) return false;
  detail::request r{p.from, *parsed, now};
  r.key = &p.key;
  r.sha256 = p.sha256;
  r.sha256_key = p.sha256_key;
  r.username = p.username;
  r.tenant = p.tenant;
  if (!ok) {
    relay::bump(ctx.counters.tcp_relay_connect_failed);
    ctx.send_error(r, 447);
    return false;
  }
  relay::bump(ctx.counters.tcp_relay_connected);
  auto b = ctx.begin(r, stun::message_class::success_response);
  b.add_u32(stun::attr::connection_id, cid);
  ctx.send_success(r, b);
  return true;
}

void worker_core::on_tcp_relayed(relay::relay_id id, std::uint64_t to_peer, std::uint64_t to_client) {
  context& ctx = *impl_;
  relay::allocation* a = ctx.table.by_relay(id);
  auto& ts = ctx.tenant_stats(a != nullptr ? a->tenant : 0);
  if (to_peer != 0) {
    relay::bump(ctx.counters.bytes_to_peer, to_peer);
    relay::bump(ts.bytes_to_peer, to_peer);
    if (a != nullptr) a->bytes_to_peer += to_peer;
  }
  if (to_client != 0) {
    relay::bump(ctx.counters.bytes_to_client, to_client);
    relay::bump(ts.bytes_to_client, to_client);
    if (a != nullptr) a->bytes_to_client += to_client;
  }
}

}  // namespace anyturn::turn
