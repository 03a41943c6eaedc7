#include <anyturn/net/handoff.hpp>

#include <anyturn/common/keyed_hash.hpp>

#include <bit>
#include <cerrno>
#include <cstring>

#include <sys/eventfd.h>
#include <unistd.h>

namespace anyturn::net {

handoff_queue::handoff_queue(std::size_t capacity, std::size_t datagram_size)
    : mask_(std::bit_ceil(std::max<std::size_t>(capacity, 2)) - 1),
      datagram_size_(datagram_size),
      slots_(std::make_unique<slot[]>(mask_ + 1)),
      data_(std::make_unique_for_overwrite<std::byte[]>((mask_ + 1) * datagram_size)),
      wake_fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  for (std::size_t i = 0; i <= mask_; ++i) slots_[i].sequence.store(i, std::memory_order_relaxed);
}

handoff_queue::~handoff_queue() {
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

handoff_queue::push_result handoff_queue::push(const relay::client_ref& from, stun::bytes_view data,
                                               const relay::now_t& when) {
  if (closed_.load(std::memory_order_acquire) || wake_fd_ < 0) return push_result::closed;
  if (data.size() > datagram_size_) return push_result::too_large;
  std::uint64_t ticket = tail_.load(std::memory_order_relaxed);
  slot* s = nullptr;
  for (;;) {
    s = &slots_[ticket & mask_];
    const std::uint64_t seq = s->sequence.load(std::memory_order_acquire);
    if (seq == ticket) {
      if (tail_.compare_exchange_weak(ticket, ticket + 1, std::memory_order_relaxed)) break;
    } else if (seq < ticket) {
      return push_result::full;  // the consumer has not freed this slot yet
    } else {
      ticket = tail_.load(std::memory_order_relaxed);
    }
  }
  if (!data.empty()) std::memcpy(data_.get() + (ticket & mask_) * datagram_size_, data.data(), data.size());
  s->size = static_cast<std::uint32_t>(data.size());
  s->from = from;
  s->when = when;
  s->sequence.store(ticket + 1, std::memory_order_release);
  // Pairs with the fence in begin_drain: either the consumer's drain sees
  // this slot, or we see the flag it cleared and wake it.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (!signalled_.exchange(true, std::memory_order_acq_rel)) {
    const std::uint64_t one = 1;
    ssize_t rc;
    do {
      rc = ::write(wake_fd_, &one, sizeof one);
    } while (rc < 0 && errno == EINTR);
  }
  return push_result::queued;
}

void handoff_queue::begin_drain() noexcept {
  std::uint64_t count = 0;
  ssize_t rc;
  do {
    rc = ::read(wake_fd_, &count, sizeof count);
  } while (rc < 0 && errno == EINTR);
  signalled_.store(false, std::memory_order_release);
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

handoff_group::handoff_group(unsigned workers, std::size_t queue_capacity, std::size_t datagram_size,
                             std::size_t directory_capacity)
    : directory(directory_capacity) {
  queues.reserve(workers);
  for (unsigned i = 0; i < workers; ++i)
    queues.push_back(std::make_unique<handoff_queue>(queue_capacity, datagram_size));
}

std::uint64_t handoff_group::key_of(const relay::client_ref& c) noexcept {
  // Both addresses (the listener index and connection differ per worker or
  // are 0 for UDP), under the process's keyed hash, which every worker shares.
  const stun::endpoint_hash h;
  return common::keyed_hasher().add(h(c.local)).add(h(c.remote)).finish();
}

}  // namespace anyturn::net
