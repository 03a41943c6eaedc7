#include <anyturn/net/worker.hpp>

#include <anyturn/net/address.hpp>
#include <anyturn/net/log_limiter.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <optional>
#include <thread>
#include <utility>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

namespace anyturn::net {

namespace asio = boost::asio;
using udp = asio::ip::udp;
using turn::bump;

worker_options worker_options::from_config(const config::server_config& cfg) {
  worker_options o;
  o.listen = cfg.listen;
  o.socket_buffer = cfg.udp_socket_buffer;
  return o;
}

namespace {
worker_options sanitized(worker_options o) {
  o.batch_size = std::clamp<std::size_t>(o.batch_size, 1, 1024);
  o.datagram_size = std::clamp<std::size_t>(o.datagram_size, 548, 65536);
  o.read_budget = std::max<std::size_t>(o.read_budget, 1);
  if (o.tick.count() <= 0) o.tick = std::chrono::milliseconds{250};
  return o;
}
}  // namespace

namespace {

// Most fragments a single send may carry (the core uses up to four).
constexpr std::size_t max_fragments = 8;
// Highest relay id we accept: a bound on the socket table, far above any
// max_allocations a worker is configured for.
constexpr turn::relay_id max_relay_id = 1u << 24;

turn::now_t read_clock() {
  using namespace std::chrono;
  return {duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count(),
          duration_cast<seconds>(system_clock::now().time_since_epoch()).count()};
}

std::error_code last_error() { return {errno, std::system_category()}; }

bool would_block(int err) { return err == EAGAIN || err == EWOULDBLOCK; }

int set_int_option(int fd, int level, int name, int value) {
  return ::setsockopt(fd, level, name, &value, sizeof value);
}

// Owns a raw descriptor until it is handed to Asio.
struct fd_guard {
  int fd = -1;
  ~fd_guard() {
    if (fd >= 0) ::close(fd);
  }
  int release() { return std::exchange(fd, -1); }
};

udp protocol_of(const stun::endpoint& ep) { return ep.is_v4() ? udp::v4() : udp::v6(); }

int domain_of(const stun::endpoint& ep) { return ep.is_v4() ? AF_INET : AF_INET6; }

// Sets a socket buffer, using the privileged variant when we may (it ignores
// net.core.[rw]mem_max). Returns the size the kernel actually granted.
int set_buffer(int fd, int force_name, int name, std::uint32_t bytes) {
  const int value = static_cast<int>(std::min<std::uint32_t>(bytes, INT32_MAX / 2));
  if (set_int_option(fd, SOL_SOCKET, force_name, value) != 0) {
    set_int_option(fd, SOL_SOCKET, name, value);
  }
  int granted = 0;
  socklen_t len = sizeof granted;
  ::getsockopt(fd, SOL_SOCKET, name, &granted, &len);
  return granted / 2;  // the kernel reports double the requested size (bookkeeping overhead)
}

}  // namespace

struct worker::impl final : private turn::io_port {
  // A listening UDP socket, shared (SO_REUSEPORT) with the other workers.
  struct listener {
    explicit listener(asio::io_context& ioc) : socket(ioc) {}
    udp::socket socket;
    stun::endpoint bound;    // address and resolved port
    bool wildcard = false;   // bound to 0.0.0.0 / ::, so replies carry PKTINFO
    std::uint32_t drops_seen = 0;
  };

  // A relay socket, indexed by the core's relay_id.
  struct relay_slot {
    std::optional<udp::socket> socket;  // empty when closed
    std::uint32_t generation = 0;       // bumped on every close: late handlers see a mismatch
    bool v6 = false;
    bool dont_fragment = false;         // the DF state last set on the socket
    std::uint32_t drops_seen = 0;
  };

  impl(unsigned index, std::shared_ptr<const turn::shared_state> shared, worker_options options)
      : index_(index),
        options_(sanitized(std::move(options))),
        ioc_(1),
        timer_(ioc_),
        batch_data_(options_.batch_size * options_.datagram_size),
        headers_(options_.batch_size),
        iov_(options_.batch_size),
        names_(options_.batch_size),
        control_(options_.batch_size),
        core_(std::make_unique<turn::server>(std::move(shared), static_cast<turn::io_port&>(*this),
                                             counters_, index)) {
    for (std::size_t i = 0; i < options_.batch_size; ++i) {
      iov_[i].iov_base = batch_data_.data() + i * options_.datagram_size;
      iov_[i].iov_len = options_.datagram_size;
      msghdr& h = headers_[i].msg_hdr;
      h.msg_iov = &iov_[i];
      h.msg_iovlen = 1;
    }
  }

  ~impl() override {
    // The core goes first: its destructor may still close relays through us.
    core_.reset();
  }

  // ---- start-up (any thread, before run) ----

  std::error_code open(std::string& what) {
    listeners_.clear();
    listeners_.reserve(options_.listen.size());
    for (const auto& ep : options_.listen) {
      std::error_code ec = open_listener(ep, what);
      if (ec) {
        listeners_.clear();
        return ec;
      }
    }
    return {};
  }

  std::error_code open_listener(const stun::endpoint& ep, std::string& what) {
    auto fail = [&](const char* step) {
      std::error_code ec = last_error();
      what = fmt::format("udp listener {}: {}: {}", ep.to_string(), step, ec.message());
      return ec;
    };
    if (options_.probe_exclusive && ep.port != 0) {
      fd_guard probe{::socket(domain_of(ep), SOCK_DGRAM | SOCK_CLOEXEC, 0)};
      if (probe.fd < 0) return fail("socket");
      if (!ep.is_v4()) set_int_option(probe.fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
      const socket_address sa = to_sockaddr(ep);
      if (::bind(probe.fd, sa.data(), sa.size) != 0) return fail("bind");
    }
    fd_guard fd{::socket(domain_of(ep), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
    if (fd.fd < 0) return fail("socket");
    // Every worker binds the same address: the kernel spreads 5-tuples.
    if (set_int_option(fd.fd, SOL_SOCKET, SO_REUSEPORT, 1) != 0) return fail("SO_REUSEPORT");
    if (!ep.is_v4() && set_int_option(fd.fd, IPPROTO_IPV6, IPV6_V6ONLY, 1) != 0) {
      return fail("IPV6_V6ONLY");
    }
    const int rcv = set_buffer(fd.fd, SO_RCVBUFFORCE, SO_RCVBUF, options_.socket_buffer);
    const int snd = set_buffer(fd.fd, SO_SNDBUFFORCE, SO_SNDBUF, options_.socket_buffer);
    if (index_ == 0 && (static_cast<std::uint32_t>(rcv) < options_.socket_buffer ||
                        static_cast<std::uint32_t>(snd) < options_.socket_buffer)) {
      spdlog::warn(
          "udp listener {}: asked for {} byte socket buffers, the kernel granted {} (receive) and "
          "{} (send); raise net.core.rmem_max / net.core.wmem_max",
          ep.to_string(), options_.socket_buffer, rcv, snd);
    }
    if (set_int_option(fd.fd, SOL_SOCKET, SO_RXQ_OVFL, 1) != 0) return fail("SO_RXQ_OVFL");
    const bool wildcard = is_unspecified(ep);
    if (wildcard) {
      const int rc = ep.is_v4() ? set_int_option(fd.fd, IPPROTO_IP, IP_PKTINFO, 1)
                                : set_int_option(fd.fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1);
      if (rc != 0) return fail("PKTINFO");
    }
    const socket_address sa = to_sockaddr(ep);
    if (::bind(fd.fd, sa.data(), sa.size) != 0) return fail("bind");

    socket_address bound;
    bound.size = sizeof bound.storage;
    if (::getsockname(fd.fd, bound.data(), &bound.size) != 0) return fail("getsockname");
    auto bound_ep = from_sockaddr(bound.data(), bound.size);
    if (!bound_ep) {
      what = fmt::format("udp listener {}: unexpected local address", ep.to_string());
      return std::make_error_code(std::errc::address_family_not_supported);
    }

    listener& l = listeners_.emplace_back(ioc_);
    boost::system::error_code aec;
    l.socket.assign(protocol_of(ep), fd.fd, aec);
    if (aec) {
      listeners_.pop_back();
      what = fmt::format("udp listener {}: {}", ep.to_string(), aec.message());
      return std::error_code(aec.value(), std::system_category());
    }
    fd.release();
    l.bound = *bound_ep;
    l.wildcard = wildcard;
    return {};
  }

  std::vector<stun::endpoint> listener_endpoints() const {
    std::vector<stun::endpoint> out;
    out.reserve(listeners_.size());
    for (const auto& l : listeners_) out.push_back(l.bound);
    return out;
  }

  // ---- the loop ----

  void run() {
    owner_ = std::this_thread::get_id();
    for (std::size_t i = 0; i < listeners_.size(); ++i) {
      asio::post(ioc_, [this, i] {
        if (!stopping_) drain_listener(i);
      });
    }
    arm_tick();
    ioc_.run();
    owner_ = std::thread::id{};
  }

  void stop() {
    asio::post(ioc_, [this] { do_stop(); });
  }

  void do_stop() {
    assert_owner();
    if (stopping_) return;
    core_->shutdown(read_clock());
    stopping_ = true;
    boost::system::error_code ignored;
    for (auto& l : listeners_) l.socket.close(ignored);
    for (turn::relay_id id = 0; id < relays_.size(); ++id) close_relay_socket(id);
    timer_.cancel();
    ioc_.stop();
  }

  void arm_tick() {
    timer_.expires_after(options_.tick);
    timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopping_) return;
      core_->on_tick(read_clock());
      arm_tick();
    });
  }

  // One recvmmsg into the batch buffers. Returns the count, or -1 (errno set).
  int receive(int fd) {
    for (std::size_t i = 0; i < options_.batch_size; ++i) {
      msghdr& h = headers_[i].msg_hdr;
      h.msg_name = &names_[i];
      h.msg_namelen = sizeof(sockaddr_storage);
      h.msg_control = control_[i].bytes;
      h.msg_controllen = sizeof control_[i].bytes;
      h.msg_flags = 0;
      headers_[i].msg_len = 0;
    }
    int n;
    do {
      n = ::recvmmsg(fd, headers_.data(), static_cast<unsigned>(options_.batch_size), MSG_DONTWAIT,
                     nullptr);
    } while (n < 0 && errno == EINTR);
    return n;
  }

  // SO_RXQ_OVFL reports the socket's cumulative drop count; count the growth.
  void account_drops(std::uint32_t latest, std::uint32_t& seen) {
    const std::uint32_t delta = latest - seen;  // wraps correctly
    if (delta != 0) bump(counters_.kernel_drops, delta);
    seen = latest;
  }

  void log_receive_error(const char* what, int err) {
    bump(io_counters_.receive_errors);
    std::uint64_t suppressed = 0;
    if (receive_error_log_.allow(read_clock().mono_ms, suppressed)) {
      spdlog::warn("worker {}: recvmmsg on {} failed: {} ({} similar suppressed)", index_, what,
                   std::strerror(err), suppressed);
    }
  }

  // Reads a listener until the kernel queue is empty or the budget is spent.
  void drain_listener(std::size_t li) {
    assert_owner();
    listener& l = listeners_[li];  // listeners_ does not change after open()
    const int fd = l.socket.native_handle();
    std::size_t budget = options_.read_budget;
    for (;;) {
      const int n = receive(fd);
      if (n < 0) {
        if (!would_block(errno)) log_receive_error("listener", errno);
        break;
      }
      const turn::now_t now = read_clock();
      for (int i = 0; i < n; ++i) {
        const msghdr& h = headers_[i].msg_hdr;
        const receive_info info = parse_control(h);
        if (info.drops) account_drops(*info.drops, l.drops_seen);
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
        turn::client_ref from;
        from.proto = turn::transport::udp;
        from.listener = static_cast<std::uint32_t>(li);
        from.remote = *remote;
        from.local = l.bound;
        if (l.wildcard && info.local && info.local->family == l.bound.family) {
          from.local.ip = info.local->ip;
        }
        const auto* data = static_cast<const std::byte*>(h.msg_iov[0].iov_base);
        core_->on_client_packet(from, stun::bytes_view(data, headers_[i].msg_len), now);
        if (stopping_) return;
      }
      const auto got = static_cast<std::size_t>(n);
      budget -= std::min(budget, got);
      if (budget == 0) {
        // Other sockets get their turn; a posted continuation, not a wait:
        // Asio's epoll is edge-triggered and the queue is not empty.
        asio::post(ioc_, [this, li] {
          if (!stopping_) drain_listener(li);
        });
        return;
      }
    }
    arm_listener(li);
  }

  void arm_listener(std::size_t li) {
    listeners_[li].socket.async_wait(udp::socket::wait_read,
                                     [this, li](const boost::system::error_code& ec) {
                                       if (stopping_ || ec == asio::error::operation_aborted) return;
                                       if (ec) {
                                         log_receive_error("listener wait", ec.value());
                                       }
                                       drain_listener(li);
                                     });
  }

  [[nodiscard]] bool relay_live(turn::relay_id id, std::uint32_t generation) const {
    return id < relays_.size() && relays_[id].socket && relays_[id].generation == generation;
  }

  void drain_relay(turn::relay_id id, std::uint32_t generation) {
    assert_owner();
    std::size_t budget = options_.read_budget;
    for (;;) {
      // The core may open relays (growing relays_) or close this one while
      // it handles a packet: look the slot up again every time.
      if (!relay_live(id, generation)) return;
      const int n = receive(relays_[id].socket->native_handle());
      if (n < 0) {
        if (!would_block(errno)) log_receive_error("relay", errno);
        break;
      }
      const turn::now_t now = read_clock();
      for (int i = 0; i < n; ++i) {
        const msghdr& h = headers_[i].msg_hdr;
        const receive_info info = parse_control(h);
        if (info.drops) account_drops(*info.drops, relays_[id].drops_seen);
      }
      for (int i = 0; i < n; ++i) {
        if (!relay_live(id, generation)) return;
        const msghdr& h = headers_[i].msg_hdr;
        if ((h.msg_flags & MSG_TRUNC) != 0) {
          bump(io_counters_.peer_truncated);
          std::uint64_t suppressed = 0;
          if (truncated_log_.allow(now.mono_ms, suppressed)) {
            spdlog::warn("worker {}: dropped a peer datagram longer than {} bytes ({} similar suppressed)",
                         index_, options_.datagram_size, suppressed);
          }
          continue;
        }
        auto peer = from_sockaddr(static_cast<const sockaddr*>(h.msg_name), h.msg_namelen);
        if (!peer) continue;
        const auto* data = static_cast<const std::byte*>(h.msg_iov[0].iov_base);
        core_->on_peer_packet(id, *peer, stun::bytes_view(data, headers_[i].msg_len), now);
        if (stopping_) return;
      }
      const auto got = static_cast<std::size_t>(n);
      budget -= std::min(budget, got);
      if (budget == 0) {
        asio::post(ioc_, [this, id, generation] {
          if (!stopping_ && relay_live(id, generation)) drain_relay(id, generation);
        });
        return;
      }
    }
    arm_relay(id, generation);
  }

  void arm_relay(turn::relay_id id, std::uint32_t generation) {
    relays_[id].socket->async_wait(
        udp::socket::wait_read, [this, id, generation](const boost::system::error_code& ec) {
          // A closed (or closed and reopened) slot: this completion is stale.
          if (stopping_ || ec == asio::error::operation_aborted || !relay_live(id, generation)) return;
          if (ec) log_receive_error("relay wait", ec.value());
          drain_relay(id, generation);
        });
  }

  void close_relay_socket(turn::relay_id id) {
    relay_slot& slot = relays_[id];
    if (!slot.socket) return;
    boost::system::error_code ignored;
    slot.socket->close(ignored);
    slot.socket.reset();
    ++slot.generation;
    slot.dont_fragment = false;
    slot.drops_seen = 0;
    io_counters_.relay_sockets_open.store(
        io_counters_.relay_sockets_open.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  }

  // ---- io_port (worker thread only) ----

  void send_to_client(const turn::client_ref& to, turn::fragments data) override {
    assert_owner();
    if (to.proto != turn::transport::udp || to.listener >= listeners_.size() ||
        data.size() > max_fragments) {
      bump(counters_.client_send_failed);
      return;
    }
    listener& l = listeners_[to.listener];
    if (!l.socket.is_open()) {
      bump(counters_.client_send_failed);
      return;
    }
    std::array<iovec, max_fragments> iov;
    for (std::size_t i = 0; i < data.size(); ++i) {
      iov[i].iov_base = const_cast<std::byte*>(data[i].data());
      iov[i].iov_len = data[i].size();
    }
    socket_address dst = to_sockaddr(to.remote);
    msghdr msg{};
    msg.msg_name = dst.data();
    msg.msg_namelen = dst.size;
    msg.msg_iov = iov.data();
    msg.msg_iovlen = data.size();
    control_buffer control;
    if (l.wildcard && to.local.family == l.bound.family && !is_unspecified(to.local)) {
      // Answer from the address the client reached (multi-homed hosts).
      const std::size_t len = write_source_control(to.local, control.bytes);
      if (len != 0) {
        msg.msg_control = control.bytes;
        msg.msg_controllen = len;
      }
    }
    ssize_t rc;
    do {
      rc = ::sendmsg(l.socket.native_handle(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) {
      const int err = errno;
      bump(counters_.client_send_failed);
      if (!would_block(err) && err != ENOBUFS) {
        std::uint64_t suppressed = 0;
        if (send_error_log_.allow(read_clock().mono_ms, suppressed)) {
          spdlog::warn("worker {}: send to client {} failed: {} ({} similar suppressed)", index_,
                       to.remote.to_string(), std::strerror(err), suppressed);
        }
      }
    }
  }

  std::error_code open_relay(turn::relay_id id, const stun::endpoint& bind) override {
    assert_owner();
    if (id >= max_relay_id) return std::make_error_code(std::errc::invalid_argument);
    if (id >= relays_.size()) {
      relays_.resize(std::max<std::size_t>(id + 1, relays_.size() * 2));
    }
    if (relays_[id].socket) close_relay_socket(id);  // the core reused a slot without closing

    fd_guard fd{::socket(domain_of(bind), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
    if (fd.fd < 0) return last_error();
    // Deliberately no SO_REUSEADDR/SO_REUSEPORT: the kernel must refuse a
    // port somebody else holds.
    if (!bind.is_v4() && is_unspecified(bind)) set_int_option(fd.fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
    set_int_option(fd.fd, SOL_SOCKET, SO_RXQ_OVFL, 1);
    if (bind.is_v4()) {
      // DF stays clear unless a client asks for DONT-FRAGMENT (RFC 8656 §7.2);
      // IPv6 never fragments in the network and IPV6_DONTFRAG defaults to 0.
      set_int_option(fd.fd, IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT);
    }
    const socket_address sa = to_sockaddr(bind);
    if (::bind(fd.fd, sa.data(), sa.size) != 0) return last_error();

    relay_slot& slot = relays_[id];
    slot.socket.emplace(ioc_);
    boost::system::error_code aec;
    slot.socket->assign(protocol_of(bind), fd.fd, aec);
    if (aec) {
      slot.socket.reset();
      return {aec.value(), std::system_category()};
    }
    fd.release();
    slot.v6 = !bind.is_v4();
    slot.dont_fragment = false;
    slot.drops_seen = 0;
    bump(io_counters_.relay_sockets_open);
    arm_relay(id, slot.generation);
    return {};
  }

  void close_relay(turn::relay_id id) override {
    assert_owner();
    if (id < relays_.size()) close_relay_socket(id);
  }

  bool send_to_peer(turn::relay_id id, const stun::endpoint& peer, turn::fragments data,
                    bool dont_fragment) override {
    assert_owner();
    if (id >= relays_.size() || !relays_[id].socket || data.size() > max_fragments) return false;
    relay_slot& slot = relays_[id];
    const int fd = slot.socket->native_handle();
    if (dont_fragment != slot.dont_fragment) {
      const int rc = slot.v6 ? set_int_option(fd, IPPROTO_IPV6, IPV6_DONTFRAG, dont_fragment ? 1 : 0)
                             : set_int_option(fd, IPPROTO_IP, IP_MTU_DISCOVER,
                                              dont_fragment ? IP_PMTUDISC_DO : IP_PMTUDISC_DONT);
      if (rc == 0) slot.dont_fragment = dont_fragment;
    }
    std::array<iovec, max_fragments> iov;
    for (std::size_t i = 0; i < data.size(); ++i) {
      iov[i].iov_base = const_cast<std::byte*>(data[i].data());
      iov[i].iov_len = data[i].size();
    }
    socket_address dst = to_sockaddr(peer);
    msghdr msg{};
    msg.msg_name = dst.data();
    msg.msg_namelen = dst.size;
    msg.msg_iov = iov.data();
    msg.msg_iovlen = data.size();
    ssize_t rc;
    do {
      rc = ::sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) {
      const int err = errno;
      if (!would_block(err) && err != ENOBUFS && err != EMSGSIZE) {
        std::uint64_t suppressed = 0;
        if (send_error_log_.allow(read_clock().mono_ms, suppressed)) {
          spdlog::warn("worker {}: send to peer {} failed: {} ({} similar suppressed)", index_,
                       peer.to_string(), std::strerror(err), suppressed);
        }
      }
      return false;
    }
    return true;
  }

  void assert_owner() const {
    // The thread in run() owns everything here; before run() and after it
    // returns, the (single) thread holding the worker may use it.
    assert(owner_ == std::thread::id{} || owner_ == std::this_thread::get_id());
  }

  turn::io_port& io() { return *this; }

  // ---- state ----
  const unsigned index_;
  const worker_options options_;
  std::thread::id owner_;  // the thread inside run(); id{} otherwise

  // Read by other threads (relaxed); written only by the worker thread.
  turn::worker_counters counters_;
  net_counters io_counters_;

  // Everything below is owned by the worker thread.
  asio::io_context ioc_;  // declared before every I/O object: destroyed last
  asio::steady_timer timer_;
  std::vector<listener> listeners_;
  std::vector<relay_slot> relays_;  // indexed by relay_id
  bool stopping_ = false;

  // Receive batch, preallocated once; reused by every socket of this worker.
  std::vector<std::byte> batch_data_;
  std::vector<mmsghdr> headers_;
  std::vector<iovec> iov_;
  std::vector<sockaddr_storage> names_;
  std::vector<control_buffer> control_;

  log_limiter receive_error_log_;
  log_limiter send_error_log_;
  log_limiter truncated_log_;

  // Last: destroyed first, while the sockets it may close still exist.
  std::unique_ptr<turn::server> core_;
};

worker::worker(unsigned index, std::shared_ptr<const turn::shared_state> shared,
               worker_options options)
    : impl_(std::make_unique<impl>(index, std::move(shared), std::move(options))) {}

worker::~worker() = default;

std::error_code worker::open(std::string& what) { return impl_->open(what); }

std::vector<stun::endpoint> worker::listener_endpoints() const { return impl_->listener_endpoints(); }

void worker::run() { impl_->run(); }

void worker::stop() { impl_->stop(); }

unsigned worker::index() const { return impl_->index_; }

const turn::worker_counters& worker::counters() const { return impl_->counters_; }

const net_counters& worker::io_counters() const { return impl_->io_counters_; }

turn::io_port& worker::io_for_test() { return impl_->io(); }

}  // namespace anyturn::net
