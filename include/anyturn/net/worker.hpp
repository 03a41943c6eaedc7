// anyturn::net — one worker: a thread's event loop, its sockets and its TURN core.
//
// Workers share nothing. Each owns one io_context (concurrency hint 1), one
// `turn::server`, its own SO_REUSEPORT listener sockets (the kernel hashes a
// client's 5-tuple to one of them, so a 5-tuple always reaches the same
// worker) and the relay sockets of the allocations that worker owns. Every
// member is touched only by the thread inside run(); stop() is the one
// method another thread may call while it runs.
//
// The receive path reads batches with recvmmsg into preallocated buffers
// under a per-wake-up budget and allocates nothing per packet.
#pragma once

#include <anyturn/config/config.hpp>
#include <anyturn/stun/endpoint.hpp>
#include <anyturn/turn/counters.hpp>
#include <anyturn/turn/io.hpp>
#include <anyturn/turn/server.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

namespace anyturn::net {

struct worker_options {
  std::vector<stun::endpoint> listen;             // UDP listeners (port 0: ephemeral)
  std::uint32_t socket_buffer = 4 * 1024 * 1024;  // SO_RCVBUF/SO_SNDBUF of listeners
  std::size_t batch_size = 32;                    // datagrams per recvmmsg
  std::size_t datagram_size = 9 * 1024;           // bytes per receive buffer; longer ones are dropped
  std::size_t read_budget = 256;                  // datagrams per socket per wake-up
  std::chrono::milliseconds tick{250};            // core.on_tick period
  // Before binding with SO_REUSEPORT, check with a plain bind that nobody
  // holds the port: another process using SO_REUSEPORT under the same user
  // would otherwise silently share our traffic. Set for the first worker.
  bool probe_exclusive = false;

  static worker_options from_config(const config::server_config& cfg);
};

// Counters only the net layer can see (the core's live in turn::worker_counters).
struct net_counters {
  std::atomic<std::uint64_t> peer_truncated{0};   // peer datagrams longer than datagram_size
  std::atomic<std::uint64_t> receive_errors{0};   // recvmmsg failures other than EAGAIN
  std::atomic<std::uint64_t> relay_sockets_open{0};  // gauge
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
  [[nodiscard]] std::vector<stun::endpoint> listener_endpoints() const;

  // Runs the event loop on the calling thread until stop().
  void run();
  // Any thread, idempotent: frees every allocation, closes every socket and
  // makes run() return.
  void stop();

  [[nodiscard]] unsigned index() const;
  // Written only by the worker thread; read relaxed from any thread.
  [[nodiscard]] const turn::worker_counters& counters() const;
  [[nodiscard]] const net_counters& io_counters() const;

  // The io_port the core uses. Only while run() is not running on another
  // thread (or from inside it).
  turn::io_port& io_for_test();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace anyturn::net
