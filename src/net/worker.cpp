// The worker shell: start-up (the UDP listeners; stream_host.cpp opens the
// TCP and TLS ones), the loop's lifetime (run, stop), the tick and its
// memory housekeeping, and the public `worker` methods.
#include "worker_impl.hpp"

#include <anyturn/common/log_context.hpp>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdint>
#include <system_error>
#include <thread>
#include <utility>

#include <malloc.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>

namespace anyturn::net {

namespace asio = boost::asio;
using detail::domain_of;
using detail::fd_guard;
using detail::last_error;
using detail::read_clock;
using detail::set_int_option;
using detail::token_of;
using detail::unique_fd;

worker_options worker_options::from_config(const config::server_config& cfg) {
  worker_options o;
  o.listen = cfg.listen;
  o.socket_buffer = cfg.udp_socket_buffer;
  o.tcp = cfg.streams.tcp;
  o.tls_listen = cfg.tls.listen;
  o.listen_proxy = cfg.listen_proxy;
  o.tls_listen_proxy = cfg.tls.listen_proxy;
  o.max_message_size = cfg.streams.max_message_size;
  o.write_queue_size = cfg.streams.write_queue_size;
  o.tls_handshake_timeout = std::chrono::seconds{cfg.streams.tls_handshake_timeout};
  o.idle_timeout = std::chrono::seconds{cfg.streams.idle_timeout};
  o.first_message_timeout = std::chrono::seconds{cfg.streams.first_message_timeout_s};
  o.unauth_memory = std::make_shared<memory_budget>(cfg.streams.unauthenticated_memory);
  o.udp_coalesce = std::chrono::microseconds{cfg.udp_coalesce_us};
  o.udp_gso = cfg.udp_gso;
  o.udp_gro = cfg.udp_gro;
  o.udp_busy_poll = std::chrono::microseconds{cfg.udp_busy_poll_us};
  o.other_ip = cfg.stun.other_ip;
  o.dtls_listen = cfg.dtls.listen;
  o.dtls_handshake_timeout = std::chrono::seconds{cfg.dtls.handshake_timeout};
  o.dtls_idle_timeout = std::chrono::seconds{cfg.dtls.idle_timeout};
  return o;
}

namespace {
worker_options sanitized(worker_options o) {
  o.batch_size = std::clamp<std::size_t>(o.batch_size, 1, 1024);
  o.datagram_size = std::clamp<std::size_t>(o.datagram_size, 548, 65536);
  o.read_budget = std::max<std::size_t>(o.read_budget, 1);
  o.round_budget = std::max<std::size_t>(o.round_budget, 1);
  o.receive_arena = std::clamp<std::size_t>(o.receive_arena, o.batch_size, 16 * 1024);
  o.send_batch = std::clamp<std::size_t>(o.send_batch, 1, 16 * 1024);
  o.epoll_events = std::clamp<std::size_t>(o.epoll_events, 1, 4096);
  if (o.tick.count() <= 0) o.tick = std::chrono::milliseconds{250};
  o.udp_coalesce = std::clamp(o.udp_coalesce, std::chrono::microseconds{0}, max_udp_coalesce);
  o.udp_busy_poll = std::clamp(o.udp_busy_poll, std::chrono::microseconds{0}, max_udp_busy_poll);
  o.max_message_size = std::clamp<std::size_t>(o.max_message_size, config::min_stream_message_size,
                                               config::max_stream_message_size);
  o.write_queue_size = std::max<std::size_t>(o.write_queue_size, 1024);
  if (o.tls_handshake_timeout.count() <= 0) o.tls_handshake_timeout = std::chrono::seconds{10};
  if (o.idle_timeout.count() <= 0) o.idle_timeout = std::chrono::seconds{30};
  if (o.first_message_timeout.count() <= 0) o.first_message_timeout = std::chrono::seconds{10};
  if (o.proxy_header_timeout.count() <= 0) o.proxy_header_timeout = std::chrono::seconds{5};
  if (o.dtls_handshake_timeout.count() <= 0) o.dtls_handshake_timeout = std::chrono::seconds{10};
  if (o.dtls_idle_timeout.count() <= 0) o.dtls_idle_timeout = std::chrono::seconds{900};
  return o;
}

detail::stream_settings settings_of(const worker_options& o) {
  detail::stream_settings s;
  s.max_message_size = o.max_message_size;
  s.write_queue_size = o.write_queue_size;
  s.handshake_timeout = o.tls_handshake_timeout;
  s.idle_timeout = o.idle_timeout;
  s.first_message_timeout = o.first_message_timeout;
  s.proxy_header_timeout = o.proxy_header_timeout;
  return s;
}

// The worker's epoll set for its UDP sockets.
int make_epoll() {
  const int fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) throw std::system_error(last_error(), "epoll_create1");
  return fd;
}

// Memory housekeeping on the tick (see maybe_trim).
constexpr std::int64_t trim_interval_ms = 3000;
constexpr std::uint64_t trim_min_drop = 1000;

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

worker::impl::impl(unsigned index, std::shared_ptr<const turn::shared_state> shared, worker_options options)
    : index_(index),
      options_(sanitized(std::move(options))),
      ioc_(1),
      timer_(ioc_),
      relays_(io_counters_.relay_sockets_open, counters_.kernel_drops, options_.udp_gro),
      stream_settings_(settings_of(options_)),
      tls_(options_.tls),
      epoll_(ioc_, make_epoll()),
      events_(options_.epoll_events),
      batch_(options_, index, counters_, io_counters_),
      core_(std::make_unique<turn::worker_core>(std::move(shared), static_cast<relay::io_port&>(*this),
                                                counters_, index, options_.fast_path.get())) {
  coalesce_ns_ = static_cast<std::int64_t>(options_.udp_coalesce.count()) * 1000;
  busy_poll_ns_ = static_cast<std::int64_t>(options_.udp_busy_poll.count()) * 1000;
  ready_.reserve(256);
  again_.reserve(256);
  attach_inbox();
}

worker::impl::~impl() {
  if (inbox_ != nullptr) inbox_->close();
  // Connections first (they release their limiter counts and end their
  // allocations), then the core: its destructor may still close relays.
  connections_.close_all();
  dtls_.reset();  // without callbacks: the core goes next and ends every allocation
  core_.reset();
  for (relay::relay_id id = 0; id < relays_.size(); ++id) close_relay_socket(id);
}

std::error_code worker::impl::open(std::string& what) {
  listeners_.clear();
  stream_listeners_.clear();
  listeners_.reserve(options_.listen.size());
  stream_listeners_.reserve(options_.listen.size() + options_.tls_listen.size());
  auto fail = [&](std::error_code ec) {
    listeners_.clear();
    stream_listeners_.clear();
    nat_groups_.clear();
    return ec;
  };
  if ((!options_.tls_listen.empty() || !options_.dtls_listen.empty()) && !tls_) {
    what = "tls or dtls listeners configured without a TLS context";
    return fail(std::make_error_code(std::errc::invalid_argument));
  }
  auto proxy_of = [](const std::vector<config::proxy_protocol_config>& v, std::size_t i) {
    return i < v.size() && v[i].enabled ? &v[i] : nullptr;
  };
  for (std::size_t i = 0; i < options_.listen.size(); ++i) {
    const auto& ep = options_.listen[i];
    // UDP and TCP share the port. With port 0 the UDP socket picks one,
    // and if TCP finds that port taken, both try again with another.
    for (int attempt = 0;; ++attempt) {
      if (std::error_code ec = open_listener(ep, what)) return fail(ec);
      if (!options_.tcp) break;
      const std::error_code ec =
          open_stream_listener(listeners_.back().bound, false, proxy_of(options_.listen_proxy, i), what);
      if (!ec) break;
      if (ep.port == 0 && ec == std::errc::address_in_use && attempt < 20) {
        listeners_.pop_back();
        continue;
      }
      return fail(ec);
    }
  }
  configured_listeners_ = listeners_.size();
  if (options_.other_ip) {
    if (std::error_code ec = open_nat_groups(what)) return fail(ec);
  }
  for (std::size_t i = 0; i < options_.tls_listen.size(); ++i) {
    if (std::error_code ec = open_stream_listener(options_.tls_listen[i], true,
                                                  proxy_of(options_.tls_listen_proxy, i), what)) {
      return fail(ec);
    }
  }
  if (std::error_code ec = open_dtls_listeners(what)) return fail(ec);
  return {};
}

std::error_code worker::impl::open_nat_groups(std::string& what) {
  const stun::endpoint& other = *options_.other_ip;
  for (std::size_t i = 0; i < configured_listeners_; ++i) {
    const stun::endpoint a = listeners_[i].bound;
    // A wildcard has no one address to pair with OTHER (config validation
    // refuses it); a listener of the other family keeps plain Binding.
    if (a.family != other.family || listeners_[i].wildcard) continue;
    if (a.port == 65535) {
      what = fmt::format("stun.other_ip: udp listener {} has no port+1", a.to_string());
      return std::make_error_code(std::errc::invalid_argument);
    }
    const auto group = static_cast<std::int32_t>(nat_groups_.size());
    std::array<std::uint32_t, 4> members{static_cast<std::uint32_t>(i)};
    for (std::uint32_t member = 1; member < 4; ++member) {
      stun::endpoint ep = (member & 2U) != 0 ? other : a;
      ep.port = static_cast<std::uint16_t>(a.port + (member & 1U));
      members[member] = static_cast<std::uint32_t>(listeners_.size());
      if (std::error_code ec = open_listener(ep, what)) {
        what = "stun.other_ip: " + what;
        return ec;
      }
      listeners_.back().nat_group = group;
      listeners_.back().nat_member = member;
    }
    listeners_[i].nat_group = group;
    nat_groups_.push_back(members);
    if (index_ == 0) {
      spdlog::info("RFC 5780: udp listener {} also answers Binding on {}, {} and {}", a.to_string(),
                   listeners_[members[1]].bound.to_string(), listeners_[members[2]].bound.to_string(),
                   listeners_[members[3]].bound.to_string());
    }
  }
  return {};
}

std::error_code worker::impl::open_listener(const stun::endpoint& ep, std::string& what) {
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
  if (options_.udp_gro && !detail::enable_gro(fd.fd)) return fail("UDP_GRO");
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

  // Edge-triggered, registered once for the socket's life.
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.u64 = token_of(static_cast<std::uint32_t>(listeners_.size()), 0);
  if (::epoll_ctl(epoll_.native_handle(), EPOLL_CTL_ADD, fd.fd, &ev) != 0) return fail("epoll_ctl");
  detail::udp_listener& l = listeners_.emplace_back();
  l.fd = unique_fd(fd.release());
  l.bound = *bound_ep;
  l.wildcard = wildcard;
  return {};
}

std::vector<stun::endpoint> worker::impl::listener_endpoints() const {
  std::vector<stun::endpoint> out;
  out.reserve(configured_listeners_);
  for (std::size_t i = 0; i < configured_listeners_ && i < listeners_.size(); ++i) {
    if (!listeners_[i].dtls) out.push_back(listeners_[i].bound);
  }
  return out;
}

std::vector<stun::endpoint> worker::impl::tls_listener_endpoints() const {
  std::vector<stun::endpoint> out;
  for (const auto& l : stream_listeners_) {
    if (l.tls) out.push_back(l.bound);
  }
  return out;
}

void worker::impl::run() {
  owner_ = std::this_thread::get_id();
  // Every log line of this thread carries "worker" (common::log_context).
  common::this_thread_log_fields().worker = static_cast<int>(index_);
  if (coalesce_ns_ > 0) {
    // The default 50 us timer slack would stretch every window by up to
    // that much; a tenth of the window keeps it close.
    ::prctl(PR_SET_TIMERSLACK, static_cast<unsigned long>(std::max<std::int64_t>(coalesce_ns_ / 10, 1000)));
  }
  // The first round picks up whatever arrived before run().
  post_round();
  for (std::size_t i = 0; i < stream_listeners_.size(); ++i) arm_accept(i);
  arm_tick();
  ioc_.run();
  owner_ = std::thread::id{};
}

void worker::impl::stop() {
  asio::post(ioc_, [this] { do_stop(); });
}

void worker::impl::do_stop() {
  assert_owner();
  if (stopping_) return;
  if (inbox_ != nullptr) inbox_->close();  // nobody hands us more
  // DTLS sessions send close_notify while their sockets are still open.
  if (dtls_) dtls_->close_all(read_clock());
  core_->shutdown(read_clock());
  stopping_ = true;
  boost::system::error_code ignored;
  for (auto& l : listeners_) l.fd.reset();
  for (auto& l : stream_listeners_) {
    l.acceptor.close(ignored);
    l.retry.cancel();
  }
  connections_.close_all();
  for (relay::relay_id id = 0; id < relays_.size(); ++id) close_relay_socket(id);
  epoll_.cancel(ignored);
  timer_.cancel();
  // TLS sessions closed above send close_notify and wait for the client's:
  // give them that long before the loop stops under them.
  finish_stop(std::chrono::steady_clock::now() + stream_settings_.close_notify_wait);
}

void worker::impl::finish_stop(std::chrono::steady_clock::time_point deadline) {
  if (tls_closing_ <= 0 || std::chrono::steady_clock::now() >= deadline) {
    ioc_.stop();
    return;
  }
  timer_.expires_after(std::chrono::milliseconds{5});
  timer_.async_wait([this, deadline](const boost::system::error_code&) { finish_stop(deadline); });
}

void worker::impl::arm_tick() {
  timer_.expires_after(options_.tick);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopping_) return;
    const relay::now_t now = read_clock();
    heartbeat_.store(heartbeat_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    core_->on_tick(now);
    if (dtls_) dtls_->on_tick(now);
    tcp_relay_tick(now);
    relays_.check_drops();
    relays_.compact();
    maybe_trim(now);
    arm_tick();
  });
}

void worker::impl::maybe_trim(const relay::now_t& now) {
  const std::uint64_t open = io_counters_.relay_sockets_open.load(std::memory_order_relaxed);
  peak_open_ = std::max(peak_open_, open);
  // Still falling fast: fewer than a tenth of trim_min_drop closed (net of
  // new ones) since the last tick counts as at rest, so steady churn does
  // not hold the trim back.
  const bool falling = last_tick_open_ > open + trim_min_drop / 10;
  last_tick_open_ = open;
  if (peak_open_ - open <= trim_min_drop || open >= peak_open_ / 2 || falling) return;
  if (last_trim_ms_ != 0 && now.mono_ms - last_trim_ms_ < trim_interval_ms) return;
  last_trim_ms_ = now.mono_ms;
  peak_open_ = open;
  // The lists sized for the peak are empty between rounds.
  if (ready_.empty() && ready_.capacity() > 4096) std::vector<std::uint64_t>().swap(ready_);
  if (again_.capacity() > 4096) std::vector<std::uint64_t>().swap(again_);
  relays_.shrink_drop_checks();
  ::malloc_trim(0);
}

worker::worker(unsigned index, std::shared_ptr<const turn::shared_state> shared,
               worker_options options)
    : impl_(std::make_unique<impl>(index, std::move(shared), std::move(options))) {}

worker::~worker() = default;

std::error_code worker::open(std::string& what) { return impl_->open(what); }

std::vector<stun::endpoint> worker::listener_endpoints() const { return impl_->listener_endpoints(); }

std::vector<stun::endpoint> worker::tls_listener_endpoints() const {
  return impl_->tls_listener_endpoints();
}

std::vector<stun::endpoint> worker::dtls_listener_endpoints() const {
  return impl_->dtls_listener_endpoints();
}

void worker::set_tls_context(tls_context_ptr ctx) { impl_->set_tls_context(std::move(ctx)); }

void worker::post_to_core(std::function<void(turn::worker_core&, const relay::now_t&)> job) {
  asio::post(impl_->ioc_, [this, job = std::move(job)] {
    if (impl_->stopping_) return;
    job(*impl_->core_, read_clock());
  });
}

void worker::run() { impl_->run(); }

void worker::stop() { impl_->stop(); }

unsigned worker::index() const { return impl_->index_; }

const relay::worker_counters& worker::counters() const { return impl_->counters_; }

const net_counters& worker::io_counters() const { return impl_->io_counters_; }

std::uint64_t worker::heartbeat() const { return impl_->heartbeat_.load(std::memory_order_relaxed); }

relay::io_port& worker::io_for_test() { return impl_->io(); }

std::size_t worker::relay_table_size_for_test() const { return impl_->relays_.size(); }

void worker::deliver_for_test(const relay::client_ref& from, stun::bytes_view data) {
  impl_->deliver_for_test(from, data);
}

}  // namespace anyturn::net
