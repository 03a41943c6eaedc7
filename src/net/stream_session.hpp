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
// Until its client authenticates (the core opened a relay socket for it: an
// Allocate passed the long-term credential check) a session is cheap and
// accounted for: its fixed cost and every buffer it allocates are charged to
// the workers' shared memory_budget (streams.unauthenticated_memory) before
// they are allocated, and a charge the budget refuses closes the connection
// (close_reason::unauth_memory). Meanwhile a TCP session holds no read
// buffer while no bytes are waiting, its write ring is capped at
// unauthenticated_write_queue bytes, and a TLS session lets OpenSSL free its
// record buffers when idle. Authenticating credits everything back: from
// then on the session has the full write ring and keeps its buffers.
// A session that has not delivered one complete STUN message within
// first_message_timeout of accept is closed.
//
// TLS sessions end with close_notify both ways: when the server closes an
// established session it sends its close_notify and waits (at most
// close_notify_wait) for the client's; when the client sends close_notify
// first, the session answers it.
//
// On a listener with the PROXY protocol (proxy_protocol.hpp) the session
// first reads the header, before the TLS handshake or any STUN byte, within
// proxy_header_timeout: it peeks at what has arrived and consumes exactly
// the header's bytes, so the client's own bytes stay in the socket for the
// TLS layer or the framing. The host then gets the header
// (on_proxy_header), and the client address in it is the session's client
// from then on (ref().remote). A malformed header closes the connection
// (close_reason::proxy_malformed), as does the timeout (proxy_timeout).
//
// Ownership: the worker's connection table holds the one owning pointer;
// pending Asio operations hold shared_from_this() until they complete.
// Everything runs on the worker's thread. After close() the session never
// calls its host again, and its destructor never does.
#pragma once

#include <anyturn/net/byte_ring.hpp>
#include <anyturn/net/connection_limiter.hpp>
#include <anyturn/net/proxy_protocol.hpp>
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
  first_message_timeout,  // no complete STUN message within first_message_timeout
  unauth_memory,      // not authenticated, and the unauthenticated memory budget is spent
  shutdown,           // the worker stops
  proxy_malformed,    // the PROXY protocol header is malformed
  proxy_timeout,      // no complete PROXY protocol header within proxy_header_timeout
  refused,            // the host refused the client the PROXY header named (counted by the host)
  moved,              // the socket left the session: an RFC 6062 data connection, or another worker's
};
const char* to_string(close_reason r);

struct stream_settings {
  std::size_t max_message_size = 65552;
  std::size_t write_queue_size = 262144;
  std::size_t initial_read_buffer = 4096;
  std::chrono::milliseconds handshake_timeout{10'000};
  std::chrono::milliseconds idle_timeout{30'000};
  std::chrono::milliseconds first_message_timeout{10'000};
  // How long a closing TLS session waits for the client's close_notify.
  std::chrono::milliseconds close_notify_wait{1'000};
  // From accept to a complete PROXY protocol header (proxy listeners only).
  std::chrono::milliseconds proxy_header_timeout{5'000};
};

// Most bytes queued toward a client that has not authenticated yet (a few
// error responses); the full write_queue_size comes with authentication.
inline constexpr std::size_t unauthenticated_write_queue = 4096;


class stream_session;

// The worker, as its sessions see it.
class stream_host {
 public:
  virtual ~stream_host() = default;
  [[nodiscard]] virtual const stream_settings& settings() const = 0;
  [[nodiscard]] virtual relay::now_t now() const = 0;
  // The budget of unauthenticated connections, shared by the workers (null:
  // none).
  [[nodiscard]] virtual const std::shared_ptr<memory_budget>& unauth_budget() const = 0;
  // One complete frame from the client.
  virtual void on_stream_frame(stream_session& s, stun::bytes_view frame, const relay::now_t& now) = 0;
  // The TLS handshake finished (TCP sessions are ready at once).
  virtual void on_stream_ready(stream_session& s) = 0;
  // The session closed (called exactly once, from close()).
  virtual void on_stream_closed(stream_session& s, close_reason why) = 0;
  // A TLS session started (+1) or finished (-1) its close_notify exchange,
  // which outlives the session's place in the table; the worker's stop
  // waits for these (at most close_notify_wait).
  virtual void tls_closing(int delta) { (void)delta; }
  // A session of a proxy listener read its PROXY header. The host admits
  // the client it names (set_client) and returns true, or closes the
  // session and returns false.
  virtual bool on_proxy_header(stream_session& s, const proxy_header& header) {
    (void)s;
    (void)header;
    return true;
  }
};

class stream_session : public std::enable_shared_from_this<stream_session> {
 public:
  using tcp = boost::asio::ip::tcp;

  // A plain TCP session, or a TLS one when `tls` is set. `admitted` bytes
  // (tcp_connection_cost or tls_connection_cost) were charged to the host's
  // unauth_budget() for it already; the session credits them back. With
  // `proxy`, the stream starts with a PROXY protocol header.
  static std::shared_ptr<stream_session> make(stream_host& host, tcp::socket socket,
                                              const relay::client_ref& ref, tls_context_ptr tls,
                                              std::uint64_t admitted, bool proxy = false);

  virtual ~stream_session();
  stream_session(const stream_session&) = delete;
  stream_session& operator=(const stream_session&) = delete;

  // Reads the PROXY header first (proxy listeners), then starts the
  // handshake (TLS) or reading (TCP), and the first timer.
  void start();

  // Queues a message for the client, whole or not at all. False when the
  // session is not open or its write queue has no room (the message is
  // dropped; the caller counts it).
  bool send(relay::fragments data);

  // Idempotent. Closes the socket and tells the host once. `error` is what
  // caused it, if anything (for the log).
  void close(close_reason why, const boost::system::error_code& error = {});
  [[nodiscard]] const boost::system::error_code& close_error() const { return close_error_; }

  // Plain TCP, open: takes the socket out of the session (RFC 6062: it
  // becomes a data connection, or moves to another worker) and returns its
  // descriptor, with the bytes read past the frame being handled (`unread`)
  // and those still queued toward the client (`unsent`). The session reads
  // no more and closes a moment later (close_reason::moved). -1: it cannot
  // (TLS, not open).
  int detach(std::vector<std::byte>& unread, std::vector<std::byte>& unsent);
  // A plain TCP connection another worker moved here: opens the session,
  // hands `frame` (its first message) to the host as if read, then reads on.
  void start_adopted(stun::bytes_view frame);

  // The host tells when an allocation of this connection opened or closed a
  // relay socket: a connection holding none is closed after idle_timeout.
  // The first relay socket also means the client authenticated.
  void relay_opened();
  void relay_closed();

  [[nodiscard]] const relay::client_ref& ref() const { return ref_; }
  [[nodiscard]] bool is_open() const { return state_ == state::open; }
  [[nodiscard]] std::size_t queued_bytes() const { return queue_.size(); }
  [[nodiscard]] bool authenticated() const { return authenticated_; }
  // Bytes this session holds charged to the unauthenticated budget.
  [[nodiscard]] std::uint64_t charged_bytes() const { return charged_; }
  // The read buffer's size now (0: none; tests).
  [[nodiscard]] std::size_t read_buffer_size() const { return read_.size(); }
  // Set once the host logged a full queue for this session.
  bool queue_full_logged = false;
  // Set while the host's connection_limiter counts this connection (for
  // ref().remote): a proxy listener's session is counted once its header
  // named the client.
  bool limiter_held = false;
  // The client a PROXY header named (the host calls it from on_proxy_header).
  void set_client(const stun::endpoint& client) { ref_.remote = client; }

 protected:
  // closing: an error was seen inside a call from the TURN core; the close
  // itself is posted, so the core never loses an allocation mid-call.
  enum class state { handshaking, open, closing, closed };

  stream_session(stream_host& host, boost::asio::any_io_executor executor,
                 const relay::client_ref& ref, std::uint64_t admitted);

  // ---- what TCP and TLS do differently ----
  // Starts the handshake (TLS) or reading (TCP), and the first timer.
  virtual void start_transport() = 0;
  // The TCP socket under the session (the PROXY header is read from it).
  virtual tcp::socket& raw_socket() = 0;
  // Reads into `into`; completes with on_read.
  virtual void read_some(std::span<std::byte> into) = 0;
  // Called after bytes were appended to an idle queue: start writing.
  virtual void start_write() = 0;
  // Closes the transport (`why` the session closes); pending operations
  // complete with an error.
  virtual void close_transport(close_reason why) = 0;
  // Whether the queue may be written from directly now (TCP's fast path).
  virtual bool try_send_direct(relay::fragments data, std::size_t total) = 0;
  // Calls on_readable() once bytes are waiting, without a buffer; false when
  // the transport cannot (TLS: OpenSSL reads into its own buffer anyway).
  virtual bool wait_readable() { return false; }
  // The client authenticated (TLS: keep the record buffers from now on).
  virtual void on_authenticated() {}
  // Releases the socket without closing it (plain TCP); -1 otherwise.
  virtual int release_socket() { return -1; }

  // ---- shared by both ----
  void become_open();
  void do_read();
  void on_read(const boost::system::error_code& ec, std::size_t n);
  void on_readable(const boost::system::error_code& ec);
  void on_write_error(const boost::system::error_code& ec);
  // Closes a moment later (state closing meanwhile): for errors met inside a
  // call from the TURN core, which must not lose the allocation mid-call.
  void close_later(close_reason why, const boost::system::error_code& error = {});
  void arm_timer(std::chrono::milliseconds after, close_reason on_expiry);
  void cancel_timer();
  void arm_first_message_timer();
  // The PROXY header: wait until bytes arrive, then take what belongs to it.
  void wait_proxy_header();
  void on_proxy_readable();
  void became_authenticated();
  // Charges `bytes` to the unauthenticated budget (always true once
  // authenticated, or without a budget).
  bool charge(std::uint64_t bytes);
  void uncharge(std::uint64_t bytes);
  // Resizes the read buffer to `n` bytes (0: frees it), charging growth
  // first; false (and the session closes) when the budget refuses.
  bool resize_read(std::size_t n);
  // Room for `bytes` more in the write ring, charging its growth first;
  // false (and the session closes soon) when the budget refuses.
  bool reserve_queue(std::size_t bytes);
  // The write in flight completed: the retired ring block is free again.
  void write_finished() { retired_.reset(); }

  stream_host& host_;
  relay::client_ref ref_;
  boost::system::error_code close_error_;
  state state_ = state::handshaking;
  boost::asio::steady_timer timer_;
  std::uint64_t timer_generation_ = 0;
  std::uint32_t relays_ = 0;  // relay sockets of this connection's allocation
  boost::asio::steady_timer first_timer_;  // first_message_timeout
  bool got_first_message_ = false;
  bool authenticated_ = false;
  bool proxy_pending_ = false;  // a PROXY header is still to be read
  std::vector<std::byte> proxy_buf_;  // its bytes so far (charged to the budget)
  std::size_t proxy_have_ = 0;
  bool readable_ = false;  // wait_readable() completed: allocate and read
  // The unauthenticated budget while not authenticated (null afterwards),
  // and what this session holds charged to it.
  std::shared_ptr<memory_budget> budget_;
  std::uint64_t charged_ = 0;
  std::size_t read_charged_ = 0;  // of which the read buffer

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
