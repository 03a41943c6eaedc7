// The admin API's view of one worker's allocations: listing a page of them,
// ending one by id and ending those a filter matches. Runs on the worker's
// thread (the net layer posts each step), never on the forwarding path;
// every step walks a bounded number of slots.
#include <anyturn/auth/revocations.hpp>
#include <anyturn/turn/sessions.hpp>
#include <anyturn/turn/worker_core.hpp>

#include "context.hpp"

#include <algorithm>
#include <charconv>

namespace anyturn::turn {

bool session_filter::matches(std::string_view username, std::string_view tenant_id,
                             const relay::client_ref& from) const {
  if (transport && from.proto != *transport) return false;
  if (tenant && *tenant != tenant_id) return false;
  if (client) {
    if (!client->same_ip(from.remote)) return false;
    if (client->port != 0 && client->port != from.remote.port) return false;
  }
  if (user && *user != username) {
    const std::string_view rest_user = auth::rest_user_of(username, tenant_id);
    if (rest_user.empty() || rest_user != *user) return false;
  }
  return true;
}

std::optional<relay::transport> parse_transport(std::string_view text) {
  if (text == "udp") return relay::transport::udp;
  if (text == "tcp") return relay::transport::tcp;
  if (text == "tls") return relay::transport::tls;
  if (text == "dtls") return relay::transport::dtls;
  return std::nullopt;
}

std::string session_cursor::str() const {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out(12, '0');
  std::uint64_t v = (std::uint64_t{worker & 0xFFu} << 40) | slot;
  for (int i = 11; i >= 0; --i, v >>= 4) out[static_cast<std::size_t>(i)] = hex[v & 0xF];
  return out;
}

std::optional<session_cursor> session_cursor::parse(std::string_view text) {
  if (text.size() != 12) return std::nullopt;
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v, 16);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  const std::uint64_t slot = v & 0xFF'FFFF'FFFFull;
  if (slot > 0xFFFF'FFFFull) return std::nullopt;
  return session_cursor{static_cast<unsigned>(v >> 40), static_cast<std::uint32_t>(slot)};
}

namespace {

using detail::context;
using detail::record;

std::string_view tenant_of(const context& ctx, const record& rec) {
  const auto& creds = *ctx.shared->credentials;
  return rec.tenant_index() < creds.tenant_count() ? std::string_view(creds.tenant_id(rec.tenant_index()))
                                                   : std::string_view();
}

std::int64_t seconds_left(std::int64_t deadline_ms, std::int64_t now_ms) {
  const std::int64_t left = deadline_ms - now_ms;
  return left > 0 ? (left + 999) / 1000 : left / 1000;
}

session_info describe(const context& ctx, const record& rec, std::uint32_t slot, const relay::now_t& now) {
  session_info s;
  s.id = session_id{static_cast<std::uint8_t>(ctx.worker), slot, rec.ses.generation};
  s.user = rec.ses.username;
  s.tenant = std::string(tenant_of(ctx, rec));
  s.transport = rec.client.proto;
  s.client = rec.client.remote;
  s.server = rec.client.local;
  for (std::uint8_t i = 0; i < rec.relay_count; ++i) s.relayed.push_back(rec.relays[i].address);
  s.permissions.reserve(rec.permissions.size());
  for (const auto& p : rec.permissions) s.permissions.push_back({p.ip, seconds_left(p.expires_ms, now.mono_ms)});
  s.channels.reserve(rec.channels.size());
  for (const auto& c : rec.channels)
    s.channels.push_back({c.number, c.peer, seconds_left(c.expires_ms, now.mono_ms)});
  s.packets_to_peer = rec.packets_to_peer;
  s.bytes_to_peer = rec.bytes_to_peer;
  s.packets_to_client = rec.packets_to_client;
  s.bytes_to_client = rec.bytes_to_client;
  s.started_unix_ms = rec.ses.started_unix_ms;
  s.age_s = std::max<std::int64_t>(0, now.mono_ms - rec.ses.started_ms) / 1000;
  s.expires_in_s = seconds_left(rec.ses.expires_ms, now.mono_ms);
  return s;
}

}  // namespace

session_page worker_core::list_sessions(const session_filter& filter, std::uint32_t from_slot,
                                        std::size_t max_sessions, std::size_t max_slots,
                                        const relay::now_t& now) const {
  const context& ctx = *impl_;
  session_page page;
  const std::size_t count = ctx.table.slot_count();
  std::size_t s = from_slot;
  for (std::size_t walked = 0; s < count && walked < max_slots && page.sessions.size() < max_sessions;
       ++s, ++walked) {
    const record* rec = ctx.record_at(static_cast<std::uint32_t>(s));
    if (rec == nullptr || !filter.matches(rec->ses.username, tenant_of(ctx, *rec), rec->client)) continue;
    page.sessions.push_back(describe(ctx, *rec, static_cast<std::uint32_t>(s), now));
  }
  page.next_slot = static_cast<std::uint32_t>(std::min<std::size_t>(s, session_id::max_slot + 1));
  page.end = s >= count;
  return page;
}

bool worker_core::end_session(const session_id& id, const relay::now_t& now) {
  context& ctx = *impl_;
  if (id.worker != ctx.worker) return false;
  const record* rec = ctx.record_at(id.slot);
  if (rec == nullptr || rec->ses.generation != id.generation) return false;
  ctx.free_allocation(id.slot, detail::end_reason::admin, now);
  return true;
}

session_page worker_core::end_sessions(const session_filter& filter, std::uint32_t from_slot,
                                       std::size_t max_slots, const relay::now_t& now) {
  context& ctx = *impl_;
  session_page page;
  std::size_t s = from_slot;
  // free_allocation never shrinks the slot vector, so the bound holds.
  const std::size_t count = ctx.table.slot_count();
  for (std::size_t walked = 0; s < count && walked < max_slots; ++s, ++walked) {
    const record* rec = ctx.record_at(static_cast<std::uint32_t>(s));
    if (rec == nullptr || !filter.matches(rec->ses.username, tenant_of(ctx, *rec), rec->client)) continue;
    ctx.free_allocation(static_cast<std::uint32_t>(s), detail::end_reason::admin, now);
    ++page.ended;
  }
  page.next_slot = static_cast<std::uint32_t>(std::min<std::size_t>(s, session_id::max_slot + 1));
  page.end = s >= count;
  return page;
}

}  // namespace anyturn::turn
