// anyturn::net — outgoing UDP datagrams batched into sendmmsg calls.
//
// During a round of the UDP loop the worker queues every datagram it sends
// instead of issuing one sendmsg each, and flushes the queue after each pass
// over the ready sockets (or earlier, when the queue or its receive buffers
// are full).
// A flush groups the queue by descriptor and sends each group with as few
// sendmmsg calls as the kernel allows.
//
// UDP GSO: inside one group, consecutive datagrams to the same destination
// (address, PKTINFO source, direction) of the same length - the last one may
// be shorter - leave as one message with a UDP_SEGMENT control message; the
// kernel runs the stack once and splits it into datagrams. To find such runs
// a flush whose group sends to one destination more than once orders the
// group by destination, stably: datagrams to one destination keep their
// push order, across destinations the order may change. A run holds 2 to 64
// datagrams and at most 65000 bytes. If the kernel refuses a merged message
// for lack of GSO support (EIO, ENOPROTOOPT, EOPNOTSUPP), GSO is off for the
// queue from then on; if it refuses its segment size (EINVAL, EMSGSIZE: the
// path MTU is smaller), that size and larger ones are not merged again. In
// both cases the message's datagrams are sent one by one in the same flush.
// Without repeated destinations the flush is what it was without GSO.
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
  // Most datagrams, and bytes, in one UDP_SEGMENT message.
  static constexpr std::size_t max_gso_segments = 64;
  static constexpr std::size_t max_gso_bytes = 65000;

  // Which counter a refused datagram belongs to.
  enum class direction : std::uint8_t { to_client = 0, to_peer = 1 };

  // The system call, replaceable in tests; null means ::sendmmsg.
  using sendmmsg_fn = int (*)(int fd, mmsghdr* msgs, unsigned count, int flags);

  struct flush_result {
    std::size_t sent = 0;              // datagrams the kernel took
    std::size_t failed_to_client = 0;  // refused: EAGAIN/ENOBUFS or an error of its message
    std::size_t failed_to_peer = 0;
    std::size_t calls = 0;             // sendmmsg calls made
    std::size_t gso_messages = 0;      // messages sent with UDP_SEGMENT
    std::size_t gso_datagrams = 0;     // datagrams that left inside them (counted in `sent` too)
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
  // destination leave in the order they were pushed, and so do all of a
  // descriptor's unless GSO is on and it sends to a destination twice. A
  // partial sendmmsg is continued with the rest; EAGAIN/ENOBUFS drops the
  // rest of that descriptor's group (counted per datagram); another error
  // drops only the message it belongs to (every datagram of a UDP_SEGMENT
  // message, unless the error is one of the GSO fallbacks above).
  flush_result flush();

  // UDP GSO on (the default) or off. Turning it on again also undoes an
  // automatic switch-off; a lowered segment limit stays.
  void set_gso(bool on) { gso_enabled_ = on; }
  [[nodiscard]] bool gso_enabled() const { return gso_enabled_; }
  // Largest segment size still merged (max_gso_bytes until a refusal).
  [[nodiscard]] std::size_t gso_max_segment() const { return gso_max_segment_; }

  [[nodiscard]] std::size_t size() const { return count_; }
  [[nodiscard]] bool empty() const { return count_ == 0; }
  [[nodiscard]] std::size_t capacity() const { return entries_.size(); }
  [[nodiscard]] std::size_t copy_bytes_used() const { return copy_used_; }

 private:
  // Room for IPV6_PKTINFO (the larger of the two).
  static constexpr std::size_t control_size = CMSG_SPACE(sizeof(in6_pktinfo));
  // PKTINFO followed by UDP_SEGMENT.
  static constexpr std::size_t gso_control_size = control_size + CMSG_SPACE(sizeof(std::uint16_t));
  // No message may exceed UIO_MAXIOV iovecs; a full run stays below it.
  static_assert(max_gso_segments * max_fragments <= 1024);
  static constexpr std::uint32_t none = 0xFFFFFFFFu;

  struct entry {
    int fd = -1;
    direction dir = direction::to_client;
    std::uint8_t fragments = 0;
    std::uint8_t control_len = 0;
    socklen_t name_len = 0;
    std::uint32_t length = 0;  // bytes in all fragments
    union {
      sockaddr_in v4;
      sockaddr_in6 v6;
    } name{};
    iovec iov[max_fragments]{};
    alignas(cmsghdr) std::byte control[control_size]{};
  };

  // One sendmmsg header: `count` datagrams from flush position `first`.
  struct message {
    std::uint32_t first = 0;
    std::uint32_t count = 0;
  };
  struct gso_control {
    alignas(cmsghdr) std::byte bytes[gso_control_size];
  };
  // Destination table slot, valid while `stamp` is the flush's.
  struct slot {
    std::uint32_t stamp = 0;
    std::uint32_t hash = 0;
    std::uint32_t index = 0;
  };

  [[nodiscard]] entry& at(std::size_t position) { return entries_[order_[position] & 0xFFFFFFFFu]; }
  bool link_destinations();
  void order_by_destination();
  std::size_t plan(std::size_t first, std::size_t end, std::size_t header, bool merge);
  void send_group(int fd, std::size_t first, std::size_t end, bool merge, flush_result& result);
  void fail(std::size_t first, std::size_t count, int error, flush_result& result);

  sendmmsg_fn sendmmsg_;
  std::vector<entry> entries_;
  std::vector<std::uint64_t> order_;  // (fd << 32 | index), sorted at flush
  std::vector<std::uint64_t> reordered_;  // order_ by destination, swapped with it
  std::vector<mmsghdr> headers_;          // in flush order; never more than datagrams
  std::vector<message> messages_;         // what each header carries
  // A merged message starting at flush position p uses gso_iov_ from
  // p * max_fragments and gso_control_[p]: the positions it covers are its own.
  std::vector<iovec> gso_iov_;
  std::vector<gso_control> gso_control_;
  // Per entry: the first queued entry with the same destination, and the
  // next one after it (none: the last). Valid in a flush with GSO on.
  std::vector<std::uint32_t> same_first_;
  std::vector<std::uint32_t> same_next_;
  std::vector<std::uint32_t> same_last_;  // for a first entry: the last one so far
  std::vector<slot> table_;               // open addressing, size a power of two
  std::uint32_t stamp_ = 0;
  bool gso_enabled_ = true;
  std::size_t gso_max_segment_ = max_gso_bytes;
  std::unique_ptr<std::byte[]> copy_;
  std::size_t copy_size_ = 0;
  std::size_t copy_used_ = 0;
  std::size_t count_ = 0;
  const std::byte* stable_begin_ = nullptr;
  const std::byte* stable_end_ = nullptr;
};

}  // namespace anyturn::net
