// libFuzzer target: STUN message parsing, attribute decoding and the
// builder. Any broken invariant traps.
#include <anyturn/stun/message.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace {

using namespace anyturn::stun;

#define FUZZ_CHECK(cond) \
  do {                   \
    if (!(cond)) __builtin_trap(); \
  } while (0)

bool same_bytes(bytes_view a, bytes_view b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

// Builds a one-attribute message with `add`, parses it back and returns the
// attribute of `type` (the builder never fails for decoded values).
template <typename Add>
attribute_view rebuild_one(std::array<std::byte, 2048>& buf, const transaction_id& tid,
                           std::uint16_t type, Add&& add) {
  message_builder b(buf, static_cast<std::uint16_t>(method::binding), message_class::request, tid);
  add(b);
  auto built = b.finish();
  FUZZ_CHECK(built.has_value());
  auto msg = parse_message(*built);
  FUZZ_CHECK(msg.has_value());
  auto a = msg->find(type);
  FUZZ_CHECK(a.has_value());
  return *a;
}

void round_trip_attribute(const message_view& msg, const attribute_view& a) {
  static std::array<std::byte, 2048> buf;
  const auto& tid = msg.tid();
  // Values are rebuilt under their own type, except that a FINGERPRINT value
  // copied elsewhere would not match its new message.
  const std::uint16_t type = a.type == attr::fingerprint ? std::uint16_t{0x8FFF} : a.type;
  const bool xored = a.type == attr::xor_mapped_address || a.type == attr::xor_peer_address ||
                     a.type == attr::xor_relayed_address;

  if (auto ep = decode_address(a, tid, xored)) {
    auto back = rebuild_one(buf, tid, type, [&](message_builder& b) { b.add_address(type, *ep, xored); });
    auto again = decode_address(back, tid, xored);
    FUZZ_CHECK(again.has_value() && *again == *ep);
    // The first byte is ignored on decode and written as zero.
    FUZZ_CHECK(back.value.size() == a.value.size());
    FUZZ_CHECK(same_bytes(back.value.subspan(1), a.value.subspan(1)));
    if (ep->is_v4()) {
      for (std::size_t i = 4; i < 16; ++i) FUZZ_CHECK(ep->ip[i] == 0);
    }
  }
  if (auto v = decode_u32(a)) {
    auto back = rebuild_one(buf, tid, type, [&](message_builder& b) { b.add_u32(type, *v); });
    FUZZ_CHECK(same_bytes(back.value, a.value));
  }
  if (auto s = decode_string(a, 763)) {
    FUZZ_CHECK(s->size() <= 763);
    auto back = rebuild_one(buf, tid, type, [&](message_builder& b) { b.add_string(type, *s); });
    FUZZ_CHECK(same_bytes(back.value, a.value));
  }
  if (auto e = decode_error_code(a)) {
    FUZZ_CHECK(e->code >= 300 && e->code <= 699);
    FUZZ_CHECK(e->reason.size() + 4 == a.value.size());
    auto back = rebuild_one(buf, tid, attr::error_code,
                            [&](message_builder& b) { b.add_error_code(e->code, e->reason); });
    auto again = decode_error_code(back);
    FUZZ_CHECK(again && again->code == e->code && again->reason == e->reason);
  }
  if (auto ch = decode_channel_number(a)) {
    auto back = rebuild_one(buf, tid, attr::channel_number,
                            [&](message_builder& b) { b.add_channel_number(*ch); });
    FUZZ_CHECK(*decode_channel_number(back) == *ch);
  }
  if (auto p = decode_requested_transport(a)) {
    auto back = rebuild_one(buf, tid, attr::requested_transport,
                            [&](message_builder& b) { b.add_requested_transport(*p); });
    FUZZ_CHECK(*decode_requested_transport(back) == *p);
  }
  if (auto f = decode_address_family(a)) {
    FUZZ_CHECK(*f == address_family::ipv4 || *f == address_family::ipv6);
    auto back = rebuild_one(buf, tid, type, [&](message_builder& b) { b.add_address_family(type, *f); });
    FUZZ_CHECK(*decode_address_family(back) == *f);
  }
  if (auto r = decode_even_port(a)) {
    auto back = rebuild_one(buf, tid, attr::even_port, [&](message_builder& b) { b.add_even_port(*r); });
    FUZZ_CHECK(*decode_even_port(back) == *r);
  }
  if (auto c = decode_change_request(a)) {  // RFC 5780: the flags round-trip
    auto back = rebuild_one(buf, tid, attr::change_request,
                            [&](message_builder& b) { b.add_change_request(c->change_ip, c->change_port); });
    FUZZ_CHECK(*decode_change_request(back) == *c);
  }
  if (auto p = decode_response_port(a)) {
    auto back = rebuild_one(buf, tid, attr::response_port,
                            [&](message_builder& b) { b.add_response_port(*p); });
    FUZZ_CHECK(*decode_response_port(back) == *p);
  }
  if (auto t = decode_reservation_token(a)) {
    auto back = rebuild_one(buf, tid, attr::reservation_token,
                            [&](message_builder& b) { b.add_reservation_token(*t); });
    FUZZ_CHECK(same_bytes(back.value, a.value));
  }
  if (auto e = decode_address_error_code(a)) {
    auto back = rebuild_one(buf, tid, attr::address_error_code, [&](message_builder& b) {
      b.add_address_error_code(e->family, e->code, e->reason);
    });
    auto again = decode_address_error_code(back);
    FUZZ_CHECK(again && again->family == e->family && again->code == e->code && again->reason == e->reason);
  }
  if (auto alg = decode_password_algorithm(a)) {
    if (a.value.size() == 4) {
      auto back = rebuild_one(buf, tid, attr::password_algorithm,
                              [&](message_builder& b) { b.add_password_algorithm(*alg); });
      FUZZ_CHECK(*decode_password_algorithm(back) == *alg);
    }
  }
  std::array<std::uint16_t, 64> list{};
  if (auto n = decode_password_algorithms(a, list)) {
    FUZZ_CHECK(*n <= list.size() && *n <= a.value.size() / 4);
  }
  if (auto n = decode_unknown_attributes(a, list)) {
    FUZZ_CHECK(*n <= list.size() && *n <= a.value.size() / 2);
    const std::span<const std::uint16_t> types{list.data(), *n};
    auto back = rebuild_one(buf, tid, attr::unknown_attributes,
                            [&](message_builder& b) { b.add_unknown_attributes(types); });
    std::array<std::uint16_t, 64> again{};
    FUZZ_CHECK(*decode_unknown_attributes(back, again) == *n);
    FUZZ_CHECK(std::equal(types.begin(), types.end(), again.begin()));
  }
}

// Rebuilds the visible attributes with fresh integrity and fingerprint and
// checks the copy parses back to the same values.
void round_trip_message(const message_view& msg) {
  static std::array<std::byte, max_message_size + 128> buf;
  static const std::array<std::byte, 16> key{std::byte{1}, std::byte{2}, std::byte{3}};
  message_builder b(buf, msg.method(), msg.cls(), msg.tid());
  std::size_t copied = 0;
  for (const auto& a : msg.attributes()) {
    if (a.type == attr::message_integrity || a.type == attr::message_integrity_sha256 ||
        a.type == attr::fingerprint) {
      break;
    }
    b.add_bytes(a.type, a.value);
    ++copied;
  }
  b.add_message_integrity(key).add_message_integrity_sha256(key).add_fingerprint();
  auto built = b.finish();
  if (!built) {
    FUZZ_CHECK(built.error == codec_error::buffer_too_small);
    return;
  }
  FUZZ_CHECK(built->size() == b.size() && built->size() % 4 == 0);
  auto copy = parse_message(*built);
  if (copied + 3 > max_attributes) {
    FUZZ_CHECK(!copy && copy.error == codec_error::too_many_attributes);
    return;
  }
  FUZZ_CHECK(copy.has_value());
  FUZZ_CHECK(copy->type() == msg.type() && copy->tid() == msg.tid());
  FUZZ_CHECK(copy->attributes().size() == copied + 3);
  for (std::size_t i = 0; i < copied; ++i) {
    FUZZ_CHECK(copy->attributes()[i].type == msg.attributes()[i].type);
    FUZZ_CHECK(same_bytes(copy->attributes()[i].value, msg.attributes()[i].value));
  }
  FUZZ_CHECK(copy->has_fingerprint());
  FUZZ_CHECK(check_message_integrity(*copy, key));
  FUZZ_CHECK(check_message_integrity_sha256(*copy, key));
  // (HMAC zero-pads keys, so a wrong key must differ in more than trailing zeros.)
  static const std::array<std::byte, 16> wrong{std::byte{1}, std::byte{2}, std::byte{4}};
  FUZZ_CHECK(!check_message_integrity(*copy, wrong));
  FUZZ_CHECK(!check_message_integrity_sha256(*copy, wrong));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const bytes_view in{reinterpret_cast<const std::byte*>(data), size};

  const auto kind = classify(in);
  auto frame = stream_frame_length(in, max_message_size);
  if (frame) {
    FUZZ_CHECK(*frame <= size && *frame >= channel_data_header_size && *frame % 4 == 0);
    FUZZ_CHECK(kind != frame_kind::other);
  } else {
    FUZZ_CHECK(frame.error != codec_error::need_more || kind != frame_kind::other || size == 0);
  }

  auto msg = parse_message(in);
  if (!msg) {
    FUZZ_CHECK(msg.error.category() == codec_category());
    return 0;
  }

  // Header invariants.
  // RFC 8489 allows any type with the top two bits clear; RFC 7983
  // demultiplexing (classify) only claims first bytes 0-3 (methods < 0x100).
  FUZZ_CHECK((std::to_integer<unsigned>(in[0]) & 0xC0U) == 0);
  FUZZ_CHECK(kind == frame_kind::stun || msg->method() >= 0x100);
  FUZZ_CHECK(msg->raw().data() == in.data() && msg->raw().size() == size);
  FUZZ_CHECK(size >= header_size && size % 4 == 0);
  FUZZ_CHECK((msg->type() & 0xC000) == 0);
  FUZZ_CHECK(compose_type(msg->method(), msg->cls()) == msg->type());
  if (kind == frame_kind::stun) FUZZ_CHECK(frame && *frame == size);  // one datagram = one frame

  // Attribute framing invariants.
  const auto attrs = msg->attributes();
  FUZZ_CHECK(attrs.size() + msg->ignored() <= max_attributes);
  std::size_t expected_offset = header_size;
  bool cut = false;  // past MESSAGE-INTEGRITY(-SHA256): only it and FINGERPRINT are kept
  for (const auto& a : attrs) {
    if (!cut) {
      FUZZ_CHECK(a.offset == expected_offset);
    } else {
      FUZZ_CHECK(a.offset >= expected_offset);
      FUZZ_CHECK(a.type == attr::message_integrity_sha256 || a.type == attr::fingerprint);
    }
    cut = cut || a.type == attr::message_integrity || a.type == attr::message_integrity_sha256;
    FUZZ_CHECK(a.value.data() == in.data() + a.offset + 4);
    FUZZ_CHECK(a.offset + 4 + a.value.size() <= size);
    expected_offset = a.offset + 4 + ((a.value.size() + 3) & ~std::size_t{3});
    auto found = msg->find(a.type);
    if (found) FUZZ_CHECK(found->type == a.type && found->offset <= a.offset);
  }
  if (msg->ignored() == 0) {
    FUZZ_CHECK(expected_offset == size);
  } else {
    FUZZ_CHECK(cut);
  }
  if (msg->has_fingerprint()) {
    FUZZ_CHECK(!attrs.empty() && attrs.back().type == attr::fingerprint);
    FUZZ_CHECK(msg->find(attr::fingerprint).has_value());
    FUZZ_CHECK(*decode_u32(attrs.back()) == (fingerprint_of(in.first(attrs.back().offset))));
  } else {
    FUZZ_CHECK(!msg->find(attr::fingerprint));
  }

  std::array<std::uint16_t, max_attributes> unknown{};
  const auto n_unknown = msg->unknown_required(unknown);
  for (std::size_t i = 0; i < n_unknown; ++i) {
    FUZZ_CHECK(attr::comprehension_required(unknown[i]) && !attr::known(unknown[i]));
    FUZZ_CHECK(msg->find(unknown[i]).has_value());
  }

  for (const auto& a : attrs) round_trip_attribute(*msg, a);

  static const std::array<std::byte, 20> key{};
  (void)check_message_integrity(*msg, key);
  (void)check_message_integrity_sha256(*msg, key);

  round_trip_message(*msg);
  return 0;
}
