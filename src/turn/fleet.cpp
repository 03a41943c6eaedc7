// The worker's part in a fleet (docs/fleet.md): the anycast redirect and
// the drain (300 Try Alternate, RFC 8489 §10 and §14.15-16; 508, RFC 8656),
// revoked credentials, the REST-credential expiry of live allocations
// (auth.enforce_expiry) and the public address of a relay behind 1:1 NAT
// (relay.external_ips).
#include "context.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace anyturn::turn::detail {

namespace attr = stun::attr;
using stun::message_class;

// ------------------------------------------------------- revocations
void context::sync_revocations(const now_t& now) {
  if (!shared->revocations) return;
  const std::uint64_t generation = shared->revocations->generation();
  if (revoked && generation == revocations_seen) return;
  revocations_seen = generation;
  revoked = shared->revocations->snapshot();
  if (!revoked || revoked->size() == 0) return;
  std::size_t ended = 0;
  for (slot_index s = 0; s < table.slot_count(); ++s) {
    const record* rec = record_at(s);
    if (rec == nullptr || !is_revoked(rec->tenant_index(), rec->ses.username, now.unix_s)) continue;
    free_allocation(s, end_reason::revoked, now);
    ++ended;
  }
  if (ended > 0)
    spdlog::info("turn: worker {} ended {} allocation(s) of revoked credentials", worker, ended);
}

bool context::is_revoked(auth::tenant_index t, std::string_view username,
                         std::int64_t now_unix) const {
  if (!revoked || revoked->size() == 0) return false;
  const std::string_view tenant = t < shared->credentials->tenant_count()
                                      ? std::string_view(shared->credentials->tenant_id(t))
                                      : std::string_view();
  return revoked->revoked(tenant, username, now_unix);
}

// ------------------------------------------------------- the wall clock
void context::observe_clock(const now_t& now) {
  // A tick that sees the next second knows the second began between the
  // previous tick and this one: the middle of that gap is the estimate.
  if (last_tick_unix_s != 0 && now.unix_s == last_tick_unix_s + 1 &&
      now.mono_ms > last_tick_mono_ms && now.mono_ms - last_tick_mono_ms <= 1000) {
    unix_offset_ms = now.unix_s * 1000 - (last_tick_mono_ms + now.mono_ms) / 2;
    unix_offset_known = true;
  }
  last_tick_unix_s = now.unix_s;
  last_tick_mono_ms = now.mono_ms;
}

std::int64_t context::unix_ms(const now_t& now) const {
  const std::int64_t whole = now.unix_s * 1000;
  if (now.unix_ms != 0) return std::clamp(now.unix_ms, whole, whole + 999);  // read with the seconds
  if (!unix_offset_known) return whole + 500;
  // Kept inside the second the caller read, whatever the clocks did since.
  return std::clamp(now.mono_ms + unix_offset_ms, whole, whole + 999);
}

// ------------------------------------------------------- REST expiry
std::optional<std::int64_t> context::enforced_expiry(std::string_view username) const {
  // A static user wins over a REST username of the same spelling (and has
  // no expiry).
  if (!shared->enforce_expiry || shared->credentials->is_static_user(username)) return std::nullopt;
  return auth::rest_expiry_of(username);
}

// ------------------------------------------------------- relay.external_ips
stun::endpoint context::announced(const stun::endpoint& bound) const {
  for (const auto& m : shared->external_ips) {
    if (m.private_ip.same_ip(bound)) {
      stun::endpoint out = m.public_ip;
      out.port = bound.port;
      return out;
    }
  }
  return bound;
}

// ------------------------------------------------------- 300 and 508
namespace {

void send_try_alternate(context& ctx, const request& r, const stun::endpoint& to,
                        std::string_view domain) {
  auto b = ctx.begin(r, message_class::error_response);
  b.add_error_code(300, reason_for(300));
  b.add_address(attr::alternate_server, to, false);  // RFC 8489 §14.15: like MAPPED-ADDRESS
  if (!domain.empty()) b.add_string(attr::alternate_domain, domain);  // §14.16
  bump(ctx.counters.responses_error);
  ctx.finish(r, b, true);  // signed: the client authenticated
}

std::uint16_t port_for(const alternate_node& n, transport t) {
  switch (t) {
    case transport::udp: return n.udp_port;
    case transport::tcp: return n.tcp_port;
    case transport::tls: return n.tls_port;
    case transport::dtls: return 0;  // nodes advertise no DTLS port: no redirect
  }
  return 0;
}

bool is_anycast(const context& ctx, const stun::endpoint& local) {
  return std::any_of(ctx.shared->anycast_ips.begin(), ctx.shared->anycast_ips.end(),
                     [&](const stun::endpoint& a) { return a.same_ip(local); });
}

}  // namespace

bool redirect_allocate(context& ctx, request& r) {
  // The family the client speaks: the address it reached (a dual-stack
  // socket reports IPv4 clients as ::ffff:a.b.c.d).
  const stun::endpoint local = stun::unmap_v4(r.from.local);
  // Drain: new clients go to another node, or get 508 (RFC 8656 §7.2); the
  // drain rule wins over the anycast one.
  if (ctx.shared->fleet && ctx.shared->fleet->draining()) {
    std::optional<stun::endpoint> to;
    if (const auto target = ctx.shared->fleet->drain_target()) {
      const auto& addr = local.is_v4() ? target->v4 : target->v6;
      const std::uint16_t port = port_for(*target, r.from.proto);
      if (addr && port != 0) {
        to = *addr;
        to->port = port;
      }
    }
    if (!to) {
      bump(ctx.counters.drain_refused);
      ctx.send_error(r, 508);
      return true;
    }
    bump(ctx.counters.redirects_drain);
    send_try_alternate(ctx, r, *to, {});
    return true;
  }
  // Anycast front door: the node's own (unicast) address of the family, on
  // the port the client reached; a node without one serves it here.
  if (ctx.shared->anycast_ips.empty() || !is_anycast(ctx, local)) return false;
  for (const auto& u : ctx.shared->unicast_ips) {
    if (u.family != local.family) continue;
    stun::endpoint to = u;
    to.port = local.port;
    bump(ctx.counters.redirects_anycast);
    // (D)TLS clients check the certificate against ALTERNATE-DOMAIN.
    const bool secure = r.from.proto == transport::tls || r.from.proto == transport::dtls;
    send_try_alternate(ctx, r, to, secure ? std::string_view(ctx.shared->alternate_domain) : std::string_view());
    return true;
  }
  return false;
}

}  // namespace anyturn::turn::detail
