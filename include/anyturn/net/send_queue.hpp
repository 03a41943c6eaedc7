// anyturn::net — outgoing UDP datagrams batched into sendmmsg calls.
//
// During one turn of the UDP loop the worker queues every datagram it sends
// instead of issuing one sendmsg each, and flushes the queue at the end of
// the turn (or earlier, when the queue or its receive buffers are full).
// A flush groups the queue by descriptor, keeping each descriptor's order,
// and sends each group with as few sendmmsg calls as the kernel allows.
//
// No copy of the payload: fragments inside the "stable range" (the worker's
// receive arena, which is not reused before the flush) are referenced.
// Other fragments (headers the caller built on its stack, responses in the
// core's scratch buffers) are copied into a fixed copy area. Everything is
// preallocated: push() and flush() never allocate.
//
// Single-threaded: owned and used by one worker thread.
#pragma once

#include <anyturn/stun/endpoint.hpp>
#include <anyturn/stun/message.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include <netinet/in.h>
#include <sys/socket.h>

namespace anyturn::net {

class send_queue {
 public:
  // Most fragments one datagram may have.
  static constexpr std::size_t max_fragments = 8;

  // Which counter a refused datagram belongs to.
  enum class direction : std::uint8_t { to_client = 0, to_peer = 1 };

  // The system call, replaceable in tests; null means ::sendmmsg.
  using sendmmsg_fn = int (*)(int fd, mmsghdr* msgs, unsigned count, int flags);

  struct flush_result {
    std::size_t sent = 0;              // datagrams the kernel took
    std::size_t failed_to_client = 0;  // refused: EAGAIN/ENOBUFS or a per-datagram error
    std::size_t failed_to_peer = 0;
    std::size_t calls = 0;             // sendmmsg calls made
    // The last error other than EAGAIN/EWOULDBLOCK/ENOBUFS per direction (0:
    // none), for a rate-limited log line.
    int client_error = 0;
    int peer_error = 0;
  };

  enum class push_result {
    queued,     // will be sent by the next flush()
    full,       // no room left in the queue or the copy area: flush, then push again
    too_large,  // could never fit (too many fragments, or more to copy than the copy area)
  };

  // `capacity` datagrams; `copy_bytes` for fragments outside the stable range.
  send_queue(std::size_t capacity, std::size_t copy_bytes, sendmmsg_fn fn = nullptr);
  send_queue(const send_queue&) = delete;
  send_queue& operator=(const send_queue&) = delete;

  // Fragments that lie inside [begin, end) are referenced, not copied: the
  // caller promises that memory does not change before the next flush().
  void set_stable_range(const std::byte* begin, const std::byte* end);

  // Queues one datagram to `to` on descriptor `fd`. With `source`, the
  // datagram carries an IP_PKTINFO / IPV6_PKTINFO control message that sets
  // its source address (replies from wildcard listeners).
  push_result push(int fd, direction dir, const stun::endpoint& to,
                   std::span<const stun::bytes_view> data, const stun::endpoint* source = nullptr);

  // Sends everything queued; the queue is empty afterwards. Datagrams to one
  // descriptor leave in the order they were pushed. A partial sendmmsg is
  // continued with the rest; EAGAIN/ENOBUFS drops the rest of that
  // descriptor's group (counted per datagram); another error drops only the
  // datagram it belongs to.
  flush_result flush();

  [[nodiscard]] std::size_t size() const { return count_; }
  [[nodiscard]] bool empty() const { return count_ == 0; }
  [[nodiscard]] std::size_t capacity() const { return entries_.size(); }
  [[nodiscard]] std::size_t copy_bytes_used() const { return copy_used_; }

 private:
  // Room for IPV6_PKTINFO (the larger of the two).
  static constexpr std::size_t control_size = CMSG_SPACE(sizeof(in6_pktinfo));

  struct entry {
    int fd = -1;
    direction dir = direction::to_client;
    std::uint8_t fragments = 0;
    std::uint8_t control_len = 0;
    socklen_t name_len = 0;
    union {
      sockaddr_in v4;
      sockaddr_in6 v6;
    } name{};
    iovec iov[max_fragments]{};
    alignas(cmsghdr) std::byte control[control_size]{};
  };

  void send_group(int fd, std::size_t first, std::size_t count, flush_result& result);
  void fail(std::size_t first, std::size_t count, int error, flush_result& result);

  sendmmsg_fn sendmmsg_;
  std::vector<entry> entries_;
  std::vector<std::uint64_t> order_;  // (fd << 32 | index), sorted at flush
  std::vector<mmsghdr> headers_;      // in flush order
  std::unique_ptr<std::byte[]> copy_;
  std::size_t copy_size_ = 0;
  std::size_t copy_used_ = 0;
  std::size_t count_ = 0;
  const std::byte* stable_begin_ = nullptr;
  const std::byte* stable_end_ = nullptr;
};

}  // namespace anyturn::net
