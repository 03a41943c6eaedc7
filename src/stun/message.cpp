#include <anyturn/stun/message.hpp>

#include <openssl/crypto.h>

#include <algorithm>
#include <cstring>

#include "byte_order.hpp"
#include "crc32.hpp"
#include "hmac.hpp"
#include "wire.hpp"

namespace anyturn::stun {

using detail::load16;
using detail::load32;
using detail::load64;
using detail::pad4;
using detail::store16;
using detail::fingerprint_size;
using detail::max_reason_bytes;
using detail::mi_sha1_size;
using detail::mi_sha256_max;
using detail::mi_sha256_min;
using detail::to_family;
using detail::xor_mask;

namespace {

class codec_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "anyturn.stun"; }
  std::string message(int ev) const override {
    switch (static_cast<codec_error>(ev)) {
      case codec_error::need_more: return "need more bytes";
      case codec_error::not_stun: return "not a STUN message";
      case codec_error::bad_length: return "bad message length";
      case codec_error::truncated_attribute: return "attribute runs past the message end";
      case codec_error::too_many_attributes: return "too many attributes";
      case codec_error::bad_fingerprint: return "bad or misplaced FINGERPRINT";
      case codec_error::bad_attribute_value: return "bad attribute value";
      case codec_error::attribute_missing: return "attribute missing";
      case codec_error::not_channel_data: return "not a ChannelData message";
      case codec_error::buffer_too_small: return "output buffer too small";
      case codec_error::too_large: return "frame too large";
    }
    return "unknown STUN codec error";
  }
};


// ERROR-CODE and ADDRESS-ERROR-CODE share the class/number layout:
// 21 (or 13) reserved bits, 3 bits class (3-6), 8 bits number (0-99).
std::optional<int> decode_class_number(std::byte cls_byte, std::byte number_byte) {
  const int cls = std::to_integer<int>(cls_byte) & 0x07;
  const int number = std::to_integer<int>(number_byte);
  if (cls < 3 || cls > 6 || number > 99) return std::nullopt;
  return cls * 100 + number;
}


std::string_view as_string(bytes_view v) {
  return {reinterpret_cast<const char*>(v.data()), v.size()};
}

bool integrity_matches(const message_view& m, std::uint16_t type, detail::hmac_digest digest,
                       bytes_view key) {
  const auto a = m.find(type);
  if (!a) return false;
  const std::size_t mac_len = a->value.size();
  if (digest == detail::hmac_digest::sha1) {
    if (mac_len != mi_sha1_size) return false;
  } else if (mac_len < mi_sha256_min || mac_len > mi_sha256_max || mac_len % 4 != 0) {
    return false;
  }
  // RFC 8489 §14.5/14.6: the HMAC covers the message up to the attribute,
  // with the header length adjusted to end right after the attribute.
  const bytes_view raw = m.raw();
  std::array<std::byte, header_size> header{};
  std::memcpy(header.data(), raw.data(), header_size);
  store16(header.data() + 2, static_cast<std::uint16_t>(a->offset + 4 + mac_len - header_size));

  std::array<std::byte, detail::sha256_size> mac{};
  const auto len = detail::hmac(digest, key,
                                {bytes_view{header}, raw.subspan(header_size, a->offset - header_size)},
                                mac);
  if (!len || *len < mac_len) return false;
  return CRYPTO_memcmp(mac.data(), a->value.data(), mac_len) == 0;
}

}  // namespace

// ---- errors ----
const std::error_category& codec_category() noexcept {
  static const codec_category_impl category;
  return category;
}

std::error_code make_error_code(codec_error e) noexcept {
  return {static_cast<int>(e), codec_category()};
}

// ---- message type ----
std::uint16_t compose_type(std::uint16_t m, message_class cls) {
  const auto c = static_cast<std::uint16_t>(cls);
  return static_cast<std::uint16_t>((m & 0x000F) | ((m & 0x0070) << 1) | ((m & 0x0F80) << 2) |
                                    ((c & 0x1) << 4) | ((c & 0x2) << 7));
}

std::uint16_t type_method(std::uint16_t type) {
  return static_cast<std::uint16_t>((type & 0x000F) | ((type & 0x00E0) >> 1) |
                                    ((type & 0x3E00) >> 2));
}

message_class type_class(std::uint16_t type) {
  return static_cast<message_class>(((type >> 4) & 0x1) | ((type >> 7) & 0x2));
}

bool attr::known(std::uint16_t type) {
  switch (type) {
    case mapped_address:
    case username:
    case message_integrity:
    case error_code:
    case unknown_attributes:
    case channel_number:
    case lifetime:
    case xor_peer_address:
    case data:
    case realm:
    case nonce:
    case xor_relayed_address:
    case requested_address_family:
    case even_port:
    case requested_transport:
    case dont_fragment:
    case message_integrity_sha256:
    case password_algorithm:
    case userhash:
    case xor_mapped_address:
    case reservation_token:
    case connection_id:
    case priority:
    case use_candidate:
    case additional_address_family:
    case address_error_code:
    case password_algorithms:
    case alternate_domain:
    case icmp:
    case software:
    case alternate_server:
    case fingerprint:
      return true;
    default:
      return false;
  }
}

// ---- parsing ----
result<message_view> parse_message(bytes_view data) {
  // RFC 8489 §6: 20-byte header, top two bits zero, magic cookie, length a
  // multiple of 4 covering exactly the rest of the datagram.
  if (data.size() < header_size) return codec_error::bad_length;
  if ((std::to_integer<unsigned>(data[0]) & 0xC0U) != 0) return codec_error::not_stun;
  if (load32(data.data() + 4) != magic_cookie) return codec_error::not_stun;
  const std::size_t body = load16(data.data() + 2);
  if (body % 4 != 0 || header_size + body != data.size()) return codec_error::bad_length;

  message_view m;
  m.raw_ = data;
  m.type_ = load16(data.data());
  std::memcpy(m.tid_.bytes.data(), data.data() + 8, m.tid_.bytes.size());

  // RFC 8489 §14.5/§14.6: past the first MESSAGE-INTEGRITY(-SHA256) only
  // MESSAGE-INTEGRITY-SHA256 (after MESSAGE-INTEGRITY) and FINGERPRINT
  // count. Every other attribute there is outside what the HMAC covers, so
  // an on-path attacker could have added it: it is framed and counted, but
  // not kept, so nothing that reads the view can act on it.
  std::uint16_t cut_at = 0;  // type of the integrity attribute that cut, 0: none yet
  bool have_sha256 = false;
  std::size_t seen = 0;
  std::size_t off = header_size;
  const std::size_t end = data.size();
  while (off < end) {
    if (end - off < 4) return codec_error::truncated_attribute;
    const std::uint16_t type = load16(data.data() + off);
    const std::size_t len = load16(data.data() + off + 2);
    if (pad4(len) > end - off - 4) return codec_error::truncated_attribute;
    if (seen == max_attributes) return codec_error::too_many_attributes;
    ++seen;

    if (type == attr::fingerprint) {
      // RFC 8489 §14.7: FINGERPRINT is last and is the CRC-32 of the message
      // up to it (the header length already includes it), XOR 0x5354554E.
      if (len != fingerprint_size || off + 4 + fingerprint_size != end) {
        return codec_error::bad_fingerprint;
      }
      if (fingerprint_of(data.first(off)) != load32(data.data() + off + 4)) {
        return codec_error::bad_fingerprint;
      }
      m.has_fingerprint_ = true;
    }
    const bool keep = cut_at == 0 || type == attr::fingerprint ||
                      (type == attr::message_integrity_sha256 &&
                       cut_at == attr::message_integrity && !have_sha256);
    if (keep) {
      m.attrs_[m.count_++] = attribute_view{type, data.subspan(off + 4, len), off};
      if (type == attr::message_integrity_sha256) have_sha256 = true;
      if (cut_at == 0 &&
          (type == attr::message_integrity || type == attr::message_integrity_sha256)) {
        cut_at = type;
      }
    } else {
      ++m.ignored_;
    }
    off += 4 + pad4(len);
  }
  return m;
}

std::optional<attribute_view> message_view::find(std::uint16_t type) const {
  for (std::size_t i = 0; i < count_; ++i) {
    if (attrs_[i].type == type) return attrs_[i];
  }
  return std::nullopt;
}

std::size_t message_view::unknown_required(std::span<std::uint16_t> out) const {
  std::size_t n = 0;
  for (std::size_t i = 0; i < count_ && n < out.size(); ++i) {
    const auto type = attrs_[i].type;
    if (!attr::comprehension_required(type) || attr::known(type)) continue;
    if (std::find(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n), type) !=
        out.begin() + static_cast<std::ptrdiff_t>(n)) {
      continue;
    }
    out[n++] = type;
  }
  return n;
}

// ---- attribute decoders ----
result<endpoint> decode_address(const attribute_view& a, const transaction_id& tid, bool xored) {
  // RFC 8489 §14.1/14.2: 8 bits ignored, family, port, address.
  const auto v = a.value;
  if (v.size() < 4) return codec_error::bad_attribute_value;
  const auto family = to_family(std::to_integer<std::uint8_t>(v[1]));
  if (!family) return codec_error::bad_attribute_value;
  const std::size_t ip_len = *family == address_family::ipv4 ? 4 : 16;
  if (v.size() != 4 + ip_len) return codec_error::bad_attribute_value;

  endpoint e;
  e.family = *family;
  e.port = load16(v.data() + 2);
  for (std::size_t i = 0; i < ip_len; ++i) e.ip[i] = std::to_integer<std::uint8_t>(v[4 + i]);
  if (xored) {
    e.port ^= static_cast<std::uint16_t>(magic_cookie >> 16);
    const auto mask = xor_mask(tid);
    for (std::size_t i = 0; i < ip_len; ++i) e.ip[i] ^= mask[i];
  }
  return e;
}

result<std::uint32_t> decode_u32(const attribute_view& a) {
  if (a.value.size() != 4) return codec_error::bad_attribute_value;
  return load32(a.value.data());
}

result<std::string_view> decode_string(const attribute_view& a, std::size_t max_len) {
  if (a.value.size() > max_len) return codec_error::bad_attribute_value;
  return as_string(a.value);
}

result<error_code_value> decode_error_code(const attribute_view& a) {
  // RFC 8489 §14.8: 21 reserved bits, class (3 bits), number (8 bits), reason.
  const auto v = a.value;
  if (v.size() < 4 || v.size() - 4 > max_reason_bytes) return codec_error::bad_attribute_value;
  const auto code = decode_class_number(v[2], v[3]);
  if (!code) return codec_error::bad_attribute_value;
  return error_code_value{*code, as_string(v.subspan(4))};
}

result<std::uint16_t> decode_channel_number(const attribute_view& a) {
  // RFC 8656 §18.1: channel number, 16 bits RFFU. The range is the caller's
  // check (valid_channel): an out-of-range number is a 400, not a parse error.
  if (a.value.size() != 4) return codec_error::bad_attribute_value;
  return load16(a.value.data());
}

result<std::uint8_t> decode_requested_transport(const attribute_view& a) {
  // RFC 8656 §18.7: protocol, 24 bits RFFU.
  if (a.value.size() != 4) return codec_error::bad_attribute_value;
  return std::to_integer<std::uint8_t>(a.value[0]);
}

result<address_family> decode_address_family(const attribute_view& a) {
  // RFC 8656 §18.9/18.11: family, 24 bits reserved.
  if (a.value.size() != 4) return codec_error::bad_attribute_value;
  const auto family = to_family(std::to_integer<std::uint8_t>(a.value[0]));
  if (!family) return codec_error::bad_attribute_value;
  return *family;
}

result<change_request_value> decode_change_request(const attribute_view& a) {
  if (a.value.size() != 4) return codec_error::bad_attribute_value;
  const unsigned flags = std::to_integer<unsigned>(a.value[3]);
  return change_request_value{(flags & 0x4U) != 0, (flags & 0x2U) != 0};
}

result<std::uint16_t> decode_response_port(const attribute_view& a) {
  if (a.value.size() != 4) return codec_error::bad_attribute_value;
  return static_cast<std::uint16_t>((std::to_integer<unsigned>(a.value[0]) << 8) |
                                    std::to_integer<unsigned>(a.value[1]));
}

result<bool> decode_even_port(const attribute_view& a) {
  // RFC 8656 §18.6: one byte, R in the top bit, the rest RFFU.
  if (a.value.size() != 1) return codec_error::bad_attribute_value;
  return (std::to_integer<unsigned>(a.value[0]) & 0x80U) != 0;
}

result<std::uint64_t> decode_reservation_token(const attribute_view& a) {
  if (a.value.size() != 8) return codec_error::bad_attribute_value;
  return load64(a.value.data());
}

result<address_error_value> decode_address_error_code(const attribute_view& a) {
  // RFC 8656 §18.12: family, 13 reserved bits, class, number, reason.
  const auto v = a.value;
  if (v.size() < 4 || v.size() - 4 > max_reason_bytes) return codec_error::bad_attribute_value;
  const auto family = to_family(std::to_integer<std::uint8_t>(v[0]));
  const auto code = decode_class_number(v[2], v[3]);
  if (!family || !code) return codec_error::bad_attribute_value;
  return address_error_value{*family, *code, as_string(v.subspan(4))};
}

result<password_algorithm> decode_password_algorithm(const attribute_view& a) {
  // RFC 8489 §14.12: algorithm, parameters length, parameters.
  const auto v = a.value;
  if (v.size() < 4) return codec_error::bad_attribute_value;
  const std::size_t params = load16(v.data() + 2);
  if (4 + params != v.size()) return codec_error::bad_attribute_value;
  return static_cast<password_algorithm>(load16(v.data()));
}

result<std::size_t> decode_password_algorithms(const attribute_view& a,
                                               std::span<std::uint16_t> out) {
  // RFC 8489 §14.11: a list of (algorithm, parameters length, parameters
  // padded to 4 bytes); the last entry's padding is the attribute's padding.
  const auto v = a.value;
  std::size_t off = 0;
  std::size_t n = 0;
  while (off < v.size()) {
    if (v.size() - off < 4) return codec_error::bad_attribute_value;
    const std::uint16_t alg = load16(v.data() + off);
    const std::size_t params = load16(v.data() + off + 2);
    off += 4;
    if (params > v.size() - off) return codec_error::bad_attribute_value;
    off += params;
    if (off < v.size()) {  // not the last entry: its padding must be there
      const std::size_t padding = pad4(params) - params;
      if (padding > v.size() - off) return codec_error::bad_attribute_value;
      off += padding;
    }
    if (n < out.size()) out[n++] = alg;
  }
  return n;
}

result<std::size_t> decode_unknown_attributes(const attribute_view& a,
                                              std::span<std::uint16_t> out) {
  const auto v = a.value;
  if (v.size() % 2 != 0) return codec_error::bad_attribute_value;
  std::size_t n = 0;
  for (std::size_t off = 0; off < v.size() && n < out.size(); off += 2) {
    out[n++] = load16(v.data() + off);
  }
  return n;
}

// ---- integrity ----
bool check_message_integrity(const message_view& m, bytes_view key) {
  return integrity_matches(m, attr::message_integrity, detail::hmac_digest::sha1, key);
}

bool check_message_integrity_sha256(const message_view& m, bytes_view key) {
  return integrity_matches(m, attr::message_integrity_sha256, detail::hmac_digest::sha256, key);
}

std::uint32_t fingerprint_of(bytes_view data) { return detail::crc32(data) ^ fingerprint_xor; }

}  // namespace anyturn::stun
