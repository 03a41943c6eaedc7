// Long-term credential authentication (RFC 8489 §9.2.4), for every method
// but Binding.
#include "context.hpp"

#include <array>

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

// PASSWORD-ALGORITHM, when present, must name one we offered (§9.2.4).
bool check_password_algorithm(context& ctx, const request& r) {
  const auto alg_attr = r.msg.find(attr::password_algorithm);
  if (!alg_attr) return true;
  const auto alg = stun::decode_password_algorithm(*alg_attr);
  if (!alg || (*alg != stun::password_algorithm::md5 && *alg != stun::password_algorithm::sha256) ||
      (*alg == stun::password_algorithm::sha256 && !ctx.shared->offer_sha256)) {
    ctx.send_error(r, 400, false);
    return false;
  }
  return true;
}

// Tries each of the user's keys (a REST secret being rotated gives two);
// the one that verifies signs our answer.
bool check_integrity(context& ctx, request& r, std::string_view username, bool want_sha256) {
  std::array<auth::key_candidate, auth::max_candidates> candidates{};
  std::size_t count = 0;
  switch (ctx.shared->credentials->lookup(username, r.now.unix_s, candidates, count, r.tenant)) {
    case auth::lookup_status::ok:
      break;
    case auth::lookup_status::expired:
      bump(ctx.counters.auth_expired_rest);
      ctx.send_challenge(r, 401);
      return false;
    case auth::lookup_status::unknown_user:
    case auth::lookup_status::malformed:
      bump(ctx.counters.auth_unknown_user);
      ctx.send_challenge(r, 401);
      return false;
  }
  for (std::size_t i = 0; i < count; ++i) {
    const auto& c = candidates[i];
    const bool good = want_sha256 ? (c.sha256 && stun::check_message_integrity_sha256(
                                                    r.msg, as_bytes_view(*c.sha256)))
                                  : stun::check_message_integrity(r.msg, as_bytes_view(c.md5));
    if (good) {
      r.key_storage = c;
      r.key = &r.key_storage;
      r.sha256 = want_sha256;
      r.username = username;
      return true;
    }
  }
  bump(ctx.counters.auth_bad_integrity);
  ctx.send_challenge(r, 401);
  return false;
}

}  // namespace

bool authenticate(context& ctx, request& r) {
  const auto& msg = r.msg;
  const auto mi = msg.find(attr::message_integrity);
  const auto mi256 = msg.find(attr::message_integrity_sha256);
  if (!mi && !mi256) {
    bump(ctx.counters.auth_challenges);
    ctx.send_challenge(r, 401);
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
  if (!check_password_algorithm(ctx, r)) return false;
  return check_integrity(ctx, r, *username, mi256.has_value());
}

}  // namespace anyturn::turn::detail
