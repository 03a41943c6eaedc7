// The worker hand-off inbox: UDP datagrams other workers received for
// allocations this worker owns.
//
// Each is copied into a receive-arena slot (so the send queue may point
// into it, as for a datagram we read ourselves), its queue slot is freed at
// once, and the core handles it as if our listener had received it: replies
// leave through our own listener socket, from the address the client
// reached. The other direction, handing a datagram on to its owner, and
// the directory of who owns which 5-tuple are here too (io_port's
// hand_off, own, disown); the queues themselves are handoff.cpp's.
#include "worker_impl.hpp"

#include <cstring>

#include <sys/epoll.h>

namespace anyturn::net {

using relay::bump;
using detail::handoff_token;
using detail::read_clock;

void worker::impl::attach_inbox() {
  if (!options_.handoff || index_ >= options_.handoff->queues.size()) return;
  handoff_queue* q = options_.handoff->queues[index_].get();
  if (q->datagram_size() < options_.datagram_size || q->wake_fd() < 0) return;
  // Our inbox's eventfd sits in the epoll set like a socket.
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.u64 = handoff_token;
  if (::epoll_ctl(epoll_.native_handle(), EPOLL_CTL_ADD, q->wake_fd(), &ev) != 0) return;
  inbox_ = q;
  handoff_ = options_.handoff.get();
}

void worker::impl::drain_inbox(std::size_t& budget) {
  inbox_->begin_drain();  // a push from now on wakes us again
  const relay::now_t now = read_clock();
  draining_inbox_ = true;
  bool more = true;
  while (budget > 0) {
    std::byte* dst = batch_.free_slot();
    relay::client_ref from;
    std::size_t size = 0;
    more = inbox_->pop([&](const relay::client_ref& f, stun::bytes_view data, const relay::now_t&) {
      from = f;
      size = data.size();
      if (size <= options_.datagram_size && size != 0) std::memcpy(dst, data.data(), size);
    });
    if (!more) break;
    batch_.take_slot();
    --budget;
    bump(io_counters_.handed_off_in);
    if (from.proto == relay::transport::tcp && size <= options_.datagram_size) {
      // A stream connection (its descriptor) and its ConnectionBind (RFC 6062).
      adopt_stream(from, stun::bytes_view(dst, size));
      if (stopping_) break;
      continue;
    }
    if (from.listener >= listeners_.size() || size > options_.datagram_size) {
      bump(counters_.malformed_dropped);
      continue;
    }
    core_->on_client_packet(from, stun::bytes_view(dst, size), now);
    if (stopping_) break;
  }
  draining_inbox_ = false;
  inbox_ready_ = more && !stopping_;
}

bool worker::impl::hand_off(const relay::client_ref& from, stun::bytes_view data, const relay::now_t& now) {
  // A datagram another worker handed us is never handed on: if we do not
  // own it after all (hash collision, allocation just ended), the core
  // drops it.
  if (handoff_ == nullptr || draining_inbox_ || from.proto != relay::transport::udp) return false;
  const auto owner = handoff_->directory.lookup(handoff_group::key_of(from));
  if (!owner || *owner == index_ || *owner >= handoff_->queues.size()) return false;
  if (handoff_->queues[*owner]->push(from, data, now) == handoff_queue::push_result::queued) {
    bump(io_counters_.handed_off_out);
  } else {
    bump(io_counters_.handoff_dropped);
  }
  return true;
}

void worker::impl::own(const relay::client_ref& c) {
  if (handoff_ != nullptr) handoff_->directory.insert(handoff_group::key_of(c), index_);
}

void worker::impl::disown(const relay::client_ref& c) {
  if (handoff_ != nullptr) handoff_->directory.erase(handoff_group::key_of(c), index_);
}

}  // namespace anyturn::net
