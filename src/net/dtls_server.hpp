// anyturn::net (internal) — a worker's DTLS server: TURN over DTLS 1.2
// (RFC 8656 §3.1, RFC 6347) on the worker's DTLS listener sockets.
//
// Datagrams from an address without a session go through one listening SSL
// object per listener (DTLSv1_listen): a ClientHello without a valid cookie
// is answered with a HelloVerifyRequest (dtls_cookie_jar) and forgotten,
// anything else is dropped; nothing is kept for the sender. Only a
// ClientHello that returns a valid cookie (so the client receives at its
// address) becomes a session: that SSL object moves into the session table
// (keyed by listener and client address) and the listener gets a new one.
//
// A session's SSL object talks to the socket through a BIO of our own: a
// read returns the one datagram being handled, a write sends one datagram
// through the host. Decrypted records (STUN or ChannelData) go to the host,
// which hands them to the TURN core with a `dtls` client_ref; the core's
// replies come back through send() and leave encrypted.
//
// Timers run on the worker's tick: handshake retransmissions and timeouts,
// the idle timeout, the cookie secret's rotation. Sessions count against the
// shared connection_limiter (streams.max_connections and _per_ip).
//
// Worker thread only. Handshakes may allocate; a record of an established
// session is read and written through preallocated buffers.
#pragma once

#include "dtls_cookie.hpp"

#include <anyturn/common/log_limiter.hpp>
#include <anyturn/net/connection_limiter.hpp>
#include <anyturn/net/counters.hpp>
#include <anyturn/net/tls.hpp>
#include <anyturn/relay/counters.hpp>
#include <anyturn/relay/io.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

struct ssl_st;
struct ssl_ctx_st;
union bio_addr_st;

namespace anyturn::net::detail {

// What the DTLS server needs from its worker.
class dtls_host {
 public:
  // Sends `datagram` on DTLS listener `listener` to `to`, from `local` (the
  // address the client reached, for wildcard listeners).
  virtual void dtls_send(std::uint32_t listener, const stun::endpoint& to, const stun::endpoint& local,
                         stun::bytes_view datagram) = 0;
  // A decrypted record from an established session.
  virtual void dtls_deliver(const relay::client_ref& from, stun::bytes_view record,
                            const relay::now_t& now) = 0;
  // Session `ref` ended: its allocation ends with it.
  virtual void dtls_closed(const relay::client_ref& ref, const relay::now_t& now) = 0;

 protected:
  ~dtls_host() = default;
};

struct dtls_settings {
  std::chrono::milliseconds handshake_timeout{10'000};  // cookie returned -> handshake done
  std::chrono::milliseconds idle_timeout{900'000};      // no record from the client
  std::size_t mtu = 1200;                               // DTLS datagrams we send, at most
  std::int64_t cookie_rotation_ms = dtls_cookie_jar::default_rotation_ms;
};

enum class dtls_close { handshake_failed, handshake_timeout, idle_timeout, error, peer_closed, replaced, shutdown };
const char* to_string(dtls_close why);

struct dtls_link;

class dtls_server {
 public:
  dtls_server(dtls_host& host, unsigned worker_index, dtls_settings settings, net_counters& counters,
              std::shared_ptr<connection_limiter> limiter);
  ~dtls_server();
  dtls_server(const dtls_server&) = delete;
  dtls_server& operator=(const dtls_server&) = delete;

  // New handshakes use a DTLS context with the certificate and key of
  // `tls` from now on; sessions keep theirs. False (the old context stays)
  // with a reason in `error`.
  bool set_context(const tls_context_ptr& tls, std::string& error);

  // A datagram reached DTLS listener `listener` (at `local`) from `remote`.
  void on_datagram(std::uint32_t listener, const stun::endpoint& remote, const stun::endpoint& local,
                   stun::bytes_view data, const relay::now_t& now);

  // Encrypts `data` (one STUN or ChannelData message) to session `to`.
  // False when there is no such established session or the write failed.
  bool send(const relay::client_ref& to, relay::fragments data);

  // The tick: retransmissions, timeouts, cookie rotation.
  void on_tick(const relay::now_t& now);

  // Clean stop: every session sends close_notify and ends.
  void close_all(const relay::now_t& now);

  [[nodiscard]] std::size_t session_count() const { return sessions_.size(); }

  // The BIO's write: one datagram out through the host.
  void send_datagram(const dtls_link& link, stun::bytes_view data);

 private:
  struct session;
  struct listen_slot;
  friend struct dtls_link;
  friend int dtls_generate_cookie(ssl_st*, unsigned char*, unsigned int*);
  friend int dtls_verify_cookie(ssl_st*, const unsigned char*, unsigned int);

  // The session table's key: listener and client address (connection 0).
  static relay::client_ref key_of(std::uint32_t listener, const stun::endpoint& remote);
  ssl_st* new_ssl(dtls_link& link, std::string& error);
  listen_slot& listener_slot(std::uint32_t listener);
  // The stateless path (DTLSv1_listen on the listener's SSL object), also
  // for a new ClientHello from the address of an established session: that
  // session is replaced only once the new cookie checks out (promote()).
  void listen(std::uint32_t listener, const stun::endpoint& remote, const stun::endpoint& local,
              stun::bytes_view data, const relay::now_t& now);
  void promote(listen_slot& slot, const relay::client_ref& key, const relay::now_t& now);
  void handshake(session& s, const relay::now_t& now);
  void read_records(session& s, const relay::now_t& now);
  void close(session& s, dtls_close why, const relay::now_t& now);
  void log_failure(const session& s, dtls_close why, const relay::now_t& now);

  dtls_host& host_;
  const unsigned index_;
  const dtls_settings settings_;
  net_counters& counters_;
  std::shared_ptr<connection_limiter> limiter_;
  std::shared_ptr<ssl_ctx_st> ctx_;
  dtls_cookie_jar cookies_;
  std::vector<std::unique_ptr<listen_slot>> listeners_;  // by listener index, made on first use
  std::unordered_map<relay::client_ref, std::unique_ptr<session>, relay::client_ref_hash> sessions_;
  std::uint64_t next_id_ = 1;
  bio_addr_st* peer_scratch_ = nullptr;  // DTLSv1_listen's out parameter
  bool bad_cookie_ = false;              // set by the verify callback during listen()
  std::vector<unsigned char> rx_;        // one decrypted record
  std::vector<unsigned char> tx_;        // one message to encrypt
  common::log_limiter failure_log_;
  common::log_limiter limit_log_;
};

}  // namespace anyturn::net::detail
