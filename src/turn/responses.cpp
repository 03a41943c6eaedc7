// Building, signing and sending answers (RFC 8489 §6.3, §9.2.4).
#include "context.hpp"

#include <spdlog/spdlog.h>

#include <array>

namespace anyturn::turn::detail {

namespace attr = stun::attr;
using stun::message_class;

const char* reason_for(int code) {
  switch (code) {
    case 300: return "Try Alternate";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 420: return "Unknown Attribute";
    case 437: return "Allocation Mismatch";
    case 438: return "Stale Nonce";
    case 440: return "Address Family not Supported";
    case 441: return "Wrong Credentials";
    case 442: return "Unsupported Transport Protocol";
    case 443: return "Peer Address Family Mismatch";
    case 446: return "Connection Already Exists";
    case 447: return "Connection Timeout or Failure";
    case 486: return "Allocation Quota Reached";
    case 500: return "Server Error";
    case 508: return "Insufficient Capacity";
    default: return "Error";
  }
}

void context::send_to_client(const client_ref& to, stun::bytes_view data) {
  const std::array<stun::bytes_view, 1> parts{data};
  io.send_to_client(to, parts);
}

stun::message_builder context::begin(const request& r, message_class cls) {
  return stun::message_builder(scratch, r.msg.method(), cls, r.msg.tid());
}

void context::send_error(const request& r, int code, bool cacheable) {
  if (r.key == nullptr && !may_answer_unauthenticated(r)) return;
  auto b = begin(r, message_class::error_response);
  b.add_error_code(code, reason_for(code));
  bump(counters.responses_error);
  if (r.key == nullptr) return finish_unsigned(r, b);
  finish(r, b, cacheable);
}

void context::send_success(const request& r, stun::message_builder& b) {
  bump(counters.responses_success);
  finish(r, b, true);
}

bool context::send_challenge(const request& r, int code) {
  if (!may_answer_unauthenticated(r)) return false;
  auto b = begin(r, message_class::error_response);
  b.add_error_code(code, reason_for(code));
  b.add_string(attr::realm, shared->credentials->realm());
  std::array<char, auth::nonce_service::nonce_size> nonce{};
  b.add_string(attr::nonce, shared->nonces->mint(r.from.remote, r.now.unix_s, nonce));
  // The nonce's feature bit says PASSWORD-ALGORITHMS was offered; the
  // request's nonce is checked against it (auth.cpp, RFC 8489 §9.2.4).
  if ((shared->nonces->feature_bits() & auth::feature_password_algorithms) != 0)
    b.add_password_algorithms(offered_password_algorithms);
  bump(counters.responses_error);
  finish_unsigned(r, b);
  return true;
}

bool context::may_answer_unauthenticated(const request& r) {
  // Streams are no reflectors: their peer completed a handshake.
  if (r.from.proto != transport::udp || !unauth_answers.enabled()) return true;
  // A client that authenticated on this 5-tuple is never cut off (a 438
  // when its nonce went stale), whatever a flood from its address did.
  if (table.contains(r.from)) return true;
  if (unauth_answers.try_take(source_key(r.from.remote), r.now.mono_ms)) return true;
  bump(counters.unauth_rate_dropped);
  std::uint64_t suppressed = 0;
  if (unauth_log.allow(r.now.mono_ms, suppressed))
    spdlog::warn("turn: dropped an unauthenticated request from {}: its source used up its "
                 "answers (limits.unauthenticated_per_source; {} more dropped unlogged)",
                 r.from.remote.to_string(), suppressed);
  return false;
}

void context::finish_unsigned(const request& r, stun::message_builder& b) {
  if (r.msg.has_fingerprint()) b.add_fingerprint();
  auto out = b.finish();
  if (!out) {
    spdlog::error("turn: an error answer to method {:#x} did not fit: {}", r.msg.method(),
                  out.error.message());
    return;
  }
  send_to_client(r.from, *out);
}

void context::finish(const request& r, stun::message_builder& b, bool cacheable,
                     const client_ref* via) {
  if (!shared->software.empty()) b.add_string(attr::software, shared->software);
  if (r.key != nullptr) {
    // The answer is signed like the request: the same integrity attribute,
    // the key of the same password algorithm.
    const auto key = r.sha256_key && r.key->sha256 ? as_bytes_view(*r.key->sha256)
                                                   : as_bytes_view(r.key->md5);
    if (r.sha256) {
      b.add_message_integrity_sha256(key);
    } else {
      b.add_message_integrity(key);
    }
  }
  if (r.msg.has_fingerprint()) b.add_fingerprint();
  auto out = b.finish();
  if (!out) {
    spdlog::error("turn: a response to method {:#x} did not fit: {}", r.msg.method(),
                  out.error.message());
    return;
  }
  send_to_client(via != nullptr ? *via : r.from, *out);
  if (cacheable) cache.store(r.from, r.msg.tid(), *out, r.now.mono_ms);
}

}  // namespace anyturn::turn::detail
