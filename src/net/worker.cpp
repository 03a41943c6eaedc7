#include <anyturn/net/worker.hpp>

#include <anyturn/net/address.hpp>
#include <anyturn/net/log_limiter.hpp>

#include "stream_session.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
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
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

namespace anyturn::net {

namespace asio = boost::asio;
using udp = asio::ip::udp;
using tcp = asio::ip::tcp;
using turn::bump;
using detail::close_reason;
using detail::stream_session;

worker_options worker_options::from_config(const config::server_config& cfg) {
  worker_options o;
  o.listen = cfg.listen;
  o.socket_buffer = cfg.udp_socket_buffer;
  o.tcp = cfg.streams.tcp;
  o.tls_listen = cfg.tls.listen;
  o.max_message_size = cfg.streams.max_message_size;
  o.write_queue_size = cfg.streams.write_queue_size;
  o.tls_handshake_timeout = std::chrono::seconds{cfg.streams.tls_handshake_timeout};
  o.idle_timeout = std::chrono::seconds{cfg.streams.idle_timeout};
  return o;
}

namespace {
worker_options sanitized(worker_options o) {
  o.batch_size = std::clamp<std::size_t>(o.batch_size, 1, 1024);
  o.datagram_size = std::clamp<std::size_t>(o.datagram_size, 548, 65536);
  o.read_budget = std::max<std::size_t>(o.read_budget, 1);
  if (o.tick.count() <= 0) o.tick = std::chrono::milliseconds{250};
  o.max_message_size = std::clamp<std::size_t>(o.max_message_size, config::min_stream_message_size,
                                               config::max_stream_message_size);
  o.write_queue_size = std::max<std::size_t>(o.write_queue_size, 1024);
  if (o.tls_handshake_timeout.count() <= 0) o.tls_handshake_timeout = std::chrono::seconds{10};
  if (o.idle_timeout.count() <= 0) o.idle_timeout = std::chrono::seconds{30};
  return o;
}

detail::stream_settings settings_of(const worker_options& o) {
  detail::stream_settings s;
  s.max_message_size = o.max_message_size;
  s.write_queue_size = o.write_queue_size;
  s.handshake_timeout = o.tls_handshake_timeout;
  s.idle_timeout = o.idle_timeout;
  return s;
}

// Retry delay after accept() fails (EMFILE and friends): the queue stays
// full, so re-arming at once would spin.
constexpr std::chrono::milliseconds accept_retry_delay{100};
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

struct worker::impl final : private turn::io_port, private detail::stream_host {
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
    std::uint64_t connection = 0;       // the stream connection whose allocation opened it, or 0
  };

  // A listening TCP socket (plain or TLS), shared (SO_REUSEPORT) with the
  // other workers.
  struct stream_listener {
    explicit stream_listener(asio::io_context& ioc) : acceptor(ioc), retry(ioc) {}
    tcp::acceptor acceptor;
    asio::steady_timer retry;  // back-off after an accept error
    stun::endpoint bound;
    bool tls = false;
  };

  // The connection table: a connection id is (generation << 32 | slot), so a
  // stale id (a closed connection whose slot was reused) never resolves.
  struct connection_slot {
    std::shared_ptr<stream_session> session;
    std::uint32_t generation = 1;  // ids are never 0 (0 means "not a stream")
  };

  impl(unsigned index, std::shared_ptr<const turn::shared_state> shared, worker_options options)
      : index_(index),
        options_(sanitized(std::move(options))),
        ioc_(1),
        timer_(ioc_),
        stream_settings_(settings_of(options_)),
        tls_(options_.tls),
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
    // Connections first (they release their limiter counts and end their
    // allocations), then the core: its destructor may still close relays.
    close_all_connections();
    core_.reset();
  }

  // ---- start-up (any thread, before run) ----

  std::error_code open(std::string& what) {
    listeners_.clear();
    stream_listeners_.clear();
    listeners_.reserve(options_.listen.size());
    stream_listeners_.reserve(options_.listen.size() + options_.tls_listen.size());
    auto fail = [&](std::error_code ec) {
      listeners_.clear();
      stream_listeners_.clear();
      return ec;
    };
    if (!options_.tls_listen.empty() && !tls_) {
      what = "tls listeners configured without a TLS context";
      return fail(std::make_error_code(std::errc::invalid_argument));
    }
    for (const auto& ep : options_.listen) {
      // UDP and TCP share the port. With port 0 the UDP socket picks one,
      // and if TCP finds that port taken, both try again with another.
      for (int attempt = 0;; ++attempt) {
        if (std::error_code ec = open_listener(ep, what)) return fail(ec);
        if (!options_.tcp) break;
        const std::error_code ec = open_stream_listener(listeners_.back().bound, false, what);
        if (!ec) break;
        if (ep.port == 0 && ec == std::errc::address_in_use && attempt < 20) {
          listeners_.pop_back();
          continue;
        }
        return fail(ec);
      }
    }
    for (const auto& ep : options_.tls_listen) {
      if (std::error_code ec = open_stream_listener(ep, true, what)) return fail(ec);
    }
    return {};
  }

  std::error_code open_stream_listener(const stun::endpoint& ep, bool tls, std::string& what) {
    const char* kind = tls ? "tls" : "tcp";
    auto fail = [&](const char* step) {
      std::error_code ec = last_error();
      what = fmt::format("{} listener {}: {}: {}", kind, ep.to_string(), step, ec.message());
      return ec;
    };
    if (options_.probe_exclusive && ep.port != 0) {
      // Without SO_REUSEPORT: fails if anybody listens on the port.
      fd_guard probe{::socket(domain_of(ep), SOCK_STREAM | SOCK_CLOEXEC, 0)};
      if (probe.fd < 0) return fail("socket");
      set_int_option(probe.fd, SOL_SOCKET, SO_REUSEADDR, 1);
      if (!ep.is_v4()) set_int_option(probe.fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
      const socket_address sa = to_sockaddr(ep);
      if (::bind(probe.fd, sa.data(), sa.size) != 0) return fail("bind");
    }
    fd_guard fd{::socket(domain_of(ep), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
    if (fd.fd < 0) return fail("socket");
    if (set_int_option(fd.fd, SOL_SOCKET, SO_REUSEADDR, 1) != 0) return fail("SO_REUSEADDR");
    if (set_int_option(fd.fd, SOL_SOCKET, SO_REUSEPORT, 1) != 0) return fail("SO_REUSEPORT");
    if (!ep.is_v4() && set_int_option(fd.fd, IPPROTO_IPV6, IPV6_V6ONLY, 1) != 0) {
      return fail("IPV6_V6ONLY");
    }
    const socket_address sa = to_sockaddr(ep);
    if (::bind(fd.fd, sa.data(), sa.size) != 0) return fail("bind");
    if (::listen(fd.fd, SOMAXCONN) != 0) return fail("listen");
    socket_address bound;
    bound.size = sizeof bound.storage;
    if (::getsockname(fd.fd, bound.data(), &bound.size) != 0) return fail("getsockname");
    auto bound_ep = from_sockaddr(bound.data(), bound.size);
    if (!bound_ep) {
      what = fmt::format("{} listener {}: unexpected local address", kind, ep.to_string());
      return std::make_error_code(std::errc::address_family_not_supported);
    }
    stream_listener& l = stream_listeners_.emplace_back(ioc_);
    boost::system::error_code aec;
    l.acceptor.assign(ep.is_v4() ? tcp::v4() : tcp::v6(), fd.fd, aec);
    if (aec) {
      stream_listeners_.pop_back();
      what = fmt::format("{} listener {}: {}", kind, ep.to_string(), aec.message());
      return std::error_code(aec.value(), std::system_category());
    }
    fd.release();
    l.bound = *bound_ep;
    l.tls = tls;
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

  std::vector<stun::endpoint> tls_listener_endpoints() const {
    std::vector<stun::endpoint> out;
    for (const auto& l : stream_listeners_) {
      if (l.tls) out.push_back(l.bound);
    }
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
    for (std::size_t i = 0; i < stream_listeners_.size(); ++i) arm_accept(i);
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
    for (auto& l : stream_listeners_) {
      l.acceptor.close(ignored);
      l.retry.cancel();
    }
    close_all_connections();
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
    if (const std::uint64_t conn = std::exchange(slot.connection, 0); conn != 0) {
      if (stream_session* s = find_connection(conn)) s->relay_closed();
    }
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
    if (to.proto != turn::transport::udp) {
      send_to_stream(to, data);
      return;
    }
    if (to.listener >= listeners_.size() ||
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
    if (dispatching_ != nullptr) {
      // The core opens relays only while handling an Allocate from this
      // connection: the allocation is the connection's.
      slot.connection = dispatching_->ref().connection;
      dispatching_->relay_opened();
    }
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

  // ---- streams (worker thread only) ----

  void arm_accept(std::size_t li) {
    stream_listeners_[li].acceptor.async_accept(
        [this, li](const boost::system::error_code& ec, tcp::socket socket) {
          if (stopping_ || ec == asio::error::operation_aborted) return;
          if (ec) {
            on_accept_error(li, ec);
            return;
          }
          on_accepted(li, std::move(socket));
          if (!stopping_) arm_accept(li);
        });
  }

  void on_accept_error(std::size_t li, const boost::system::error_code& ec) {
    bump(io_counters_.accept_errors);
    std::uint64_t suppressed = 0;
    if (accept_log_.allow(read_clock().mono_ms, suppressed)) {
      spdlog::warn("worker {}: accept on {} failed: {}; retrying in {} ms ({} similar suppressed)",
                   index_, stream_listeners_[li].bound.to_string(), ec.message(),
                   accept_retry_delay.count(), suppressed);
    }
    stream_listener& l = stream_listeners_[li];
    l.retry.expires_after(accept_retry_delay);
    l.retry.async_wait([this, li](const boost::system::error_code& wait_ec) {
      if (!wait_ec && !stopping_) arm_accept(li);
    });
  }

  static std::optional<stun::endpoint> endpoint_of(const tcp::endpoint& ep) {
    auto e = from_sockaddr(ep.data(), static_cast<socklen_t>(ep.size()));
    if (!e) return std::nullopt;
    return unmap_v4(*e);
  }

  void on_accepted(std::size_t li, tcp::socket socket) {
    assert_owner();
    const stream_listener& l = stream_listeners_[li];
    boost::system::error_code ec;
    const auto remote = endpoint_of(socket.remote_endpoint(ec));
    if (ec || !remote) return;  // reset before we got to it; the socket closes here
    const auto local = endpoint_of(socket.local_endpoint(ec));
    if (ec || !local) return;

    if (options_.connections) {
      const auto verdict = options_.connections->try_acquire(*remote);
      if (verdict != connection_limiter::verdict::accepted) {
        const bool total = verdict == connection_limiter::verdict::over_total;
        bump(total ? io_counters_.connections_refused_total : io_counters_.connections_refused_per_ip);
        std::uint64_t suppressed = 0;
        if (limit_log_.allow(read_clock().mono_ms, suppressed)) {
          spdlog::warn("worker {}: refused a {} connection from {}: {} ({} similar suppressed)", index_,
                       l.tls ? "TLS" : "TCP", remote->to_string(),
                       total ? fmt::format("{} connections in total (streams.max_connections)",
                                           options_.connections->max_total())
                             : fmt::format("{} connections from this address "
                                           "(streams.max_connections_per_ip)",
                                           options_.connections->max_per_ip()),
                       suppressed);
        }
        // Reset rather than FIN: no TIME_WAIT left behind by a flood.
        socket.set_option(asio::socket_base::linger(true, 0), ec);
        socket.close(ec);
        return;
      }
    }
    socket.set_option(tcp::no_delay(true), ec);  // relayed media must not wait for Nagle

    std::uint32_t slot;
    if (!free_connections_.empty()) {
      slot = free_connections_.back();
      free_connections_.pop_back();
    } else {
      slot = static_cast<std::uint32_t>(connections_.size());
      connections_.emplace_back();
    }
    turn::client_ref ref;
    ref.proto = l.tls ? turn::transport::tls : turn::transport::tcp;
    ref.listener = static_cast<std::uint32_t>(li);
    ref.connection = (std::uint64_t{connections_[slot].generation} << 32) | slot;
    ref.remote = *remote;
    ref.local = *local;
    auto session = stream_session::make(*this, std::move(socket), ref, l.tls ? tls_ : nullptr);
    connections_[slot].session = session;
    bump(io_counters_.connections_accepted);
    bump(io_counters_.connections_open);
    spdlog::debug("worker {}: {} connection {} from {} to {}", index_, turn::to_string(ref.proto),
                  ref.connection, ref.remote.to_string(), ref.local.to_string());
    session->start();
  }

  [[nodiscard]] stream_session* find_connection(std::uint64_t id) const {
    const auto slot = static_cast<std::uint32_t>(id & 0xFFFFFFFFu);
    const auto generation = static_cast<std::uint32_t>(id >> 32);
    if (slot >= connections_.size() || connections_[slot].generation != generation) return nullptr;
    return connections_[slot].session.get();
  }

  void send_to_stream(const turn::client_ref& to, turn::fragments data) {
    stream_session* s = find_connection(to.connection);
    if (s == nullptr || !s->is_open()) {
      bump(counters_.client_send_failed);
      return;
    }
    if (s->send(data)) return;
    // The write queue is full: the client reads too slowly. Drop, count,
    // and say so once per connection (and at most a few times a second).
    std::size_t bytes = 0;
    for (const auto& f : data) bytes += f.size();
    bump(io_counters_.stream_write_dropped);
    bump(io_counters_.stream_write_dropped_bytes, bytes);
    if (!s->queue_full_logged) {
      s->queue_full_logged = true;
      std::uint64_t suppressed = 0;
      if (queue_log_.allow(read_clock().mono_ms, suppressed)) {
        spdlog::warn(
            "worker {}: {} client {} reads too slowly: its write queue is full ({} bytes, "
            "streams.write_queue_size); dropping messages to it ({} similar suppressed)",
            index_, turn::to_string(to.proto), to.remote.to_string(), s->queued_bytes(), suppressed);
      }
    }
  }

  void close_all_connections() {
    // Closing calls back into on_stream_closed, which edits the table.
    auto table = std::move(connections_);
    connections_.clear();
    free_connections_.clear();
    for (auto& c : table) {
      if (c.session) c.session->close(close_reason::shutdown);
    }
  }

  // ---- stream_host ----

  const detail::stream_settings& settings() const override { return stream_settings_; }

  turn::now_t now() const override { return read_clock(); }

  void on_stream_frame(stream_session& s, stun::bytes_view frame, const turn::now_t& now) override {
    dispatching_ = &s;
    core_->on_client_packet(s.ref(), frame, now);
    dispatching_ = nullptr;
  }

  void on_stream_ready(stream_session& s) override {
    if (s.ref().proto == turn::transport::tls) bump(io_counters_.tls_handshakes);
  }

  void on_stream_closed(stream_session& s, close_reason why) override {
    const turn::client_ref ref = s.ref();  // a copy: the session may go away below
    const auto slot = static_cast<std::uint32_t>(ref.connection & 0xFFFFFFFFu);
    std::shared_ptr<stream_session> keep;
    if (find_connection(ref.connection) == &s) {
      keep = std::move(connections_[slot].session);
      ++connections_[slot].generation;
      if (connections_[slot].generation == 0) connections_[slot].generation = 1;
      free_connections_.push_back(slot);
    }
    // RFC 8656 §3.1: the allocation lives as long as its connection.
    core_->on_client_closed(ref, read_clock());
    if (options_.connections) options_.connections->release(ref.remote);
    io_counters_.connections_open.store(
        io_counters_.connections_open.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
    count_close(ref, why, s.close_error());
  }

  void count_close(const turn::client_ref& ref, close_reason why, const boost::system::error_code& error) {
    std::atomic<std::uint64_t>* counter = nullptr;
    log_limiter* limiter = nullptr;
    switch (why) {
      case close_reason::framing_error:
        counter = &io_counters_.stream_framing_errors;
        limiter = &framing_log_;
        break;
      case close_reason::too_large:
        counter = &io_counters_.stream_too_large;
        limiter = &framing_log_;
        break;
      case close_reason::handshake_failed:
        counter = &io_counters_.tls_handshake_failures;
        limiter = &handshake_log_;
        break;
      case close_reason::handshake_timeout:
        counter = &io_counters_.tls_handshake_timeouts;
        limiter = &handshake_log_;
        break;
      case close_reason::idle_timeout:
        counter = &io_counters_.idle_timeouts;
        limiter = &idle_log_;
        break;
      case close_reason::io_error:
        counter = &io_counters_.stream_io_errors;
        break;
      case close_reason::peer_closed:
      case close_reason::shutdown:
        break;
    }
    if (counter != nullptr) bump(*counter);
    const std::string detail = error ? ": " + error.message() : std::string();
    std::uint64_t suppressed = 0;
    if (limiter != nullptr && limiter->allow(read_clock().mono_ms, suppressed)) {
      spdlog::warn("worker {}: closed {} connection from {}: {}{} ({} similar suppressed)", index_,
                   turn::to_string(ref.proto), ref.remote.to_string(), detail::to_string(why), detail,
                   suppressed);
    } else {
      spdlog::debug("worker {}: {} connection {} from {} closed: {}{}", index_,
                    turn::to_string(ref.proto), ref.connection, ref.remote.to_string(),
                    detail::to_string(why), detail);
    }
  }

  void set_tls_context(tls_context_ptr ctx) {
    asio::post(ioc_, [this, ctx = std::move(ctx)]() mutable { tls_ = std::move(ctx); });
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

  // Streams: listeners, the connection table, the session whose frame the
  // core is handling (to tie the relays it opens to that connection), and
  // the TLS context new handshakes use.
  std::vector<stream_listener> stream_listeners_;
  std::vector<connection_slot> connections_;
  std::vector<std::uint32_t> free_connections_;
  stream_session* dispatching_ = nullptr;
  const detail::stream_settings stream_settings_;
  tls_context_ptr tls_;

  // Receive batch, preallocated once; reused by every socket of this worker.
  std::vector<std::byte> batch_data_;
  std::vector<mmsghdr> headers_;
  std::vector<iovec> iov_;
  std::vector<sockaddr_storage> names_;
  std::vector<control_buffer> control_;

  log_limiter receive_error_log_;
  log_limiter send_error_log_;
  log_limiter truncated_log_;
  log_limiter accept_log_;
  log_limiter limit_log_;
  log_limiter framing_log_;
  log_limiter handshake_log_;
  log_limiter idle_log_;
  log_limiter queue_log_;

  // Last: destroyed first, while the sockets it may close still exist.
  std::unique_ptr<turn::server> core_;
};

worker::worker(unsigned index, std::shared_ptr<const turn::shared_state> shared,
               worker_options options)
    : impl_(std::make_unique<impl>(index, std::move(shared), std::move(options))) {}

worker::~worker() = default;

std::error_code worker::open(std::string& what) { return impl_->open(what); }

std::vector<stun::endpoint> worker::listener_endpoints() const { return impl_->listener_endpoints(); }

std::vector<stun::endpoint> worker::tls_listener_endpoints() const {
  return impl_->tls_listener_endpoints();
}

void worker::set_tls_context(tls_context_ptr ctx) { impl_->set_tls_context(std::move(ctx)); }

void worker::run() { impl_->run(); }

void worker::stop() { impl_->stop(); }

unsigned worker::index() const { return impl_->index_; }

const turn::worker_counters& worker::counters() const { return impl_->counters_; }

const net_counters& worker::io_counters() const { return impl_->io_counters_; }

turn::io_port& worker::io_for_test() { return impl_->io(); }

}  // namespace anyturn::net
