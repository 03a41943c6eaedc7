// The worker's stream host: its TCP and TLS listeners, the accept loop,
// the connection table and the callbacks of the sessions it owns
// (detail::stream_host), and the counting of why connections closed.
#include "stream_host.hpp"

#include "worker_impl.hpp"

#include <anyturn/net/address.hpp>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <optional>
#include <string>
#include <utility>

#include <netinet/in.h>
#include <sys/socket.h>

namespace anyturn::net {

namespace asio = boost::asio;
using common::log_limiter;
using relay::bump;
using detail::close_reason;
using detail::domain_of;
using detail::fd_guard;
using detail::last_error;
using detail::read_clock;
using detail::set_int_option;
using detail::stream_listener;
using detail::stream_session;

namespace {

// Retry delay after accept() fails (EMFILE and friends): the queue stays
// full, so re-arming at once would spin.
constexpr std::chrono::milliseconds accept_retry_delay{100};

}  // namespace

namespace detail {

std::shared_ptr<stream_session> connection_table::remove(std::uint64_t id, const stream_session& s) {
  if (find(id) != &s) return nullptr;
  slot& entry = slots_[static_cast<std::uint32_t>(id & 0xFFFFFFFFu)];
  if (++entry.generation == 0) entry.generation = 1;
  free_.push_back(static_cast<std::uint32_t>(id & 0xFFFFFFFFu));
  return std::move(entry.session);
}

void connection_table::close_all() {
  // Closing calls back into remove(): empty the table first.
  std::vector<slot> held = std::move(slots_);
  slots_.clear();
  free_.clear();
  for (slot& entry : held) {
    if (entry.session) entry.session->close(close_reason::shutdown);
  }
}

}  // namespace detail

std::error_code worker::impl::open_stream_listener(const stun::endpoint& ep, bool tls,
                                                   const config::proxy_protocol_config* proxy,
                                                   std::string& what) {
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
  if (proxy != nullptr) {
    l.proxy = true;
    l.trusted = proxy->trusted;
  }
  return {};
}

void worker::impl::arm_accept(std::size_t li) {
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

void worker::impl::on_accept_error(std::size_t li, const boost::system::error_code& ec) {
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

std::optional<stun::endpoint> worker::impl::endpoint_of(const tcp::endpoint& ep) {
  auto e = from_sockaddr(ep.data(), static_cast<socklen_t>(ep.size()));
  if (!e) return std::nullopt;
  return unmap_v4(*e);
}

void worker::impl::on_accepted(std::size_t li, tcp::socket socket) {
  assert_owner();
  const stream_listener& l = stream_listeners_[li];
  boost::system::error_code ec;
  const auto remote = endpoint_of(socket.remote_endpoint(ec));
  if (ec || !remote) return;  // reset before we got to it; the socket closes here
  const auto local = endpoint_of(socket.local_endpoint(ec));
  if (ec || !local) return;

  if (l.proxy) {
    // Only the load balancers may say who the client is.
    bool trusted = false;
    for (const auto& range : l.trusted) trusted = trusted || range.contains(*remote);
    if (!trusted) {
      bump(io_counters_.proxy_rejected_untrusted);
      std::uint64_t suppressed = 0;
      if (proxy_log_.allow(read_clock().mono_ms, suppressed)) {
        spdlog::warn("worker {}: refused a {} connection from {} to the PROXY protocol listener {}: "
                     "not a trusted source ({} similar suppressed)",
                     index_, l.tls ? "TLS" : "TCP", remote->to_string(), l.bound.to_string(),
                     suppressed);
      }
      socket.set_option(asio::socket_base::linger(true, 0), ec);
      socket.close(ec);
      return;
    }
  }
  // A proxy listener's connection is counted against the limits once its
  // header named the client (on_proxy_header): its source is the balancer.
  if (options_.connections && !l.proxy) {
    const auto verdict = options_.connections->try_acquire(*remote);
    if (verdict != connection_limiter::verdict::accepted) {
      refuse_connection(l, *remote, verdict);
      // Reset rather than FIN: no TIME_WAIT left behind by a flood.
      socket.set_option(asio::socket_base::linger(true, 0), ec);
      socket.close(ec);
      return;
    }
  }
  // The new connection's fixed cost comes out of the unauthenticated budget.
  const std::uint64_t admitted = l.tls ? tls_connection_cost : tcp_connection_cost;
  if (options_.unauth_memory && !options_.unauth_memory->try_charge(admitted)) {
    if (options_.connections && !l.proxy) options_.connections->release(*remote);
    bump(io_counters_.unauth_memory_closes);
    std::uint64_t suppressed = 0;
    if (limit_log_.allow(read_clock().mono_ms, suppressed)) {
      spdlog::warn("worker {}: refused a {} connection from {}: connections that have not "
                   "authenticated hold {} of {} bytes (streams.unauthenticated_memory) ({} similar "
                   "suppressed)",
                   index_, l.tls ? "TLS" : "TCP", remote->to_string(), options_.unauth_memory->used(),
                   options_.unauth_memory->limit(), suppressed);
    }
    socket.set_option(asio::socket_base::linger(true, 0), ec);
    socket.close(ec);
    return;
  }
  const std::uint64_t charged = options_.unauth_memory ? admitted : 0;
  socket.set_option(tcp::no_delay(true), ec);  // relayed media must not wait for Nagle

  relay::client_ref ref;
  ref.proto = l.tls ? relay::transport::tls : relay::transport::tcp;
  ref.listener = static_cast<std::uint32_t>(li);
  ref.remote = *remote;
  ref.local = *local;
  stream_session& session = connections_.add([&](std::uint64_t id) {
    ref.connection = id;
    return stream_session::make(*this, std::move(socket), ref, l.tls ? tls_ : nullptr, charged, l.proxy);
  });
  session.limiter_held = options_.connections && !l.proxy;
  bump(io_counters_.connections_accepted);
  bump(io_counters_.connections_open);
  spdlog::debug("worker {}: {} connection {} from {} to {}", index_, relay::to_string(ref.proto),
                ref.connection, ref.remote.to_string(), ref.local.to_string());
  session.start();
}

void worker::impl::refuse_connection(const stream_listener& l, const stun::endpoint& client,
                                     connection_limiter::verdict verdict) {
  const bool total = verdict == connection_limiter::verdict::over_total;
  bump(total ? io_counters_.connections_refused_total : io_counters_.connections_refused_per_ip);
  std::uint64_t suppressed = 0;
  if (limit_log_.allow(read_clock().mono_ms, suppressed)) {
    spdlog::warn("worker {}: refused a {} connection from {}: {} ({} similar suppressed)", index_,
                 l.tls ? "TLS" : "TCP", client.to_string(),
                 total ? fmt::format("{} connections in total (streams.max_connections)",
                                     options_.connections->max_total())
                       : fmt::format("{} connections from this address "
                                     "(streams.max_connections_per_ip)",
                                     options_.connections->max_per_ip()),
                 suppressed);
  }
}

bool worker::impl::on_proxy_header(stream_session& s, const proxy_header& header) {
  // LOCAL, UNKNOWN and AF_UNSPEC (the balancer's own health checks): the
  // connection's own source is the client.
  const stun::endpoint client = header.has_address ? stun::unmap_v4(header.source) : s.ref().remote;
  const std::string balancer = s.ref().remote.to_string();
  if (options_.connections) {
    const auto verdict = options_.connections->try_acquire(client);
    if (verdict != connection_limiter::verdict::accepted) {
      refuse_connection(stream_listeners_[s.ref().listener], client, verdict);
      s.close(close_reason::refused);
      return false;
    }
  }
  s.set_client(client);
  s.limiter_held = options_.connections != nullptr;
  bump(io_counters_.proxy_accepted);
  spdlog::debug("worker {}: {} connection {} via {}: PROXY v{} header, client {}", index_,
                relay::to_string(s.ref().proto), s.ref().connection, balancer, header.version,
                client.to_string());
  return true;
}

void worker::impl::send_to_stream(const relay::client_ref& to, relay::fragments data) {
  stream_session* s = connections_.find(to.connection);
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
          index_, relay::to_string(to.proto), to.remote.to_string(), s->queued_bytes(), suppressed);
    }
  }
}

void worker::impl::on_stream_frame(stream_session& s, stun::bytes_view frame, const relay::now_t& now) {
  dispatching_ = &s;
  core_->on_client_packet(s.ref(), frame, now);
  dispatching_ = nullptr;
}

void worker::impl::on_stream_ready(stream_session& s) {
  if (s.ref().proto == relay::transport::tls) bump(io_counters_.tls_handshakes);
}

void worker::impl::on_stream_closed(stream_session& s, close_reason why) {
  const relay::client_ref ref = s.ref();  // a copy: the session may go away below
  const std::shared_ptr<stream_session> keep = connections_.remove(ref.connection, s);
  // RFC 8656 §3.1: the allocation lives as long as its connection.
  core_->on_client_closed(ref, read_clock());
  if (options_.connections && s.limiter_held) options_.connections->release(ref.remote);
  io_counters_.connections_open.store(
      io_counters_.connections_open.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  count_close(ref, why, s.close_error());
}

void worker::impl::count_close(const relay::client_ref& ref, close_reason why,
                               const boost::system::error_code& error) {
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
    case close_reason::first_message_timeout:
      counter = &io_counters_.first_message_timeouts;
      limiter = &idle_log_;
      break;
    case close_reason::unauth_memory:
      counter = &io_counters_.unauth_memory_closes;
      limiter = &limit_log_;
      break;
    case close_reason::io_error:
      counter = &io_counters_.stream_io_errors;
      break;
    case close_reason::proxy_malformed:
      counter = &io_counters_.proxy_rejected_malformed;
      limiter = &proxy_log_;
      break;
    case close_reason::proxy_timeout:
      counter = &io_counters_.proxy_rejected_timeout;
      limiter = &proxy_log_;
      break;
    case close_reason::refused:  // counted when refused
    case close_reason::moved:
    case close_reason::peer_closed:
    case close_reason::shutdown:
      break;
  }
  if (counter != nullptr) bump(*counter);
  const std::string detail = error ? ": " + error.message() : std::string();
  std::uint64_t suppressed = 0;
  if (limiter != nullptr && limiter->allow(read_clock().mono_ms, suppressed)) {
    spdlog::warn("worker {}: closed {} connection from {}: {}{} ({} similar suppressed)", index_,
                 relay::to_string(ref.proto), ref.remote.to_string(), detail::to_string(why), detail,
                 suppressed);
  } else {
    spdlog::debug("worker {}: {} connection {} from {} closed: {}{}", index_,
                  relay::to_string(ref.proto), ref.connection, ref.remote.to_string(),
                  detail::to_string(why), detail);
  }
}

void worker::impl::set_tls_context(tls_context_ptr ctx) {
  asio::post(ioc_, [this, ctx = std::move(ctx)]() mutable {
    tls_ = std::move(ctx);
    if (dtls_) update_dtls_context();
  });
}

}  // namespace anyturn::net
