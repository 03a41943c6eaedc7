// Long-term credential authentication (RFC 8489 §9.2.4), for every method
// but Binding.
#include "context.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <optional>

namespace anyturn::turn::detail {

namespace attr = stun::attr;

namespace {

constexpr std::size_t max_username = 513;  // RFC 8489 §14.3
constexpr std::size_t max_realm = 763;     // RFC 8489 §14.9
constexpr std::size_t max_nonce = 763;     // RFC 8489 §14.10


// The nonce is ours and fresh, and the realm is ours; else a new challenge.
bool check_nonce_and_realm(context& ctx, const request& r, std::string_view nonce,
                           std::string_view realm) {
  switch (ctx.shared->nonces->verify(nonce, r.from.remote, r.now.unix_s)) {
    case auth::nonce_status::valid:
      break;
    case auth::nonce_status::stale:
      bump(ctx.counters.auth_stale_nonce);
      ctx.send_challenge(r, 438);
      return false;
    case auth::nonce_status::invalid:
      bump(ctx.counters.auth_bad_nonce);
      ctx.send_challenge(r, 401);
      return false;
  }
  if (realm != ctx.shared->credentials->realm()) {
    bump(ctx.counters.auth_unknown_user);
    ctx.send_challenge(r, 401);
    return false;
  }
  return true;
}

// True when a PASSWORD-ALGORITHMS value is exactly our offer: the same
// algorithms in the same order, none with parameters.
bool is_our_offer(const stun::attribute_view& list) {
  std::array<std::uint16_t, offered_password_algorithms.size() + 1> got{};
  const auto n = stun::decode_password_algorithms(list, got);
  if (!n || *n != offered_password_algorithms.size() || list.value.size() != 4 * *n) return false;
  for (std::size_t i = 0; i < *n; ++i) {
    if (got[i] != static_cast<std::uint16_t>(offered_password_algorithms[i])) return false;
  }
  return true;
}

// Whether the request's 5-tuple holds an allocation of `username`: its
// client proved the password there, so the failure limits never cut it off.
bool owns_allocation(const context& ctx, const request& r, std::string_view username) {
  const auto slot = ctx.table.find(r.from);
  return slot && ctx.record_at(*slot)->ses.username == username;
}

// Refuses a request unchecked: 401, the answer a wrong password gets, so a
// guess past the limit learns nothing, and a client with a wrong password
// stops instead of retransmitting into silence (turnutils_uclient never
// gives up on an unanswered request). The 401 is unsigned, so
// limits.unauthenticated_per_source bounds it. Counted, and logged at most
// once a second. (The username is the client's text: it is not logged.)
bool refuse_for_failures(context& ctx, const request& r, const char* why) {
  bump(ctx.counters.auth_fail_rate_dropped);
  std::uint64_t suppressed = 0;
  if (ctx.auth_fail_log.allow(r.now.mono_ms, suppressed))
    spdlog::warn("turn: refused an authentication attempt from {} unchecked: too many failures {} "
                 "(limits.auth_failures; {} more refused unlogged)",
                 r.from.remote.to_string(), why, suppressed);
  ctx.send_challenge(r, 401);
  return false;
}

// An expired REST credential: 401 with a fresh nonce, like a wrong
// password, but no failure is charged (nothing was guessed).
bool refuse_expired(context& ctx, const request& r) {
  bump(ctx.counters.auth_expired_rest);
  ctx.send_challenge(r, 401);
  return false;
}

// RFC 8489 §9.2.4 downgrade protection: the password algorithm the key is
// derived with, or nothing after answering 400.
// - The request's nonce carries the password-algorithms feature bit, so the
//   401 that handed it out offered offered_password_algorithms. A request
//   with neither PASSWORD-ALGORITHMS nor PASSWORD-ALGORITHM comes from a
//   client that does not know them (RFC 5389: browsers, pion, coturn's
//   tools): MD5. Otherwise both must be there, PASSWORD-ALGORITHMS must be
//   the offer unchanged (a middlebox removing SHA-256 from the 401 shows up
//   here) and PASSWORD-ALGORITHM must be one of its entries.
// - Without the bit nothing was offered: MD5 only, so a PASSWORD-ALGORITHM
//   other than MD5 is refused.
std::optional<stun::password_algorithm> negotiate_algorithm(context& ctx, const request& r,
                                                            std::string_view nonce) {
  const auto alg_attr = r.msg.find(attr::password_algorithm);
  const auto list_attr = r.msg.find(attr::password_algorithms);
  const bool offered =
      (auth::nonce_service::features_of(nonce) & auth::feature_password_algorithms) != 0;
  if (!alg_attr && (!offered || !list_attr)) return stun::password_algorithm::md5;
  std::optional<stun::password_algorithm> alg;
  if (alg_attr) {
    if (const auto decoded = stun::decode_password_algorithm(*alg_attr)) alg = *decoded;
  }
  bool ok = false;
  if (offered) {
    ok = alg && list_attr && is_our_offer(*list_attr) &&
         std::find(offered_password_algorithms.begin(), offered_password_algorithms.end(), *alg) !=
             offered_password_algorithms.end();
  } else {
    ok = alg == stun::password_algorithm::md5;
  }
  if (!ok) {
    bump(ctx.counters.auth_bad_algorithm);
    ctx.send_error(r, 400, false);
    return std::nullopt;
  }
  return *alg;
}

// Tries each of the user's keys (a REST secret being rotated gives two);
// the one that verifies signs our answer.
//
// Failed attempts (unknown user, wrong MESSAGE-INTEGRITY) spend tokens of
// the source (IPv4 address, IPv6 /64) and, for a static user, of the
// username; with either empty, the request is refused with 401 before any
// key is tried, so a guess past the limit learns nothing. Only static users have a
// per-user bucket: a REST key is a MAC nobody can guess, and leaving REST
// names out means a flood of made-up REST names cannot drain the buckets of
// real users. Expired REST credentials are not failures to limit (nothing is
// guessed). A 5-tuple holding the user's allocation is never refused.
bool check_integrity(context& ctx, request& r, std::string_view username, bool want_sha256,
                     bool sha256_key) {
  const std::int64_t now_ms = r.now.mono_ms;
  const bool owner = owns_allocation(ctx, r, username);
  const std::uint64_t source = source_key(r.from.remote);
  if (!owner && !ctx.failures_by_source.has_token(source, now_ms))
    return refuse_for_failures(ctx, r, "from its source");
  std::array<auth::key_candidate, auth::max_candidates> candidates{};
  std::size_t count = 0;
  switch (ctx.shared->credentials->lookup(username, r.now.unix_s, candidates, count, r.tenant)) {
    case auth::lookup_status::ok:
      break;
    case auth::lookup_status::expired:
      return refuse_expired(ctx, r);
    case auth::lookup_status::unknown_user:
    case auth::lookup_status::malformed:
      bump(ctx.counters.auth_unknown_user);
      ctx.failures_by_source.charge(source, now_ms);
      ctx.send_challenge(r, 401);
      return false;
  }
  // auth.enforce_expiry: a REST credential is over in its expiry second
  // already (an allocation it made ends then, fleet.cpp), so nothing is
  // granted for 0 seconds.
  if (const auto expiry = ctx.enforced_expiry(username); expiry && *expiry <= r.now.unix_s)
    return refuse_expired(ctx, r);
  // A revoked credential is refused like an unknown one (nothing guessed:
  // no failure charged).
  if (ctx.is_revoked(r.tenant, username, r.now.unix_s)) {
    bump(ctx.counters.auth_revoked);
    ctx.send_challenge(r, 401);
    return false;
  }
  const bool static_user = ctx.failures_by_user.enabled() &&
                           ctx.shared->credentials->is_static_user(username);
  const std::uint64_t user = static_user ? name_key(username) : 0;
  if (static_user && !owner && !ctx.failures_by_user.has_token(user, now_ms))
    return refuse_for_failures(ctx, r, "for this user");
  for (std::size_t i = 0; i < count; ++i) {
    const auto& c = candidates[i];
    if (sha256_key && !c.sha256) continue;  // an MD5-only user cannot prove a SHA-256 key
    const auto key = sha256_key ? as_bytes_view(*c.sha256) : as_bytes_view(c.md5);
    const bool good = want_sha256 ? stun::check_message_integrity_sha256(r.msg, key)
                                  : stun::check_message_integrity(r.msg, key);
    if (good) {
      r.key_storage = c;
      r.key = &r.key_storage;
      r.sha256 = want_sha256;
      r.sha256_key = sha256_key;
      r.username = username;
      return true;
    }
  }
  bump(ctx.counters.auth_bad_integrity);
  ctx.failures_by_source.charge(source, now_ms);
  if (static_user) ctx.failures_by_user.charge(user, now_ms);
  ctx.send_challenge(r, 401);
  return false;
}

}  // namespace

bool authenticate(context& ctx, request& r) {
  // A revocation published since the last tick applies to this request too.
  ctx.sync_revocations(r.now);
  const auto& msg = r.msg;
  const auto mi = msg.find(attr::message_integrity);
  const auto mi256 = msg.find(attr::message_integrity_sha256);
  if (!mi && !mi256) {
    if (ctx.send_challenge(r, 401)) bump(ctx.counters.auth_challenges);  // counts answers sent
    return false;
  }
  const auto user_attr = msg.find(attr::username);
  const auto realm_attr = msg.find(attr::realm);
  const auto nonce_attr = msg.find(attr::nonce);
  if (!user_attr && msg.has(attr::userhash)) {
    // We never set the username-anonymity feature bit, so no client should
    // send USERHASH; we cannot map it back to a REST user. Ask again.
    bump(ctx.counters.auth_unknown_user);
    ctx.send_challenge(r, 401);
    return false;
  }
  if (!user_attr || !realm_attr || !nonce_attr) {
    ctx.send_error(r, 400, false);
    return false;
  }
  const auto username = stun::decode_string(*user_attr, max_username);
  const auto realm = stun::decode_string(*realm_attr, max_realm);
  const auto nonce = stun::decode_string(*nonce_attr, max_nonce);
  if (!username || !realm || !nonce) {
    ctx.send_error(r, 400, false);
    return false;
  }
  if (!check_nonce_and_realm(ctx, r, *nonce, *realm)) return false;
  const auto algorithm = negotiate_algorithm(ctx, r, *nonce);
  if (!algorithm) return false;
  return check_integrity(ctx, r, *username, mi256.has_value(),
                         *algorithm == stun::password_algorithm::sha256);
}

}  // namespace anyturn::turn::detail
