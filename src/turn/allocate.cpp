// Allocate (RFC 8656 §7.2, RFC 6156) and Refresh (§8.2). Each step of
// §7.2 is a function; on_allocate runs them in the RFC's order.
#include "context.hpp"
#include "log_scope.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <optional>
#include <string>

namespace anyturn::turn::detail {

namespace attr = stun::attr;
using stun::message_class;

namespace {

constexpr std::uint8_t proto_udp = 17;
constexpr std::uint8_t proto_tcp = 6;  // RFC 6062
constexpr std::int64_t reservation_ms = 30'000;  // §7.2: about 30 s
constexpr std::uint64_t token_bits = 0x00FFFFFFFFFFFFFFULL;  // below the pool index

// What the request asks for (§7.2 steps 3-7).
struct allocate_params {
  stun::address_family family = stun::address_family::ipv4;
  bool want_v6_too = false;   // ADDITIONAL-ADDRESS-FAMILY (dual allocation)
  bool even_port = false;
  bool reserve_next = false;  // EVEN-PORT with R=1
  std::uint64_t redeem_token = 0;
  bool tcp = false;           // REQUESTED-TRANSPORT TCP (RFC 6062): a listening relay
};

enum class open_mode { any, even, even_reserve, exact };

// Lifetime rule of §7.2 and §8.2: min(requested, max), never below the default.
std::uint32_t granted_lifetime(const context& ctx, const stun::message_view& msg) {
  std::uint32_t lifetime = ctx.shared->allocation_lifetime_default;
  if (const auto a = msg.find(attr::lifetime)) {
    if (const auto v = stun::decode_u32(*a)) {
      const std::uint32_t capped = std::min(*v, ctx.shared->allocation_lifetime_max);
      lifetime = std::max(capped, ctx.shared->allocation_lifetime_default);
    }
  }
  return lifetime;
}

// auth.enforce_expiry: never more than the seconds the REST credential has
// left (authentication refused it when none are left, auth.cpp).
std::uint32_t within_credential(const session& s, const now_t& now, std::uint32_t lifetime) {
  if (s.credential_expiry_s == 0) return lifetime;
  const std::int64_t left = std::max<std::int64_t>(1, s.credential_expiry_s - now.unix_s);
  return static_cast<std::uint32_t>(std::min<std::int64_t>(lifetime, left));
}

// Steps 3-7: REQUESTED-TRANSPORT, DONT-FRAGMENT, the address families,
// RESERVATION-TOKEN and EVEN-PORT. Returns 0, or the error code to answer.
int read_params(const stun::message_view& msg, transport over, allocate_params& p) {
  const auto rt_attr = msg.find(attr::requested_transport);
  if (!rt_attr) return 400;
  const auto rt = stun::decode_requested_transport(*rt_attr);
  if (!rt) return 400;
  if (*rt != proto_udp && *rt != proto_tcp) return 442;
  // Step 4: DONT-FRAGMENT is supported, nothing to check.
  const auto token_attr = msg.find(attr::reservation_token);
  const auto even_attr = msg.find(attr::even_port);
  const auto raf_attr = msg.find(attr::requested_address_family);
  const auto aaf_attr = msg.find(attr::additional_address_family);
  if (*rt == proto_tcp) {
    // RFC 6062 §5.1: only over TCP or TLS (a UDP or DTLS client cannot bind
    // data connections); no DONT-FRAGMENT, EVEN-PORT or RESERVATION-TOKEN;
    // one address family.
    if (over != transport::tcp && over != transport::tls) return 442;
    if (msg.has(attr::dont_fragment) || token_attr || even_attr || aaf_attr) return 400;
    p.tcp = true;
  }
  if (token_attr && (even_attr || raf_attr || aaf_attr)) return 400;
  if (raf_attr && aaf_attr) return 400;
  if (raf_attr) {
    const auto f = stun::decode_address_family(*raf_attr);
    if (!f) return 440;
    p.family = *f;
  }
  if (aaf_attr) {
    const auto f = stun::decode_address_family(*aaf_attr);
    if (!f || *f != stun::address_family::ipv6) return 400;
    p.want_v6_too = true;
  }
  if (even_attr) {
    const auto rbit = stun::decode_even_port(*even_attr);
    if (!rbit) return 400;
    p.even_port = true;
    p.reserve_next = *rbit;
  }
  if (token_attr) {
    const auto t = stun::decode_reservation_token(*token_attr);
    if (!t) return 400;
    p.redeem_token = *t;
  }
  return 0;
}

// The worker's own bound (508) before the quotas (486, quota.cpp).
bool check_capacity(context& ctx, const request& r) {
  if (ctx.table.size() < ctx.shared->max_allocations) return true;
  bump(ctx.counters.allocations_failed_ports);
  std::uint64_t suppressed = 0;
  if (ctx.ports_log.allow(r.now.mono_ms, suppressed))
    spdlog::warn("turn: worker {} holds its maximum of {} allocations; answering 508", ctx.worker,
                 ctx.shared->max_allocations);
  ctx.send_error(r, 508);
  return false;
}

// Binds tried per relay address before an Allocate gets 508. The kernel
// refuses a port (EADDRINUSE) that another socket on the host holds; with a
// relay range inside the ephemeral range that can be hundreds of them. Each
// refused port cools down in the pool (60 s), so every try is a new port and
// a port costs at most one failed bind per cool-down, whatever the bound;
// the bound caps one Allocate's stall (a failed bind is a few microseconds).
constexpr std::size_t max_bind_attempts = 256;

// Claims a port and binds a relay socket on relay address `pool_index`;
// retries another port when the kernel says the one the pool gave us is
// taken by someone else. A reservation token is returned in `token_out`.
bool open_relay(context& ctx, relay::allocation& a, slot_index slot, std::uint8_t pool_index,
                open_mode mode, std::uint16_t exact_port, std::uint64_t& token_out,
                std::int64_t now_ms, bool tcp = false) {
  const auto& addr = ctx.shared->relays[pool_index];
  auto& pool = *addr.ports;
  for (std::size_t attempt = 0; attempt < max_bind_attempts; ++attempt) {
    std::optional<std::uint16_t> port;
    std::uint64_t token = 0;
    const auto seed = static_cast<std::uint32_t>(ctx.next_random());
    if (mode == open_mode::any) {
      port = pool.acquire(seed, now_ms);
    } else if (mode == open_mode::exact) {
      if (attempt == 0) port = exact_port;  // already claimed through its reservation token
    } else {
      port = pool.acquire_even(seed, mode == open_mode::even_reserve, token, now_ms);
    }
    if (!port) return false;
    stun::endpoint bind = addr.ip;
    bind.port = *port;
    const relay::relay_id id = ctx.table.take_relay_id(slot);
    const std::error_code ec = tcp ? ctx.io.open_tcp_relay(id, bind) : ctx.io.open_relay(id, bind);
    if (!ec) {
      a.relays[a.relay_count++] = relay::relay_side{id, bind, pool_index};
      if (token != 0) token_out = (std::uint64_t{pool_index} << 56) | token;
      return true;
    }
    ctx.table.release_relay_id(id);
    bump(ctx.counters.relay_port_refused);
    std::uint64_t suppressed = 0;
    if (ctx.ports_log.allow(now_ms, suppressed))
      spdlog::warn("turn: cannot bind relay {}: {}; the port cools down for {} s ({} similar suppressed)",
                   bind.to_string(), ec.message(), pool.cooldown_ms() / 1000,
                   suppressed);
    if (token != 0) pool.cancel(token);
    // Out of the pool for a while, so neither this loop nor the next
    // Allocate tries it again at once.
    pool.refuse(*port, now_ms);
  }
  return false;
}

// Opens a relay socket on one of the family's relay addresses. New
// allocations rotate over the addresses, and an address whose range is
// full is skipped, so several addresses add capacity.
bool open_in_family(context& ctx, relay::allocation& a, slot_index slot, stun::address_family f,
                    open_mode mode, std::uint64_t& token_out, std::int64_t now_ms,
                    bool tcp = false) {
  const std::size_t n = ctx.shared->relays.size();
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t i = (ctx.relay_cursor + k) % n;
    if (ctx.shared->relays[i].ip.family != f) continue;
    if (open_relay(ctx, a, slot, static_cast<std::uint8_t>(i), mode, 0, token_out, now_ms, tcp)) {
      ctx.relay_cursor = i + 1;
      return true;
    }
  }
  return false;
}

// Steps 5-7 and the relayed transport address: redeems a reservation
// token, or opens a socket in the requested family (an even port when
// asked). Returns 0, or the error code to answer (440, 508).
int open_relays(context& ctx, const request& r, const allocate_params& p, relay::allocation& a,
                session& s, slot_index slot, bool& v6_unavailable) {
  const std::int64_t now_ms = r.now.mono_ms;
  bool ok = false;
  if (p.redeem_token != 0) {
    // Step 6: the port that an earlier EVEN-PORT request reserved.
    const auto pool_index = static_cast<std::uint8_t>(p.redeem_token >> 56);
    if (pool_index < ctx.shared->relays.size()) {
      if (auto port = ctx.shared->relays[pool_index].ports->redeem(p.redeem_token & token_bits)) {
        std::uint64_t unused = 0;
        ok = open_relay(ctx, a, slot, pool_index, open_mode::exact, *port, unused, now_ms);
      }
    }
  } else {
    const bool has_family = std::any_of(ctx.shared->relays.begin(), ctx.shared->relays.end(),
                                        [&](const auto& x) { return x.ip.family == p.family; });
    if (!has_family) return 440;
    const open_mode mode = !p.even_port ? open_mode::any
                           : p.reserve_next ? open_mode::even_reserve
                                            : open_mode::even;
    ok = open_in_family(ctx, a, slot, p.family, mode, s.reservation_token, now_ms, p.tcp);
  }
  if (!ok) {
    bump(ctx.counters.allocations_failed_ports);
    std::uint64_t suppressed = 0;
    if (ctx.ports_log.allow(now_ms, suppressed))
      spdlog::warn("turn: relay ports exhausted or unavailable; answering 508 to {}",
                   r.from.remote.to_string());
    return 508;
  }
  // Dual allocation (§7.2 with ADDITIONAL-ADDRESS-FAMILY): the IPv6 half is
  // best effort, reported by ADDRESS-ERROR-CODE.
  if (p.want_v6_too) {
    std::uint64_t unused = 0;
    v6_unavailable = !open_in_family(ctx, a, slot, stun::address_family::ipv6, open_mode::any,
                                     unused, now_ms);
  }
  return 0;
}

// Step 8 done: the allocation's lifetime starts, both records go into the
// tables, and the timers, counters and owner directory learn of it.
void start_allocation(context& ctx, const request& r, slot_index slot, std::unique_ptr<record> rec) {
  session& s = rec->ses;
  if (s.reservation_token != 0) {
    ctx.reservations.push_back({s.reservation_token & token_bits,
                                static_cast<std::uint8_t>(s.reservation_token >> 56),
                                r.now.mono_ms + reservation_ms});
  }
  s.lifetime_s = within_credential(s, r.now, granted_lifetime(ctx, r.msg));
  s.started_ms = r.now.mono_ms;
  s.started_unix_ms = r.now.unix_s * 1000;
  s.expires_ms = r.now.mono_ms + std::int64_t{s.lifetime_s} * 1000;
  if (s.credential_expiry_s != 0) {
    // Up to 18 digits of expiry: in milliseconds only once bounded.
    constexpr std::int64_t far_s = 100LL * 365 * 86400;
    const std::int64_t left_s = std::min(s.credential_expiry_s - r.now.unix_s, far_s);
    s.credential_end_ms = r.now.mono_ms + left_s * 1000 - (ctx.unix_ms(r.now) - r.now.unix_s * 1000);
  }
  const auto* policy = ctx.policy_of(r.tenant);
  if (policy != nullptr) rec->bandwidth.start(policy->bandwidth_bytes_per_s, r.now.mono_ms);
  rec->start_limits(policy != nullptr ? policy->allocation : ctx.shared->allocation_limits,
                    r.now.mono_ms);
  auto& ts = ctx.tenant_stats(r.tenant);
  bump(ts.allocations_created);
  bump(ts.active[static_cast<std::size_t>(r.from.proto)]);
  const allocation_log_scope log_scope(ctx, slot, *rec);  // session, user, tenant, client, relay
  spdlog::info("allocation start: {} {} -> {} relay={}{} lifetime={}s",
               to_string(r.from.proto), r.from.remote.to_string(), r.from.local.to_string(),
               rec->relays[0].address.to_string(),
               rec->relay_count > 1 ? "," + rec->relays[1].address.to_string() : std::string(),
               s.lifetime_s);
  ctx.table.insert(slot, std::move(rec));  // the table owns it from here; `s` stays valid
  if (r.from.proto == transport::udp) ctx.io.own(r.from);
  ctx.schedule(slot, std::min(s.expires_ms, s.credential_end_ms - credential_end_lead_ms));
  bump(ctx.counters.allocations_created);
  ctx.counters.active_allocations.store(ctx.table.size(), std::memory_order_relaxed);
}

void send_allocate_success(context& ctx, request& r, const relay::allocation& a, const session& s,
                           bool v6_unavailable) {
  auto b = ctx.begin(r, message_class::success_response);
  // Behind 1:1 NAT the public address (relay.external_ips).
  for (std::uint8_t i = 0; i < a.relay_count; ++i)
    b.add_address(attr::xor_relayed_address, ctx.announced(a.relays[i].address), true);
  if (v6_unavailable) b.add_address_error_code(stun::address_family::ipv6, 440, reason_for(440));
  const std::int64_t remaining_ms = std::max<std::int64_t>(0, s.expires_ms - r.now.mono_ms);
  b.add_u32(attr::lifetime, static_cast<std::uint32_t>((remaining_ms + 999) / 1000));
  if (s.reservation_token != 0) b.add_reservation_token(s.reservation_token);
  b.add_address(attr::xor_mapped_address, r.from.remote, true);
  ctx.send_success(r, b);
}

// Step 2: the 5-tuple already has an allocation. A retransmission whose
// cached answer was evicted gets the same success again; anything else 437.
bool answer_existing(context& ctx, request& r) {
  const auto slot = ctx.table.find(r.from);
  if (!slot) return false;
  const record& rec = *ctx.record_at(*slot);
  if (rec.ses.tid == r.msg.tid()) {
    bump(ctx.counters.retransmits_answered);
    send_allocate_success(ctx, r, rec, rec.ses, false);
  } else {
    ctx.send_error(r, 437);
  }
  return true;
}

// Closes one relay socket and gives its id and port back.
void release_side(context& ctx, const relay::relay_side& side) {
  ctx.io.close_relay(side.id);
  ctx.table.release_relay_id(side.id);
  ctx.shared->relays[side.pool].ports->release(side.address.port);
}

// Refresh with REQUESTED-ADDRESS-FAMILY and lifetime 0 on a dual
// allocation: only that family's relayed address goes (RFC 8656 §8.2).
void drop_family(context& ctx, relay::allocation& a, stun::address_family f) {
  for (std::uint8_t i = 0; i < a.relay_count; ++i) {
    if (a.relays[i].address.family != f) continue;
    release_side(ctx, a.relays[i]);
    if (i == 0 && a.relay_count == 2) a.relays[0] = a.relays[1];
    --a.relay_count;
    break;
  }
  a.forget_family(f);
}

}  // namespace

// ------------------------------------------------------ RFC 8656 §7.2
void on_allocate(context& ctx, request& r) {
  if (answer_existing(ctx, r)) return;  // step 2
  if (redirect_allocate(ctx, r)) return;  // fleet: anycast front door, drain (fleet.cpp)
  allocate_params params;
  if (const int code = read_params(r.msg, r.from.proto, params); code != 0)
    return ctx.send_error(r, code);
  if (params.tcp && !ctx.shared->tcp_relay) return ctx.send_error(r, 442);  // relay.tcp: false
  quota_hold hold;
  if (!check_capacity(ctx, r) || !acquire_quotas(ctx, r, hold)) return;

  auto rec = std::make_unique<record>();
  rec->client = r.from;
  rec->tenant = r.tenant;
  session& s = rec->ses;
  s.tid = r.msg.tid();
  s.username = std::string(r.username);
  s.key = *r.key;
  s.sha256 = r.sha256;
  s.tcp_relay = params.tcp;
  s.quota = hold;
  s.generation = ++ctx.generation_counter;
  if (const auto expiry = ctx.enforced_expiry(r.username)) s.credential_expiry_s = *expiry;

  const slot_index slot = ctx.table.reserve();
  rec->log_session = session_id_of(ctx, slot, s).packed();
  // Lines about this allocation (a relay port that fails to bind) carry its id.
  const allocation_log_scope log_scope(ctx, slot, *rec);
  bool v6_unavailable = false;
  if (const int code = open_relays(ctx, r, params, *rec, s, slot, v6_unavailable); code != 0) {
    ctx.table.cancel(slot);  // nothing was opened
    release_quotas(ctx, r.tenant, r.username, hold);
    return ctx.send_error(r, code);
  }
  const record& started = *rec;
  start_allocation(ctx, r, slot, std::move(rec));
  send_allocate_success(ctx, r, started, started.ses, v6_unavailable);
}

// ------------------------------------------------------ RFC 8656 §8.2
void on_refresh(context& ctx, request& r) {
  const auto owned = ctx.owned(r);
  if (!owned) return;
  relay::allocation& a = owned->fwd;
  session& s = owned->ses;
  std::uint32_t requested = ctx.shared->allocation_lifetime_default;
  bool has_lifetime = false;
  if (const auto l = r.msg.find(attr::lifetime)) {
    const auto v = stun::decode_u32(*l);
    if (!v) return ctx.send_error(r, 400);
    requested = *v;
    has_lifetime = true;
  }
  const bool remove = has_lifetime && requested == 0;
  if (const auto raf = r.msg.find(attr::requested_address_family)) {
    const auto f = stun::decode_address_family(*raf);
    if (!f || a.relay_for(*f) == nullptr) return ctx.send_error(r, 443);
    if (remove && a.relay_count == 2) {
      // Dual allocation: delete only that family's relayed address.
      drop_family(ctx, a, *f);
      ctx.offload_sync(owned->slot, r.now);
      auto b = ctx.begin(r, message_class::success_response);
      b.add_u32(attr::lifetime, static_cast<std::uint32_t>((s.expires_ms - r.now.mono_ms + 999) / 1000));
      return ctx.send_success(r, b);
    }
  }
  auto b = ctx.begin(r, message_class::success_response);
  if (remove) {
    b.add_u32(attr::lifetime, 0);
    ctx.free_allocation(owned->slot, end_reason::deleted, r.now);
    bump(ctx.counters.allocations_deleted);
    return ctx.send_success(r, b);
  }
  s.lifetime_s = within_credential(s, r.now, granted_lifetime(ctx, r.msg));
  s.expires_ms = r.now.mono_ms + std::int64_t{s.lifetime_s} * 1000;
  ctx.schedule(owned->slot, s.expires_ms);  // a shorter lifetime than the armed check
  ctx.offload_sync(owned->slot, r.now);     // the entries expire with the allocation
  b.add_u32(attr::lifetime, s.lifetime_s);
  ctx.send_success(r, b);
}

void release_relays(context& ctx, relay::allocation& a) {
  for (std::uint8_t i = 0; i < a.relay_count; ++i) release_side(ctx, a.relays[i]);
  a.relay_count = 0;
}

}  // namespace anyturn::turn::detail
