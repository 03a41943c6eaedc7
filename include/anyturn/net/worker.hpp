// anyturn::net — one worker: a thread's event loop, its sockets and its TURN core.
//
// Workers share nothing. Each owns one io_context (concurrency hint 1), one
// `turn::worker_core`, its own SO_REUSEPORT listener sockets (the kernel hashes a
// client's 5-tuple to one of them, so a 5-tuple always reaches the same
// worker) and the relay sockets of the allocations that worker owns. Every
// member is touched only by the thread inside run(); stop() is the one
// method another thread may call while it runs.
//
// The UDP path (listeners and relay sockets) does not go through Asio's
// reactor: each worker keeps its UDP sockets in its own edge-triggered epoll
// set (registered once when opened) and waits for that one descriptor with
// Asio, only while it has nothing left to do. A round of the loop takes the
// ready sockets, reads each with recvmmsg under a per-socket and a per-round
// budget, and queues what the core sends; the queue leaves in sendmmsg
// batches after each pass over the ready sockets. Sockets with data left
// wait for the next round, which is posted, so timers and streams run in
// between. Preallocated buffers throughout: nothing is allocated per packet.
//
// Stream transports: every `listen` address also gets a TCP listener on the
// same port, and `tls_listen` addresses get TLS listeners, each bound once
// per worker with SO_REUSEPORT, so the kernel spreads connections over the
// workers. The worker that accepts a connection owns it and the allocation
// made over it; when the connection closes, the allocation ends at once.
// Connection limits are counted across workers by a shared, lock-free
// connection_limiter.
//
// DTLS: every `dtls_listen` address gets a UDP socket per worker
// (SO_REUSEPORT), read by the UDP loop; its datagrams go to the worker's
// DTLS server (stateless cookie exchange, then one session per client
// address), whose decrypted records reach the core like a UDP client's.
// DTLS sessions count against the same connection_limiter.
#pragma once

#include <anyturn/config/config.hpp>
#include <anyturn/net/connection_limiter.hpp>
#include <anyturn/net/counters.hpp>
#include <anyturn/net/handoff.hpp>
#include <anyturn/net/tls.hpp>
#include <anyturn/stun/endpoint.hpp>
#include <anyturn/relay/counters.hpp>
#include <anyturn/relay/fast_path.hpp>
#include <anyturn/relay/io.hpp>
#include <anyturn/turn/worker_core.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

namespace anyturn::net {

// Longest wake-up coalescing window (worker_options::udp_coalesce) and
// busy-polling time (worker_options::udp_busy_poll).
inline constexpr std::chrono::microseconds max_udp_coalesce{config::max_udp_coalesce_us};
inline constexpr std::chrono::microseconds max_udp_busy_poll{config::max_udp_busy_poll_us};

struct worker_options {
  std::vector<stun::endpoint> listen;             // UDP listeners (port 0: ephemeral)
  std::uint32_t socket_buffer = 4 * 1024 * 1024;  // SO_RCVBUF/SO_SNDBUF of listeners
  std::size_t batch_size = 32;                    // datagrams per recvmmsg
  std::size_t datagram_size = 9 * 1024;           // bytes per receive buffer; longer ones are dropped
  std::size_t read_budget = 256;                  // datagrams per socket per pass of the UDP loop
  std::size_t round_budget = 1024;                // datagrams per round, all sockets together
  // Receive buffers a pass of the UDP loop uses before the queued sends
  // must be flushed (the queue points into them); at least batch_size.
  std::size_t receive_arena = 128;
  std::size_t send_batch = 256;                   // datagrams queued before a sendmmsg flush
  std::size_t epoll_events = 256;                 // readiness events taken per epoll_wait
  std::chrono::milliseconds tick{250};            // core.on_tick period
  // Wake-up coalescing: while datagrams arrive closer together than twice
  // this window, the worker sleeps one window between rounds instead of
  // waking for each datagram, trading up to this much added latency per
  // relayed datagram for fewer wake-ups and larger batches. 0: off (wake per datagram).
  std::chrono::microseconds udp_coalesce{0};
  // Send runs of equal-size datagrams to one destination as one UDP GSO
  // (UDP_SEGMENT) message (see send_queue).
  bool udp_gso = true;
  // Receive with UDP_GRO on the listeners and relay sockets: the kernel may
  // hand over several datagrams of one flow as one coalesced buffer, which
  // the loop splits (each segment one datagram). The receive arena's slots
  // then hold a whole coalesced buffer (64 KiB each).
  bool udp_gro = true;
  // After a round that read several datagrams, keep polling the sockets this
  // long before sleeping: under load the next datagram usually comes
  // sooner than a sleep and a wake-up take. 0: off.
  std::chrono::microseconds udp_busy_poll{20};
  // Before binding with SO_REUSEPORT, check with a plain bind that nobody
  // holds the port: another process using SO_REUSEPORT under the same user
  // would otherwise silently share our traffic. Set for the first worker.
  bool probe_exclusive = false;

  // RFC 5780 (stun.other_ip; port 0): every UDP listener A:P of its family
  // that is not a wildcard also gets UDP sockets on A:P+1, OTHER:P and
  // OTHER:P+1 (Binding only; see relay::io_port::alternate). Not in
  // listener_endpoints().
  std::optional<stun::endpoint> other_ip;

  // ---- streams (TCP and TLS) ----
  bool tcp = true;                          // a TCP listener on every `listen` address
  std::vector<stun::endpoint> tls_listen;   // TLS listeners (port 0: ephemeral)
  // PROXY protocol on the TCP listener of listen[i] / on tls_listen[i]
  // (shorter vectors: the rest have none).
  std::vector<config::proxy_protocol_config> listen_proxy;
  std::vector<config::proxy_protocol_config> tls_listen_proxy;
  // From accept to a complete PROXY header.
  std::chrono::milliseconds proxy_header_timeout{5'000};
  tls_context_ptr tls;                      // required when tls_listen is not empty
  std::size_t max_message_size = 65552;     // longer frames close the connection
  std::size_t write_queue_size = 262144;    // bytes queued per connection; beyond: dropped
  std::chrono::milliseconds tls_handshake_timeout{10'000};
  std::chrono::milliseconds idle_timeout{30'000};  // a connection without an allocation is closed
  // A connection that has not delivered one complete STUN message by then
  // (from accept; TLS: the handshake included) is closed.
  std::chrono::milliseconds first_message_timeout{10'000};
  std::shared_ptr<connection_limiter> connections;  // shared by every worker; null: no limits
  // The memory budget of connections that have not authenticated yet,
  // shared by every worker (null: not accounted). from_config() makes one
  // from streams.unauthenticated_memory; copies of the options share it.
  std::shared_ptr<memory_budget> unauth_memory;
  // Worker hand-off (shared by every worker; null: none). A UDP datagram
  // whose 5-tuple another worker owns goes to that worker's queue in it.
  // The workers' indices must be their queue indices.
  std::shared_ptr<handoff_group> handoff;
  // The kernel fast path (docs/xdp.md): this worker's own port of the XDP
  // offload (each worker needs its own; the app sets it per worker, after
  // copying the options). Null: none, user space forwards everything.
  std::shared_ptr<relay::fast_path> fast_path;

  // ---- DTLS (TURN over DTLS 1.2 on UDP; needs `tls` for the certificate) ----
  std::vector<stun::endpoint> dtls_listen;  // DTLS listeners (port 0: ephemeral)
  std::chrono::milliseconds dtls_handshake_timeout{10'000};  // cookie returned -> handshake done
  std::chrono::milliseconds dtls_idle_timeout{900'000};      // no record from the client: closed

  // Everything but `tls`, `connections`, `handoff`, `fast_path` and `probe_exclusive`, which the
  // caller supplies (`unauth_memory` is made here: every worker's copy shares it).
  static worker_options from_config(const config::server_config& cfg);
};

class worker {
 public:
  worker(unsigned index, std::shared_ptr<const turn::shared_state> shared, worker_options options);
  ~worker();
  worker(const worker&) = delete;
  worker& operator=(const worker&) = delete;

  // Start-up, before run(): creates and binds every listener. On failure
  // returns the error and describes which listener failed in `what`.
  std::error_code open(std::string& what);
  // The listeners' bound addresses (ephemeral ports resolved), in config order.
  // A `listen` address serves UDP and, when `tcp` is set, TCP on this port.
  [[nodiscard]] std::vector<stun::endpoint> listener_endpoints() const;
  // The TLS listeners' bound addresses, in config order.
  [[nodiscard]] std::vector<stun::endpoint> tls_listener_endpoints() const;
  // The DTLS listeners' bound addresses, in config order.
  [[nodiscard]] std::vector<stun::endpoint> dtls_listener_endpoints() const;

  // Any thread: new TLS and DTLS handshakes use `ctx` (its certificate and
  // key) from now on; connections and sessions that already started keep
  // theirs (SIGHUP certificate reload).
  void set_tls_context(tls_context_ptr ctx);

  // Any thread: runs `job` on this worker's thread, between rounds, with its
  // TURN core and the loop's clock (the admin API's listing and ending of
  // sessions). The worker relays nothing while a job runs: keep each one
  // bounded. A job posted once the worker stops is dropped unrun.
  void post_to_core(std::function<void(turn::worker_core&, const relay::now_t&)> job);

  // Runs the event loop on the calling thread until stop().
  void run();
  // Any thread, idempotent: frees every allocation, closes every socket and
  // makes run() return.
  void stop();

  [[nodiscard]] unsigned index() const;
  // Written only by the worker thread; read relaxed from any thread.
  [[nodiscard]] const relay::worker_counters& counters() const;
  [[nodiscard]] const net_counters& io_counters() const;
  // Bumped by the worker thread on each tick; read relaxed from any thread
  // (the systemd watchdog pings only while every worker's advances).
  [[nodiscard]] std::uint64_t heartbeat() const;

  // The io_port the core uses. Only while run() is not running on another
  // thread (or from inside it).
  relay::io_port& io_for_test();
  // Slots in the relay socket table (it shrinks on the tick after many
  // relays closed). Only while run() is not running on another thread.
  [[nodiscard]] std::size_t relay_table_size_for_test() const;
  // Test hook: `data` as if received from `from` on UDP listener
  // `from.listener`, inside a round of the loop. Worker thread only (or while
  // run() is not running).
  void deliver_for_test(const relay::client_ref& from, stun::bytes_view data);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace anyturn::net
