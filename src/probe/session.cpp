// TURN requests of the probe over one control connection: the 401
// challenge, 438 Stale Nonce, UDP retransmission, and the methods it uses.
#include "session.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <random>

namespace anyturn::probe::detail {
namespace {

using namespace std::chrono_literals;
namespace attr = stun::attr;

constexpr auto initial_rto = 250ms;
constexpr std::uint8_t udp_protocol = 17;
constexpr std::size_t max_text = 763;  // RFC 8489 §14.9, §14.10: REALM, NONCE, SOFTWARE

stun::transaction_id new_tid() {
  stun::transaction_id tid;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(tid.bytes.data()), static_cast<int>(tid.bytes.size())) != 1) {
    std::random_device rd;
    for (auto& b : tid.bytes) b = static_cast<std::byte>(rd());
  }
  return tid;
}

bool fail(failure& f, std::string cause) {
  f.cause = std::move(cause);
  f.timed_out = false;
  return false;
}

std::string printable(std::string_view s) {
  std::string out;
  for (char c : s) out += (c >= 0x20 && c < 0x7F) ? c : '?';
  return out;
}

int error_code_of(const stun::message_view& m) {
  const auto a = m.find(attr::error_code);
  if (!a) return 0;
  const auto v = stun::decode_error_code(*a);
  return v ? v->code : 0;
}

}  // namespace

std::string error_text(const stun::message_view& m) {
  const auto a = m.find(attr::error_code);
  if (!a) return "error response without ERROR-CODE";
  const auto v = stun::decode_error_code(*a);
  if (!v) return "error response with a malformed ERROR-CODE";
  std::string_view reason = v->reason;
  while (!reason.empty() && (reason.back() == '\0' || reason.back() == ' ')) reason.remove_suffix(1);
  return std::to_string(v->code) + (reason.empty() ? "" : " " + printable(reason));
}

bool session::exchange(stun::method m, const attribute_writer& attrs, bool authenticate,
                       clock::time_point deadline, failure& f) {
  std::array<std::byte, 2048> buf{};
  const auto tid = new_tid();
  stun::message_builder b(buf, static_cast<std::uint16_t>(m), stun::message_class::request, tid);
  if (attrs) attrs(b);
  if (authenticate) {
    b.add_string(attr::username, auth_->username);
    b.add_string(attr::realm, realm_);
    b.add_string(attr::nonce, nonce_);
    if (!algorithms_.empty()) {
      b.add_bytes(attr::password_algorithms, algorithms_);
      b.add_password_algorithm(stun::password_algorithm::md5);
    }
    b.add_message_integrity(std::as_bytes(std::span(key_)));
  }
  b.add_fingerprint();
  const auto wire = b.finish();
  if (!wire) return fail(f, "cannot build the request: " + wire.error.message());

  auto rto = std::chrono::duration_cast<clock::duration>(initial_rto);
  auto retransmit_at = clock::now() + rto;
  if (!conn_.send(*wire, deadline, f)) return false;
  frame in;
  for (;;) {
    const auto until = conn_.stream() ? deadline : std::min(retransmit_at, deadline);
    if (!conn_.receive(in, until, f)) {
      if (!f.timed_out || clock::now() >= deadline) return false;
      // UDP: no answer yet; send the same request again (RFC 8489 §6.2.1).
      rto *= 2;
      retransmit_at = clock::now() + rto;
      if (!conn_.send(*wire, deadline, f)) return false;
      continue;
    }
    if (stun::classify(in) != stun::frame_kind::stun) continue;  // late ChannelData
    const auto v = stun::parse_message(in);
    if (!v || v->tid() != tid || v->method() != static_cast<std::uint16_t>(m)) continue;
    if (v->cls() != stun::message_class::success_response &&
        v->cls() != stun::message_class::error_response) {
      continue;
    }
    if (software_.empty()) {
      if (const auto s = v->find(attr::software)) {
        if (const auto text = stun::decode_string(*s, max_text)) software_ = printable(*text);
      }
    }
    response_ = std::move(in);
    return true;
  }
}

bool session::take_challenge(const stun::message_view& m) {
  const auto realm = m.find(attr::realm);
  const auto nonce = m.find(attr::nonce);
  if (!realm || !nonce) return false;
  const auto r = stun::decode_string(*realm, max_text);
  const auto n = stun::decode_string(*nonce, max_text);
  if (!r || !n) return false;
  if (!challenged_ || realm_ != *r) key_ = auth::derive_md5_key(auth_->username, *r, auth_->password);
  realm_ = std::string(*r);
  nonce_ = std::string(*n);
  algorithms_.clear();
  if (const auto list = m.find(attr::password_algorithms)) {
    algorithms_.assign(list->value.begin(), list->value.end());
  }
  challenged_ = true;
  return true;
}

bool session::request(stun::method m, const attribute_writer& attrs, clock::time_point deadline,
                      failure& f) {
  bool answered_401 = false;
  bool answered_438 = false;
  for (;;) {
    if (!exchange(m, attrs, challenged_, deadline, f)) return false;
    const auto v = stun::parse_message(response_);
    if (!v) return fail(f, "unparsable response");
    if (v->cls() == stun::message_class::success_response) {
      if (challenged_ && v->has(attr::message_integrity) &&
          !stun::check_message_integrity(*v, std::as_bytes(std::span(key_)))) {
        return fail(f, "the response's MESSAGE-INTEGRITY does not verify");
      }
      return true;
    }
    const int code = error_code_of(*v);
    if (code == 401 && !challenged_ && !answered_401) {
      answered_401 = true;
      if (!auth_) return fail(f, error_text(*v) + " (no credentials: give --user and --password, or --secret)");
      if (!take_challenge(*v)) return fail(f, error_text(*v) + " without REALM and NONCE");
      if (!algorithms_.empty()) {
        std::array<std::uint16_t, 8> algs{};
        const auto list = v->find(attr::password_algorithms);
        const auto n = stun::decode_password_algorithms(*list, algs);
        const auto md5 = static_cast<std::uint16_t>(stun::password_algorithm::md5);
        if (!n || std::find(algs.begin(), algs.begin() + static_cast<std::ptrdiff_t>(*n), md5) ==
                      algs.begin() + static_cast<std::ptrdiff_t>(*n)) {
          return fail(f, "the server does not offer MD5 in PASSWORD-ALGORITHMS");
        }
      }
      continue;
    }
    if (code == 438 && challenged_ && !answered_438) {
      answered_438 = true;
      if (!take_challenge(*v)) return fail(f, error_text(*v) + " without a new NONCE");
      continue;
    }
    if (code == 401 && challenged_) return fail(f, error_text(*v) + " (wrong username or password?)");
    return fail(f, error_text(*v));
  }
}

bool session::allocate(clock::time_point deadline, failure& f) {
  const auto attrs = [](stun::message_builder& b) { b.add_requested_transport(udp_protocol); };
  if (!request(stun::method::allocate, attrs, deadline, f)) return false;
  const auto v = stun::parse_message(response_);
  const auto relayed = v->find(attr::xor_relayed_address);
  if (!relayed) return fail(f, "the success response has no XOR-RELAYED-ADDRESS");
  const auto r = stun::decode_address(*relayed, v->tid(), true);
  if (!r) return fail(f, "bad XOR-RELAYED-ADDRESS");
  relayed_ = *r;
  allocated_ = true;
  if (const auto mapped = v->find(attr::xor_mapped_address)) {
    if (const auto e = stun::decode_address(*mapped, v->tid(), true)) mapped_ = *e;
  }
  return true;
}

bool session::create_permission(const stun::endpoint& peer, clock::time_point deadline, failure& f) {
  return request(stun::method::create_permission,
                 [&](stun::message_builder& b) { b.add_address(attr::xor_peer_address, peer, true); },
                 deadline, f);
}

bool session::channel_bind(std::uint16_t channel, const stun::endpoint& peer,
                           clock::time_point deadline, failure& f) {
  return request(stun::method::channel_bind,
                 [&](stun::message_builder& b) {
                   b.add_channel_number(channel);
                   b.add_address(attr::xor_peer_address, peer, true);
                 },
                 deadline, f);
}

bool session::refresh(std::uint32_t lifetime, clock::time_point deadline, failure& f) {
  const bool ok = request(stun::method::refresh,
                          [&](stun::message_builder& b) { b.add_u32(attr::lifetime, lifetime); },
                          deadline, f);
  if (lifetime == 0 && ok) allocated_ = false;
  return ok;
}

bool session::binding(clock::time_point deadline, failure& f) {
  if (!exchange(stun::method::binding, {}, false, deadline, f)) return false;
  const auto v = stun::parse_message(response_);
  if (v->cls() != stun::message_class::success_response) return fail(f, error_text(*v));
  if (const auto a = v->find(attr::xor_mapped_address)) {
    if (const auto e = stun::decode_address(*a, v->tid(), true)) mapped_ = *e;
  } else if (const auto a2 = v->find(attr::mapped_address)) {
    if (const auto e = stun::decode_address(*a2, v->tid(), false)) mapped_ = *e;
  }
  if (!mapped_) return fail(f, "the response has no XOR-MAPPED-ADDRESS");
  return true;
}

}  // namespace anyturn::probe::detail
