#include "stream_session.hpp"

#include <anyturn/stun/message.hpp>

#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>

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
    case close_reason::shutdown: return "shutdown";
  }
  return "?";
}

// ------------------------------------------------------------------ base

stream_session::stream_session(stream_host& host, asio::any_io_executor executor,
                               const relay::client_ref& ref)
    : host_(host),
      ref_(ref),
      timer_(std::move(executor)),
      read_(std::min(host.settings().initial_read_buffer, host.settings().max_message_size)),
      queue_(host.settings().write_queue_size, std::min<std::size_t>(16 * 1024, host.settings().write_queue_size)) {}

bool stream_session::send(relay::fragments data) {
  if (state_ != state::open || data.size() > max_fragments) return false;
  const std::size_t total = total_size(data);
  if (total > queue_.limit() - queue_.size()) return false;
  if (queue_.empty() && !writing_ && try_send_direct(data, total)) return true;
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
  close_transport();
  host_.on_stream_closed(*this, why);
}

void stream_session::relay_opened() {
  ++relays_;
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

void stream_session::do_read() {
  if (state_ != state::open) return;
  const std::size_t max_size = host_.settings().max_message_size;
  // Keep the unframed prefix at the front.
  if (begin_ == end_) {
    begin_ = end_ = 0;
  } else if (begin_ > 0) {
    std::memmove(read_.data(), read_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (end_ == read_.size() && read_.size() < max_size) {
    // A frame longer than the buffer (framing bounds it by max_size), or a
    // busy connection that filled the whole buffer last time: grow.
    read_.resize(std::min(read_.size() * 2, max_size));
  }
  if (end_ == read_.size()) {  // cannot happen: every frame fits max_size
    close(close_reason::too_large);
    return;
  }
  read_some(std::span(read_.data() + end_, read_.size() - end_));
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
    host_.on_stream_frame(*this, pending.first(*frame), now);
    if (state_ != state::open) return;
  }
  if (filled && begin_ == end_ && read_.size() < max_size) {
    // Everything framed, but the socket likely holds more: read bigger.
    read_.resize(std::min(read_.size() * 2, max_size));
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
  tcp_session(stream_host& host, tcp::socket socket, const relay::client_ref& ref)
      : stream_session(host, socket.get_executor(), ref), socket_(std::move(socket)) {}

  void start() override {
    boost::system::error_code ec;
    socket_.native_non_blocking(true, ec);  // the direct sendmsg below never blocks
    if (ec) {
      close(close_reason::io_error);
      return;
    }
    become_open();
  }

 private:
  void read_some(std::span<std::byte> into) override {
    socket_.async_read_some(asio::buffer(into.data(), into.size()),
                            [this, self = shared_from_this()](const boost::system::error_code& ec,
                                                              std::size_t n) { on_read(ec, n); });
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
    if (state_ != state::open) return;
    state_ = state::closing;  // no more sends or reads until the close
    asio::post(socket_.get_executor(), [this, self = shared_from_this(), ec] { on_write_error(ec); });
  }

  void close_transport() override {
    boost::system::error_code ignored;
    socket_.close(ignored);
  }

  tcp::socket socket_;
};

// ------------------------------------------------------------------- TLS

class tls_session final : public stream_session {
 public:
  tls_session(stream_host& host, tcp::socket socket, const relay::client_ref& ref, tls_context_ptr ctx)
      : stream_session(host, socket.get_executor(), ref),
        ctx_(std::move(ctx)),
        stream_(std::move(socket), *ctx_) {}

  void start() override {
    arm_timer(host_.settings().handshake_timeout, close_reason::handshake_timeout);
    stream_.async_handshake(ssl::stream_base::server,
                            [this, self = shared_from_this()](const boost::system::error_code& ec) {
                              if (state_ != state::handshaking) return;
                              if (ec) {
                                close(close_reason::handshake_failed, ec);
                                return;
                              }
                              become_open();
                            });
  }

 private:
  void read_some(std::span<std::byte> into) override {
    stream_.async_read_some(asio::buffer(into.data(), into.size()),
                            [this, self = shared_from_this()](const boost::system::error_code& ec,
                                                              std::size_t n) { on_read(ec, n); });
  }

  bool try_send_direct(relay::fragments, std::size_t) override { return false; }

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

  void close_transport() override {
    boost::system::error_code ignored;
    stream_.lowest_layer().close(ignored);
  }

  tls_context_ptr ctx_;                // declared first: outlives the stream
  ssl::stream<tcp::socket> stream_;
};

}  // namespace

std::shared_ptr<stream_session> stream_session::make(stream_host& host, tcp::socket socket,
                                                     const relay::client_ref& ref, tls_context_ptr tls) {
  if (tls) return std::make_shared<tls_session>(host, std::move(socket), ref, std::move(tls));
  return std::make_shared<tcp_session>(host, std::move(socket), ref);
}

}  // namespace anyturn::net::detail
