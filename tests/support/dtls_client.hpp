// A small blocking TURN client over DTLS 1.2 for the integration tests.
//
// A connected UDP socket with OpenSSL's datagram BIO: OpenSSL answers the
// server's HelloVerifyRequest by itself. Each record carries one STUN or
// ChannelData message. No certificate verification (the tests check the
// transport, not PKI). It can also send raw datagrams on its socket
// (garbage, a bare ClientHello) to probe the stateless listener.
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

namespace anyturn::itest {

class dtls_client {
 public:
  explicit dtls_client(stun::endpoint server);
  ~dtls_client();
  dtls_client(const dtls_client&) = delete;
  dtls_client& operator=(const dtls_client&) = delete;

  // The DTLS handshake (cookie exchange included). False with last_error().
  bool connect(std::chrono::milliseconds timeout = std::chrono::seconds{5});
  [[nodiscard]] const std::string& last_error() const { return error_; }
  [[nodiscard]] const stun::endpoint& local() const { return local_; }
  // The server's certificate (DER) after connect(); empty without one.
  [[nodiscard]] std::string peer_certificate_der() const;

  void set_credentials(credentials c) { auth_.set_credentials(std::move(c)); }

  // Straight onto the UDP socket, no DTLS.
  bool send_plain(stun::bytes_view data);
  // Waits up to `timeout` for any datagram on the socket (raw).
  std::optional<bytes> recv_plain(std::chrono::milliseconds timeout);

  // One record.
  bool send_record(stun::bytes_view data);
  std::optional<bytes> recv_record(std::chrono::milliseconds timeout = response_timeout);
  // True when the server's close_notify (or a fatal alert) arrives within `timeout`.
  bool wait_closed(std::chrono::milliseconds timeout);
  // Sends our close_notify.
  void shutdown();

  std::optional<stun_message> request(stun::method m, const attribute_writer& attrs,
                                      std::chrono::milliseconds timeout = response_timeout);
  std::optional<stun_message> allocate();
  std::optional<stun_message> create_permission(const stun::endpoint& peer);
  std::optional<stun_message> channel_bind(std::uint16_t channel, const stun::endpoint& peer);
  std::optional<relayed_data> recv_data(std::chrono::milliseconds timeout = response_timeout);

 private:
  bytes build_request(stun::method m, const attribute_writer& attrs, bool authenticate) const;
  std::optional<stun_message> exchange(const bytes& request, std::chrono::milliseconds timeout);

  stun::endpoint server_;
  int fd_ = -1;
  struct ssl_state;
  std::unique_ptr<ssl_state> ssl_;
  stun::endpoint local_;
  std::string error_;
  bool connected_ = false;
  bool closed_ = false;
  std::deque<bytes> inbox_;
  long_term_auth auth_;
};

}  // namespace anyturn::itest
