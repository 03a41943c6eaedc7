// A small blocking TURN client for the integration tests.
//
// It speaks UDP to a real anyturn daemon, builds every request with the
// project's own STUN codec, and implements the client side of RFC 8489's
// long-term credential mechanism (401 -> REALM/NONCE -> MESSAGE-INTEGRITY,
// 438 -> new NONCE) and of RFC 8656 (Allocate, Refresh, CreatePermission,
// ChannelBind, Send/Data indications, ChannelData). Requests are
// retransmitted with the same transaction id until a response arrives or the
// timeout passes, as RFC 8489 §6.2.1 asks of a UDP client.
//
// Packets that arrive while a transaction is waiting but do not belong to it
// (Data indications, ChannelData) are queued and handed out by recv_data().
#pragma once

#include <anyturn/auth/credentials.hpp>
#include <anyturn/stun/message.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace anyturn::itest {

using bytes = std::vector<std::byte>;
using namespace std::chrono_literals;

inline constexpr std::chrono::milliseconds response_timeout = 2000ms;
inline constexpr std::chrono::milliseconds silence_timeout = 400ms;

bytes to_bytes(std::string_view s);
std::string to_string(stun::bytes_view b);

// A bound, blocking UDP socket (IPv4 or IPv6).
class udp_socket {
 public:
  explicit udp_socket(const stun::endpoint& bind_to);
  ~udp_socket();
  udp_socket(const udp_socket&) = delete;
  udp_socket& operator=(const udp_socket&) = delete;

  [[nodiscard]] const stun::endpoint& local() const { return local_; }
  void send_to(const stun::endpoint& to, stun::bytes_view data) const;
  struct datagram {
    stun::endpoint from;
    bytes data;
  };
  // Waits up to `timeout` for one datagram.
  std::optional<datagram> recv(std::chrono::milliseconds timeout) const;

 private:
  int fd_ = -1;
  stun::endpoint local_;
};

// A received STUN message that owns its bytes.
class stun_message {
 public:
  explicit stun_message(bytes raw);  // raw must parse (check with parse_message first)
  [[nodiscard]] const stun::message_view& view() const { return *view_; }
  [[nodiscard]] const bytes& raw() const { return *raw_; }
  [[nodiscard]] std::uint16_t method() const { return view_->method(); }
  [[nodiscard]] stun::message_class cls() const { return view_->cls(); }
  [[nodiscard]] bool is_success() const { return cls() == stun::message_class::success_response; }
  [[nodiscard]] bool is_error() const { return cls() == stun::message_class::error_response; }
  // The ERROR-CODE number, or 0 when there is none.
  [[nodiscard]] int error_code() const;
  [[nodiscard]] bool has(std::uint16_t type) const { return view_->has(type); }
  [[nodiscard]] std::optional<stun::endpoint> address(std::uint16_t type) const;  // XOR-* types
  [[nodiscard]] std::optional<std::string> string(std::uint16_t type) const;
  [[nodiscard]] std::optional<std::uint32_t> u32(std::uint16_t type) const;
  [[nodiscard]] std::optional<bytes> value(std::uint16_t type) const;
  [[nodiscard]] std::vector<std::uint16_t> unknown_attributes() const;
  [[nodiscard]] std::vector<std::uint16_t> password_algorithms() const;
  // Checks MESSAGE-INTEGRITY (MD5 long-term key) or MESSAGE-INTEGRITY-SHA256.
  [[nodiscard]] bool integrity_ok(stun::bytes_view key) const;
  [[nodiscard]] bool integrity_sha256_ok(stun::bytes_view key) const;
  // A readable one-line summary for assertion messages.
  [[nodiscard]] std::string describe() const;

 private:
  std::shared_ptr<const bytes> raw_;
  std::shared_ptr<const stun::message_view> view_;
};

// "no response" or the message's one-line description, for failure output.
std::string describe(const std::optional<stun_message>& m);

// base64(HMAC-SHA1(secret, username)): a TURN REST password, computed with
// OpenSSL directly, independent of the server's code.
std::string rest_password(const std::string& secret, const std::string& username);

// Wall-clock seconds, for REST usernames' expiry.
std::int64_t unix_now();

inline stun::endpoint v4_loopback(std::uint16_t port = 0) { return stun::endpoint::v4(0x7F000001u, port); }

// What arrived from a peer through the relay.
struct relayed_data {
  enum class kind { data_indication, channel_data } how = kind::data_indication;
  std::optional<stun::endpoint> peer;  // Data indication: XOR-PEER-ADDRESS
  std::uint16_t channel = 0;           // ChannelData: the channel
  bytes payload;
};

// A ChannelData message or Data indication from the server, decoded; nullopt
// for anything else (e.g. a late duplicate response to a retransmission).
std::optional<relayed_data> decode_relayed(bytes frame);

struct credentials {
  std::string username;
  std::string password;
  bool sha256 = false;  // use PASSWORD-ALGORITHM SHA-256 + MESSAGE-INTEGRITY-SHA256
};

// Adds the method-specific attributes of a request.
using attribute_writer = std::function<void(stun::message_builder&)>;

class turn_client {
 public:
  turn_client(stun::endpoint server, stun::endpoint bind_to);
  // Binds the wildcard-free loopback address of the server's family.
  explicit turn_client(stun::endpoint server);

  [[nodiscard]] const stun::endpoint& local() const { return socket_.local(); }
  [[nodiscard]] const stun::endpoint& server() const { return server_; }

  void set_credentials(credentials c);
  // The realm and nonce learned from the last 401/438, if any.
  [[nodiscard]] const std::string& realm() const { return realm_; }
  [[nodiscard]] const std::string& nonce() const { return nonce_; }
  // The long-term keys, once the realm is known.
  [[nodiscard]] std::optional<stun::bytes_view> md5_key() const;
  [[nodiscard]] std::optional<stun::bytes_view> sha256_key() const;
  // Takes REALM, NONCE and PASSWORD-ALGORITHMS from a 401/438 and derives
  // the keys; false when the response lacks them or no credentials are set.
  bool learn_challenge(const stun_message& response);

  static stun::transaction_id random_tid();

  // Builds a request; signs it when `authenticate` and a realm/nonce are known.
  bytes build_request(stun::method m, const stun::transaction_id& tid,
                      const attribute_writer& attrs, bool authenticate,
                      bool fingerprint = true) const;

  // Sends `request` (retransmitting the same bytes, RTO 250 ms doubling)
  // until a response with its transaction id arrives or `timeout` passes.
  std::optional<stun_message> exchange(const bytes& request,
                                       std::chrono::milliseconds timeout = response_timeout);

  // One request, with the long-term credential dance when credentials are
  // set: an unauthenticated first try (or a signed one when a nonce is
  // known), then on 401/438 with REALM+NONCE one signed retry with a new
  // transaction id. Returns the last response.
  std::optional<stun_message> request(stun::method m, const attribute_writer& attrs,
                                      std::chrono::milliseconds timeout = response_timeout);
  // Same, without credentials even if some are set.
  std::optional<stun_message> request_unauthenticated(stun::method m, const attribute_writer& attrs,
                                                      std::chrono::milliseconds timeout = response_timeout);

  // ---- TURN operations ----
  std::optional<stun_message> binding();
  struct allocate_options {
    std::uint8_t transport = 17;  // UDP
    std::optional<stun::address_family> family;
    std::optional<std::uint32_t> lifetime;
    std::optional<bool> even_port;  // value: the R bit
    bool dont_fragment = false;
  };
  std::optional<stun_message> allocate(const allocate_options& o);
  std::optional<stun_message> allocate() { return allocate(allocate_options{}); }
  std::optional<stun_message> refresh(std::uint32_t lifetime);
  std::optional<stun_message> create_permission(const std::vector<stun::endpoint>& peers);
  std::optional<stun_message> channel_bind(std::uint16_t channel, const stun::endpoint& peer);

  void send_indication(const stun::endpoint& peer, stun::bytes_view payload);
  void send_channel_data(std::uint16_t channel, stun::bytes_view payload);
  // Sends raw bytes to the server.
  void send_raw(stun::bytes_view data);

  // The next Data indication or ChannelData from the server.
  std::optional<relayed_data> recv_data(std::chrono::milliseconds timeout = response_timeout);
  // The next datagram of any kind from the server (queued ones first).
  std::optional<bytes> recv_raw(std::chrono::milliseconds timeout);

 private:
  std::optional<stun_message> request_impl(stun::method m, const attribute_writer& attrs,
                                           std::chrono::milliseconds timeout, bool use_credentials);

  stun::endpoint server_;
  udp_socket socket_;
  std::optional<credentials> credentials_;
  std::string realm_;
  std::string nonce_;
  std::optional<auth::md5_key> md5_key_;
  std::optional<auth::sha256_key> sha256_key_;
  bytes password_algorithms_;  // the value the server offered, echoed back
  std::deque<bytes> inbox_;    // datagrams not yet consumed
};

// Loopback address of the same family as `ep`, port 0.
stun::endpoint loopback_like(const stun::endpoint& ep);

}  // namespace anyturn::itest
