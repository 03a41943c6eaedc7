// anyturn::net (internal) — a worker's relay sockets: one UDP socket per
// relayed address, in a table indexed by the core's relay_id.
#pragma once

#include "udp_loop.hpp"

#include <anyturn/relay/io.hpp>
#include <anyturn/stun/endpoint.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <system_error>
#include <vector>

namespace anyturn::net::detail {

// The relay socket table. Each slot holds a socket's descriptor and what
// the worker keeps per socket. A slot's generation tells apart the sockets
// that used it: every socket opened gets a new one (never 0, which
// listeners use), so an epoll event or ready-list entry of a socket closed
// since never matches the slot again (see token_of).
//
// The table opens and closes the descriptors, keeps the gauge of open
// sockets and checks their kernel drop counts; what must happen around a
// close (the send queue flushed, the owning connection told) is the
// worker's. Worker thread only.
class relay_socket_table {
 public:
  struct slot {
    int fd = -1;                   // -1 when closed
    std::uint32_t generation = 0;  // of the socket now open (see token_of)
    bool v6 = false;
    bool dont_fragment = false;    // the DF state last set on the socket
    bool ready = false;            // on the UDP loop's ready list
    bool drop_check = false;       // on the drop-check list
    std::uint32_t drops_seen = 0;  // SK_MEMINFO_DROPS last read
    std::uint64_t connection = 0;  // the stream connection whose allocation opened it, or 0
  };

  // Highest relay id accepted: a bound on the table, far above any
  // max_allocations a worker is configured for.
  static constexpr relay::relay_id max_id = 1u << 24;
  // compact() never shrinks the table below this many slots.
  static constexpr std::size_t min_size = 64;

  // `open_count`: the gauge of open sockets, kept by open() and close();
  // `kernel_drops`: where check_drops() counts what the kernel dropped.
  // `gro`: open every socket with UDP_GRO (worker_options::udp_gro).
  relay_socket_table(std::atomic<std::uint64_t>& open_count, std::atomic<std::uint64_t>& kernel_drops,
                     bool gro = false);
  ~relay_socket_table();  // closes the sockets still open
  relay_socket_table(const relay_socket_table&) = delete;
  relay_socket_table& operator=(const relay_socket_table&) = delete;

  [[nodiscard]] std::size_t size() const { return slots_.size(); }
  // Slot `id` (< size()), open or closed.
  [[nodiscard]] slot& operator[](relay::relay_id id) { return slots_[id]; }
  // The open socket `id`, or null.
  [[nodiscard]] slot* find(relay::relay_id id) {
    return id < slots_.size() && slots_[id].fd >= 0 ? &slots_[id] : nullptr;
  }
  // Socket `id` is open and is the one of `generation`.
  [[nodiscard]] bool live(relay::relay_id id, std::uint32_t generation) const {
    return id < slots_.size() && slots_[id].fd >= 0 && slots_[id].generation == generation;
  }

  // Grows the table to hold slot `id`; false when `id` is above max_id.
  bool make_room(relay::relay_id id);
  // Opens a UDP socket bound to `bind` (no SO_REUSEADDR/SO_REUSEPORT: a
  // port somebody holds is refused) in slot `id`, which must be closed and
  // < size(), and adds it to the epoll set `epoll_fd` under a new
  // generation. The errors are the kernel's.
  std::error_code open(relay::relay_id id, const stun::endpoint& bind, int epoll_fd);
  // Closes socket `id`, which must be open; it leaves the epoll set, and
  // its tokens stop resolving.
  void close(relay::relay_id id);

  // Puts socket (id, generation) on the drop-check list (once).
  void check_drops_later(relay::relay_id id, std::uint32_t generation);
  // Tick: reads the kernel's drop count of every socket on the list (one
  // getsockopt each) and empties it.
  void check_drops();
  // Tick: gives the table's memory back after many relays closed: when less
  // than a quarter of it is open and the tail is free.
  void compact();
  // Frees the drop-check list's memory if a peak left it large (it is empty
  // between ticks).
  void shrink_drop_checks();

 private:
  void read_drops(slot& s);

  std::vector<slot> slots_;  // indexed by relay_id
  std::vector<std::uint64_t> drop_checks_;  // tokens (token_of) to check at the next tick
  std::uint32_t next_generation_ = 0;
  std::atomic<std::uint64_t>& open_count_;
  std::atomic<std::uint64_t>& kernel_drops_;
  bool gro_ = false;
};

}  // namespace anyturn::net::detail
