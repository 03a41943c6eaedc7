#include <anyturn/net/send_queue.hpp>

#include <anyturn/net/address.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <arpa/inet.h>

namespace anyturn::net {

namespace {

int system_sendmmsg(int fd, mmsghdr* msgs, unsigned count, int flags) {
  return ::sendmmsg(fd, msgs, count, flags);
}

bool is_congestion(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS; }

}  // namespace

send_queue::send_queue(std::size_t capacity, std::size_t copy_bytes, sendmmsg_fn fn)
    : sendmmsg_(fn != nullptr ? fn : &system_sendmmsg),
      entries_(std::max<std::size_t>(capacity, 1)),
      order_(entries_.size()),
      headers_(entries_.size()),
      copy_(std::make_unique_for_overwrite<std::byte[]>(std::max<std::size_t>(copy_bytes, 1))),
      copy_size_(std::max<std::size_t>(copy_bytes, 1)) {}

void send_queue::set_stable_range(const std::byte* begin, const std::byte* end) {
  stable_begin_ = begin;
  stable_end_ = end;
}

send_queue::push_result send_queue::push(int fd, direction dir, const stun::endpoint& to,
                                         std::span<const stun::bytes_view> data,
                                         const stun::endpoint* source) {
  if (data.size() > max_fragments) return push_result::too_large;
  std::size_t to_copy = 0;
  for (const auto& f : data) {
    const bool stable = !f.empty() && f.data() >= stable_begin_ && f.data() + f.size() <= stable_end_;
    if (!stable) to_copy += f.size();
  }
  if (to_copy > copy_size_) return push_result::too_large;
  if (count_ == entries_.size() || copy_used_ + to_copy > copy_size_) return push_result::full;

  entry& e = entries_[count_];
  e.fd = fd;
  e.dir = dir;
  std::size_t n = 0;
  for (const auto& f : data) {
    if (f.empty()) continue;
    const std::byte* base = f.data();
    if (base < stable_begin_ || base + f.size() > stable_end_) {
      std::byte* dst = copy_.get() + copy_used_;
      std::memcpy(dst, base, f.size());
      copy_used_ += f.size();
      base = dst;
    }
    e.iov[n].iov_base = const_cast<std::byte*>(base);
    e.iov[n].iov_len = f.size();
    ++n;
  }
  e.fragments = static_cast<std::uint8_t>(n);
  if (to.is_v4()) {
    e.name.v4 = sockaddr_in{};
    e.name.v4.sin_family = AF_INET;
    e.name.v4.sin_port = htons(to.port);
    std::memcpy(&e.name.v4.sin_addr, to.ip.data(), 4);
    e.name_len = sizeof(sockaddr_in);
  } else {
    e.name.v6 = sockaddr_in6{};
    e.name.v6.sin6_family = AF_INET6;
    e.name.v6.sin6_port = htons(to.port);
    std::memcpy(&e.name.v6.sin6_addr, to.ip.data(), 16);
    e.name_len = sizeof(sockaddr_in6);
  }
  e.control_len = 0;
  if (source != nullptr) {
    e.control_len = static_cast<std::uint8_t>(write_source_control(*source, e.control));
  }
  ++count_;
  return push_result::queued;
}

send_queue::flush_result send_queue::flush() {
  flush_result result;
  if (count_ == 0) return result;
  // Group by descriptor, keeping the push order inside each group.
  bool sorted = true;
  for (std::size_t i = 0; i < count_; ++i) {
    order_[i] = (std::uint64_t{static_cast<std::uint32_t>(entries_[i].fd)} << 32) | i;
    if (i > 0 && order_[i] < order_[i - 1]) sorted = false;
  }
  if (!sorted) std::sort(order_.begin(), order_.begin() + static_cast<std::ptrdiff_t>(count_));
  for (std::size_t j = 0; j < count_; ++j) {
    entry& e = entries_[order_[j] & 0xFFFFFFFFu];
    msghdr& h = headers_[j].msg_hdr;
    h.msg_name = &e.name;
    h.msg_namelen = e.name_len;
    h.msg_iov = e.iov;
    h.msg_iovlen = e.fragments;
    h.msg_control = e.control_len != 0 ? e.control : nullptr;
    h.msg_controllen = e.control_len;
    h.msg_flags = 0;
    headers_[j].msg_len = 0;
  }
  std::size_t first = 0;
  while (first < count_) {
    const int fd = entries_[order_[first] & 0xFFFFFFFFu].fd;
    std::size_t end = first + 1;
    while (end < count_ && entries_[order_[end] & 0xFFFFFFFFu].fd == fd) ++end;
    send_group(fd, first, end - first, result);
    first = end;
  }
  count_ = 0;
  copy_used_ = 0;
  return result;
}

void send_queue::send_group(int fd, std::size_t first, std::size_t count, flush_result& result) {
  std::size_t done = 0;
  while (done < count) {
    // UIO_MAXIOV (1024) messages at most per call.
    const auto chunk = static_cast<unsigned>(std::min<std::size_t>(count - done, 1024));
    const int rc = sendmmsg_(fd, headers_.data() + first + done, chunk, MSG_DONTWAIT | MSG_NOSIGNAL);
    ++result.calls;
    if (rc > 0) {
      // A short count means the next datagram failed (or would block): the
      // next call sends the rest or reports that datagram's error.
      done += static_cast<std::size_t>(rc);
      result.sent += static_cast<std::size_t>(rc);
      continue;
    }
    const int err = rc < 0 ? errno : EAGAIN;
    if (err == EINTR) continue;
    if (is_congestion(err)) {
      // The socket's send buffer (or the device queue) is full: what is left
      // of this group would meet the same fate now. Drop and count it.
      fail(first + done, count - done, err, result);
      return;
    }
    // An error that belongs to this one datagram (EMSGSIZE with DF set, a
    // bad address, ...): drop it and go on with the next.
    fail(first + done, 1, err, result);
    ++done;
  }
}

void send_queue::fail(std::size_t first, std::size_t count, int error, flush_result& result) {
  for (std::size_t j = first; j < first + count; ++j) {
    const entry& e = entries_[order_[j] & 0xFFFFFFFFu];
    if (e.dir == direction::to_client) {
      ++result.failed_to_client;
      if (!is_congestion(error)) result.client_error = error;
    } else {
      ++result.failed_to_peer;
      if (!is_congestion(error)) result.peer_error = error;
    }
  }
}

}  // namespace anyturn::net
