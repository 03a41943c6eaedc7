// The worker's relay sockets: one UDP socket per relayed address, in a
// table indexed by the core's relay_id, opened and closed through the
// io_port, read by the UDP loop and checked for kernel drops on the tick.
#include "relay_sockets.hpp"

#include "worker_impl.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace anyturn::net {

using relay::bump;
using detail::max_fragments;
using detail::read_clock;
using detail::relay_socket_table;
using detail::set_int_option;
using detail::stream_session;
using detail::would_block;

namespace {

// A drain that read this much from one socket may have met a full receive
// queue: read the socket's drop count at the next tick.
constexpr std::size_t drop_check_bytes = 64 * 1024;

}  // namespace

namespace detail {

relay_socket_table::relay_socket_table(std::atomic<std::uint64_t>& open_count,
                                       std::atomic<std::uint64_t>& kernel_drops, bool gro)
    : open_count_(open_count), kernel_drops_(kernel_drops), gro_(gro) {
  drop_checks_.reserve(64);
}

relay_socket_table::~relay_socket_table() {
  for (const slot& s : slots_) {
    if (s.fd >= 0) ::close(s.fd);
  }
}

bool relay_socket_table::make_room(relay::relay_id id) {
  if (id >= max_id) return false;
  if (id >= slots_.size()) slots_.resize(std::max<std::size_t>(id + 1, slots_.size() * 2));
  return true;
}

std::error_code relay_socket_table::open(relay::relay_id id, const stun::endpoint& bind, int epoll_fd) {
  fd_guard fd{::socket(domain_of(bind), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
  if (fd.fd < 0) return last_error();
  // Deliberately no SO_REUSEADDR/SO_REUSEPORT: the kernel must refuse a
  // port somebody else holds. No SO_RXQ_OVFL either (see drain_relay).
  if (!bind.is_v4() && is_unspecified(bind)) set_int_option(fd.fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
  if (bind.is_v4()) {
    // DF stays clear unless a client asks for DONT-FRAGMENT (RFC 8656 §7.2);
    // IPv6 never fragments in the network and IPV6_DONTFRAG defaults to 0.
    set_int_option(fd.fd, IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT);
  }
  if (gro_ && !enable_gro(fd.fd)) return last_error();
  const socket_address sa = to_sockaddr(bind);
  if (::bind(fd.fd, sa.data(), sa.size) != 0) return last_error();

  // Generations are never 0 (listeners) and never repeat soon: an event or
  // list entry of an earlier socket in this slot never matches.
  if (++next_generation_ == 0) ++next_generation_;
  const std::uint32_t generation = next_generation_;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.u64 = token_of(id, generation);
  if (::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd.fd, &ev) != 0) return last_error();

  slot& s = slots_[id];
  s.fd = fd.release();
  s.generation = generation;
  s.v6 = !bind.is_v4();
  s.dont_fragment = false;
  s.ready = false;
  s.drop_check = false;
  s.drops_seen = 0;
  bump(open_count_);
  return {};
}

void relay_socket_table::close(relay::relay_id id) {
  slot& s = slots_[id];
  ::close(s.fd);  // also leaves the epoll set
  s.fd = -1;
  s.ready = false;  // a listed token no longer resolves (generation)
  s.drop_check = false;
  s.dont_fragment = false;
  s.drops_seen = 0;
  open_count_.store(open_count_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
}

void relay_socket_table::check_drops_later(relay::relay_id id, std::uint32_t generation) {
  slot& s = slots_[id];
  if (s.drop_check) return;
  s.drop_check = true;
  drop_checks_.push_back(token_of(id, generation));
}

void relay_socket_table::check_drops() {
  for (const std::uint64_t token : drop_checks_) {
    const std::uint32_t id = token_index(token);
    if (!live(id, token_generation(token))) continue;
    slot& s = slots_[id];
    s.drop_check = false;
    read_drops(s);
  }
  drop_checks_.clear();
}

void relay_socket_table::read_drops(slot& s) {
  std::uint32_t info[SK_MEMINFO_VARS] = {};
  socklen_t len = sizeof info;
  if (::getsockopt(s.fd, SOL_SOCKET, SO_MEMINFO, info, &len) == 0 &&
      len >= static_cast<socklen_t>((SK_MEMINFO_DROPS + 1) * sizeof(std::uint32_t))) {
    account_drops(kernel_drops_, info[SK_MEMINFO_DROPS], s.drops_seen);
  }
}

void relay_socket_table::compact() {
  const std::uint64_t open = open_count_.load(std::memory_order_relaxed);
  if (slots_.size() <= min_size || open >= slots_.size() / 4) return;
  std::size_t end = slots_.size();
  while (end > 0 && slots_[end - 1].fd < 0 && slots_[end - 1].connection == 0) --end;
  const std::size_t keep = std::max(end, min_size);
  if (keep > slots_.size() / 2) return;
  slots_.resize(keep);
  slots_.shrink_to_fit();
}

void relay_socket_table::shrink_drop_checks() {
  if (drop_checks_.empty() && drop_checks_.capacity() > 4096) std::vector<std::uint64_t>().swap(drop_checks_);
}

}  // namespace detail

bool worker::impl::drain_relay(relay::relay_id id, std::uint32_t generation, std::size_t& round_budget) {
  std::size_t budget = std::min(options_.read_budget, round_budget);
  std::size_t bytes = 0;
  bool more = false;
  for (;;) {
    // The core may open relays (growing relays_) or close this one while
    // it handles a packet: look the slot up again every time.
    if (!relays_.live(id, generation)) return false;
    const std::size_t want = std::min(options_.batch_size, budget);
    std::size_t first = 0;
    // Control messages only for UDP_GRO's segment size (see below on SO_RXQ_OVFL).
    const int n = batch_.receive(relays_[id].fd, want, batch_.gro(), first);
    if (n < 0) {
      if (!would_block(errno)) {
        log_receive_error("relay", errno);
        more = true;
      }
      break;
    }
    const relay::now_t now = read_clock();
    for (std::size_t i = first; i < first + static_cast<std::size_t>(n); ++i) {
      if (!relays_.live(id, generation)) return false;
      const msghdr& h = batch_.header(i);
      bytes += batch_.datagram(i).size();
      auto truncated = [&] {
        bump(io_counters_.peer_truncated);
        std::uint64_t suppressed = 0;
        if (truncated_log_.allow(now.mono_ms, suppressed)) {
          spdlog::warn("worker {}: dropped a peer datagram longer than {} bytes ({} similar suppressed)",
                       index_, options_.datagram_size, suppressed);
        }
      };
      if ((h.msg_flags & MSG_TRUNC) != 0) {
        truncated();
        continue;
      }
      auto peer = from_sockaddr(static_cast<const sockaddr*>(h.msg_name), h.msg_namelen);
      if (!peer) continue;
      // One datagram, or with UDP_GRO each segment of a coalesced one; the
      // core may close this relay while it handles one.
      batch_.for_each_datagram(i, [&](stun::bytes_view datagram) {
        if (stopping_ || !relays_.live(id, generation)) return;
        if (datagram.size() > options_.datagram_size) {
          truncated();  // a slot holds more than datagram_size with UDP_GRO
          return;
        }
        core_->on_peer_packet(id, *peer, datagram, now);
      });
      if (stopping_) return false;
    }
    const auto got = static_cast<std::size_t>(n);
    budget -= got;
    round_budget -= got;
    if (got == options_.batch_size) bytes = std::max(bytes, drop_check_bytes);
    if (got < want) break;  // short read: the queue was empty
    if (budget == 0) {
      more = true;
      break;
    }
  }
  // No SO_RXQ_OVFL on relay sockets (a control message per datagram costs
  // more than it tells): a socket read this hard may have overflowed, so
  // its drop counter is read at the next tick.
  if (bytes >= drop_check_bytes && relays_.live(id, generation)) relays_.check_drops_later(id, generation);
  return more;
}

void worker::impl::close_relay_socket(relay::relay_id id) {
  relay_socket_table::slot& slot = relays_[id];
  if (const std::uint64_t conn = std::exchange(slot.connection, 0); conn != 0) {
    if (stream_session* s = connections_.find(conn)) s->relay_closed();
  }
  if (slot.fd < 0) return;
  // Queued datagrams name this descriptor: send them before it goes (its
  // number may be reused at once).
  batch_.flush();
  relays_.close(id);
}

std::error_code worker::impl::open_relay(relay::relay_id id, const stun::endpoint& bind) {
  assert_owner();
  if (!relays_.make_room(id)) return std::make_error_code(std::errc::invalid_argument);
  if (relays_[id].fd >= 0) close_relay_socket(id);  // the core reused a slot without closing
  if (std::error_code ec = relays_.open(id, bind, epoll_.native_handle())) return ec;
  if (dispatching_ != nullptr) {
    // The core opens relays only while handling an Allocate from this
    // connection: the allocation is the connection's.
    relays_[id].connection = dispatching_->ref().connection;
    dispatching_->relay_opened();
  }
  return {};
}

void worker::impl::close_relay(relay::relay_id id) {
  assert_owner();
  if (close_tcp_relay(id)) return;  // a TCP allocation's listener (tcp_relay.cpp)
  if (id < relays_.size()) close_relay_socket(id);
}

bool worker::impl::send_to_peer(relay::relay_id id, const stun::endpoint& peer, relay::fragments data,
                                bool dont_fragment) {
  assert_owner();
  relay_socket_table::slot* slot = relays_.find(id);
  if (slot == nullptr || data.size() > max_fragments) return false;
  if (peer.is_v4() == slot->v6) return false;  // the core never crosses families
  const int fd = slot->fd;
  if (dont_fragment != slot->dont_fragment) {
    // DF is a socket option: what is queued leaves with the old setting.
    batch_.flush();
    const int rc = slot->v6 ? set_int_option(fd, IPPROTO_IPV6, IPV6_DONTFRAG, dont_fragment ? 1 : 0)
                            : set_int_option(fd, IPPROTO_IP, IP_MTU_DISCOVER,
                                             dont_fragment ? IP_PMTUDISC_DO : IP_PMTUDISC_DONT);
    if (rc == 0) slot->dont_fragment = dont_fragment;
  }
  // Queued: a refusal at flush time is counted there (relay_send_failed).
  return batch_.send(fd, send_queue::direction::to_peer, peer, data, nullptr);
}

}  // namespace anyturn::net
