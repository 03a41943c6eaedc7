#include "stream_session.hpp"

#include <anyturn/stun/message.hpp>

#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <openssl/ssl.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include <sys/socket.h>
#include <sys/uio.h>

namespace anyturn::net::detail {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;

namespace {

// Most fragments a message may come in (the core uses up to four).
constexpr std::size_t max_fragments = 8;

bool is_peer_close(const boost::system::error_code& ec) {
  return ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::error::connection_aborted ||
         ec == ssl::error::stream_truncated;
}

std::size_t total_size(relay::fragments data) {
  std::size_t total = 0;
  for (const auto& f : data) total += f.size();
  return total;
}

}  // namespace

const char* to_string(close_reason r) {
  switch (r) {
    case close_reason::peer_closed: return "closed by the client";
    case close_reason::io_error: return "socket error";
    case close_reason::framing_error: return "framing error";
    case close_reason::too_large: return "message too large";
    case close_reason::handshake_failed: return "TLS handshake failed";
    case close_reason::handshake_timeout: return "TLS handshake timeout";
    case close_reason::idle_timeout: return "idle without an allocation";
    case close_reason::first_message_timeout: return "no complete STUN message in time";
    case close_reason::unauth_memory: return "unauthenticated connections' memory budget spent";
    case close_reason::shutdown: return "shutdown";
    case close_reason::proxy_malformed: return "malformed PROXY protocol header";
    case close_reason::proxy_timeout: return "no complete PROXY protocol header in time";
    case close_reason::refused: return "refused";
    case close_reason::moved: return "moved (RFC 6062 data connection or another worker)";
  }
  return "?";
}

// ------------------------------------------------------------------ base

stream_session::stream_session(stream_host& host, asio::any_io_executor executor,
                               const relay::client_ref& ref, std::uint64_t admitted)
    : host_(host),
      ref_(ref),
      timer_(executor),
      first_timer_(std::move(executor)),
      budget_(host.unauth_budget()),
      charged_(budget_ ? admitted : 0),
      queue_(std::min(unauthenticated_write_queue, host.settings().write_queue_size),
             std::min<std::size_t>(16 * 1024, host.settings().write_queue_size)) {}

stream_session::~stream_session() {
  if (budget_ && charged_ != 0) budget_->credit(charged_);
}

bool stream_session::charge(std::uint64_t bytes) {
  if (!budget_ || bytes == 0) return true;
  if (!budget_->try_charge(bytes)) return false;
  charged_ += bytes;
  return true;
}

void stream_session::uncharge(std::uint64_t bytes) {
  if (!budget_) return;
  bytes = std::min(bytes, charged_);
  budget_->credit(bytes);
  charged_ -= bytes;
}

bool stream_session::resize_read(std::size_t n) {
  if (n == 0) {
    std::vector<std::byte>().swap(read_);
    uncharge(read_charged_);
    read_charged_ = 0;
    return true;
  }
  if (n > read_charged_) {
    if (!charge(n - read_charged_)) {
      close(close_reason::unauth_memory);
      return false;
    }
    if (budget_) read_charged_ = n;
  }
  read_.resize(n);
  return true;
}

bool stream_session::reserve_queue(std::size_t bytes) {
  const std::size_t now = queue_.capacity();
  const std::size_t after = queue_.capacity_after(bytes);
  if (after <= now || charge(after - now)) return true;
  close_later(close_reason::unauth_memory);
  return false;
}

void stream_session::became_authenticated() {
  if (authenticated_) return;
  authenticated_ = true;
  if (budget_) {
    budget_->credit(charged_);
    charged_ = 0;
    read_charged_ = 0;
    budget_.reset();
  }
  queue_.set_limit(host_.settings().write_queue_size);
  on_authenticated();
}

bool stream_session::send(relay::fragments data) {
  if (state_ != state::open || data.size() > max_fragments) return false;
  const std::size_t total = total_size(data);
  if (total > queue_.limit() - queue_.size()) return false;
  if (queue_.empty() && !writing_ && try_send_direct(data, total)) return true;
  if (!reserve_queue(total)) return false;
  if (!queue_.append(data, retired_)) return false;
  if (!writing_) {
    retired_.reset();  // nothing points into the old block
    start_write();
  }
  return true;
}

void stream_session::close(close_reason why, const boost::system::error_code& error) {
  if (state_ == state::closed) return;
  const auto self = shared_from_this();  // the host drops its pointer below
  state_ = state::closed;
  close_error_ = error;
  cancel_timer();
  first_timer_.cancel();
  close_transport(why);
  host_.on_stream_closed(*this, why);
}

void stream_session::close_later(close_reason why, const boost::system::error_code& error) {
  if (state_ != state::open) return;
  state_ = state::closing;  // no more sends or reads until the close
  asio::post(timer_.get_executor(),
             [this, self = shared_from_this(), why, error] { close(why, error); });
}

int stream_session::detach(std::vector<std::byte>& unread, std::vector<std::byte>& unsent) {
  if (state_ != state::open) return -1;
  const int fd = release_socket();
  if (fd < 0) return -1;
  unread.assign(read_.begin() + static_cast<std::ptrdiff_t>(begin_),
                read_.begin() + static_cast<std::ptrdiff_t>(end_));
  begin_ = end_;
  const auto segs = queue_.readable();
  unsent.assign(segs.first.begin(), segs.first.end());
  unsent.insert(unsent.end(), segs.second.begin(), segs.second.end());
  queue_.consume(queue_.size());
  close_later(close_reason::moved);
  return fd;
}

void stream_session::start_adopted(stun::bytes_view frame) {
  state_ = state::open;
  got_first_message_ = true;
  host_.on_stream_frame(*this, frame, host_.now());
  if (state_ != state::open) return;
  if (relays_ == 0) arm_timer(host_.settings().idle_timeout, close_reason::idle_timeout);
  do_read();
}

void stream_session::relay_opened() {
  ++relays_;
  // Only an Allocate that passed the credential check opens a relay socket.
  became_authenticated();
  if (relays_ == 1 && state_ == state::open) cancel_timer();
}

void stream_session::relay_closed() {
  if (relays_ > 0) --relays_;
  if (relays_ == 0 && state_ == state::open) {
    arm_timer(host_.settings().idle_timeout, close_reason::idle_timeout);
  }
}

void stream_session::become_open() {
  state_ = state::open;
  cancel_timer();
  if (relays_ == 0) arm_timer(host_.settings().idle_timeout, close_reason::idle_timeout);
  host_.on_stream_ready(*this);
  if (state_ == state::open) do_read();
}

void stream_session::arm_timer(std::chrono::milliseconds after, close_reason on_expiry) {
  const std::uint64_t generation = ++timer_generation_;
  timer_.expires_after(after);
  timer_.async_wait([this, self = shared_from_this(), generation,
                     on_expiry](const boost::system::error_code& ec) {
    if (ec || generation != timer_generation_ || state_ == state::closed) return;
    close(on_expiry);
  });
}

void stream_session::cancel_timer() {
  ++timer_generation_;
  timer_.cancel();
}

void stream_session::arm_first_message_timer() {
  first_timer_.expires_after(host_.settings().first_message_timeout);
  first_timer_.async_wait([this, self = shared_from_this()](const boost::system::error_code& ec) {
    if (ec || got_first_message_ || state_ == state::closed) return;
    close(close_reason::first_message_timeout);
  });
}

void stream_session::start() {
  if (!proxy_pending_) {
    start_transport();
    return;
  }
  if (!charge(max_proxy_header)) {
    close(close_reason::unauth_memory);
    return;
  }
  proxy_buf_.resize(max_proxy_header);
  arm_timer(host_.settings().proxy_header_timeout, close_reason::proxy_timeout);
  wait_proxy_header();
}

void stream_session::wait_proxy_header() {
  raw_socket().async_wait(tcp::socket::wait_read,
                          [this, self = shared_from_this()](const boost::system::error_code& ec) {
                            if (state_ == state::closed || !proxy_pending_) return;
                            if (ec) {
                              close(is_peer_close(ec) ? close_reason::peer_closed : close_reason::io_error,
                                    ec);
                              return;
                            }
                            on_proxy_readable();
                          });
}

// Peeks at what arrived and consumes exactly the bytes that belong to the
// header: while it is incomplete every byte seen does (the parser promises
// that), and once it is complete, its size. What follows stays in the socket.
void stream_session::on_proxy_readable() {
  const int fd = raw_socket().native_handle();
  auto receive = [&](std::size_t n, int flags) {
    ssize_t rc;
    do {
      rc = ::recv(fd, proxy_buf_.data() + proxy_have_, n, flags | MSG_DONTWAIT);
    } while (rc < 0 && errno == EINTR);
    return rc;
  };
  const ssize_t peeked = receive(proxy_buf_.size() - proxy_have_, MSG_PEEK);
  if (peeked == 0) {
    close(close_reason::peer_closed, asio::error::eof);
    return;
  }
  if (peeked < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      wait_proxy_header();
      return;
    }
    const boost::system::error_code ec(errno, boost::system::system_category());
    close(is_peer_close(ec) ? close_reason::peer_closed : close_reason::io_error, ec);
    return;
  }
  const std::size_t seen = proxy_have_ + static_cast<std::size_t>(peeked);
  const proxy_header header = parse_proxy_header(std::span(proxy_buf_.data(), seen));
  if (header.status == proxy_status::malformed) {
    close(close_reason::proxy_malformed);
    return;
  }
  const std::size_t take = header.status == proxy_status::complete ? header.size - proxy_have_
                                                                   : static_cast<std::size_t>(peeked);
  if (receive(take, 0) != static_cast<ssize_t>(take)) {  // peeked bytes are there to take
    close(close_reason::io_error);
    return;
  }
  proxy_have_ += take;
  if (header.status == proxy_status::need_more) {
    wait_proxy_header();
    return;
  }
  proxy_pending_ = false;
  cancel_timer();
  std::vector<std::byte>().swap(proxy_buf_);
  uncharge(max_proxy_header);
  if (!host_.on_proxy_header(*this, header)) return;  // the host closed it
  if (state_ == state::handshaking) start_transport();
}

void stream_session::do_read() {
  if (state_ != state::open) return;
  const std::size_t max_size = host_.settings().max_message_size;
  // Keep the unframed prefix at the front.
  if (begin_ == end_) {
    begin_ = end_ = 0;
    // Nothing pending from a client that has not authenticated: hold no
    // buffer while it is silent (where the transport can wait without one).
    if (!authenticated_ && !readable_ && wait_readable()) {
      resize_read(0);
      return;
    }
  } else if (begin_ > 0) {
    std::memmove(read_.data(), read_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  readable_ = false;
  if (read_.empty() && !resize_read(std::min(host_.settings().initial_read_buffer, max_size))) return;
  if (end_ == read_.size() && read_.size() < max_size) {
    // A frame longer than the buffer (framing bounds it by max_size), or a
    // busy connection that filled the whole buffer last time: grow.
    if (!resize_read(std::min(read_.size() * 2, max_size))) return;
  }
  if (end_ == read_.size()) {  // cannot happen: every frame fits max_size
    close(close_reason::too_large);
    return;
  }
  read_some(std::span(read_.data() + end_, read_.size() - end_));
}

void stream_session::on_readable(const boost::system::error_code& ec) {
  if (state_ != state::open) return;
  if (ec) {
    close(is_peer_close(ec) ? close_reason::peer_closed : close_reason::io_error, ec);
    return;
  }
  readable_ = true;
  do_read();
}

void stream_session::on_read(const boost::system::error_code& ec, std::size_t n) {
  if (state_ != state::open) return;
  if (ec) {
    close(is_peer_close(ec) ? close_reason::peer_closed : close_reason::io_error, ec);
    return;
  }
  end_ += n;
  const bool filled = end_ == read_.size();
  const std::size_t max_size = host_.settings().max_message_size;
  const relay::now_t now = host_.now();
  static const std::error_code need_more = stun::make_error_code(stun::codec_error::need_more);
  static const std::error_code too_large = stun::make_error_code(stun::codec_error::too_large);
  while (begin_ < end_) {
    const stun::bytes_view pending(read_.data() + begin_, end_ - begin_);
    const auto frame = stun::stream_frame_length(pending, max_size);
    if (!frame) {
      if (frame.error == need_more) break;
      close(frame.error == too_large ? close_reason::too_large : close_reason::framing_error);
      return;
    }
    begin_ += *frame;
    if (!got_first_message_ && (std::to_integer<unsigned>(pending[0]) & 0xC0u) == 0) {
      // A STUN message (ChannelData starts with 0b01): the client speaks.
      got_first_message_ = true;
      first_timer_.cancel();
    }
    host_.on_stream_frame(*this, pending.first(*frame), now);
    if (state_ != state::open) return;
  }
  if (filled && begin_ == end_ && authenticated_ && read_.size() < max_size) {
    // Everything framed, but the socket likely holds more: read bigger.
    if (!resize_read(std::min(read_.size() * 2, max_size))) return;
  }
  do_read();
}

void stream_session::on_write_error(const boost::system::error_code& ec) {
  close(is_peer_close(ec) ? close_reason::peer_closed : close_reason::io_error, ec);
}

// ------------------------------------------------------------------- TCP

namespace {

class tcp_session final : public stream_session {
 public:
  tcp_session(stream_host& host, tcp::socket socket, const relay::client_ref& ref, std::uint64_t admitted)
      : stream_session(host, socket.get_executor(), ref, admitted), socket_(std::move(socket)) {}

  void start_transport() override {
    boost::system::error_code ec;
    socket_.native_non_blocking(true, ec);  // the direct sendmsg below never blocks
    if (ec) {
      close(close_reason::io_error);
      return;
    }
    arm_first_message_timer();
    become_open();
  }

 private:
  tcp::socket& raw_socket() override { return socket_; }

  int release_socket() override {
    boost::system::error_code ec;
    const int fd = socket_.release(ec);  // leaves the reactor; pending operations end
    return ec ? -1 : fd;
  }

  void read_some(std::span<std::byte> into) override {
    socket_.async_read_some(asio::buffer(into.data(), into.size()),
                            [this, self = shared_from_this()](const boost::system::error_code& ec,
                                                              std::size_t n) { on_read(ec, n); });
  }

  bool wait_readable() override {
    socket_.async_wait(tcp::socket::wait_read,
                       [this, self = shared_from_this()](const boost::system::error_code& ec) {
                         // A client that just closed needs no buffer (and no
                         // budget) to be seen closing.
                         if (!ec && state_ == state::open && at_eof()) {
                           close(close_reason::peer_closed, asio::error::eof);
                           return;
                         }
                         on_readable(ec);
                       });
    return true;
  }

  bool at_eof() {
    char probe = 0;
    ssize_t rc;
    do {
      rc = ::recv(socket_.native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
    } while (rc < 0 && errno == EINTR);
    return rc == 0;
  }

  // The queue is empty: send straight from the caller's fragments (no
  // copy); whatever the kernel does not take is queued, and the rest of the
  // stream waits behind it.
  bool try_send_direct(relay::fragments data, std::size_t total) override {
    std::array<iovec, max_fragments> iov;
    for (std::size_t i = 0; i < data.size(); ++i) {
      iov[i].iov_base = const_cast<std::byte*>(data[i].data());
      iov[i].iov_len = data[i].size();
    }
    msghdr msg{};
    msg.msg_iov = iov.data();
    msg.msg_iovlen = data.size();
    ssize_t rc;
    do {
      rc = ::sendmsg(socket_.native_handle(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (rc < 0 && errno == EINTR);
    std::size_t sent = 0;
    if (rc < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        fail_later(boost::system::error_code(errno, boost::system::system_category()));
        return true;  // the connection is going away; nothing to queue
      }
    } else {
      sent = static_cast<std::size_t>(rc);
    }
    if (sent == total) return true;
    // Queue the unsent tail (it fits: the queue is empty and total <= limit).
    // If the budget refuses the ring, the connection closes: a half-sent
    // message cannot be taken back.
    if (!reserve_queue(total - sent)) return true;
    std::array<stun::bytes_view, max_fragments> tail;
    std::size_t count = 0;
    std::size_t skip = sent;
    for (const auto& f : data) {
      if (skip >= f.size()) {
        skip -= f.size();
        continue;
      }
      tail[count++] = f.subspan(skip);
      skip = 0;
    }
    queue_.append(std::span(tail.data(), count), retired_);
    retired_.reset();
    start_write();
    return true;
  }

  void start_write() override {
    if (writing_ || state_ != state::open) return;
    writing_ = true;
    socket_.async_wait(tcp::socket::wait_write,
                       [this, self = shared_from_this()](const boost::system::error_code& ec) {
                         writing_ = false;
                         if (state_ != state::open) return;
                         if (ec) {
                           on_write_error(ec);
                           return;
                         }
                         flush();
                       });
  }

  // Gather-writes what is queued (at most two segments of the ring).
  void flush() {
    const auto segs = queue_.readable();
    std::array<iovec, 2> iov{};
    iov[0] = {const_cast<std::byte*>(segs.first.data()), segs.first.size()};
    iov[1] = {const_cast<std::byte*>(segs.second.data()), segs.second.size()};
    msghdr msg{};
    msg.msg_iov = iov.data();
    msg.msg_iovlen = segs.second.empty() ? 1 : 2;
    ssize_t rc;
    do {
      rc = ::sendmsg(socket_.native_handle(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        on_write_error(boost::system::error_code(errno, boost::system::system_category()));
        return;
      }
    } else {
      queue_.consume(static_cast<std::size_t>(rc));
    }
    if (!queue_.empty()) start_write();
  }

  // A send failed inside a call from the TURN core: closing now would free
  // the allocation the core is still working on, so close a moment later.
  void fail_later(const boost::system::error_code& ec) {
    close_later(is_peer_close(ec) ? close_reason::peer_closed : close_reason::io_error, ec);
  }

  void close_transport(close_reason) override {
    boost::system::error_code ignored;
    socket_.close(ignored);
  }

  tcp::socket socket_;
};

// ------------------------------------------------------------------- TLS

class tls_session final : public stream_session {
 public:
  tls_session(stream_host& host, tcp::socket socket, const relay::client_ref& ref, tls_context_ptr ctx,
              std::uint64_t admitted)
      : stream_session(host, socket.get_executor(), ref, admitted),
        ctx_(std::move(ctx)),
        stream_(std::move(socket), *ctx_) {
    // Until the client authenticates, OpenSSL frees its record buffers
    // whenever they are empty (2 x ~17 KiB per idle connection). Afterwards
    // they are kept: releasing them costs a malloc per relayed record.
    SSL_set_mode(stream_.native_handle(), SSL_MODE_RELEASE_BUFFERS);
  }

  void start_transport() override {
    // Both clocks start at accept (after the PROXY header, if any).
    arm_first_message_timer();
    arm_timer(host_.settings().handshake_timeout, close_reason::handshake_timeout);
    stream_.async_handshake(ssl::stream_base::server,
                            [this, self = shared_from_this()](const boost::system::error_code& ec) {
                              if (state_ != state::handshaking) return;
                              if (ec) {
                                close(close_reason::handshake_failed, ec);
                                return;
                              }
                              handshake_done_ = true;
                              become_open();
                            });
  }

 private:
  tcp::socket& raw_socket() override { return stream_.next_layer(); }

  void read_some(std::span<std::byte> into) override {
    stream_.async_read_some(asio::buffer(into.data(), into.size()),
                            [this, self = shared_from_this()](const boost::system::error_code& ec,
                                                              std::size_t n) { on_read(ec, n); });
  }

  bool try_send_direct(relay::fragments, std::size_t) override { return false; }

  void on_authenticated() override {
    SSL_clear_mode(stream_.native_handle(), SSL_MODE_RELEASE_BUFFERS);
  }

  // One TLS write at a time, from the oldest contiguous segment; the ring
  // block it points into stays alive (retired_) if the ring grows meanwhile.
  void start_write() override {
    if (writing_ || state_ != state::open || queue_.empty()) return;
    writing_ = true;
    const auto segment = queue_.readable().first;
    stream_.async_write_some(
        asio::buffer(segment.data(), segment.size()),
        [this, self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
          writing_ = false;
          write_finished();
          if (state_ != state::open) return;
          if (ec) {
            on_write_error(ec);
            return;
          }
          queue_.consume(n);
          start_write();
        });
  }

  // An established session ends with close_notify (RFC 8446 §6.1): ours
  // when the server closes it, an answer when the client sent one. Then the
  // socket closes when the client's close_notify came (or at once when it
  // came first), or after close_notify_wait, whichever is first. The
  // session's host has already forgotten it; pending handlers keep it alive
  // until then. Without a finished handshake, or after a transport error,
  // the socket just closes.
  void close_transport(close_reason why) override {
    const bool graceful =
        handshake_done_ && why != close_reason::io_error &&
        (why != close_reason::peer_closed || close_error_ == asio::error::eof);
    if (!graceful) {
      close_socket();
      return;
    }
    boost::system::error_code ignored;
    stream_.lowest_layer().cancel(ignored);  // pending reads and writes end
    host_.tls_closing(+1);
    closing_counted_ = true;
    timer_.expires_after(host_.settings().close_notify_wait);
    timer_.async_wait([this, self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) close_socket();
    });
    stream_.async_shutdown([this, self = shared_from_this()](const boost::system::error_code&) {
      close_socket();
    });
  }

  void close_socket() {
    boost::system::error_code ignored;
    timer_.cancel();
    stream_.lowest_layer().close(ignored);
    if (closing_counted_) {
      closing_counted_ = false;
      host_.tls_closing(-1);
    }
  }

  tls_context_ptr ctx_;                // declared first: outlives the stream
  ssl::stream<tcp::socket> stream_;
  bool handshake_done_ = false;
  bool closing_counted_ = false;  // counted in the host's tls_closing
};

}  // namespace

std::shared_ptr<stream_session> stream_session::make(stream_host& host, tcp::socket socket,
                                                     const relay::client_ref& ref, tls_context_ptr tls,
                                                     std::uint64_t admitted, bool proxy) {
  std::shared_ptr<stream_session> s;
  if (tls) s = std::make_shared<tls_session>(host, std::move(socket), ref, std::move(tls), admitted);
  else s = std::make_shared<tcp_session>(host, std::move(socket), ref, admitted);
  s->proxy_pending_ = proxy;
  return s;
}

}  // namespace anyturn::net::detail
