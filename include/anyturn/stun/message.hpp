// anyturn::stun — a sans-I/O codec for STUN (RFC 8489), its TURN attributes
// (RFC 8656, RFC 6156) and TURN ChannelData.
//
// Parsing is a pure function over a byte span: it returns views into the
// caller's buffer, never allocates, never logs and never throws. Building
// writes into a caller-provided buffer. Errors are values (`codec_error`),
// and `codec_error::need_more` is a status used to frame stream transports.
#pragma once

#include <anyturn/stun/endpoint.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <system_error>
#include <utility>

namespace anyturn::stun {

using bytes_view = std::span<const std::byte>;
using mutable_bytes = std::span<std::byte>;

inline constexpr std::uint32_t magic_cookie = 0x2112A442;
inline constexpr std::size_t header_size = 20;
inline constexpr std::size_t channel_data_header_size = 4;
inline constexpr std::uint32_t fingerprint_xor = 0x5354554E;
// Largest message the codec accepts or builds (fits any UDP datagram).
inline constexpr std::size_t max_message_size = 65535 + header_size;
// Attributes a parsed message may carry; more than this is malformed.
inline constexpr std::size_t max_attributes = 40;

// ---- methods and classes (RFC 8489 §5, RFC 8656 §18) ----
enum class method : std::uint16_t {
  binding = 0x001,
  allocate = 0x003,
  refresh = 0x004,
  send = 0x006,
  data = 0x007,
  create_permission = 0x008,
  channel_bind = 0x009,
  // RFC 6062 (TCP relay allocations)
  connect = 0x00A,
  connection_bind = 0x00B,
  connection_attempt = 0x00C,
};

enum class message_class : std::uint8_t {
  request = 0b00,
  indication = 0b01,
  success_response = 0b10,
  error_response = 0b11,
};

// Message type field <-> (method, class), RFC 8489 §5 bit layout.
std::uint16_t compose_type(std::uint16_t method, message_class cls);
std::uint16_t type_method(std::uint16_t type);
message_class type_class(std::uint16_t type);

// ---- attribute types ----
namespace attr {
inline constexpr std::uint16_t mapped_address = 0x0001;
// RFC 5780 §7.2: comprehension-required, yet not known() here: only a
// Binding request to a server with an alternate address honours it; every
// other request answers it with 420 like any unknown attribute.
inline constexpr std::uint16_t change_request = 0x0003;
inline constexpr std::uint16_t username = 0x0006;
inline constexpr std::uint16_t message_integrity = 0x0008;
inline constexpr std::uint16_t error_code = 0x0009;
inline constexpr std::uint16_t unknown_attributes = 0x000A;
inline constexpr std::uint16_t channel_number = 0x000C;
inline constexpr std::uint16_t lifetime = 0x000D;
inline constexpr std::uint16_t xor_peer_address = 0x0012;
inline constexpr std::uint16_t data = 0x0013;
inline constexpr std::uint16_t realm = 0x0014;
inline constexpr std::uint16_t nonce = 0x0015;
inline constexpr std::uint16_t xor_relayed_address = 0x0016;
inline constexpr std::uint16_t requested_address_family = 0x0017;
inline constexpr std::uint16_t even_port = 0x0018;
inline constexpr std::uint16_t requested_transport = 0x0019;
inline constexpr std::uint16_t dont_fragment = 0x001A;
inline constexpr std::uint16_t message_integrity_sha256 = 0x001C;
inline constexpr std::uint16_t password_algorithm = 0x001D;
inline constexpr std::uint16_t userhash = 0x001E;
inline constexpr std::uint16_t xor_mapped_address = 0x0020;
inline constexpr std::uint16_t reservation_token = 0x0022;
inline constexpr std::uint16_t connection_id = 0x002A;  // RFC 6062 §6.2.1, 32 bits
// ICE (RFC 8445): a Binding request from an ICE agent may carry these; a
// STUN server answers it like any Binding, so they count as understood.
inline constexpr std::uint16_t priority = 0x0024;
// RFC 5780 §7.5, §7.6: understood like CHANGE-REQUEST (Binding with an
// alternate address only).
inline constexpr std::uint16_t padding = 0x0026;
inline constexpr std::uint16_t response_port = 0x0027;
inline constexpr std::uint16_t use_candidate = 0x0025;
// comprehension-optional (>= 0x8000)
inline constexpr std::uint16_t additional_address_family = 0x8000;
inline constexpr std::uint16_t address_error_code = 0x8001;
inline constexpr std::uint16_t password_algorithms = 0x8002;
inline constexpr std::uint16_t alternate_domain = 0x8003;
inline constexpr std::uint16_t icmp = 0x8004;
inline constexpr std::uint16_t software = 0x8022;
inline constexpr std::uint16_t alternate_server = 0x8023;
inline constexpr std::uint16_t fingerprint = 0x8028;
inline constexpr std::uint16_t ice_controlled = 0x8029;
inline constexpr std::uint16_t ice_controlling = 0x802A;
inline constexpr std::uint16_t response_origin = 0x802B;  // RFC 5780 §7.3, plain address
inline constexpr std::uint16_t other_address = 0x802C;    // RFC 5780 §7.4, plain address

constexpr bool comprehension_required(std::uint16_t type) { return type < 0x8000; }
// True for every comprehension-required attribute this codec understands.
bool known(std::uint16_t type);
}  // namespace attr

// PASSWORD-ALGORITHM values (RFC 8489 §18.5)
enum class password_algorithm : std::uint16_t { md5 = 0x0001, sha256 = 0x0002 };

// ---- errors ----
enum class codec_error {
  need_more = 1,         // a stream holds a prefix of a frame; read more
  not_stun,              // first two bits / magic cookie do not match
  bad_length,            // header length not a multiple of 4, or past the buffer
  truncated_attribute,   // attribute runs past the message end
  too_many_attributes,   // more than max_attributes
  bad_fingerprint,       // FINGERPRINT present and wrong, or not last
  bad_attribute_value,   // an attribute's value has the wrong size or content
  attribute_missing,     // a decoder was asked for an attribute that is absent
  not_channel_data,      // channel number outside 0x4000-0x7FFF
  buffer_too_small,      // builder ran out of room
  too_large,             // stream frame longer than the configured limit
};
const std::error_category& codec_category() noexcept;
std::error_code make_error_code(codec_error e) noexcept;

template <typename T>
struct result {  // minimal expected<T, error_code>; no heap
  std::optional<T> value;
  std::error_code error;
  result(T v) : value(std::move(v)) {}  // NOLINT(google-explicit-constructor)
  result(codec_error e) : error(make_error_code(e)) {}  // NOLINT
  [[nodiscard]] bool has_value() const { return value.has_value(); }
  explicit operator bool() const { return has_value(); }
  T& operator*() { return *value; }
  const T& operator*() const { return *value; }
  T* operator->() { return &*value; }
  const T* operator->() const { return &*value; }
};

// ---- framing: what a buffer holds ----
enum class frame_kind { stun, channel_data, other };
// Looks only at the first byte (RFC 7983 demultiplexing): 0-3 STUN, 64-127 ChannelData.
frame_kind classify(bytes_view data);

// For stream transports (TCP/TLS). Returns the length of the first frame in
// `data`, including ChannelData padding to 4 bytes (RFC 8656 §12.5), or
// need_more, not_stun, too_large (bad_length when a STUN header's length is
// not a multiple of 4). Every error except need_more means the stream is
// desynchronised and must be closed.
result<std::size_t> stream_frame_length(bytes_view data, std::size_t max_frame);

// ---- parsed views ----
struct transaction_id {
  std::array<std::byte, 12> bytes{};
  friend bool operator==(const transaction_id&, const transaction_id&) = default;
};

struct attribute_view {
  std::uint16_t type = 0;
  bytes_view value;        // without padding
  std::size_t offset = 0;  // offset of the attribute header within the message
};

class message_view {
 public:
  [[nodiscard]] std::uint16_t type() const { return type_; }
  [[nodiscard]] std::uint16_t method() const { return type_method(type_); }
  [[nodiscard]] message_class cls() const { return type_class(type_); }
  [[nodiscard]] const transaction_id& tid() const { return tid_; }
  [[nodiscard]] bytes_view raw() const { return raw_; }  // the whole message
  // The attributes that count, in wire order. RFC 8489 §14.5/§14.6: the
  // view ends at the first MESSAGE-INTEGRITY or MESSAGE-INTEGRITY-SHA256;
  // after it only MESSAGE-INTEGRITY-SHA256 (following MESSAGE-INTEGRITY)
  // and FINGERPRINT are kept. Attributes the integrity does not cover are
  // not reachable through the view at all (see ignored()).
  [[nodiscard]] std::span<const attribute_view> attributes() const {
    return {attrs_.data(), count_};
  }
  // First attribute of that type among attributes(), if any.
  [[nodiscard]] std::optional<attribute_view> find(std::uint16_t type) const;
  [[nodiscard]] bool has(std::uint16_t type) const { return find(type).has_value(); }
  [[nodiscard]] bool has_fingerprint() const { return has_fingerprint_; }
  // How many attributes followed the integrity attribute and were dropped
  // from the view (framed and counted against max_attributes, never kept).
  [[nodiscard]] std::size_t ignored() const { return ignored_; }

  // Comprehension-required attribute types this codec does not know,
  // up to `out.size()`; returns how many were written.
  std::size_t unknown_required(std::span<std::uint16_t> out) const;

 private:
  friend result<message_view> parse_message(bytes_view);
  bytes_view raw_;
  std::uint16_t type_ = 0;
  transaction_id tid_;
  std::array<attribute_view, max_attributes> attrs_{};
  std::size_t count_ = 0;        // attributes in attrs_ (the ones that count)
  std::size_t ignored_ = 0;      // attributes after the integrity cut, not kept
  bool has_fingerprint_ = false;
};

// Parses one whole STUN message. Checks header, lengths, attribute framing,
// and FINGERPRINT when present (a bad one is codec_error::bad_fingerprint).
result<message_view> parse_message(bytes_view data);

// ---- attribute decoders ----
// (XOR-)address attributes; `xored` for XOR-* types.
result<endpoint> decode_address(const attribute_view& a, const transaction_id& tid, bool xored);
result<std::uint32_t> decode_u32(const attribute_view& a);      // LIFETIME, FINGERPRINT...
result<std::string_view> decode_string(const attribute_view& a, std::size_t max_len);
struct error_code_value { int code = 0; std::string_view reason; };
result<error_code_value> decode_error_code(const attribute_view& a);
result<std::uint16_t> decode_channel_number(const attribute_view& a);
result<std::uint8_t> decode_requested_transport(const attribute_view& a);   // protocol number
result<address_family> decode_address_family(const attribute_view& a);    // REQUESTED/ADDITIONAL-ADDRESS-FAMILY
result<bool> decode_even_port(const attribute_view& a);                    // the R bit
result<std::uint64_t> decode_reservation_token(const attribute_view& a);
struct address_error_value { address_family family; int code = 0; std::string_view reason; };
result<address_error_value> decode_address_error_code(const attribute_view& a);
result<password_algorithm> decode_password_algorithm(const attribute_view& a);
// CHANGE-REQUEST (RFC 5780 §7.2): four bytes, flags A (change IP, 0x4) and
// B (change port, 0x2) in the last; the other bits are ignored.
struct change_request_value {
  bool change_ip = false;
  bool change_port = false;
  friend bool operator==(const change_request_value&, const change_request_value&) = default;
};
result<change_request_value> decode_change_request(const attribute_view& a);
// RESPONSE-PORT (RFC 5780 §7.5): a 16-bit port, then two bytes of padding.
result<std::uint16_t> decode_response_port(const attribute_view& a);
// PASSWORD-ALGORITHMS: writes up to out.size() algorithm numbers, returns count.
result<std::size_t> decode_password_algorithms(const attribute_view& a, std::span<std::uint16_t> out);
// UNKNOWN-ATTRIBUTES: writes up to out.size() types, returns count.
result<std::size_t> decode_unknown_attributes(const attribute_view& a, std::span<std::uint16_t> out);

// ---- integrity (RFC 8489 §14.5, §14.6, §14.7) ----
// `key` is the long-term key: MD5(user:realm:pass) for MESSAGE-INTEGRITY,
// SHA-256(user:realm:pass) for MESSAGE-INTEGRITY-SHA256 (or the short-term password).
bool check_message_integrity(const message_view& m, bytes_view key);
bool check_message_integrity_sha256(const message_view& m, bytes_view key);

// ---- builder ----
// Writes a message into `out`. Any failure (out of room, bad input) makes the
// builder sticky-failed: further adds do nothing and finish() returns an error.
class message_builder {
 public:
  message_builder(mutable_bytes out, std::uint16_t method, message_class cls,
                  const transaction_id& tid);

  message_builder& add_bytes(std::uint16_t type, bytes_view value);
  message_builder& add_string(std::uint16_t type, std::string_view value);
  message_builder& add_u32(std::uint16_t type, std::uint32_t value);
  message_builder& add_address(std::uint16_t type, const endpoint& ep, bool xored);
  message_builder& add_error_code(int code, std::string_view reason);
  message_builder& add_unknown_attributes(std::span<const std::uint16_t> types);
  message_builder& add_channel_number(std::uint16_t channel);
  message_builder& add_requested_transport(std::uint8_t protocol);
  message_builder& add_address_family(std::uint16_t type, address_family family);
  message_builder& add_even_port(bool reserve);
  message_builder& add_reservation_token(std::uint64_t token);
  message_builder& add_address_error_code(address_family family, int code, std::string_view reason);
  message_builder& add_password_algorithm(password_algorithm alg);
  message_builder& add_password_algorithms(std::span<const password_algorithm> algs);
  message_builder& add_change_request(bool change_ip, bool change_port);  // RFC 5780 §7.2
  message_builder& add_response_port(std::uint16_t port);                 // RFC 5780 §7.5
  message_builder& add_flag(std::uint16_t type);  // zero-length (DONT-FRAGMENT)
  // Reserves a DATA attribute of `len` bytes and returns where to write it,
  // so payloads can be copied once (or empty span on failure).
  mutable_bytes add_data_slot(std::size_t len);

  message_builder& add_message_integrity(bytes_view key);
  message_builder& add_message_integrity_sha256(bytes_view key);
  message_builder& add_fingerprint();

  [[nodiscard]] bool ok() const { return ok_; }
  [[nodiscard]] std::size_t size() const { return size_; }
  // The finished message, or the first failure: buffer_too_small (out of
  // room) or bad_attribute_value (bad input, or an attribute added after
  // MESSAGE-INTEGRITY / FINGERPRINT in an order RFC 8489 §14.5-14.7 forbids).
  result<bytes_view> finish() const;

 private:
  mutable_bytes attr_header(std::uint16_t type, std::size_t len);
  void set_length(std::size_t body_len);
  bool enter_stage(std::uint8_t stage);  // enforces MI < MI-SHA256 < FINGERPRINT order
  void fail(codec_error e);
  mutable_bytes out_;
  std::size_t size_ = 0;
  bool ok_ = true;
  transaction_id tid_;
  std::uint8_t stage_ = 0;  // 0 attributes, 1 after MI, 2 after MI-SHA256, 3 after FINGERPRINT
  codec_error error_ = codec_error::buffer_too_small;
};

// ---- ChannelData (RFC 8656 §12.4) ----
inline constexpr std::uint16_t min_channel = 0x4000;
inline constexpr std::uint16_t max_channel = 0x7FFF;  // RFC 5766 range, used by coturn's clients
constexpr bool valid_channel(std::uint16_t ch) { return ch >= min_channel && ch <= max_channel; }

struct channel_data_view {
  std::uint16_t channel = 0;
  bytes_view payload;
};
// Parses one ChannelData message from a datagram (padding optional) or a
// stream frame (padding included in the frame).
result<channel_data_view> parse_channel_data(bytes_view data);
// Writes the 4-byte header for `payload_len` into `out`.
void write_channel_data_header(mutable_bytes out, std::uint16_t channel, std::uint16_t payload_len);

// ---- Data indication (RFC 8656 §11.4), written around a payload in place ----
// Longest prefix: STUN header, XOR-PEER-ADDRESS (IPv6) and DATA's header.
inline constexpr std::size_t max_data_indication_prefix = header_size + 4 + 20 + 4;
// Writes the part of a Data indication that comes before its payload: the
// header (its length covering the padded payload), XOR-PEER-ADDRESS and the
// DATA attribute's type and length. On the wire the `payload_len` bytes of
// payload follow it, then padding_of(payload_len) zero bytes. Returns the
// prefix's size, or 0 when `out` is too small or the payload too long.
std::size_t write_data_indication_prefix(mutable_bytes out, const transaction_id& tid,
                                         const endpoint& peer, std::size_t payload_len);
// Zero bytes that pad `len` to a multiple of 4 (STUN attributes, ChannelData on streams).
constexpr std::size_t padding_of(std::size_t len) { return (4 - len % 4) % 4; }

// CRC-32 of `data` XORed with 0x5354554E (RFC 8489 §14.7).
std::uint32_t fingerprint_of(bytes_view data);

}  // namespace anyturn::stun

template <>
struct std::is_error_code_enum<anyturn::stun::codec_error> : std::true_type {};
