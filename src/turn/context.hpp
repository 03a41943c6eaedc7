// What the TURN request handlers of one worker share (private to turn/).
//
// worker_core owns one context. The handlers, one file per method family,
// are free functions over it:
//   dispatch.cpp    entry points, 420/400, tick, allocation end
//   binding.cpp     Binding, RFC 5780 (stun.other_ip)
//   auth.cpp        long-term credentials (RFC 8489 §9.2) and the
//                   retransmission cache (§6.3.1)
//   allocate.cpp    Allocate and Refresh (RFC 8656 §7, §8)
//   permission.cpp  CreatePermission and ChannelBind (§10, §11)
//   quota.cpp       per-user and per-tenant allocation quotas
//   fleet.cpp       anycast redirect, drain, revocations, REST expiry of
//                   live allocations, relay.external_ips
//   responses.cpp   building, signing and sending answers
//   bucket_table    token buckets per source or user in a fixed-size table
//                   (the limits on unauthenticated answers and failed
//                   authentications)
// The tables and the forwarding decision are the relay core's
// (relay::allocation_table, relay::forwarder); the handlers change the
// tables, and the forwarder reads them.
//
// Everything here belongs to the worker's thread; nothing takes a lock.
#pragma once

#include <anyturn/common/log_limiter.hpp>
#include <anyturn/common/xorshift.hpp>
#include <anyturn/relay/allocation_table.hpp>
#include <anyturn/relay/forwarder.hpp>
#include <anyturn/turn/worker_core.hpp>

#include "auth.hpp"
#include "bucket_table.hpp"
#include "session.hpp"
#include "timer_wheel.hpp"

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

namespace anyturn::turn::detail {

using relay::bump;
using relay::client_ref;
using relay::now_t;
using relay::tenant_counters;
using relay::transport;
using slot_index = relay::allocation_table::slot_index;

const char* reason_for(int code);

// Why an allocation ended: its usage record's `reason` and the label of
// anyturn_allocations_closed_total.
enum class end_reason { expired, deleted, closed, shutdown, credential_expired, revoked, admin, reloaded };
const char* name_of(end_reason why);

// auth.enforce_expiry: an allocation ends at its REST credential's expiry,
// on the first tick at or after it (within one 250 ms tick). The timer
// wheel checks in whole seconds (up to 1 s + one tick late), so it is armed
// this much before the expiry; a check that finds the expiry less than that
// ahead puts the allocation on context::imminent, which every tick checks.
inline constexpr std::int64_t credential_end_lead_ms = 1'500;

// An allocation whose REST credential ends within credential_end_lead_ms.
struct imminent_end {
  std::uint32_t slot;
  std::uint32_t generation;
};

// A key (an array of bytes or chars) as the bytes the codec signs with.
template <typename T, std::size_t N>
stun::bytes_view as_bytes_view(const std::array<T, N>& a) {
  return std::as_bytes(std::span<const T, N>(a));
}

// The PASSWORD-ALGORITHMS a 401/438 offers, in this order, when its nonce
// carries the password-algorithms feature bit (RFC 8489 §9.2.4).
inline constexpr std::array offered_password_algorithms{stun::password_algorithm::sha256,
                                                         stun::password_algorithm::md5};

// One request being handled, and what authentication established.
struct request {
  const client_ref& from;
  const stun::message_view& msg;
  const now_t& now;
  const auth::key_candidate* key = nullptr;  // set once authenticated: signs the answer
  bool sha256 = false;      // MESSAGE-INTEGRITY-SHA256 (else MESSAGE-INTEGRITY)
  bool sha256_key = false;  // the key is SHA-256(user:realm:pass) (PASSWORD-ALGORITHM), else MD5
  std::string_view username;
  auth::tenant_index tenant = auth::default_tenant;
  auth::key_candidate key_storage;
};

// The allocation of the request's 5-tuple, both halves.
struct owned_allocation {
  slot_index slot;
  relay::allocation& fwd;
  session& ses;
};

// A port promised with EVEN-PORT R=1, until redeemed or expired (§7.2).
struct reservation {
  std::uint64_t token;
  std::uint8_t pool;
  std::int64_t expires_ms;
};

// A Connect (RFC 6062 §5.2) waiting for its TCP connect: enough to answer
// it later, signed like the request.
struct pending_connect {
  std::uint32_t cid = 0;
  client_ref from;
  std::vector<std::byte> message;  // the request, re-parsed to answer it
  auth::key_candidate key;
  bool sha256 = false;
  bool sha256_key = false;
  std::string username;
  auth::tenant_index tenant = auth::default_tenant;
};

struct context {
  context(std::shared_ptr<const shared_state> s, relay::io_port& io,
          relay::worker_counters& counters, unsigned worker, relay::fast_path* fast = nullptr);

  // ---- the config snapshot in force (replaced on a tick after a reload) ----
  std::shared_ptr<const shared_state> shared;
  std::uint64_t config_seen = 0;  // its config_board generation (0: not looked yet)
  // ---- read-only after start ----
  relay::io_port& io;
  relay::worker_counters& counters;
  const unsigned worker;
  relay::fast_path* const fast;  // the kernel fast path (XDP); null: none, user space forwards all

  // ---- this worker's state ----
  relay::allocation_table table;      // records (forwarding + session), by slot
  relay::forwarder forwarder;         // reads `table`
  std::uint32_t generation_counter = 0;
  std::size_t relay_cursor = 0;       // next relay address to try first
  timer_wheel wheel;
  response_cache cache;
  std::vector<reservation> reservations;
  std::vector<imminent_end> imminent;  // credential ends checked on every tick (few)
  std::vector<pending_connect> connects;  // RFC 6062 Connects in progress (few)
  // Allocations the fast path holds (slot and generation; stale ones are
  // dropped on the fold), and the second of the last fold.
  std::vector<imminent_end> offloaded;
  std::int64_t folded_s = -1;
  common::xorshift64 rng;  // which free relay port to try first
  common::log_limiter malformed_log{1, 1000};
  common::log_limiter fingerprint_log{1, 1000};
  common::log_limiter ports_log{1, 1000};
  // Abuse limits, per worker (each sees the sources the kernel hashes to it).
  bucket_table unauth_answers;       // unsigned answers per source (/32, /64)
  bucket_table failures_by_source;   // failed authentications per source
  bucket_table failures_by_user;     // failed authentications per static user
  common::log_limiter unauth_log{1, 1000};
  common::log_limiter auth_fail_log{1, 1000};
  std::array<std::byte, 1500> scratch{};  // responses are built here
  // ---- revocations (shared->revocations) ----
  std::shared_ptr<const auth::revocation_set> revoked;  // the snapshot in force
  std::uint64_t revocations_seen = 0;                   // its board generation
  // ---- the wall clock in milliseconds (now_t has whole seconds) ----
  // unix_ms - mono_ms, learned when a tick sees unix_s move on by one.
  std::int64_t unix_offset_ms = 0;
  bool unix_offset_known = false;
  std::int64_t last_tick_unix_s = 0;
  std::int64_t last_tick_mono_ms = 0;

  // ---- tenants ----
  [[nodiscard]] const tenant_policy* policy_of(auth::tenant_index t) const {
    return t < shared->tenants.size() ? &shared->tenants[t] : nullptr;
  }
  tenant_counters& tenant_stats(auth::tenant_index t) { return relay::tenant_block(counters, t); }
  // The per-user allocation limit for tenant `t` (0: none).
  [[nodiscard]] std::uint32_t user_limit(auth::tenant_index t) const;

  std::uint64_t next_random() { return rng.next(); }

  // ---- allocations ----
  // The record in `slot`, or null. Every allocation in `table` is a record.
  [[nodiscard]] record* record_at(slot_index slot) const {
    return static_cast<record*>(table.at(slot));
  }
  // The request's allocation, made by the same user; else answers 437 (none)
  // or 441 (another user's) and returns nothing (RFC 8656 §7.3 steps).
  std::optional<owned_allocation> owned(const request& r);
  // Arms the slot's timer-wheel check for `deadline_ms`, unless an earlier
  // one is armed.
  void schedule(slot_index slot, std::int64_t deadline_ms);
  // Ends the allocation in `slot`: usage record, log line, quotas, relays,
  // anyturn_allocations_closed_total{reason}.
  void free_allocation(slot_index slot, end_reason why, const now_t& now);

  // ---- the kernel fast path (offload.cpp; no-ops without `fast`) ----
  // After any change to the allocation in `slot` (channels, permissions,
  // lifetime, relayed addresses): installs, updates or removes its
  // channels in the fast path (relay::offload::sync).
  void offload_sync(slot_index slot, const now_t& now);
  // Once a second (the tick): folds the fast path's traffic into every
  // offloaded allocation, the counters and the buckets.
  void fold_offloaded(const now_t& now);
  // At the end of the allocation in `slot` (free_allocation, before its
  // usage record): removes it from the fast path and folds the rest.
  void offload_end(slot_index slot, const now_t& now);

  // ---- fleet rules (fleet.cpp) ----
  // ---- config reloads (reload.cpp) ----
  // Switches to the config board's snapshot when its generation moved on:
  // ends the allocations whose credential it no longer accepts
  // (shared->revoke_removed) and removes the permissions and channels of
  // peers it now denies; then acknowledges the generation.
  void sync_config(const now_t& now);
  // Whether `rec`'s credential still authenticates under the snapshot in
  // force: same tenant, and one of its keys is the key the client proved.
  [[nodiscard]] bool still_accepted(const record& rec, const now_t& now) const;
  // Whether the snapshot in force lets `rec` use `peer` (the check of
  // CreatePermission and ChannelBind, without counting).
  [[nodiscard]] bool peer_still_allowed(const relay::allocation& a, const stun::endpoint& peer) const;

  // Takes the board's snapshot when its generation moved on, and ends every
  // allocation of this worker whose credential it revokes (reason revoked).
  void sync_revocations(const now_t& now);
  // Whether the snapshot in force revokes `username` of tenant `t`.
  [[nodiscard]] bool is_revoked(auth::tenant_index t, std::string_view username,
                                std::int64_t now_unix) const;
  // Learns the wall clock's sub-second phase from the ticks (on_tick).
  void observe_clock(const now_t& now);
  // The wall clock in milliseconds at `now`, to within about half a tick
  // once a tick saw a second change; else the middle of now.unix_s.
  [[nodiscard]] std::int64_t unix_ms(const now_t& now) const;
  // The REST credential expiry (unix seconds) that auth.enforce_expiry
  // holds `username` to; nullopt: none (a static user, or enforcement off).
  [[nodiscard]] std::optional<std::int64_t> enforced_expiry(std::string_view username) const;
  // The address XOR-RELAYED-ADDRESS carries for relay address `bound`
  // (relay.external_ips), with its port.
  [[nodiscard]] stun::endpoint announced(const stun::endpoint& bound) const;

  // ---- answers (responses.cpp) ----
  void send_to_client(const client_ref& to, stun::bytes_view data);
  stun::message_builder begin(const request& r, stun::message_class cls);
  // Unsigned errors (before authentication) pass may_answer_unauthenticated.
  void send_error(const request& r, int code, bool cacheable = true);
  void send_success(const request& r, stun::message_builder& b);
  // 401 or 438 with REALM, a fresh NONCE and PASSWORD-ALGORITHMS; never signed.
  // False when the answer was not sent (limits.unauthenticated_per_source).
  bool send_challenge(const request& r, int code);
  // Signs (when authenticated), fingerprints (when the client did), sends and
  // remembers the answer for retransmissions.
  // `via`: the socket to answer from (RFC 5780 CHANGE-REQUEST), else r.from.
  void finish(const request& r, stun::message_builder& b, bool cacheable,
              const client_ref* via = nullptr);
  // An answer to a client that proved no key (r.key unset): no SOFTWARE
  // (optional, RFC 8489 §14.14: the answer stays small), never cached (the
  // same request gets the same answer anyway), never signed.
  void finish_unsigned(const request& r, stun::message_builder& b);
  // Whether an unsigned answer to `r` may go out: the UDP source (IPv4
  // address, IPv6 /64) has a token, or the 5-tuple holds an allocation (its
  // client authenticated there). Else counts unauth_rate_dropped and says no:
  // the request is dropped silently, so nobody can use this server to reflect
  // several times the bytes it sends at a spoofed address.
  bool may_answer_unauthenticated(const request& r);
};

// ---- handlers ----
// binding.cpp: Binding, with RFC 5780's attributes when the socket has an
// alternate group (relay::io_port::alternate).
void on_binding(context& ctx, const request& r);
// The unknown-attribute check's exception: a Binding's CHANGE-REQUEST,
// RESPONSE-PORT and PADDING (RFC 5780) are understood where the socket has
// an alternate group; they are removed from the first `n` of `unknown`
// then. Returns how many are left.
std::size_t honour_rfc5780_attributes(context& ctx, const request& r,
                                      std::span<std::uint16_t> unknown, std::size_t n);
// auth.cpp: checks MESSAGE-INTEGRITY(-SHA256) against the user's keys;
// answers the challenge or error itself and returns false when it fails.
bool authenticate(context& ctx, request& r);
// allocate.cpp
void on_allocate(context& ctx, request& r);
void on_refresh(context& ctx, request& r);
// Closes the allocation's relay sockets and gives their ports back.
void release_relays(context& ctx, relay::allocation& a);
// fleet.cpp: anycast redirect and drain (after authentication): answers
// 300 Try Alternate or 508 and returns true, or returns false (serve it).
bool redirect_allocate(context& ctx, request& r);
// permission.cpp
// The peer checks of CreatePermission, ChannelBind and Connect: family
// (443), the server's own addresses and the peer policy (403). 0 when the
// peer may be used; `own` says it is an own address (a live relay port
// with `port_known`, else a relay IP).
int check_peer(context& ctx, const relay::allocation& a, const stun::endpoint& peer, bool port_known,
               bool& own);
void on_create_permission(context& ctx, request& r);
void on_channel_bind(context& ctx, request& r);
// tcp_relay.cpp (RFC 6062)
void on_connect(context& ctx, request& r);
void on_connection_bind(context& ctx, request& r);
// A ConnectionBind for another worker's connection id over a stream:
// moved there before authentication (true), else handled here.
bool hand_off_connection_bind(context& ctx, const client_ref& from, const stun::message_view& msg);
// quota.cpp: counts the allocation against the tenant's and the user's
// quota, or answers 486 and returns false.
// What was counted is recorded in `hold` (the limits may change on a reload
// before the allocation ends; release takes back exactly what was taken).
bool acquire_quotas(context& ctx, const request& r, quota_hold& hold);
void release_quotas(context& ctx, auth::tenant_index tenant, std::string_view username,
                    const quota_hold& hold);

}  // namespace anyturn::turn::detail

namespace anyturn::turn {
// worker_core's state: one context (dispatch.cpp, sessions.cpp).
struct worker_core::impl : detail::context {
  using context::context;
};
}  // namespace anyturn::turn
