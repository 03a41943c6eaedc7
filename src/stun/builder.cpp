// Building STUN messages (RFC 8489 §5, §14) and the Data indication prefix
// (RFC 8656 §11.4) into the caller's buffer.
#include <anyturn/stun/message.hpp>

#include <array>
#include <cstring>

#include "byte_order.hpp"
#include "crc32.hpp"
#include "hmac.hpp"
#include "wire.hpp"

namespace anyturn::stun {

using detail::pad4;
using detail::store16;
using detail::store32;
using detail::store64;
using detail::fingerprint_size;
using detail::max_body;
using detail::max_reason_bytes;
using detail::mi_sha1_size;
using detail::mi_sha256_max;
using detail::to_family;
using detail::valid_error_code;
using detail::xor_mask;

// ---- builder ----
message_builder::message_builder(mutable_bytes out, std::uint16_t method, message_class cls,
                                 const transaction_id& tid)
    : out_(out), tid_(tid) {
  if (out_.size() < header_size) {
    fail(codec_error::buffer_too_small);
    return;
  }
  if (method > 0x0FFF) {
    fail(codec_error::bad_attribute_value);
    return;
  }
  store16(out_.data(), compose_type(method, cls));
  store16(out_.data() + 2, 0);
  store32(out_.data() + 4, magic_cookie);
  std::memcpy(out_.data() + 8, tid_.bytes.data(), tid_.bytes.size());
  size_ = header_size;
}

void message_builder::fail(codec_error e) {
  if (ok_) error_ = e;
  ok_ = false;
}

bool message_builder::enter_stage(std::uint8_t stage) {
  if (!ok_) return false;
  // Plain attributes only before any integrity/fingerprint; each of MI,
  // MI-SHA256 and FINGERPRINT at most once and in that order.
  if (stage == 0 ? stage_ != 0 : stage_ >= stage) {
    fail(codec_error::bad_attribute_value);
    return false;
  }
  stage_ = stage;
  return true;
}

void message_builder::set_length(std::size_t body_len) {
  store16(out_.data() + 2, static_cast<std::uint16_t>(body_len));
}

mutable_bytes message_builder::attr_header(std::uint16_t type, std::size_t len) {
  if (!ok_) return {};
  if (len > 0xFFFF) {
    fail(codec_error::bad_attribute_value);
    return {};
  }
  const std::size_t total = 4 + pad4(len);
  if (total > out_.size() - size_ || size_ - header_size + total > max_body) {
    fail(codec_error::buffer_too_small);
    return {};
  }
  std::byte* p = out_.data() + size_;
  store16(p, type);
  store16(p + 2, static_cast<std::uint16_t>(len));
  std::memset(p + 4 + len, 0, pad4(len) - len);  // padding is zero (RFC 8489 §14)
  size_ += total;
  set_length(size_ - header_size);
  return {p + 4, len};
}

message_builder& message_builder::add_bytes(std::uint16_t type, bytes_view value) {
  if (!enter_stage(0)) return *this;
  auto v = attr_header(type, value.size());
  if (ok_ && !value.empty()) std::memcpy(v.data(), value.data(), value.size());
  return *this;
}

message_builder& message_builder::add_string(std::uint16_t type, std::string_view value) {
  return add_bytes(type, bytes_view{reinterpret_cast<const std::byte*>(value.data()), value.size()});
}

message_builder& message_builder::add_u32(std::uint16_t type, std::uint32_t value) {
  if (!enter_stage(0)) return *this;
  auto v = attr_header(type, 4);
  if (ok_) store32(v.data(), value);
  return *this;
}

message_builder& message_builder::add_address(std::uint16_t type, const endpoint& ep, bool xored) {
  if (!enter_stage(0)) return *this;
  if (ep.family != address_family::ipv4 && ep.family != address_family::ipv6) {
    fail(codec_error::bad_attribute_value);
    return *this;
  }
  const std::size_t ip_len = ep.ip_size();
  auto v = attr_header(type, 4 + ip_len);
  if (!ok_) return *this;
  v[0] = std::byte{0};
  v[1] = static_cast<std::byte>(ep.family);
  std::uint16_t port = ep.port;
  std::array<std::uint8_t, 16> mask{};
  if (xored) {
    port ^= static_cast<std::uint16_t>(magic_cookie >> 16);
    mask = xor_mask(tid_);
  }
  store16(v.data() + 2, port);
  for (std::size_t i = 0; i < ip_len; ++i) v[4 + i] = static_cast<std::byte>(ep.ip[i] ^ mask[i]);
  return *this;
}

message_builder& message_builder::add_error_code(int code, std::string_view reason) {
  if (!enter_stage(0)) return *this;
  if (!valid_error_code(code) || reason.size() > max_reason_bytes) {
    fail(codec_error::bad_attribute_value);
    return *this;
  }
  auto v = attr_header(attr::error_code, 4 + reason.size());
  if (!ok_) return *this;
  v[0] = std::byte{0};
  v[1] = std::byte{0};
  v[2] = static_cast<std::byte>(code / 100);
  v[3] = static_cast<std::byte>(code % 100);
  if (!reason.empty()) std::memcpy(v.data() + 4, reason.data(), reason.size());
  return *this;
}

message_builder& message_builder::add_unknown_attributes(std::span<const std::uint16_t> types) {
  if (!enter_stage(0)) return *this;
  auto v = attr_header(attr::unknown_attributes, 2 * types.size());
  if (!ok_) return *this;
  for (std::size_t i = 0; i < types.size(); ++i) store16(v.data() + 2 * i, types[i]);
  return *this;
}

message_builder& message_builder::add_channel_number(std::uint16_t channel) {
  if (!enter_stage(0)) return *this;
  auto v = attr_header(attr::channel_number, 4);
  if (!ok_) return *this;
  store16(v.data(), channel);
  store16(v.data() + 2, 0);
  return *this;
}

message_builder& message_builder::add_requested_transport(std::uint8_t protocol) {
  if (!enter_stage(0)) return *this;
  auto v = attr_header(attr::requested_transport, 4);
  if (!ok_) return *this;
  store32(v.data(), static_cast<std::uint32_t>(protocol) << 24);
  return *this;
}

message_builder& message_builder::add_address_family(std::uint16_t type, address_family family) {
  if (!enter_stage(0)) return *this;
  if (!to_family(static_cast<std::uint8_t>(family))) {
    fail(codec_error::bad_attribute_value);
    return *this;
  }
  auto v = attr_header(type, 4);
  if (!ok_) return *this;
  store32(v.data(), static_cast<std::uint32_t>(family) << 24);
  return *this;
}

message_builder& message_builder::add_change_request(bool change_ip, bool change_port) {
  const std::uint32_t flags = (change_ip ? 0x4U : 0U) | (change_port ? 0x2U : 0U);
  return add_u32(attr::change_request, flags);
}

message_builder& message_builder::add_response_port(std::uint16_t port) {
  return add_u32(attr::response_port, std::uint32_t{port} << 16);
}

message_builder& message_builder::add_even_port(bool reserve) {
  if (!enter_stage(0)) return *this;
  auto v = attr_header(attr::even_port, 1);
  if (!ok_) return *this;
  v[0] = reserve ? std::byte{0x80} : std::byte{0};
  return *this;
}

message_builder& message_builder::add_reservation_token(std::uint64_t token) {
  if (!enter_stage(0)) return *this;
  auto v = attr_header(attr::reservation_token, 8);
  if (!ok_) return *this;
  store64(v.data(), token);
  return *this;
}

message_builder& message_builder::add_address_error_code(address_family family, int code,
                                                         std::string_view reason) {
  if (!enter_stage(0)) return *this;
  if (!to_family(static_cast<std::uint8_t>(family)) || !valid_error_code(code) ||
      reason.size() > max_reason_bytes) {
    fail(codec_error::bad_attribute_value);
    return *this;
  }
  auto v = attr_header(attr::address_error_code, 4 + reason.size());
  if (!ok_) return *this;
  v[0] = static_cast<std::byte>(family);
  v[1] = std::byte{0};
  v[2] = static_cast<std::byte>(code / 100);
  v[3] = static_cast<std::byte>(code % 100);
  if (!reason.empty()) std::memcpy(v.data() + 4, reason.data(), reason.size());
  return *this;
}

message_builder& message_builder::add_password_algorithm(password_algorithm alg) {
  if (!enter_stage(0)) return *this;
  auto v = attr_header(attr::password_algorithm, 4);
  if (!ok_) return *this;
  store16(v.data(), static_cast<std::uint16_t>(alg));
  store16(v.data() + 2, 0);  // MD5 and SHA-256 take no parameters
  return *this;
}

message_builder& message_builder::add_password_algorithms(
    std::span<const password_algorithm> algs) {
  if (!enter_stage(0)) return *this;
  auto v = attr_header(attr::password_algorithms, 4 * algs.size());
  if (!ok_) return *this;
  for (std::size_t i = 0; i < algs.size(); ++i) {
    store16(v.data() + 4 * i, static_cast<std::uint16_t>(algs[i]));
    store16(v.data() + 4 * i + 2, 0);
  }
  return *this;
}

message_builder& message_builder::add_flag(std::uint16_t type) {
  if (!enter_stage(0)) return *this;
  attr_header(type, 0);
  return *this;
}

mutable_bytes message_builder::add_data_slot(std::size_t len) {
  if (!enter_stage(0)) return {};
  return attr_header(attr::data, len);
}

message_builder& message_builder::add_message_integrity(bytes_view key) {
  if (!enter_stage(1)) return *this;
  // attr_header already set the header length to cover this attribute,
  // which is what RFC 8489 §14.5 asks the HMAC input to carry.
  auto v = attr_header(attr::message_integrity, mi_sha1_size);
  if (!ok_) return *this;
  const std::size_t covered = static_cast<std::size_t>(v.data() - out_.data()) - 4;
  std::array<std::byte, detail::sha256_size> mac{};
  const auto len = detail::hmac(detail::hmac_digest::sha1, key, {bytes_view{out_.data(), covered}}, mac);
  if (!len || *len != mi_sha1_size) {
    fail(codec_error::bad_attribute_value);
    return *this;
  }
  std::memcpy(v.data(), mac.data(), mi_sha1_size);
  return *this;
}

message_builder& message_builder::add_message_integrity_sha256(bytes_view key) {
  if (!enter_stage(2)) return *this;
  auto v = attr_header(attr::message_integrity_sha256, mi_sha256_max);
  if (!ok_) return *this;
  const std::size_t covered = static_cast<std::size_t>(v.data() - out_.data()) - 4;
  std::array<std::byte, detail::sha256_size> mac{};
  const auto len = detail::hmac(detail::hmac_digest::sha256, key, {bytes_view{out_.data(), covered}}, mac);
  if (!len || *len != mi_sha256_max) {
    fail(codec_error::bad_attribute_value);
    return *this;
  }
  std::memcpy(v.data(), mac.data(), mi_sha256_max);
  return *this;
}

message_builder& message_builder::add_fingerprint() {
  if (!enter_stage(3)) return *this;
  auto v = attr_header(attr::fingerprint, fingerprint_size);
  if (!ok_) return *this;
  const std::size_t covered = static_cast<std::size_t>(v.data() - out_.data()) - 4;
  store32(v.data(), fingerprint_of(bytes_view{out_.data(), covered}));
  return *this;
}

result<bytes_view> message_builder::finish() const {
  if (!ok_) return error_;
  return bytes_view{out_.data(), size_};
}

std::size_t write_data_indication_prefix(mutable_bytes out, const transaction_id& tid,
                                         const endpoint& peer, std::size_t payload_len) {
  message_builder b(out, static_cast<std::uint16_t>(method::data), message_class::indication, tid);
  b.add_address(attr::xor_peer_address, peer, true);
  const std::size_t prefix = b.size();
  const std::size_t body = prefix - header_size + 4 + payload_len + padding_of(payload_len);
  if (!b.ok() || out.size() < prefix + 4 || body > 0xFFFF) return 0;
  store16(out.data() + 2, static_cast<std::uint16_t>(body));
  store16(out.data() + prefix, attr::data);
  store16(out.data() + prefix + 2, static_cast<std::uint16_t>(payload_len));
  return prefix + 4;
}

}  // namespace anyturn::stun
