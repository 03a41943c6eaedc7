// anyturn::net (internal) — one TCP or TLS connection of a worker.
//
// A session reads into its own buffer, frames the stream with
// stun::stream_frame_length (STUN messages back to back, ChannelData padded
// to 4 bytes: RFC 8656 §12.5) and hands every frame to its host, the worker
// that accepted it. Messages toward the client go into a bounded byte ring
// (net::byte_ring); when it is full the message is dropped and the host
// counts it, so a client that reads too slowly costs at most the ring and
// never stalls anyone else. No operation blocks.
//
// Ownership: the worker's connection table holds the one owning pointer;
// pending Asio operations hold shared_from_this() until they complete.
// Everything runs on the worker's thread. After close() the session never
// calls its host again, and its destructor never does.
#pragma once

#include <anyturn/net/byte_ring.hpp>
#include <anyturn/net/tls.hpp>
#include <anyturn/relay/io.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace anyturn::net::detail {

// Why a connection ended; the host counts and logs by reason.
enum class close_reason {
  peer_closed,        // EOF or reset from the client
  io_error,           // another read or write error
  framing_error,      // neither STUN nor ChannelData: the stream is desynchronised
  too_large,          // a frame longer than max_message_size
  handshake_failed,   // TLS handshake error (garbage, no common version/cipher, ...)
  handshake_timeout,  // TLS handshake not done in time
  idle_timeout,       // no allocation for idle_timeout
  shutdown,           // the worker stops
};
const char* to_string(close_reason r);

struct stream_settings {
  std::size_t max_message_size = 65552;
  std::size_t write_queue_size = 262144;
  std::size_t initial_read_buffer = 4096;
  std::chrono::milliseconds handshake_timeout{10'000};
  std::chrono::milliseconds idle_timeout{30'000};
};

class stream_session;

// The worker, as its sessions see it.
class stream_host {
 public:
  virtual ~stream_host() = default;
  [[nodiscard]] virtual const stream_settings& settings() const = 0;
  [[nodiscard]] virtual relay::now_t now() const = 0;
  // One complete frame from the client.
  virtual void on_stream_frame(stream_session& s, stun::bytes_view frame, const relay::now_t& now) = 0;
  // The TLS handshake finished (TCP sessions are ready at once).
  virtual void on_stream_ready(stream_session& s) = 0;
  // The session closed (called exactly once, from close()).
  virtual void on_stream_closed(stream_session& s, close_reason why) = 0;
};

class stream_session : public std::enable_shared_from_this<stream_session> {
 public:
  using tcp = boost::asio::ip::tcp;

  // A plain TCP session, or a TLS one when `tls` is set.
  static std::shared_ptr<stream_session> make(stream_host& host, tcp::socket socket,
                                              const relay::client_ref& ref, tls_context_ptr tls);

  virtual ~stream_session() = default;
  stream_session(const stream_session&) = delete;
  stream_session& operator=(const stream_session&) = delete;

  // Starts the handshake (TLS) or reading (TCP), and the first timer.
  virtual void start() = 0;

  // Queues a message for the client, whole or not at all. False when the
  // session is not open or its write queue has no room (the message is
  // dropped; the caller counts it).
  bool send(relay::fragments data);

  // Idempotent. Closes the socket and tells the host once. `error` is what
  // caused it, if anything (for the log).
  void close(close_reason why, const boost::system::error_code& error = {});
  [[nodiscard]] const boost::system::error_code& close_error() const { return close_error_; }

  // The host tells when an allocation of this connection opened or closed a
  // relay socket: a connection holding none is closed after idle_timeout.
  void relay_opened();
  void relay_closed();

  [[nodiscard]] const relay::client_ref& ref() const { return ref_; }
  [[nodiscard]] bool is_open() const { return state_ == state::open; }
  [[nodiscard]] std::size_t queued_bytes() const { return queue_.size(); }
  // Set once the host logged a full queue for this session.
  bool queue_full_logged = false;

 protected:
  // closing: an error was seen inside a call from the TURN core; the close
  // itself is posted, so the core never loses an allocation mid-call.
  enum class state { handshaking, open, closing, closed };

  stream_session(stream_host& host, boost::asio::any_io_executor executor,
                 const relay::client_ref& ref);

  // ---- what TCP and TLS do differently ----
  // Reads into `into`; completes with on_read.
  virtual void read_some(std::span<std::byte> into) = 0;
  // Called after bytes were appended to an idle queue: start writing.
  virtual void start_write() = 0;
  // Closes the transport; pending operations complete with an error.
  virtual void close_transport() = 0;
  // Whether the queue may be written from directly now (TCP's fast path).
  virtual bool try_send_direct(relay::fragments data, std::size_t total) = 0;

  // ---- shared by both ----
  void become_open();
  void do_read();
  void on_read(const boost::system::error_code& ec, std::size_t n);
  void on_write_error(const boost::system::error_code& ec);
  void arm_timer(std::chrono::milliseconds after, close_reason on_expiry);
  void cancel_timer();
  // The write in flight completed: the retired ring block is free again.
  void write_finished() { retired_.reset(); }

  stream_host& host_;
  relay::client_ref ref_;
  boost::system::error_code close_error_;
  state state_ = state::handshaking;
  boost::asio::steady_timer timer_;
  std::uint64_t timer_generation_ = 0;
  std::uint32_t relays_ = 0;  // relay sockets of this connection's allocation

  // Read side: bytes [begin_, end_) of read_ are received, not yet framed.
  std::vector<std::byte> read_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;

  // Write side.
  byte_ring queue_;
  std::unique_ptr<std::byte[]> retired_;  // ring storage an unfinished write points into
  bool writing_ = false;
};

}  // namespace anyturn::net::detail
