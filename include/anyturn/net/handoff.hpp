// anyturn::net — worker hand-off: a datagram that reached a worker which
// does not own its allocation goes to the owner, without a lock.
//
// `handoff_queue` is the owner's inbox: a bounded multi-producer,
// single-consumer ring (Vyukov's bounded queue with a sequence number per
// slot). Slots are preallocated and hold a copy of the datagram, its
// client_ref and the time it was received. A producer claims a slot with
// one CAS on the tail ticket, copies, and publishes by storing the slot's
// sequence; a full queue refuses (the caller drops and counts). The owner
// is woken through an eventfd in its epoll set, written only when the queue
// goes from "drained" to "not drained" (an atomic flag), so a burst costs
// one write(). Nothing is allocated per packet.
//
// `handoff_group` is what the workers of one process share: the ownership
// directory and one queue per worker.
#pragma once

#include <anyturn/relay/owner_directory.hpp>
#include <anyturn/stun/message.hpp>
#include <anyturn/relay/io.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace anyturn::net {

class handoff_queue {
 public:
  // `capacity` is rounded up to a power of two; datagrams longer than
  // `datagram_size` are refused.
  handoff_queue(std::size_t capacity, std::size_t datagram_size);
  ~handoff_queue();
  handoff_queue(const handoff_queue&) = delete;
  handoff_queue& operator=(const handoff_queue&) = delete;

  enum class push_result { queued, full, too_large, closed };
  // Any thread.
  push_result push(const relay::client_ref& from, stun::bytes_view data, const relay::now_t& when);

  // Consumer (the owner's thread) only. Calls fn(client_ref, bytes_view,
  // now_t) for the oldest datagram, whose bytes live until fn returns.
  // False when the queue is empty.
  template <class Fn>
  bool pop(Fn&& fn) {
    slot& s = slots_[head_ & mask_];
    const std::uint64_t seq = s.sequence.load(std::memory_order_acquire);
    if (seq != head_ + 1) return false;
    fn(static_cast<const relay::client_ref&>(s.from),
       stun::bytes_view(data_.get() + (head_ & mask_) * datagram_size_, s.size),
       static_cast<const relay::now_t&>(s.when));
    s.sequence.store(head_ + mask_ + 1, std::memory_order_release);
    ++head_;
    return true;
  }

  // Consumer: call before draining. Resets the eventfd and the wake-up flag
  // so that a push after this point wakes the consumer again.
  void begin_drain() noexcept;
  // Any thread: later pushes are refused (the owner stopped).
  void close() noexcept { closed_.store(true, std::memory_order_release); }

  // Readable when the queue went non-empty; register it (edge-triggered) in
  // the consumer's epoll set. -1 if eventfd failed (then pushes are refused).
  [[nodiscard]] int wake_fd() const noexcept { return wake_fd_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return mask_ + 1; }
  [[nodiscard]] std::size_t datagram_size() const noexcept { return datagram_size_; }

 private:
  struct alignas(64) slot {
    std::atomic<std::uint64_t> sequence{0};
    std::uint32_t size = 0;
    relay::client_ref from;
    relay::now_t when;
  };

  std::size_t mask_;
  std::size_t datagram_size_;
  std::unique_ptr<slot[]> slots_;
  std::unique_ptr<std::byte[]> data_;
  alignas(64) std::atomic<std::uint64_t> tail_{0};  // producers
  alignas(64) std::atomic<bool> signalled_{false};
  std::atomic<bool> closed_{false};
  int wake_fd_ = -1;
  alignas(64) std::uint64_t head_ = 0;              // consumer
};

struct handoff_group {
  // `workers` queues of `queue_capacity` datagrams of up to `datagram_size`
  // bytes; a directory with `directory_capacity` entries.
  handoff_group(unsigned workers, std::size_t queue_capacity, std::size_t datagram_size,
                std::size_t directory_capacity = relay::owner_directory::default_capacity);

  relay::owner_directory directory;
  std::vector<std::unique_ptr<handoff_queue>> queues;  // index = worker index

  // The directory key of a UDP 5-tuple: the server address the client
  // reached and the client's address.
  static std::uint64_t key_of(const relay::client_ref& c) noexcept;
};

}  // namespace anyturn::net
