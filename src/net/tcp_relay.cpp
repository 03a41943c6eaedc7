// The worker's TCP relay allocations (RFC 6062): listening relay sockets,
// peer connections (accepted, or connected for a Connect), the bind of a
// data connection and the splice(2) pump between the two. See
// tcp_relay.hpp for the design; the decisions are the TURN core's
// (src/turn/tcp_relay.cpp).
#include "tcp_relay.hpp"

#include "worker_impl.hpp"

#include <anyturn/net/address.hpp>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace anyturn::net {

namespace asio = boost::asio;
using relay::bump;
using detail::domain_of;
using detail::fd_guard;
using detail::last_error;
using detail::read_clock;
using detail::set_int_option;
using detail::stream_session;
using detail::tcp_relay_conn;
using detail::tcp_relay_listener;
using detail::would_block;

namespace detail {

splice_pipe::~splice_pipe() {
  if (read_fd >= 0) ::close(read_fd);
  if (write_fd >= 0) ::close(write_fd);
}

bool splice_pipe::open() {
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return false;
  read_fd = fds[0];
  write_fd = fds[1];
  const int size = ::fcntl(write_fd, F_GETPIPE_SZ);
  capacity = size > 0 ? static_cast<std::size_t>(size) : 65536;
  return true;
}

std::uint32_t tcp_relay_table::new_id(unsigned worker) {
  for (;;) {
    next = (next + 1) & 0xFFFFFFu;
    if (next == 0) continue;
    const std::uint32_t id = (std::uint32_t{worker & 0xFFu} << 24) | next;
    if (!conns.contains(id)) return id;
  }
}

}  // namespace detail

namespace {

// Retry delay after accept() on a relay listener fails (EMFILE and friends).
constexpr std::chrono::milliseconds relay_accept_retry{100};
// Passes of one pump call before it yields to the other handlers.
constexpr int pump_passes = 64;

boost::asio::ip::tcp protocol_of(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0 && ss.ss_family == AF_INET6)
    return boost::asio::ip::tcp::v6();
  return boost::asio::ip::tcp::v4();
}

void set_non_blocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

}  // namespace

// ------------------------------------------------------------ listeners

std::error_code worker::impl::open_tcp_relay(relay::relay_id id, const stun::endpoint& bind) {
  assert_owner();
  close_tcp_relay(id);  // the core reused an id without closing it
  fd_guard fd{::socket(domain_of(bind), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
  if (fd.fd < 0) return last_error();
  // Both options, so Connect's outgoing sockets can bind the same address.
  set_int_option(fd.fd, SOL_SOCKET, SO_REUSEADDR, 1);
  set_int_option(fd.fd, SOL_SOCKET, SO_REUSEPORT, 1);
  if (!bind.is_v4()) set_int_option(fd.fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
  const socket_address sa = to_sockaddr(bind);
  if (::bind(fd.fd, sa.data(), sa.size) != 0) return last_error();
  if (::listen(fd.fd, 64) != 0) return last_error();
  auto l = std::make_shared<tcp_relay_listener>(ioc_);
  boost::system::error_code ec;
  l->acceptor.assign(bind.is_v4() ? tcp::v4() : tcp::v6(), fd.fd, ec);
  if (ec) return std::error_code(ec.value(), std::system_category());
  fd.release();
  l->id = id;
  l->bound = bind;
  if (dispatching_ != nullptr) {
    // Opened while handling an Allocate of this connection (see open_relay).
    l->connection = dispatching_->ref().connection;
    dispatching_->relay_opened();
  }
  tcp_relays_.listeners[id] = l;
  bump(io_counters_.relay_sockets_open);
  arm_relay_accept(l);
  return {};
}

bool worker::impl::close_tcp_relay(relay::relay_id id) {
  const auto it = tcp_relays_.listeners.find(id);
  if (it == tcp_relays_.listeners.end()) return false;
  const std::shared_ptr<tcp_relay_listener> l = std::move(it->second);
  tcp_relays_.listeners.erase(it);
  l->closed = true;
  boost::system::error_code ignored;
  l->acceptor.close(ignored);
  io_counters_.relay_sockets_open.store(
      io_counters_.relay_sockets_open.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  if (l->connection != 0) {
    if (stream_session* s = connections_.find(l->connection)) s->relay_closed();
  }
  for (const std::uint32_t cid : std::exchange(l->conns, {})) {
    if (const auto c = tcp_relays_.conns.find(cid); c != tcp_relays_.conns.end()) {
      const auto conn = c->second;
      close_tcp_conn(conn);
    }
  }
  return true;
}

void worker::impl::arm_relay_accept(const std::shared_ptr<tcp_relay_listener>& l) {
  l->acceptor.async_accept([this, l](const boost::system::error_code& ec, tcp::socket socket) {
    if (l->closed || stopping_ || ec == asio::error::operation_aborted) return;
    if (ec) {
      bump(io_counters_.accept_errors);
      auto retry = std::make_shared<asio::steady_timer>(ioc_, relay_accept_retry);
      retry->async_wait([this, l, retry](const boost::system::error_code& wait_ec) {
        if (!wait_ec && !l->closed && !stopping_) arm_relay_accept(l);
      });
      return;
    }
    on_peer_accepted(l, std::move(socket));
    if (!l->closed && !stopping_) arm_relay_accept(l);
  });
}

// RFC 6062 §5.3: a peer connected to the relayed address.
void worker::impl::on_peer_accepted(const std::shared_ptr<tcp_relay_listener>& l, tcp::socket socket) {
  boost::system::error_code ec;
  const auto remote = endpoint_of(socket.remote_endpoint(ec));
  if (ec || !remote) return;  // gone already
  if (l->conns.size() >= detail::max_tcp_relay_connections) {
    bump(counters_.tcp_relay_over_limit);
    socket.set_option(asio::socket_base::linger(true, 0), ec);
    socket.close(ec);
    return;
  }
  const relay::now_t now = read_clock();
  auto c = std::make_shared<tcp_relay_conn>(ioc_);
  c->cid = tcp_relays_.new_id(index_);
  c->relay = l->id;
  c->peer_address = *remote;
  if (!core_->on_peer_connection(l->id, *remote, c->cid, now)) {
    // No permission (or the policy refuses it): closed at once, counted by
    // the core. A reset, so nothing lingers.
    socket.set_option(asio::socket_base::linger(true, 0), ec);
    socket.close(ec);
    return;
  }
  set_non_blocking(socket.native_handle());
  c->peer = std::move(socket);
  c->st = tcp_relay_conn::state::unbound;
  c->deadline_ms = now.mono_ms + detail::tcp_bind_timeout_ms;  // held unread until bound
  tcp_relays_.conns[c->cid] = c;
  l->conns.push_back(c->cid);
  bump(io_counters_.tcp_relay_peers_open);
}

// ------------------------------------------------------------ Connect

bool worker::impl::tcp_peer_exists(relay::relay_id id, const stun::endpoint& peer) {
  const auto it = tcp_relays_.listeners.find(id);
  if (it == tcp_relays_.listeners.end()) return false;
  return std::any_of(it->second->conns.begin(), it->second->conns.end(), [&](std::uint32_t cid) {
    const auto c = tcp_relays_.conns.find(cid);
    return c != tcp_relays_.conns.end() && c->second->peer_address == peer;
  });
}

std::uint32_t worker::impl::tcp_connect(relay::relay_id id, const stun::endpoint& peer) {
  assert_owner();
  const auto it = tcp_relays_.listeners.find(id);
  if (it == tcp_relays_.listeners.end() || peer.is_v4() != it->second->bound.is_v4()) return 0;
  const std::shared_ptr<tcp_relay_listener> l = it->second;
  if (l->conns.size() >= detail::max_tcp_relay_connections) {
    bump(counters_.tcp_relay_over_limit);
    return 0;
  }
  // From the relayed address itself (RFC 6062 §5.2), next to its listener.
  fd_guard fd{::socket(domain_of(peer), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
  if (fd.fd < 0) return 0;
  set_int_option(fd.fd, SOL_SOCKET, SO_REUSEADDR, 1);
  set_int_option(fd.fd, SOL_SOCKET, SO_REUSEPORT, 1);
  if (!peer.is_v4()) set_int_option(fd.fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
  const socket_address local = to_sockaddr(l->bound);
  if (::bind(fd.fd, local.data(), local.size) != 0) return 0;
  const socket_address remote = to_sockaddr(peer);
  if (::connect(fd.fd, remote.data(), remote.size) != 0 && errno != EINPROGRESS) return 0;
  auto c = std::make_shared<tcp_relay_conn>(ioc_);
  boost::system::error_code ec;
  c->peer.assign(peer.is_v4() ? tcp::v4() : tcp::v6(), fd.fd, ec);
  if (ec) return 0;
  fd.release();
  c->cid = tcp_relays_.new_id(index_);
  c->relay = id;
  c->peer_address = peer;
  c->st = tcp_relay_conn::state::connecting;
  c->deadline_ms = read_clock().mono_ms + detail::tcp_connect_timeout_ms;
  tcp_relays_.conns[c->cid] = c;
  l->conns.push_back(c->cid);
  bump(io_counters_.tcp_relay_peers_open);
  c->peer.async_wait(tcp::socket::wait_write,
                     [this, c](const boost::system::error_code& wait_ec) { on_connect_done(c, wait_ec); });
  return c->cid;
}

void worker::impl::on_connect_done(const std::shared_ptr<tcp_relay_conn>& c,
                                   const boost::system::error_code& ec) {
  if (c->st != tcp_relay_conn::state::connecting || stopping_) return;  // timed out or closed
  int err = 0;
  socklen_t len = sizeof err;
  if (!ec && ::getsockopt(c->peer.native_handle(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  const bool ok = !ec && err == 0;
  const relay::now_t now = read_clock();
  if (ok) {
    c->st = tcp_relay_conn::state::unbound;
    c->deadline_ms = now.mono_ms + detail::tcp_bind_timeout_ms;
  }
  const bool wanted = core_->on_tcp_connected(c->cid, ok, now);
  if (!ok || !wanted) close_tcp_conn(c);
}

// ------------------------------------------------------------ ConnectionBind

relay::relay_id worker::impl::tcp_unbound(std::uint32_t cid) {
  const auto it = tcp_relays_.conns.find(cid);
  if (it == tcp_relays_.conns.end() || it->second->st != tcp_relay_conn::state::unbound)
    return relay::no_relay;
  return it->second->relay;
}

bool worker::impl::tcp_bind(std::uint32_t cid, const relay::client_ref& data) {
  assert_owner();
  const auto it = tcp_relays_.conns.find(cid);
  if (it == tcp_relays_.conns.end() || it->second->st != tcp_relay_conn::state::unbound) return false;
  const std::shared_ptr<tcp_relay_conn> c = it->second;
  stream_session* s = connections_.find(data.connection);
  if (s == nullptr) return false;
  std::vector<std::byte> unread;
  std::vector<std::byte> unsent;
  const int fd = s->detach(unread, unsent);
  if (fd < 0) {
    spdlog::debug("worker {}: connection {} cannot become a data connection (TLS)", index_,
                  data.connection);
    return false;
  }
  boost::system::error_code ec;
  c->client.assign(protocol_of(fd), fd, ec);
  if (ec) {
    ::close(fd);
    return false;
  }
  set_non_blocking(fd);
  unread.insert(unread.end(), adopted_extra_.begin(), adopted_extra_.end());
  adopted_extra_.clear();
  // What is already in hand goes first: bytes the client sent after its
  // ConnectionBind toward the peer, our answer (if the kernel did not take
  // it all) toward the client.
  auto preload = [](detail::splice_pipe& p, const std::vector<std::byte>& bytes) {
    if (bytes.empty()) return true;
    const ssize_t n = ::write(p.write_fd, bytes.data(), bytes.size());
    if (n != static_cast<ssize_t>(bytes.size())) return false;
    p.held = bytes.size();
    return true;
  };
  if (!c->up.open() || !c->down.open() || !preload(c->up, unread) || !preload(c->down, unsent)) {
    close_tcp_conn(c);
    return false;
  }
  c->down.not_relayed = unsent.size();
  c->st = tcp_relay_conn::state::bound;
  spdlog::debug("worker {}: TCP relay connection {:#x} to {} bound to {}", index_, cid,
                c->peer_address.to_string(), data.remote.to_string());
  pump(c, true);
  pump(c, false);
  return true;
}

bool worker::impl::hand_off_stream(const relay::client_ref& from, unsigned owner,
                                   stun::bytes_view message) {
  if (handoff_ == nullptr || owner == index_ || owner >= handoff_->queues.size() ||
      from.proto != relay::transport::tcp) {
    return false;
  }
  stream_session* s = connections_.find(from.connection);
  if (s == nullptr) return false;
  std::vector<std::byte> data(message.begin(), message.end());
  std::vector<std::byte> unread;
  std::vector<std::byte> unsent;
  const int fd = s->detach(unread, unsent);
  if (fd < 0) return false;
  data.insert(data.end(), unread.begin(), unread.end());
  // The descriptor travels in the client_ref's connection field; the
  // owner adopts it (adopt_stream). Nothing was sent on it yet.
  relay::client_ref moved = from;
  moved.connection = static_cast<std::uint64_t>(fd);
  handoff_queue& q = *handoff_->queues[owner];
  if (data.size() > q.datagram_size() ||
      q.push(moved, data, read_clock()) != handoff_queue::push_result::queued) {
    ::close(fd);
    bump(io_counters_.handoff_dropped);
  }
  return true;  // the connection left this worker either way
}

void worker::impl::adopt_stream(const relay::client_ref& from, stun::bytes_view data) {
  const int fd = static_cast<int>(from.connection);
  std::size_t length = 0;
  if (data.size() >= stun::header_size) {
    length = stun::header_size + ((std::to_integer<std::size_t>(data[2]) << 8) |
                                  std::to_integer<std::size_t>(data[3]));
  }
  if (length == 0 || length > data.size() || stopping_) {
    ::close(fd);
    return;
  }
  tcp::socket socket(ioc_);
  boost::system::error_code ec;
  socket.assign(protocol_of(fd), fd, ec);
  if (ec) {
    ::close(fd);
    return;
  }
  relay::client_ref ref = from;
  stream_session& session = connections_.add([&](std::uint64_t id) {
    ref.connection = id;
    return stream_session::make(*this, std::move(socket), ref, nullptr, 0, false);
  });
  bump(io_counters_.connections_open);
  adopted_extra_.assign(data.begin() + static_cast<std::ptrdiff_t>(length), data.end());
  session.start_adopted(data.first(length));
  adopted_extra_.clear();
}

// ------------------------------------------------------------ data

void worker::impl::pump(const std::shared_ptr<tcp_relay_conn>& c, bool up) {
  if (c->st != tcp_relay_conn::state::bound) return;
  detail::splice_pipe& p = up ? c->up : c->down;
  tcp::socket& src = up ? c->client : c->peer;
  tcp::socket& dst = up ? c->peer : c->client;
  std::uint64_t moved = 0;
  bool progress = true;
  int passes = 0;
  for (; progress && passes < pump_passes; ++passes) {
    progress = false;
    if (!p.eof && p.held < p.capacity && !p.read_wait) {
      const ssize_t n = ::splice(src.native_handle(), nullptr, p.write_fd, nullptr, p.capacity - p.held,
                                 SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        p.held += static_cast<std::size_t>(n);
        progress = true;
      } else if (n == 0) {
        p.eof = true;
      } else if (errno == EINTR) {
        progress = true;
      } else if (!would_block(errno)) {
        close_tcp_conn(c);
        return;
      }
    }
    if (p.held > 0 && !p.write_wait) {
      const ssize_t m = ::splice(p.read_fd, nullptr, dst.native_handle(), nullptr, p.held,
                                 SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (m > 0) {
        p.held -= static_cast<std::size_t>(m);
        moved += static_cast<std::size_t>(m);
        progress = true;
      } else if (m < 0 && errno == EINTR) {
        progress = true;
      } else if (m == 0 || !would_block(errno)) {
        close_tcp_conn(c);
        return;
      }
    }
  }
  if (moved != 0) {
    const std::uint64_t skip = std::min<std::uint64_t>(moved, p.not_relayed);
    p.not_relayed -= static_cast<std::size_t>(skip);
    moved -= skip;
    if (moved != 0) core_->on_tcp_relayed(c->relay, up ? moved : 0, up ? 0 : moved);
    if (c->st != tcp_relay_conn::state::bound) return;
  }
  if (p.eof && p.held == 0) {
    // The source finished: pass the FIN on; both finished: close.
    if (!p.shut) {
      p.shut = true;
      ::shutdown(dst.native_handle(), SHUT_WR);
    }
    const detail::splice_pipe& other = up ? c->down : c->up;
    if (other.shut) close_tcp_conn(c);
    return;
  }
  if (progress) {  // used up its passes: let the other handlers run first
    asio::post(ioc_, [this, c, up] { pump(c, up); });
    return;
  }
  if (p.held > 0 && !p.write_wait) {
    p.write_wait = true;
    dst.async_wait(tcp::socket::wait_write, [this, c, up](const boost::system::error_code& ec) {
      detail::splice_pipe& pp = up ? c->up : c->down;
      pp.write_wait = false;
      if (c->st != tcp_relay_conn::state::bound) return;
      if (ec) return close_tcp_conn(c);
      pump(c, up);
    });
  }
  // Read only into an empty pipe: with bytes held, a failed read may mean
  // the pipe is out of slots, and the write wait above pumps again anyway.
  // A full pipe is the back-pressure: the source is not read meanwhile.
  if (p.held == 0 && !p.eof && !p.read_wait) {
    p.read_wait = true;
    src.async_wait(tcp::socket::wait_read, [this, c, up](const boost::system::error_code& ec) {
      detail::splice_pipe& pp = up ? c->up : c->down;
      pp.read_wait = false;
      if (c->st != tcp_relay_conn::state::bound) return;
      if (ec) return close_tcp_conn(c);
      pump(c, up);
    });
  }
}

void worker::impl::close_tcp_conn(const std::shared_ptr<tcp_relay_conn>& c) {
  if (c->st == tcp_relay_conn::state::closed) return;
  c->st = tcp_relay_conn::state::closed;
  tcp_relays_.conns.erase(c->cid);
  if (const auto l = tcp_relays_.listeners.find(c->relay); l != tcp_relays_.listeners.end()) {
    std::erase(l->second->conns, c->cid);
  }
  boost::system::error_code ignored;
  c->peer.close(ignored);
  c->client.close(ignored);
  io_counters_.tcp_relay_peers_open.store(
      io_counters_.tcp_relay_peers_open.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
}

void worker::impl::tcp_relay_tick(const relay::now_t& now) {
  std::vector<std::shared_ptr<tcp_relay_conn>> due;
  for (const auto& [cid, c] : tcp_relays_.conns) {
    if (c->st != tcp_relay_conn::state::bound && c->deadline_ms <= now.mono_ms) due.push_back(c);
  }
  for (const auto& c : due) {
    if (c->st == tcp_relay_conn::state::connecting) {
      c->st = tcp_relay_conn::state::unbound;  // on_connect_done ignores it from now on
      core_->on_tcp_connected(c->cid, false, now);
    } else {
      bump(counters_.tcp_relay_timeout);
      spdlog::debug("worker {}: TCP relay connection {:#x} from {} not bound within {} s; closed",
                    index_, c->cid, c->peer_address.to_string(), detail::tcp_bind_timeout_ms / 1000);
    }
    close_tcp_conn(c);
  }
}

}  // namespace anyturn::net
