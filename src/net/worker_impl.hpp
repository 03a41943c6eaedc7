// anyturn::net (internal) — worker::impl, the state of one worker and what
// it does with it.
//
// Everything here belongs to the worker's thread (see worker.hpp). The impl
// is the one place where the TURN core meets the sockets: it implements
// relay::io_port for the core and detail::stream_host for its TCP and TLS
// sessions. Its member functions are defined by what they serve: the shell
// (worker.cpp), the UDP loop (udp_loop.cpp), the relay sockets
// (relay_sockets.cpp), the hand-off inbox (inbox.cpp) and the streams
// (stream_host.cpp). The state with a life of its own lives in classes of
// those files' headers: udp_batch, relay_socket_table, connection_table.
#pragma once

#include <anyturn/net/worker.hpp>

#include <anyturn/common/log_limiter.hpp>
#include <anyturn/net/address.hpp>
#include <anyturn/net/send_queue.hpp>

#include "dtls_server.hpp"
#include "posix.hpp"
#include "relay_sockets.hpp"
#include "stream_host.hpp"
#include "stream_session.hpp"
#include "tcp_relay.hpp"
#include "udp_loop.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <sys/epoll.h>

namespace anyturn::net {

struct worker::impl final : private relay::io_port, private detail::stream_host, private detail::dtls_host {
  using tcp = boost::asio::ip::tcp;

  // ---- the shell (worker.cpp) ----

  impl(unsigned index, std::shared_ptr<const turn::shared_state> shared, worker_options options);
  ~impl() override;

  // Start-up (any thread, before run): every listener, UDP first.
  std::error_code open(std::string& what);
  std::error_code open_listener(const stun::endpoint& ep, std::string& what);
  // RFC 5780: the three extra UDP sockets of every listener of other_ip's family.
  std::error_code open_nat_groups(std::string& what);
  std::vector<stun::endpoint> listener_endpoints() const;
  std::vector<stun::endpoint> tls_listener_endpoints() const;

  void run();
  void stop();
  void do_stop();
  void arm_tick();

  // Tick: after a large drop in open relay sockets, return free heap memory
  // to the system: once the drop has come to rest (so one trim gets it all,
  // not the first part of a mass close), at most every trim_interval_ms.
  void maybe_trim(const relay::now_t& now);

  void assert_owner() const {
    // The thread in run() owns everything here; before run() and after it
    // returns, the (single) thread holding the worker may use it.
    assert(owner_ == std::thread::id{} || owner_ == std::this_thread::get_id());
  }

  relay::io_port& io() { return *this; }

  // ---- the UDP loop (udp_loop.cpp): one epoll set, rounds, batches ----

  void post_round();
  void arm_epoll();

  // Something to read: a listed socket, the hand-off queue, or events
  // harvest() had no room for.
  [[nodiscard]] bool work_ready(bool more_events) const {
    return !ready_.empty() || inbox_ready_ || more_events;
  }

  // Busy polling (udp_busy_poll): after a busy round, keeps harvesting for a
  // short while before going to sleep, since the next datagram is likely to
  // come sooner than a sleep and a wake-up would take. True when it found
  // something to read.
  bool busy_poll();

  // Wake-up coalescing (udp_coalesce): sleeps one window, so what arrives
  // meanwhile is read and sent in one batch instead of one wake-up each.
  void coalesce_sleep();

  // A round of the loop: passes of (harvest, read the ready sockets, flush)
  // until nothing is ready (then Asio waits for the epoll set again), or the
  // round budget or max_passes is used up (then the next round is posted, so
  // Asio's other handlers run first). Harvesting again before going back to
  // Asio saves its wait and re-arm while packets keep coming.
  void run_round();

  // One pass over the ready list: each socket is read within its budget
  // while the round has budget left; then the queued sends are flushed.
  void read_ready(std::size_t& budget);

  // Moves sockets the kernel reports readable onto the ready list. Returns
  // true when the event buffer was full (more may be waiting).
  bool harvest();

  void log_receive_error(const char* what, int err);

  // Reads a listener within the budgets. Returns true when it may still
  // have data (a budget ran out, or a read error: try again next round).
  bool drain_listener(std::size_t li, std::size_t& round_budget);

  // io_port: UDP through the listener the client reached; streams go to
  // send_to_stream.
  void send_to_client(const relay::client_ref& to, relay::fragments data) override;

  void deliver_for_test(const relay::client_ref& from, stun::bytes_view data);

  // ---- relay sockets (relay_sockets.cpp) ----

  // Reads a relay socket within the budgets; like drain_listener. A socket
  // read hard is put on the drop-check list for the next tick.
  bool drain_relay(relay::relay_id id, std::uint32_t generation, std::size_t& round_budget);

  // Closes relay socket `id` (< relays_.size(), open or not): tells the
  // connection whose allocation opened it, flushes what is queued on it.
  void close_relay_socket(relay::relay_id id);

  // io_port
  std::error_code open_relay(relay::relay_id id, const stun::endpoint& bind) override;
  void close_relay(relay::relay_id id) override;
  bool send_to_peer(relay::relay_id id, const stun::endpoint& peer, relay::fragments data,
                    bool dont_fragment) override;

  // ---- worker hand-off (inbox.cpp) ----

  // Construction: joins our queue of options_.handoff, when there is one
  // whose slots hold a whole datagram, and puts its eventfd in the epoll set.
  void attach_inbox();
  // Hands the datagrams in our queue to the core, within the round's budget.
  void drain_inbox(std::size_t& budget);

  // io_port
  bool hand_off(const relay::client_ref& from, stun::bytes_view data, const relay::now_t& now) override;

  // io_port, RFC 5780 (udp_loop.cpp)
  std::optional<relay::client_ref> alternate(const relay::client_ref& c, bool change_ip,
                                             bool change_port) override;
  bool binding_only(const relay::client_ref& c) override;
  void own(const relay::client_ref& c) override;
  void disown(const relay::client_ref& c) override;

  // ---- TCP relay allocations, RFC 6062 (tcp_relay.cpp) ----

  // io_port
  std::error_code open_tcp_relay(relay::relay_id id, const stun::endpoint& bind) override;
  bool tcp_peer_exists(relay::relay_id id, const stun::endpoint& peer) override;
  std::uint32_t tcp_connect(relay::relay_id id, const stun::endpoint& peer) override;
  relay::relay_id tcp_unbound(std::uint32_t cid) override;
  bool tcp_bind(std::uint32_t cid, const relay::client_ref& data) override;
  bool hand_off_stream(const relay::client_ref& from, unsigned owner, stun::bytes_view message) override;

  // Closes TCP relay `id` and its connections; false when `id` is none.
  bool close_tcp_relay(relay::relay_id id);
  void arm_relay_accept(const std::shared_ptr<detail::tcp_relay_listener>& l);
  void on_peer_accepted(const std::shared_ptr<detail::tcp_relay_listener>& l, tcp::socket socket);
  void on_connect_done(const std::shared_ptr<detail::tcp_relay_conn>& c, const boost::system::error_code& ec);
  // Moves bytes one way (up: client -> peer) as far as the sockets and the
  // pipe allow, then waits for what it needs.
  void pump(const std::shared_ptr<detail::tcp_relay_conn>& c, bool up);
  void close_tcp_conn(const std::shared_ptr<detail::tcp_relay_conn>& c);
  // Tick: connects and unbound connections past their deadline.
  void tcp_relay_tick(const relay::now_t& now);
  // A stream connection another worker moved here (inbox.cpp): `data` is
  // its ConnectionBind and any bytes the client sent after it.
  void adopt_stream(const relay::client_ref& from, stun::bytes_view data);

  // ---- streams (stream_host.cpp) ----

  std::error_code open_stream_listener(const stun::endpoint& ep, bool tls,
                                       const config::proxy_protocol_config* proxy, std::string& what);
  void arm_accept(std::size_t li);
  void on_accept_error(std::size_t li, const boost::system::error_code& ec);
  static std::optional<stun::endpoint> endpoint_of(const tcp::endpoint& ep);
  void on_accepted(std::size_t li, tcp::socket socket);
  void send_to_stream(const relay::client_ref& to, relay::fragments data);
  void count_close(const relay::client_ref& ref, detail::close_reason why,
                   const boost::system::error_code& error);
  void set_tls_context(tls_context_ptr ctx);

  // stream_host
  const detail::stream_settings& settings() const override { return stream_settings_; }
  relay::now_t now() const override { return detail::read_clock(); }
  const std::shared_ptr<memory_budget>& unauth_budget() const override { return options_.unauth_memory; }
  void on_stream_frame(detail::stream_session& s, stun::bytes_view frame, const relay::now_t& now) override;
  void on_stream_ready(detail::stream_session& s) override;
  void on_stream_closed(detail::stream_session& s, detail::close_reason why) override;
  bool on_proxy_header(detail::stream_session& s, const proxy_header& header) override;
  // Counts and logs a refused connection (limits), and resets it.
  void refuse_connection(const detail::stream_listener& l, const stun::endpoint& client,
                         connection_limiter::verdict verdict);
  void tls_closing(int delta) override { tls_closing_ += delta; }
  // ---- DTLS (dtls_host.cpp) ----

  // open(): a UDP listener per dtls_listen address and the DTLS server.
  std::error_code open_dtls_listeners(std::string& what);
  std::vector<stun::endpoint> dtls_listener_endpoints() const;
  // The DTLS server takes the certificate of tls_ (start-up, SIGHUP).
  void update_dtls_context();

  // dtls_host
  void dtls_send(std::uint32_t listener, const stun::endpoint& to, const stun::endpoint& local,
                 stun::bytes_view datagram) override;
  void dtls_deliver(const relay::client_ref& from, stun::bytes_view record, const relay::now_t& now) override;
  void dtls_closed(const relay::client_ref& ref, const relay::now_t& now) override;

  // The last step of do_stop: stops the loop once no TLS session is still
  // exchanging close_notify, or at `deadline`.
  void finish_stop(std::chrono::steady_clock::time_point deadline);

  // ---- state ----
  const unsigned index_;
  const worker_options options_;
  std::thread::id owner_;  // the thread inside run(); id{} otherwise

  // Read by other threads (relaxed); written only by the worker thread.
  relay::worker_counters counters_;
  net_counters io_counters_;

  // Everything below is owned by the worker thread.
  boost::asio::io_context ioc_;  // declared before every I/O object: destroyed last
  boost::asio::steady_timer timer_;
  // Does not change after open(): the configured listeners first, in config
  // order, then the RFC 5780 extra sockets.
  std::vector<detail::udp_listener> listeners_;
  std::size_t configured_listeners_ = 0;
  // RFC 5780 groups: listeners_ indices by nat_member (A:P, A:P+1, OTHER:P, OTHER:P+1).
  std::vector<std::array<std::uint32_t, 4>> nat_groups_;
  detail::relay_socket_table relays_;
  bool stopping_ = false;
  int tls_closing_ = 0;  // TLS sessions in their close_notify exchange

  // Streams: listeners, the connection table, the session whose frame the
  // core is handling (to tie the relays it opens to that connection), and
  // the TLS context new handshakes use.
  std::vector<detail::stream_listener> stream_listeners_;
  detail::connection_table connections_;
  detail::stream_session* dispatching_ = nullptr;
  const detail::stream_settings stream_settings_;
  tls_context_ptr tls_;

  // The UDP loop: the epoll set of the UDP sockets (its descriptor is the
  // one Asio waits for), the event buffer and the ready list (tokens, see
  // token_of).
  boost::asio::posix::stream_descriptor epoll_;
  std::vector<epoll_event> events_;
  std::vector<std::uint64_t> ready_;
  // read_ready's scratch: the sockets it left with data, which go back on
  // the ready list after those it did not reach.
  std::vector<std::uint64_t> again_;

  // The receive arena and the send queue, shared by every UDP socket of
  // this worker.
  detail::udp_batch batch_;

  // Wake-up coalescing (worker_options::udp_coalesce; 0: off).
  std::int64_t coalesce_ns_ = 0;
  std::int64_t busy_poll_ns_ = 0;  // worker_options::udp_busy_poll; 0: off
  std::int64_t last_socket_wake_ns_ = 0;
  bool coalescing_ = false;           // sleeping windows instead of waiting for sockets
  std::size_t read_since_sleep_ = 0;  // datagrams read since the last window

  // Worker hand-off (null without a handoff_group): the shared group and
  // our own queue in it.
  handoff_group* handoff_ = nullptr;
  handoff_queue* inbox_ = nullptr;
  bool inbox_ready_ = false;     // the queue may hold datagrams
  bool draining_inbox_ = false;  // inside drain_inbox: never hand on

  // TCP relay allocations (RFC 6062), and the bytes a moved connection
  // brought along past its ConnectionBind (adopt_stream -> tcp_bind).
  detail::tcp_relay_table tcp_relays_;
  std::vector<std::byte> adopted_extra_;

  // Memory housekeeping (maybe_trim).
  std::uint64_t peak_open_ = 0;
  std::uint64_t last_tick_open_ = 0;
  std::int64_t last_trim_ms_ = 0;

  // Ticks so far (worker::heartbeat); only this thread writes it.
  std::atomic<std::uint64_t> heartbeat_{0};

  common::log_limiter receive_error_log_;
  common::log_limiter truncated_log_;
  common::log_limiter accept_log_;
  common::log_limiter limit_log_;
  common::log_limiter framing_log_;
  common::log_limiter handshake_log_;
  common::log_limiter idle_log_;
  common::log_limiter queue_log_;
  common::log_limiter proxy_log_;  // PROXY protocol refusals

  // TURN over DTLS (null without dtls_listen): its sessions, listening
  // objects and cookie secret.
  std::unique_ptr<detail::dtls_server> dtls_;

  // Last: destroyed first, while the sockets it may close still exist.
  std::unique_ptr<turn::worker_core> core_;
};

}  // namespace anyturn::net
