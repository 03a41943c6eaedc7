// anyturn::net (internal) — the pieces of a worker's UDP loop that own
// state of their own: the epoll tokens that name its sockets and the batch
// its datagrams go through (the receive arena and the send queue).
//
// Worker thread only, like everything of a worker.
#pragma once

#include <anyturn/net/address.hpp>
#include <anyturn/net/send_queue.hpp>
#include <anyturn/net/worker.hpp>

#include <anyturn/common/log_limiter.hpp>
#include <anyturn/relay/counters.hpp>
#include <anyturn/relay/io.hpp>

#include "posix.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include <sys/socket.h>
#include <sys/uio.h>

namespace anyturn::net::detail {

// Most fragments a single send may carry (the core uses up to four).
inline constexpr std::size_t max_fragments = send_queue::max_fragments;

// What an epoll event names: (generation << 32) | index. Listeners have
// generation 0 (index: the listener); relay sockets a generation that is
// never 0 and never reused (index: the relay id), so an event harvested for
// a socket that was closed since resolves to nothing.
constexpr std::uint64_t token_of(std::uint32_t index, std::uint32_t generation) {
  return (std::uint64_t{generation} << 32) | index;
}
// The hand-off queue's eventfd (generation 0, an index no listener has).
inline constexpr std::uint64_t handoff_token = 0xFFFFFFFFu;
constexpr std::uint32_t token_index(std::uint64_t token) { return static_cast<std::uint32_t>(token); }
constexpr std::uint32_t token_generation(std::uint64_t token) {
  return static_cast<std::uint32_t>(token >> 32);
}

// UDP_GRO (worker_options::udp_gro): a slot of the receive arena holds a
// whole coalesced buffer, so the kernel never truncates one.
inline constexpr std::size_t gro_slot_size = 64 * 1024;
// Turns UDP_GRO on for `fd`; false (errno set) when the kernel refuses it.
bool enable_gro(int fd);
// The segment size of a coalesced receive (the UDP_GRO control message of
// `msg`), or 0 when it carries one datagram.
std::size_t gro_segment_size(const msghdr& msg);

// A listening UDP socket, shared (SO_REUSEPORT) with the other workers.
struct udp_listener {
  unique_fd fd;
  stun::endpoint bound;    // address and resolved port
  bool wildcard = false;   // bound to 0.0.0.0 / ::, so replies carry PKTINFO
  bool dtls = false;       // a DTLS listener: datagrams go to the worker's dtls_server
  bool ready = false;      // on the ready list
  std::uint32_t drops_seen = 0;
  // RFC 5780 (worker_options::other_ip): the index of its group in
  // worker::impl::nat_groups_ (-1: none) and its place in it: bit 0 the
  // port P+1, bit 1 the other IP (0: the configured listener itself).
  std::int32_t nat_group = -1;
  std::uint32_t nat_member = 0;
};

// A socket's cumulative drop count (SO_RXQ_OVFL, SK_MEMINFO_DROPS): counts
// the growth since `seen` in `drops`.
inline void account_drops(std::atomic<std::uint64_t>& drops, std::uint32_t latest, std::uint32_t& seen) {
  const std::uint32_t delta = latest - seen;  // wraps correctly
  if (delta != 0) relay::bump(drops, delta);
  seen = latest;
}

// The UDP loop's batch: the receive arena every UDP socket of the worker is
// read into, and the send queue in which what the core sends during a round
// waits for the end of the pass over the ready sockets.
//
// The arena is preallocated once: a pass fills its slots one recvmmsg
// after another; queued sends point into them (the arena is the queue's
// stable range), so it starts over only after the queue was flushed.
// Nothing here allocates after construction.
class udp_batch {
 public:
  // Sizes from `options` (sanitized); the counters and `worker_index` are
  // for what a flush counts and logs.
  udp_batch(const worker_options& options, unsigned worker_index, relay::worker_counters& counters,
            net_counters& io_counters);
  udp_batch(const udp_batch&) = delete;
  udp_batch& operator=(const udp_batch&) = delete;

  // ---- receiving ----

  // One recvmmsg of up to `want` (at most the arena's size) datagrams into
  // the next free slots, flushing the send queue first when fewer are left.
  // Returns the count, or -1 (errno set); `first` is the slot of the first
  // datagram. `with_control`: room for control messages (PKTINFO, SO_RXQ_OVFL).
  int receive(int fd, std::size_t want, bool with_control, std::size_t& first);

  // Slot `i` as recvmmsg filled it (name, control, flags) and its datagram.
  [[nodiscard]] const msghdr& header(std::size_t i) const { return headers_[i].msg_hdr; }
  [[nodiscard]] stun::bytes_view datagram(std::size_t i) const {
    return {static_cast<const std::byte*>(iov_[i].iov_base), headers_[i].msg_len};
  }
  // Calls f(datagram) for every datagram in slot `i`: the slot itself, or,
  // for a coalesced UDP_GRO receive, each segment in order (every segment
  // but the last is `gro_segment_size` long). Counts the coalesced ones.
  template <class F>
  void for_each_datagram(std::size_t i, F&& f) {
    const stun::bytes_view all = datagram(i);
    const std::size_t seg = gro_ ? gro_segment_size(headers_[i].msg_hdr) : 0;
    if (seg == 0 || seg >= all.size()) {
      f(all);
      return;
    }
    std::size_t count = 0;
    for (std::size_t off = 0; off < all.size(); off += seg, ++count) {
      f(all.subspan(off, std::min(seg, all.size() - off)));
    }
    count_gro(count);
  }

  // The next free slot's buffer (at least datagram_size bytes) for a datagram copied
  // in, flushing first when none is left; take_slot() makes it used.
  [[nodiscard]] std::byte* free_slot() {
    if (used_ == slots_) {
      flush();
      used_ = 0;
    }
    return static_cast<std::byte*>(iov_[used_].iov_base);
  }
  void take_slot() { ++used_; }
  [[nodiscard]] std::size_t datagram_size() const { return datagram_size_; }
  // UDP_GRO is on: receives need room for control messages.
  [[nodiscard]] bool gro() const { return gro_; }

  // ---- rounds ----

  // From begin_round() to end_round() sends are queued. Each pass of the
  // round over the ready sockets ends with end_pass(), which sends them and
  // frees the arena for the next pass; end_round() does the same and ends
  // the round.
  void begin_round() { in_round_ = true; }
  void end_pass() {
    flush();
    used_ = 0;
  }
  void end_round() {
    end_pass();
    in_round_ = false;
  }
  [[nodiscard]] bool in_round() const { return in_round_; }

  // ---- sending ----

  // Queues a datagram for the end of the pass. False: send it now instead
  // (the queue was flushed first, so the order is kept).
  bool queue(int fd, send_queue::direction dir, const stun::endpoint& to, relay::fragments data,
             const stun::endpoint* source) {
    auto r = tx_.push(fd, dir, to, data, source);
    if (r == send_queue::push_result::full) {
      flush();
      r = tx_.push(fd, dir, to, data, source);
    }
    if (r == send_queue::push_result::queued) return true;
    flush();
    return false;
  }

  // Sends a datagram: inside a round it is queued, outside one (or when
  // the queue cannot take it) it leaves at once through send_now(). False
  // when the kernel refused it at once; what it refuses at a flush is
  // counted there.
  bool send(int fd, send_queue::direction dir, const stun::endpoint& to, relay::fragments data,
            const stun::endpoint* source) {
    return (in_round_ && queue(fd, dir, to, data, source)) || send_now(fd, dir, to, data, source);
  }

  // Sends what is queued; counts (and logs, rate-limited) what the kernel refused.
  void flush();

 private:
  // The immediate fallback: one sendmsg (EINTR retried), with a PKTINFO
  // source when `source` is set. False when the kernel refused it; errors
  // other than a full buffer are logged, rate-limited.
  bool send_now(int fd, send_queue::direction dir, const stun::endpoint& to, relay::fragments data,
                const stun::endpoint* source);
  void count_gro(std::size_t datagrams);

  const unsigned index_;
  relay::worker_counters& counters_;
  net_counters& io_counters_;
  const std::size_t datagram_size_;
  const bool gro_;
  const std::size_t slot_size_;  // datagram_size_, or gro_slot_size with UDP_GRO
  const std::size_t slots_;
  std::size_t used_ = 0;
  std::unique_ptr<std::byte[]> data_;  // not zeroed: pages are touched only when used
  std::vector<mmsghdr> headers_;
  std::vector<iovec> iov_;
  std::vector<sockaddr_storage> names_;
  std::vector<control_buffer> control_;
  send_queue tx_;
  bool in_round_ = false;  // sends are queued in tx_ only inside a round
  common::log_limiter send_error_log_;
};

}  // namespace anyturn::net::detail
