// The per-worker TURN core's entry points: what a packet is and which
// handler takes it, the tick that expires allocations, and the end of an
// allocation. Each handler is commented with the RFC 8656 (TURN) or
// RFC 8489 (STUN) section whose steps it follows.
#include <anyturn/turn/worker_core.hpp>

#include "context.hpp"
#include "log_scope.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <limits>

namespace anyturn::turn {

namespace detail {

namespace attr = stun::attr;
using stun::message_class;

namespace {
// Bucket-table sizes per worker: 2 rows of 8-byte buckets each (128 KiB
// and 2 x 64 KiB). Enough that the sources and users of a busy worker
// rarely share both buckets; a flood of more keys only makes them share.
constexpr std::size_t unauth_buckets_per_row = 8192;
constexpr std::size_t failure_buckets_per_row = 4096;
}  // namespace

context::context(std::shared_ptr<const shared_state> s, relay::io_port& io,
                 relay::worker_counters& counters, unsigned worker, relay::fast_path* fast)
    : shared(std::move(s)),
      io(io),
      counters(counters),
      worker(worker),
      fast(fast),
      forwarder(table, io, counters, 0xD1B54A32D192ED03ULL * (worker + 1), shared->own.get()),
      rng{0x9E3779B97F4A7C15ULL * (worker + 1) ^ reinterpret_cast<std::uintptr_t>(this)},
      unauth_answers(shared->unauthenticated_per_source.per_second,
                     shared->unauthenticated_per_source.burst, unauth_buckets_per_row),
      failures_by_source(shared->auth_failures_per_source.per_second,
                         shared->auth_failures_per_source.burst, failure_buckets_per_row),
      failures_by_user(shared->auth_failures_per_user.per_second,
                       shared->auth_failures_per_user.burst, failure_buckets_per_row) {
  counters.tenants = std::vector<tenant_counters>(std::max<std::size_t>(1, shared->tenants.size()));
}

std::optional<owned_allocation> context::owned(const request& r) {
  const auto slot = table.find(r.from);
  if (!slot) {
    send_error(r, 437);
    return std::nullopt;
  }
  record& rec = *record_at(*slot);
  if (rec.ses.username != r.username) {
    send_error(r, 441);
    return std::nullopt;
  }
  return owned_allocation{*slot, rec, rec.ses};
}

void context::schedule(slot_index slot, std::int64_t deadline_ms) {
  auto& s = record_at(slot)->ses;
  const std::int64_t at_s = (deadline_ms + 999) / 1000;
  if (s.scheduled_s >= 0 && s.scheduled_s <= at_s) return;  // an earlier check is armed
  s.scheduled_s = at_s;
  wheel.schedule(at_s, slot, s.generation);
}

namespace {

// One usage record per ended allocation, for billing and abuse review.
void write_usage(const context& ctx, slot_index slot, const record& a, end_reason why, const now_t& now) {
  const session& s = a.ses;
  usage_record rec;
  rec.session = session_id_of(ctx, slot, s);
  rec.tenant = tenant_name(ctx, a.tenant_index());
  rec.user = s.username;
  rec.custom_identifier = auth::custom_identifier_of(s.username);
  rec.reason = name_of(why);
  rec.proto = a.client.proto;
  rec.client = a.client.remote;
  if (a.relay_count > 0) rec.relay = a.relays[0].address;
  if (a.relay_count > 1) rec.relay6 = &a.relays[1].address;
  rec.start_unix_ms = s.started_unix_ms;
  rec.end_unix_ms = s.started_unix_ms + (now.mono_ms - s.started_ms);
  rec.packets_to_peer = a.packets_to_peer;
  rec.bytes_to_peer = a.bytes_to_peer;
  rec.packets_to_client = a.packets_to_client;
  rec.bytes_to_client = a.bytes_to_client;
  ctx.shared->usage->record(rec);
}

void count_duration(context& ctx, std::int64_t duration_ms) {
  std::size_t bucket = 0;
  while (bucket < relay::allocation_duration_bounds_s.size() &&
         duration_ms > relay::allocation_duration_bounds_s[bucket] * 1000)
    ++bucket;
  bump(ctx.counters.allocation_duration_buckets[bucket]);
  bump(ctx.counters.allocation_duration_sum_ms, static_cast<std::uint64_t>(duration_ms));
}

}  // namespace

const char* name_of(end_reason why) {
  switch (why) {
    case end_reason::expired: return "expired";
    case end_reason::deleted: return "deleted";
    case end_reason::closed: return "closed";
    case end_reason::shutdown: return "shutdown";
    case end_reason::credential_expired: return "credential_expired";
    case end_reason::revoked: return "revoked";
    case end_reason::admin: return "admin";
    case end_reason::reloaded: return "reloaded";
  }
  return "closed";
}

namespace {

std::atomic<std::uint64_t>& closed_counter(relay::worker_counters& c, end_reason why) {
  switch (why) {
    case end_reason::expired: return c.closed_expired;
    case end_reason::deleted: return c.closed_deleted;
    case end_reason::closed: return c.closed_connection;
    case end_reason::shutdown: return c.closed_shutdown;
    case end_reason::credential_expired: return c.closed_credential_expired;
    case end_reason::revoked: return c.closed_revoked;
    case end_reason::admin: return c.closed_admin;
    case end_reason::reloaded: return c.closed_reloaded;
  }
  return c.closed_connection;
}

}  // namespace

void context::free_allocation(slot_index slot, end_reason why, const now_t& now) {
  record& a = *record_at(slot);
  const session& s = a.ses;
  bump(closed_counter(counters, why));
  // Out of the fast path first (it forwards nothing of it from here on),
  // and its last traffic counted before the usage record.
  offload_end(slot, now);
  {
    const allocation_log_scope log_scope(*this, slot, a);  // before the relays go: relay=
    if (shared->usage) write_usage(*this, slot, a, why, now);
    release_relays(*this, a);  // an unredeemed reservation lives on until its own timer
    spdlog::info(
        "allocation end ({}): {} {} -> {} duration={:.1f}s client->peer {} pkts {} B, "
        "peer->client {} pkts {} B",
        name_of(why), to_string(a.client.proto), a.client.remote.to_string(), a.client.local.to_string(),
        static_cast<double>(now.mono_ms - s.started_ms) / 1000.0, a.packets_to_peer,
        a.bytes_to_peer, a.packets_to_client, a.bytes_to_client);
  }
  release_quotas(*this, a.tenant_index(), s.username, s.quota);
  count_duration(*this, std::max<std::int64_t>(0, now.mono_ms - s.started_ms));
  auto& ts = tenant_stats(a.tenant_index());
  bump(ts.allocations_ended);
  auto& active = ts.active[static_cast<std::size_t>(a.client.proto)];
  active.store(active.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  if (a.client.proto == transport::udp) io.disown(a.client);
  table.erase(slot);  // frees the record: `a` and `s` are gone
  counters.active_allocations.store(table.size(), std::memory_order_relaxed);
}

namespace {

// A STUN message that did not parse: counted, and logged at most once a second.
void drop_unparsed(context& ctx, const client_ref& from, std::error_code error, const now_t& now) {
  std::uint64_t suppressed = 0;
  if (error == stun::codec_error::bad_fingerprint) {
    bump(ctx.counters.bad_fingerprint_dropped);
    if (ctx.fingerprint_log.allow(now.mono_ms, suppressed))
      spdlog::warn("turn: dropped STUN message with a bad FINGERPRINT from {}",
                   from.remote.to_string());
  } else {
    bump(ctx.counters.malformed_dropped);
    if (ctx.malformed_log.allow(now.mono_ms, suppressed))
      spdlog::warn("turn: dropped malformed STUN message from {}: {}", from.remote.to_string(),
                   error.message());
  }
}

void on_request(context& ctx, const client_ref& from, const stun::message_view& msg,
                const now_t& now) {
  request r{from, msg, now};
  const auto method = static_cast<stun::method>(msg.method());
  // A retransmission gets the first answer again (RFC 8489 §6.3.1).
  if (method != stun::method::binding) {
    if (const stun::bytes_view* cached = ctx.cache.find(from, msg.tid(), now.mono_ms)) {
      bump(ctx.counters.retransmits_answered);
      ctx.send_to_client(from, *cached);
      return;
    }
  }
  // Unknown comprehension-required attributes: 420 (RFC 8489 §6.3.1.1).
  std::array<std::uint16_t, 16> unknown{};
  std::size_t n = msg.unknown_required(unknown);
  if (n > 0) n = honour_rfc5780_attributes(ctx, r, unknown, n);
  if (n > 0) {
    if (!ctx.may_answer_unauthenticated(r)) return;
    auto b = ctx.begin(r, message_class::error_response);
    b.add_error_code(420, reason_for(420));
    b.add_unknown_attributes(std::span<const std::uint16_t>(unknown.data(), n));
    bump(ctx.counters.responses_error);
    ctx.finish_unsigned(r, b);
    return;
  }
  // The extra sockets of stun.other_ip answer Binding only (RFC 5780).
  if (method != stun::method::binding && from.proto == transport::udp && ctx.io.binding_only(from)) {
    bump(ctx.counters.nat_not_binding);
    return ctx.send_error(r, 400);
  }
  switch (method) {
    case stun::method::binding:
      bump(ctx.counters.binding_requests);
      return on_binding(ctx, r);
    case stun::method::allocate:
      bump(ctx.counters.allocate_requests);
      if (authenticate(ctx, r)) on_allocate(ctx, r);
      return;
    case stun::method::refresh:
      bump(ctx.counters.refresh_requests);
      if (authenticate(ctx, r)) on_refresh(ctx, r);
      return;
    case stun::method::create_permission:
      bump(ctx.counters.create_permission_requests);
      if (authenticate(ctx, r)) on_create_permission(ctx, r);
      return;
    case stun::method::channel_bind:
      bump(ctx.counters.channel_bind_requests);
      if (authenticate(ctx, r)) on_channel_bind(ctx, r);
      return;
    case stun::method::connect:  // RFC 6062 (tcp_relay.cpp)
      if (authenticate(ctx, r)) on_connect(ctx, r);
      return;
    case stun::method::connection_bind:
      // Another worker's connection: that worker authenticates and answers.
      if (hand_off_connection_bind(ctx, from, msg)) return;
      if (authenticate(ctx, r)) on_connection_bind(ctx, r);
      return;
    default:
      return ctx.send_error(r, 400);  // unknown method (RFC 8489 §6.3.1)
  }
}

// Expires the allocation (its lifetime, or its REST credential under
// auth.enforce_expiry), or its expired permissions and channels, then arms
// the next check (RFC 8656 §7, §9, §12).
void housekeep(context& ctx, slot_index slot, const now_t& now) {
  record& rec = *ctx.record_at(slot);
  if (rec.ses.credential_end_ms <= now.mono_ms) {
    ctx.free_allocation(slot, end_reason::credential_expired, now);
    return;
  }
  if (rec.ses.expires_ms <= now.mono_ms) {
    ctx.free_allocation(slot, end_reason::expired, now);
    bump(ctx.counters.allocations_expired);
    return;
  }
  std::int64_t credential_check_ms = rec.ses.credential_end_ms - credential_end_lead_ms;
  if (credential_check_ms <= now.mono_ms) {
    // Less than the wheel's precision left: every tick checks it from now on.
    if (!rec.ses.imminent) {
      rec.ses.imminent = true;
      ctx.imminent.push_back({slot, rec.ses.generation});
    }
    credential_check_ms = std::numeric_limits<std::int64_t>::max();
  }
  ctx.schedule(slot, rec.expire(now.mono_ms, std::min(rec.ses.expires_ms, credential_check_ms)));
  // Expired permissions and channels leave the fast path too (their
  // entries expired there already).
  ctx.offload_sync(slot, now);
}

}  // namespace
}  // namespace detail

using detail::context;

worker_core::worker_core(std::shared_ptr<const shared_state> shared, relay::io_port& io,
                         relay::worker_counters& counters, unsigned worker_index,
                         relay::fast_path* fast)
    : impl_(std::make_unique<impl>(std::move(shared), io, counters, worker_index, fast)) {}

worker_core::~worker_core() = default;

void worker_core::on_client_packet(const relay::client_ref& from, stun::bytes_view data,
                                   const relay::now_t& now) {
  context& ctx = *impl_;
  relay::bump(ctx.counters.packets_received);
  switch (stun::classify(data)) {
    case stun::frame_kind::channel_data:
      return ctx.forwarder.on_channel_data(from, data, now);
    case stun::frame_kind::stun:
      break;
    case stun::frame_kind::other:
      relay::bump(ctx.counters.unknown_dropped);
      return;
  }
  auto parsed = stun::parse_message(data);
  if (!parsed) return detail::drop_unparsed(ctx, from, parsed.error, now);
  const stun::message_view& msg = *parsed;
  // Another worker's 5-tuple (every request but Binding, which needs no
  // allocation): its owner answers. ChannelData and Send check on their
  // own miss path, so an owned packet pays no extra lookup.
  if (msg.cls() == stun::message_class::request &&
      msg.method() != static_cast<std::uint16_t>(stun::method::binding) &&
      from.proto == relay::transport::udp && !ctx.table.contains(from) &&
      ctx.io.hand_off(from, data, now)) {
    return;
  }
  switch (msg.cls()) {
    case stun::message_class::request:
      return detail::on_request(ctx, from, msg, now);
    case stun::message_class::indication:
      if (msg.method() == static_cast<std::uint16_t>(stun::method::send))
        ctx.forwarder.on_send_indication(from, msg, data, now);
      // Binding indications are keepalives (RFC 8489 §6.3.2); others are ignored.
      return;
    default:
      // A server never expects responses.
      relay::bump(ctx.counters.unknown_dropped);
      return;
  }
}

void worker_core::on_peer_packet(relay::relay_id id, const stun::endpoint& peer,
                                 stun::bytes_view data, const relay::now_t& now) {
  impl_->forwarder.on_peer_packet(id, peer, data, now);
}

void worker_core::on_client_closed(const relay::client_ref& client, const relay::now_t& now) {
  context& ctx = *impl_;
  const auto slot = ctx.table.find(client);
  if (!slot) return;
  ctx.free_allocation(*slot, detail::end_reason::closed, now);
  relay::bump(ctx.counters.allocations_closed);
}

void worker_core::on_tick(const relay::now_t& now) {
  context& ctx = *impl_;
  ctx.observe_clock(now);
  ctx.sync_config(now);
  ctx.sync_revocations(now);
  ctx.wheel.advance(now.mono_ms / 1000, [&](const detail::timer_wheel::entry& e) {
    detail::record* rec = ctx.record_at(e.slot);
    if (rec == nullptr || rec->ses.generation != e.generation || rec->ses.scheduled_s != e.at_s)
      return;
    rec->ses.scheduled_s = -1;
    detail::housekeep(ctx, e.slot, now);
  });
  // REST credentials ending within the wheel's precision: at the expiry.
  std::erase_if(ctx.imminent, [&](const detail::imminent_end& e) {
    const detail::record* rec = ctx.record_at(e.slot);
    if (rec == nullptr || rec->ses.generation != e.generation) return true;  // ended meanwhile
    if (rec->ses.credential_end_ms > now.mono_ms) return false;
    ctx.free_allocation(e.slot, detail::end_reason::credential_expired, now);
    return true;
  });
  // Reservations nobody redeemed in time give their port back.
  std::erase_if(ctx.reservations, [&](const detail::reservation& res) {
    if (res.expires_ms > now.mono_ms) return false;
    ctx.shared->relays[res.pool].ports->cancel(res.token);
    return true;
  });
  // Connects whose allocation ended meanwhile: nobody to answer.
  std::erase_if(ctx.connects, [&](const detail::pending_connect& p) { return !ctx.table.contains(p.from); });
  // The fast path's traffic, once a second (one map read per offloaded
  // allocation).
  ctx.fold_offloaded(now);
  ctx.table.shrink_if_sparse();
}

void worker_core::on_published(const relay::now_t& now) {
  context& ctx = *impl_;
  ctx.sync_config(now);
  ctx.sync_revocations(now);
}

void worker_core::shutdown(const relay::now_t& now) {
  context& ctx = *impl_;
  for (detail::slot_index s = 0; s < ctx.table.slot_count(); ++s) {
    if (ctx.table.at(s) != nullptr) {
      ctx.free_allocation(s, detail::end_reason::shutdown, now);
      relay::bump(ctx.counters.allocations_closed);
    }
  }
  for (const auto& res : ctx.reservations) ctx.shared->relays[res.pool].ports->cancel(res.token);
  ctx.reservations.clear();
}

std::size_t worker_core::allocation_count() const { return impl_->table.size(); }

const shared_state& worker_core::shared() const { return *impl_->shared; }

void worker_core::for_each_allocation(
    const std::function<void(const relay::allocation&, std::string_view user)>& visit) const {
  const context& ctx = *impl_;
  for (detail::slot_index s = 0; s < ctx.table.slot_count(); ++s) {
    if (const detail::record* rec = ctx.record_at(s)) visit(*rec, rec->ses.username);
  }
}

}  // namespace anyturn::turn
