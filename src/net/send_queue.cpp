#include <anyturn/net/send_queue.hpp>

#include <anyturn/common/keyed_hash.hpp>
#include <anyturn/net/address.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <netinet/udp.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

namespace anyturn::net {

namespace {

int system_sendmmsg(int fd, mmsghdr* msgs, unsigned count, int flags) {
  return ::sendmmsg(fd, msgs, count, flags);
}

bool is_congestion(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS; }

// The device or kernel cannot segment (no UDP GSO, no checksum offload).
bool is_gso_unsupported(int err) { return err == EIO || err == ENOPROTOOPT || err == EOPNOTSUPP; }

// The segment size does not fit the path (gso_size + headers > MTU).
bool is_gso_size_refused(int err) { return err == EINVAL || err == EMSGSIZE; }

std::size_t table_size(std::size_t capacity) {
  std::size_t n = 1;
  while (n < 2 * capacity) n <<= 1;
  return n;
}

}  // namespace

send_queue::send_queue(std::size_t capacity, std::size_t copy_bytes, sendmmsg_fn fn)
    : sendmmsg_(fn != nullptr ? fn : &system_sendmmsg),
      entries_(std::max<std::size_t>(capacity, 1)),
      order_(entries_.size()),
      reordered_(entries_.size()),
      headers_(entries_.size()),
      messages_(entries_.size()),
      gso_iov_(entries_.size() * max_fragments),
      gso_control_(entries_.size()),
      same_first_(entries_.size()),
      same_next_(entries_.size()),
      same_last_(entries_.size()),
      table_(table_size(entries_.size())),
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
  std::size_t length = 0;
  for (const auto& f : data) {
    if (f.empty()) continue;
    length += f.size();
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
  e.length = static_cast<std::uint32_t>(std::min<std::size_t>(length, 0xFFFFFFFFu));
  e.name_len = write_sockaddr(to, &e.name);
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
  // Runs exist only where a destination repeats; without one, nothing moves.
  const bool merge = gso_enabled_ && count_ > 1 && link_destinations();
  if (merge) order_by_destination();
  std::size_t first = 0;
  while (first < count_) {
    const int fd = at(first).fd;
    std::size_t end = first + 1;
    while (end < count_ && at(end).fd == fd) ++end;
    send_group(fd, first, end, merge, result);
    first = end;
  }
  count_ = 0;
  copy_used_ = 0;
  return result;
}

// Links every queued entry to the first one with the same destination (same
// descriptor, direction, address and control bytes), in push order. True if
// some destination occurs more than once.
bool send_queue::link_destinations() {
  if (++stamp_ == 0) {
    for (slot& s : table_) s.stamp = 0;
    stamp_ = 1;
  }
  const auto same = [](const entry& a, const entry& b) {
    return a.fd == b.fd && a.dir == b.dir && a.name_len == b.name_len && a.control_len == b.control_len &&
           std::memcmp(&a.name, &b.name, a.name_len) == 0 &&
           std::memcmp(a.control, b.control, a.control_len) == 0;
  };
  const std::size_t mask = table_.size() - 1;
  bool repeated = false;
  for (std::size_t i = 0; i < count_; ++i) {
    const entry& e = entries_[i];
    // Destinations are addresses the network chose: the keyed hash.
    common::keyed_hasher hasher;
    hasher.add(std::uint64_t{static_cast<std::uint32_t>(e.fd)} << 8 | static_cast<std::uint64_t>(e.dir));
    hasher.add_bytes(&e.name, e.name_len);
    hasher.add_bytes(e.control, e.control_len);
    const std::uint64_t h64 = hasher.finish();
    const auto h = static_cast<std::uint32_t>(h64 ^ (h64 >> 32));
    const auto index = static_cast<std::uint32_t>(i);
    same_next_[i] = none;
    // The table has twice the queue's capacity: an empty slot is always found.
    for (std::size_t s = h & mask;; s = (s + 1) & mask) {
      slot& sl = table_[s];
      if (sl.stamp != stamp_) {
        sl = slot{stamp_, h, index};
        same_first_[i] = index;
        same_last_[i] = index;
        break;
      }
      if (sl.hash == h && same(entries_[sl.index], e)) {
        same_first_[i] = sl.index;
        same_next_[same_last_[sl.index]] = index;
        same_last_[sl.index] = index;
        repeated = true;
        break;
      }
    }
  }
  return repeated;
}

// Reorders each descriptor's group by destination: destinations in the order
// they first appear, each one's datagrams in push order.
void send_queue::order_by_destination() {
  std::size_t out = 0;
  for (std::size_t j = 0; j < count_; ++j) {
    const std::uint64_t fd_bits = order_[j] & ~std::uint64_t{0xFFFFFFFFu};
    const auto i = static_cast<std::uint32_t>(order_[j] & 0xFFFFFFFFu);
    if (same_first_[i] != i) continue;  // sent with the first of its destination
    for (std::uint32_t k = i; k != none; k = same_next_[k]) reordered_[out++] = fd_bits | k;
  }
  std::swap(order_, reordered_);
}

// Builds the headers for flush positions [first, end) from header slot
// `header` on (never after `first`: each header carries one datagram at
// least). Returns the slot after the last header built.
std::size_t send_queue::plan(std::size_t first, std::size_t end, std::size_t header, bool merge) {
  std::size_t pos = first;
  while (pos < end) {
    entry& e = at(pos);
    std::size_t n = 1;
    if (merge && gso_enabled_ && e.length != 0 && e.length <= gso_max_segment_) {
      const std::uint32_t destination = same_first_[order_[pos] & 0xFFFFFFFFu];
      std::size_t bytes = e.length;
      while (pos + n < end && n < max_gso_segments) {
        const auto i = static_cast<std::uint32_t>(order_[pos + n] & 0xFFFFFFFFu);
        const entry& next = entries_[i];
        if (same_first_[i] != destination || next.length == 0 || next.length > e.length ||
            bytes + next.length > max_gso_bytes) {
          break;
        }
        bytes += next.length;
        ++n;
        if (next.length < e.length) break;  // a shorter one ends the run
      }
    }
    msghdr& h = headers_[header].msg_hdr;
    h.msg_name = &e.name;
    h.msg_namelen = e.name_len;
    h.msg_flags = 0;
    headers_[header].msg_len = 0;
    if (n == 1) {
      h.msg_iov = e.iov;
      h.msg_iovlen = e.fragments;
      h.msg_control = e.control_len != 0 ? e.control : nullptr;
      h.msg_controllen = e.control_len;
    } else {
      iovec* iov = gso_iov_.data() + pos * max_fragments;
      std::size_t k = 0;
      for (std::size_t m = 0; m < n; ++m) {
        const entry& x = at(pos + m);
        std::copy_n(x.iov, x.fragments, iov + k);
        k += x.fragments;
      }
      h.msg_iov = iov;
      h.msg_iovlen = k;
      // The datagram's PKTINFO (if any), then UDP_SEGMENT.
      std::byte* control = gso_control_[pos].bytes;
      const std::size_t length = e.control_len + CMSG_SPACE(sizeof(std::uint16_t));
      std::memset(control, 0, length);
      std::memcpy(control, e.control, e.control_len);
      h.msg_control = control;
      h.msg_controllen = length;
      cmsghdr* c = CMSG_FIRSTHDR(&h);
      if (e.control_len != 0) c = CMSG_NXTHDR(&h, c);
      c->cmsg_level = SOL_UDP;
      c->cmsg_type = UDP_SEGMENT;
      c->cmsg_len = CMSG_LEN(sizeof(std::uint16_t));
      const auto segment = static_cast<std::uint16_t>(e.length);
      std::memcpy(CMSG_DATA(c), &segment, sizeof segment);
    }
    messages_[header] = message{static_cast<std::uint32_t>(pos), static_cast<std::uint32_t>(n)};
    ++header;
    pos += n;
  }
  return header;
}

void send_queue::send_group(int fd, std::size_t first, std::size_t end, bool merge, flush_result& result) {
  std::size_t next = first;  // header slot of the next message
  std::size_t last = plan(first, end, first, merge);
  while (next < last) {
    // UIO_MAXIOV (1024) messages at most per call.
    const auto chunk = static_cast<unsigned>(std::min<std::size_t>(last - next, 1024));
    const int rc = sendmmsg_(fd, headers_.data() + next, chunk, MSG_DONTWAIT | MSG_NOSIGNAL);
    ++result.calls;
    if (rc > 0) {
      // A short count means the next message failed (or would block): the
      // next call sends the rest or reports that message's error.
      for (std::size_t k = next; k < next + static_cast<std::size_t>(rc); ++k) {
        const std::size_t datagrams = messages_[k].count;
        result.sent += datagrams;
        if (datagrams > 1) {
          ++result.gso_messages;
          result.gso_datagrams += datagrams;
        }
      }
      next += static_cast<std::size_t>(rc);
      continue;
    }
    const int err = rc < 0 ? errno : EAGAIN;
    if (err == EINTR) continue;
    const message m = messages_[next];
    if (is_congestion(err)) {
      // The socket's send buffer (or the device queue) is full: what is left
      // of this group would meet the same fate now. Drop and count it.
      fail(m.first, end - m.first, err, result);
      return;
    }
    if (m.count > 1 && (is_gso_unsupported(err) || is_gso_size_refused(err))) {
      // Send this message's datagrams (and the rest of the group) again
      // without this kind of merge. Header `next` now carries one datagram,
      // so this cannot repeat for it.
      if (is_gso_unsupported(err)) {
        gso_enabled_ = false;
      } else {
        gso_max_segment_ = at(m.first).length - 1;
      }
      last = plan(m.first, end, next, merge);
      continue;
    }
    // An error that belongs to this message (EMSGSIZE with DF set, a bad
    // address, ...): drop its datagrams and go on with the next.
    fail(m.first, m.count, err, result);
    ++next;
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
