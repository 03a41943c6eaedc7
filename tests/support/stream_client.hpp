// A small blocking TURN client over TCP or TLS for the integration tests.
//
// It frames what the server sends with the project's own
// stun::stream_frame_length (STUN back to back, ChannelData padded to 4
// bytes), speaks the long-term credential mechanism like turn_client, and
// lets a test misbehave on purpose: split a message across writes, send
// garbage, stop reading, close mid-message. TLS goes through OpenSSL
// directly (no certificate verification: the tests check framing and
// transport, not PKI); ALPN can be offered.
#pragma once

#include "long_term_auth.hpp"
#include "turn_client.hpp"

#include <anyturn/stun/message.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <sys/types.h>

namespace anyturn::itest {

class stream_client {
 public:
  struct options {
    bool tls = false;
    std::vector<std::string> alpn;  // protocols to offer (TLS only)
    int receive_buffer = 0;         // SO_RCVBUF before connect; 0 = system default
    bool handshake = true;          // TLS: run the handshake in connect()
    std::optional<stun::endpoint> bind;  // local address to connect from (port 0: any)
    bytes preamble;  // written to the TCP socket right after connect, before TLS (a PROXY header)
  };

  stream_client(stun::endpoint server, options o);
  ~stream_client();
  stream_client(const stream_client&) = delete;
  stream_client& operator=(const stream_client&) = delete;

  // Connects (and handshakes for TLS). False with last_error() on failure.
  bool connect(std::chrono::milliseconds timeout = std::chrono::seconds{5});
  [[nodiscard]] const std::string& last_error() const { return error_; }
  [[nodiscard]] std::string alpn_selected() const;  // empty when none
  [[nodiscard]] const stun::endpoint& local() const { return local_; }

  void set_credentials(credentials c) { auth_.set_credentials(std::move(c)); }

  // Raw writes: through TLS when TLS is on. False once the connection broke.
  bool send_raw(stun::bytes_view data);
  // Writes `data` in `pieces` parts with `gap` between them.
  bool send_in_pieces(stun::bytes_view data, std::size_t pieces, std::chrono::milliseconds gap);
  // Writes straight to the TCP socket, bypassing TLS (garbage handshakes).
  bool send_plain(stun::bytes_view data);

  // The next complete frame from the server (queued ones first).
  std::optional<bytes> recv_frame(std::chrono::milliseconds timeout = response_timeout);
  // True when the server closes the connection (EOF or reset) within `timeout`.
  bool wait_closed(std::chrono::milliseconds timeout);
  // TLS: waits until the server ends the session. true when it sent
  // close_notify first, false when the connection ended without one;
  // nullopt when it is still open after `timeout`.
  std::optional<bool> wait_close_notify(std::chrono::milliseconds timeout);
  // How the stream ended, for failure messages: "close_notify", or the
  // SSL_get_error code, errno and OpenSSL's error queue; "eof" for TCP.
  [[nodiscard]] const std::string& close_detail() const { return close_detail_; }
  // TLS: sends our close_notify, then waits for the server's answer. true
  // when it came within `timeout` (SSL_shutdown completed).
  bool shutdown_tls(std::chrono::milliseconds timeout);

  // A request, with the long-term credential dance when credentials are
  // set; frames that are not its response are queued for recv_frame/recv_data.
  bytes build_request(stun::method m, const attribute_writer& attrs, bool authenticate,
                      stun::transaction_id* tid_out = nullptr) const;
  std::optional<stun_message> exchange(const bytes& request,
                                       std::chrono::milliseconds timeout = response_timeout);
  std::optional<stun_message> request(stun::method m, const attribute_writer& attrs,
                                      std::chrono::milliseconds timeout = response_timeout);
  std::optional<stun_message> binding();
  std::optional<stun_message> allocate(std::optional<std::uint32_t> lifetime = std::nullopt);
  std::optional<stun_message> refresh(std::uint32_t lifetime);
  std::optional<stun_message> create_permission(const stun::endpoint& peer);
  std::optional<stun_message> channel_bind(std::uint16_t channel, const stun::endpoint& peer);

  // ChannelData with the stream padding (RFC 8656 §12.5), as bytes.
  static bytes channel_data(std::uint16_t channel, stun::bytes_view payload);
  static bytes send_indication(const stun::endpoint& peer, stun::bytes_view payload);

  std::optional<relayed_data> recv_data(std::chrono::milliseconds timeout = response_timeout);

  void close();

  // RFC 6062 data connections: after ConnectionBind the stream carries raw
  // bytes. The socket (plain TCP), and the bytes received but not framed.
  [[nodiscard]] int native_handle() const { return fd_; }
  bytes take_unframed() { return std::exchange(buffer_, {}); }

 private:
  bool fill(std::chrono::milliseconds timeout);  // reads more bytes into buffer_
  std::optional<bytes> take_frame();

  stun::endpoint server_;
  options options_;
  int fd_ = -1;
  struct ssl_state;
  std::unique_ptr<ssl_state> ssl_;
  stun::endpoint local_;
  std::string error_;
  bool closed_ = false;
  bool close_notify_received_ = false;  // TLS: the server's close_notify ended the stream
  std::string close_detail_;            // close_detail()

  bytes buffer_;  // received, not yet framed
  std::deque<bytes> inbox_;

  long_term_auth auth_;
};

// VmRSS of a process in KiB (from /proc/PID/status), 0 if unreadable.
std::uint64_t rss_kib(pid_t pid);

}  // namespace anyturn::itest
