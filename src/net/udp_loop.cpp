// The UDP loop of a worker: one epoll set, rounds, batches.
//
// The worker's UDP sockets sit in its own epoll set, edge-triggered and
// registered once (EPOLL_CTL_ADD when opened; close() removes them).
// Asio waits for that set's descriptor only when the worker has nothing
// left to read: one EPOLL_CTL_MOD inside Asio per idle period, none per
// socket or per datagram. A round of the loop is up to max_passes passes of:
//   1. epoll_wait(0) moves newly readable sockets onto the ready list;
//   2. each ready socket is read with recvmmsg, up to read_budget
//      datagrams, while the round has round_budget left; a socket leaves the
//      list once a read comes back short (Linux raises a new edge for
//      every datagram queued after that) or with EAGAIN;
//   3. what the core sent meanwhile is flushed with sendmmsg.
// A pass that finds nothing ready ends the round and re-arms Asio's wait.
// When a budget runs out, the next round is posted instead, so timers and
// streams run in between.
//
// Wake-up coalescing (limits.udp_coalesce_us, off by default): at
// moderate rates nearly every datagram costs a wake-up of its own, and on
// a VM a wake-up (interrupt, idle exit, context switch) costs more than
// relaying the datagram. When two socket wake-ups come less than two
// windows apart, the worker stops waiting for sockets and sleeps one
// window per round instead, reading and sending whatever arrived meanwhile
// as one batch; the first window that brings nothing ends it. A relayed
// datagram waits at most one window longer.

#include "udp_loop.hpp"

#include "worker_impl.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <time.h>

#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

namespace anyturn::net {

namespace asio = boost::asio;
using relay::bump;
using detail::account_drops;
using detail::handoff_token;
using detail::max_fragments;
using detail::mono_ns;
using detail::read_clock;
using detail::token_generation;
using detail::token_index;
using detail::would_block;

namespace {

// Passes of a round of the UDP loop before Asio's other handlers get to run.
constexpr std::size_t max_passes = 8;
// A round that read at least this many datagrams busy-polls before sleeping
// (worker_options::udp_busy_poll).
constexpr std::size_t busy_round_datagrams = 4;

}  // namespace

namespace detail {

bool enable_gro(int fd) { return set_int_option(fd, SOL_UDP, UDP_GRO, 1) == 0; }

std::size_t gro_segment_size(const msghdr& msg) {
  auto* m = const_cast<msghdr*>(&msg);  // CMSG_NXTHDR only reads it
  for (cmsghdr* c = CMSG_FIRSTHDR(m); c != nullptr; c = CMSG_NXTHDR(m, c)) {
    if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
      int size = 0;
      std::memcpy(&size, CMSG_DATA(c), sizeof size);
      return size > 0 ? static_cast<std::size_t>(size) : 0;
    }
  }
  return 0;
}

void udp_batch::count_gro(std::size_t datagrams) {
  bump(io_counters_.gro_messages);
  bump(io_counters_.gro_datagrams, datagrams);
}

udp_batch::udp_batch(const worker_options& options, unsigned worker_index,
                     relay::worker_counters& counters, net_counters& io_counters)
    : index_(worker_index),
      counters_(counters),
      io_counters_(io_counters),
      datagram_size_(options.datagram_size),
      gro_(options.udp_gro),
      slot_size_(gro_ ? std::max(gro_slot_size, datagram_size_) : datagram_size_),
      slots_(options.receive_arena),
      data_(std::make_unique_for_overwrite<std::byte[]>(slots_ * slot_size_)),
      headers_(slots_),
      iov_(slots_),
      names_(slots_),
      control_(slots_),
      tx_(options.send_batch, options.send_batch * 256) {
  tx_.set_gso(options.udp_gso);
  for (std::size_t i = 0; i < slots_; ++i) {
    iov_[i].iov_base = data_.get() + i * slot_size_;
    iov_[i].iov_len = slot_size_;
    msghdr& h = headers_[i].msg_hdr;
    h.msg_iov = &iov_[i];
    h.msg_iovlen = 1;
  }
  // Payloads the core forwards point into the arena: queued, not copied.
  tx_.set_stable_range(data_.get(), data_.get() + slots_ * slot_size_);
}

int udp_batch::receive(int fd, std::size_t want, bool with_control, std::size_t& first) {
  if (slots_ - used_ < want) {
    flush();
    used_ = 0;
  }
  first = used_;
  for (std::size_t i = first; i < first + want; ++i) {
    msghdr& h = headers_[i].msg_hdr;
    h.msg_name = &names_[i];
    h.msg_namelen = sizeof(sockaddr_storage);
    if (with_control) {
      h.msg_control = control_[i].bytes;
      h.msg_controllen = sizeof control_[i].bytes;
    } else {
      h.msg_control = nullptr;
      h.msg_controllen = 0;
    }
    h.msg_flags = 0;
    headers_[i].msg_len = 0;
  }
  int n;
  do {
    n = ::recvmmsg(fd, headers_.data() + first, static_cast<unsigned>(want), MSG_DONTWAIT, nullptr);
  } while (n < 0 && errno == EINTR);
  if (n > 0) used_ += static_cast<std::size_t>(n);
  return n;
}

void udp_batch::flush() {
  if (tx_.empty()) return;
  const bool gso_was_on = tx_.gso_enabled();
  const send_queue::flush_result r = tx_.flush();
  if (r.gso_messages != 0) {
    bump(io_counters_.gso_messages, r.gso_messages);
    bump(io_counters_.gso_datagrams, r.gso_datagrams);
  }
  if (gso_was_on && !tx_.gso_enabled()) {
    spdlog::warn("worker {}: the kernel refused UDP GSO (UDP_SEGMENT); sending datagrams one by one from now on",
                 index_);
  }
  if (r.failed_to_client != 0) bump(counters_.client_send_failed, r.failed_to_client);
  // The core counted these as sent (send_to_peer queued them): the
  // refusal is counted here.
  if (r.failed_to_peer != 0) bump(counters_.relay_send_failed, r.failed_to_peer);
  const int err = r.client_error != 0 ? r.client_error : (r.peer_error != EMSGSIZE ? r.peer_error : 0);
  if (err != 0) {
    std::uint64_t suppressed = 0;
    if (send_error_log_.allow(read_clock().mono_ms, suppressed)) {
      spdlog::warn("worker {}: sendmmsg to a {} failed: {} ({} similar suppressed)", index_,
                   r.client_error != 0 ? "client" : "peer", std::strerror(err), suppressed);
    }
  }
}

bool udp_batch::send_now(int fd, send_queue::direction dir, const stun::endpoint& to,
                         relay::fragments data, const stun::endpoint* source) {
  if (data.size() > max_fragments) return false;
  std::array<iovec, max_fragments> iov;
  for (std::size_t i = 0; i < data.size(); ++i) {
    iov[i].iov_base = const_cast<std::byte*>(data[i].data());
    iov[i].iov_len = data[i].size();
  }
  socket_address dst = to_sockaddr(to);
  msghdr msg{};
  msg.msg_name = dst.data();
  msg.msg_namelen = dst.size;
  msg.msg_iov = iov.data();
  msg.msg_iovlen = data.size();
  control_buffer control;
  if (source != nullptr) {
    const std::size_t len = write_source_control(*source, control.bytes);
    if (len != 0) {
      msg.msg_control = control.bytes;
      msg.msg_controllen = len;
    }
  }
  ssize_t rc;
  do {
    rc = ::sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  } while (rc < 0 && errno == EINTR);
  if (rc >= 0) return true;
  const int err = errno;
  // A full buffer is the caller's to count; EMSGSIZE toward a peer is the
  // DONT-FRAGMENT path doing its job (as in flush()).
  const bool to_peer = dir == send_queue::direction::to_peer;
  if (!would_block(err) && err != ENOBUFS && !(to_peer && err == EMSGSIZE)) {
    std::uint64_t suppressed = 0;
    if (send_error_log_.allow(read_clock().mono_ms, suppressed)) {
      spdlog::warn("worker {}: send to {} {} failed: {} ({} similar suppressed)", index_,
                   to_peer ? "peer" : "client", to.to_string(), std::strerror(err), suppressed);
    }
  }
  return false;
}

}  // namespace detail

void worker::impl::post_round() {
  asio::post(ioc_, [this] {
    if (!stopping_) run_round();
  });
}

void worker::impl::arm_epoll() {
  epoll_.async_wait(asio::posix::descriptor_base::wait_read, [this](const boost::system::error_code& ec) {
    if (stopping_ || ec == asio::error::operation_aborted) return;
    if (ec) log_receive_error("epoll wait", ec.value());
    bump(io_counters_.wakeups_socket);
    if (coalesce_ns_ > 0) {
      // Two socket wake-ups closer together than twice the window: the
      // next datagram is likely within one window, so gather instead.
      const std::int64_t now = mono_ns();
      coalescing_ = now - last_socket_wake_ns_ < 2 * coalesce_ns_;
      last_socket_wake_ns_ = now;
    }
    run_round();
  });
}

bool worker::impl::busy_poll() {
  const std::int64_t until = mono_ns() + busy_poll_ns_;
  do {
    if (work_ready(harvest())) {
      bump(io_counters_.busy_poll_hits);
      return true;
    }
  } while (mono_ns() < until);
  bump(io_counters_.busy_poll_misses);
  return false;
}

void worker::impl::coalesce_sleep() {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(coalesce_ns_ / 1'000'000'000);
  ts.tv_nsec = static_cast<long>(coalesce_ns_ % 1'000'000'000);
  while (::clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR) {
  }
  bump(io_counters_.wakeups_coalesced);
}

void worker::impl::run_round() {
  assert_owner();
  // Sends are queued from here on; every pass flushes what it queued.
  batch_.begin_round();
  std::size_t budget = options_.round_budget;
  for (std::size_t pass = 0; pass < max_passes && budget > 0; ++pass) {
    bool work = work_ready(harvest());
    if (!work && busy_poll_ns_ > 0 && !coalescing_ && options_.round_budget - budget >= busy_round_datagrams) {
      work = busy_poll();
    }
    if (!work) {
      batch_.end_round();
      // Nothing ready. Coalescing and the last window brought datagrams:
      // sleep another window, then let Asio run what became ready
      // meanwhile (streams, timers) before the next round. Otherwise wait
      // for the sockets.
      if (coalescing_ && read_since_sleep_ > 0) {
        read_since_sleep_ = 0;
        coalesce_sleep();
        post_round();
        return;
      }
      coalescing_ = false;
      read_since_sleep_ = 0;
      arm_epoll();
      return;
    }
    const std::size_t before = budget;
    read_ready(budget);
    read_since_sleep_ += before - budget;
    if (stopping_) {
      batch_.end_round();
      return;
    }
  }
  batch_.end_round();
  post_round();
}

void worker::impl::read_ready(std::size_t& budget) {
  std::size_t i = 0;
  const std::size_t listed = ready_.size();
  again_.clear();
  if (inbox_ready_) drain_inbox(budget);
  for (; i < listed && budget > 0; ++i) {
    const std::uint64_t token = ready_[i];
    const std::uint32_t index = token_index(token);
    const std::uint32_t generation = token_generation(token);
    if (generation == 0) {
      if (drain_listener(index, budget)) {
        again_.push_back(token);
      } else {
        listeners_[index].ready = false;
      }
    } else if (relays_.live(index, generation)) {
      const bool more = drain_relay(index, generation, budget);
      if (more && relays_.live(index, generation)) {
        again_.push_back(token);
      } else if (relays_.live(index, generation)) {
        relays_[index].ready = false;
      }
    }
    // else: closed since it was listed; close_relay_socket cleared its flag.
    if (stopping_) break;
  }
  batch_.end_pass();
  if (stopping_) return;
  // Those not reached first, then those with data left.
  ready_.erase(ready_.begin(), ready_.begin() + static_cast<std::ptrdiff_t>(i));
  ready_.insert(ready_.end(), again_.begin(), again_.end());
}

bool worker::impl::harvest() {
  int n;
  do {
    n = ::epoll_wait(epoll_.native_handle(), events_.data(), static_cast<int>(events_.size()), 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    log_receive_error("epoll_wait", errno);
    return false;
  }
  for (int k = 0; k < n; ++k) {
    const std::uint64_t token = events_[k].data.u64;
    const std::uint32_t index = token_index(token);
    const std::uint32_t generation = token_generation(token);
    if (token == handoff_token) {
      inbox_ready_ = inbox_ != nullptr;
    } else if (generation == 0) {
      if (index < listeners_.size() && !listeners_[index].ready) {
        listeners_[index].ready = true;
        ready_.push_back(token);
      }
    } else if (relays_.live(index, generation) && !relays_[index].ready) {
      relays_[index].ready = true;
      ready_.push_back(token);
    }
  }
  return static_cast<std::size_t>(n) == events_.size();
}

void worker::impl::log_receive_error(const char* what, int err) {
  bump(io_counters_.receive_errors);
  std::uint64_t suppressed = 0;
  if (receive_error_log_.allow(read_clock().mono_ms, suppressed)) {
    spdlog::warn("worker {}: recvmmsg on {} failed: {} ({} similar suppressed)", index_, what,
                 std::strerror(err), suppressed);
  }
}

bool worker::impl::drain_listener(std::size_t li, std::size_t& round_budget) {
  detail::udp_listener& l = listeners_[li];
  const int fd = l.fd.get();
  if (fd < 0) return false;
  std::size_t budget = std::min(options_.read_budget, round_budget);
  for (;;) {
    const std::size_t want = std::min(options_.batch_size, budget);
    std::size_t first = 0;
    const int n = batch_.receive(fd, want, true, first);  // SO_RXQ_OVFL, PKTINFO, UDP_GRO
    if (n < 0) {
      if (would_block(errno)) return false;
      log_receive_error("listener", errno);
      return true;
    }
    const relay::now_t now = read_clock();
    for (std::size_t i = first; i < first + static_cast<std::size_t>(n); ++i) {
      const msghdr& h = batch_.header(i);
      const receive_info info = parse_control(h);
      if (info.drops) account_drops(counters_.kernel_drops, *info.drops, l.drops_seen);
      if ((h.msg_flags & MSG_TRUNC) != 0) {
        // Longer than our receive buffers: no valid TURN client sends it.
        bump(counters_.malformed_dropped);
        continue;
      }
      auto remote = from_sockaddr(static_cast<const sockaddr*>(h.msg_name), h.msg_namelen);
      if (!remote) {
        bump(counters_.malformed_dropped);
        continue;
      }
      relay::client_ref from;
      from.proto = relay::transport::udp;
      from.listener = static_cast<std::uint32_t>(li);
      from.remote = *remote;
      from.local = l.bound;
      if (l.wildcard && info.local && info.local->family == l.bound.family) {
        from.local.ip = info.local->ip;
      }
      // One datagram, or with UDP_GRO each segment of a coalesced one.
      batch_.for_each_datagram(i, [&](stun::bytes_view datagram) {
        if (stopping_) return;
        if (datagram.size() > options_.datagram_size) {
          bump(counters_.malformed_dropped);  // as if truncated (see above)
        } else if (l.dtls) {
          dtls_->on_datagram(from.listener, from.remote, from.local, datagram, now);
        } else {
          core_->on_client_packet(from, datagram, now);
        }
      });
      if (stopping_) return false;
    }
    const auto got = static_cast<std::size_t>(n);
    budget -= got;
    round_budget -= got;
    if (got < want) return false;  // short read: the queue was empty
    if (budget == 0) return true;
  }
}

void worker::impl::deliver_for_test(const relay::client_ref& from, stun::bytes_view data) {
  assert_owner();
  std::byte* dst = batch_.free_slot();
  const std::size_t size = std::min(data.size(), options_.datagram_size);
  if (size != 0) std::memcpy(dst, data.data(), size);
  batch_.take_slot();
  batch_.begin_round();
  core_->on_client_packet(from, stun::bytes_view(dst, size), read_clock());
  batch_.end_round();
}

std::optional<relay::client_ref> worker::impl::alternate(const relay::client_ref& c, bool change_ip,
                                                          bool change_port) {
  assert_owner();
  if (c.proto != relay::transport::udp || c.listener >= listeners_.size()) return std::nullopt;
  const detail::udp_listener& l = listeners_[c.listener];
  if (l.nat_group < 0) return std::nullopt;
  const std::uint32_t member = l.nat_member ^ (change_ip ? 2U : 0U) ^ (change_port ? 1U : 0U);
  const std::uint32_t target = nat_groups_[static_cast<std::size_t>(l.nat_group)][member];
  if (!listeners_[target].fd.is_open()) return std::nullopt;  // stopping
  relay::client_ref out = c;
  out.listener = target;
  out.local = listeners_[target].bound;
  return out;
}

bool worker::impl::binding_only(const relay::client_ref& c) {
  return c.proto == relay::transport::udp && c.listener < listeners_.size() &&
         listeners_[c.listener].nat_member != 0;
}

void worker::impl::send_to_client(const relay::client_ref& to, relay::fragments data) {
  assert_owner();
  if (to.proto == relay::transport::dtls) {
    if (!dtls_ || !dtls_->send(to, data)) bump(counters_.client_send_failed);
    return;
  }
  if (to.proto != relay::transport::udp) {
    send_to_stream(to, data);
    return;
  }
  if (to.listener >= listeners_.size() || data.size() > max_fragments) {
    bump(counters_.client_send_failed);
    return;
  }
  detail::udp_listener& l = listeners_[to.listener];
  if (!l.fd.is_open()) {
    bump(counters_.client_send_failed);
    return;
  }
  // Answer from the address the client reached (multi-homed hosts).
  const bool with_source =
      l.wildcard && to.local.family == l.bound.family && !is_unspecified(to.local);
  if (!batch_.send(l.fd.get(), send_queue::direction::to_client, to.remote, data,
                   with_source ? &to.local : nullptr)) {
    bump(counters_.client_send_failed);
  }
}

}  // namespace anyturn::net
