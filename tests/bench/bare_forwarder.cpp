// anyturn-bare-forwarder — the ceiling reference for the relay benchmark.
//
// A UDP forwarder that does what any relay must do and nothing more: it
// reads client datagrams in batches (recvmmsg), finds the client's relay
// socket by 5-tuple, strips the 4-byte header and sends the payload to the
// client's peer (sendmmsg); packets from the peer come back on that relay
// socket, get a fixed 4-byte header and go to the client from the listener
// socket, batched across relay sockets. No TURN parsing, no permissions,
// no timers. See forwarder_protocol.hpp for the wire format.
//
// Like anyturn, it runs N shared-nothing threads, each with its own
// SO_REUSEPORT listener, epoll set, client table and relay sockets.
//
// --gso-gro makes it the user-space ceiling: every socket receives with
// UDP_GRO, and a coalesced receive (a burst of one flow, all segments of
// one size but the last) leaves as one UDP GSO message, its headers
// stripped or prepended through an iovec per segment, never copied.
//
//   anyturn-bare-forwarder --listen 127.0.0.1:3478 [--relay-ip 127.0.0.4]
//       [--relay-ports 61000-64999] [--threads 1] [--max-clients 100000]
//       [--max-seconds 1800] [--gso-gro]
//
// It stops on SIGINT/SIGTERM or after --max-seconds, and prints its
// counters to stderr.
#include "bench_util.hpp"
#include "forwarder_protocol.hpp"

#include <sys/epoll.h>

#include <atomic>
#include <csignal>
#include <iostream>
#include <memory>
#include <thread>

namespace anyturn::bench {
namespace {

std::atomic<bool> stop_requested{false};
extern "C" void on_signal(int) { stop_requested.store(true); }

constexpr std::size_t batch = 64;              // messages per recvmmsg/sendmmsg
constexpr std::size_t buffer_size = 2048;      // larger datagrams are dropped
constexpr std::size_t out_pool = 256;          // peer->client messages per flush
constexpr std::size_t listener_reads = 4;      // recvmmsg calls per wake-up
constexpr std::size_t relay_reads = 2;         // per relay socket per wake-up
constexpr std::uint32_t listener_tag = 0xFFFFFFFF;

struct options {
  sockaddr_in listen{};
  sockaddr_in relay_ip{};
  std::uint32_t port_low = 0, port_high = 0;  // 0-0: ephemeral
  unsigned threads = 1;
  std::size_t max_clients = 100000;
  int max_seconds = 1800;
  bool gso_gro = false;
};

// --gso-gro: coalesced receives per recvmmsg, and messages a worker keeps
// towards clients before it flushes them.
constexpr std::size_t gro_batch = 16;
constexpr std::size_t gro_out_pool = 32;

std::atomic<std::uint32_t> next_port{0};

// Open addressing, linear probing; key = (ip << 16 | port), never 0.
class client_table {
 public:
  explicit client_table(std::size_t max_entries) {
    std::size_t cap = 16;
    while (cap < max_entries * 2) cap <<= 1;
    keys_.assign(cap, 0);
    values_.assign(cap, 0);
    mask_ = cap - 1;
  }
  static std::uint64_t key_of(const sockaddr_in& sa) {
    return (std::uint64_t{sa.sin_addr.s_addr} << 16) | sa.sin_port;
  }
  // Slot index or -1.
  [[nodiscard]] std::int64_t find(std::uint64_t key) const {
    for (std::size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
      if (keys_[i] == key) return values_[i];
      if (keys_[i] == 0) return -1;
    }
  }
  void insert(std::uint64_t key, std::uint32_t value) {
    std::size_t i = hash(key) & mask_;
    while (keys_[i] != 0 && keys_[i] != key) i = (i + 1) & mask_;
    keys_[i] = key;
    values_[i] = value;
  }

 private:
  static std::size_t hash(std::uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return static_cast<std::size_t>(k);
  }
  std::vector<std::uint64_t> keys_;
  std::vector<std::uint32_t> values_;
  std::size_t mask_ = 0;
};

struct relay_slot {
  int fd = -1;
  sockaddr_in client{};
  sockaddr_in peer{};
  sockaddr_in relay{};
};

struct counters {
  std::uint64_t to_peer = 0, to_client = 0, dropped = 0, registrations = 0;
  std::uint64_t gso_sends = 0;  // --gso-gro: GSO messages sent
};

class worker {
 public:
  worker(const options& o, unsigned index) : opts_(o), index_(index), table_(o.max_clients) {}
  ~worker() {
    for (auto& s : slots_) ::close(s.fd);
    if (listener_ >= 0) ::close(listener_);
    if (epoll_ >= 0) ::close(epoll_);
  }

  bool open() {
    listener_ = open_udp(opts_.listen, 8 << 20, true);
    if (listener_ < 0) {
      std::cerr << "forwarder: bind " << to_string(opts_.listen) << ": " << std::strerror(errno) << "\n";
      return false;
    }
    if (opts_.gso_gro && !enable_gro(listener_)) {
      std::cerr << "forwarder: UDP_GRO: " << std::strerror(errno) << "\n";
      return false;
    }
    epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = listener_tag;
    ::epoll_ctl(epoll_, EPOLL_CTL_ADD, listener_, &ev);
    in_bufs_.resize(batch * buffer_size);
    out_bufs_.resize(out_pool * buffer_size);
    if (opts_.gso_gro) {
      in_bufs_.resize(gro_batch * gro_buffer);
      out_bufs_.resize(gro_out_pool * gro_buffer);
      gro_iov_.resize(gro_batch * (max_gso_segments + 1));
      gro_out_iov_.resize(gro_out_pool * 2 * max_gso_segments);
      gro_headers_.resize(gro_out_pool * max_gso_segments * 4);
    }
    return true;
  }

  void run(std::int64_t deadline_ns) {
    std::array<epoll_event, 256> events{};
    while (!stop_requested.load(std::memory_order_relaxed) && now_ns() < deadline_ns) {
      const int n = ::epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), 200);
      for (int i = 0; i < n; ++i) {
        const std::uint32_t tag = events[static_cast<std::size_t>(i)].data.u32;
        if (opts_.gso_gro) {
          if (tag == listener_tag) on_listener_gro();
          else on_relay_gro(tag);
        } else if (tag == listener_tag) {
          on_listener();
        } else {
          on_relay(tag);
        }
      }
      if (opts_.gso_gro) flush_to_clients_gro();
      else flush_to_clients();
    }
  }

  [[nodiscard]] const counters& stats() const { return stats_; }

 private:
  // client -> peer
  void on_listener() {
    for (std::size_t round = 0; round < listener_reads; ++round) {
      std::array<mmsghdr, batch> msgs{};
      std::array<iovec, batch> iovs{};
      std::array<sockaddr_in, batch> from{};
      for (std::size_t i = 0; i < batch; ++i) {
        iovs[i] = {in_bufs_.data() + i * buffer_size, buffer_size};
        msgs[i].msg_hdr.msg_iov = &iovs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &from[i];
        msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_in);
      }
      const int n = ::recvmmsg(listener_, msgs.data(), batch, MSG_DONTWAIT, nullptr);
      if (n <= 0) return;
      // Outgoing: runs of packets for the same relay socket go in one sendmmsg.
      std::array<mmsghdr, batch> out{};
      std::array<iovec, batch> out_iov{};
      std::size_t run_start = 0, count = 0;
      int run_fd = -1;
      auto flush_run = [&] {
        if (count > run_start) send_all(run_fd, out.data() + run_start, count - run_start, stats_.to_peer);
        run_start = count;
      };
      for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i) {
        const auto* data = reinterpret_cast<const std::byte*>(iovs[i].iov_base);
        const std::size_t len = msgs[i].msg_len;
        if ((msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0) {
          ++stats_.dropped;
          continue;
        }
        const auto first = static_cast<std::uint8_t>(data[0]);
        if (len >= 4 && first >= 0x40 && first <= 0x7F) {
          const std::int64_t s = table_.find(client_table::key_of(from[i]));
          if (s < 0) {
            ++stats_.dropped;
            continue;
          }
          relay_slot& slot = slots_[static_cast<std::size_t>(s)];
          if (slot.fd != run_fd) {
            flush_run();
            run_fd = slot.fd;
          }
          out_iov[count] = {const_cast<std::byte*>(data) + 4, len - 4};
          out[count].msg_hdr = {};
          out[count].msg_hdr.msg_iov = &out_iov[count];
          out[count].msg_hdr.msg_iovlen = 1;
          out[count].msg_hdr.msg_name = &slot.peer;
          out[count].msg_hdr.msg_namelen = sizeof(sockaddr_in);
          ++count;
        } else {
          flush_run();
          on_control(from[i], data, len);
        }
      }
      flush_run();
      if (static_cast<std::size_t>(n) < batch) return;
    }
  }

  // client -> peer with --gso-gro: each coalesced receive leaves for the
  // client's peer as one GSO message of the payloads (headers skipped).
  void on_listener_gro() {
    for (std::size_t round = 0; round < listener_reads; ++round) {
      std::array<mmsghdr, gro_batch> msgs{};
      std::array<iovec, gro_batch> iovs{};
      std::array<sockaddr_in, gro_batch> from{};
      std::array<segment_control, gro_batch> control{};
      for (std::size_t i = 0; i < gro_batch; ++i) {
        iovs[i] = {in_bufs_.data() + i * gro_buffer, gro_buffer};
        msgs[i].msg_hdr.msg_iov = &iovs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &from[i];
        msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_in);
        msgs[i].msg_hdr.msg_control = control[i].bytes;
        msgs[i].msg_hdr.msg_controllen = sizeof control[i].bytes;
      }
      const int n = ::recvmmsg(listener_, msgs.data(), gro_batch, MSG_DONTWAIT, nullptr);
      if (n <= 0) return;
      std::array<mmsghdr, gro_batch> out{};
      std::array<segment_control, gro_batch> out_control{};
      std::array<std::uint64_t, gro_batch> weight{};
      std::size_t count = 0, iov_used = 0;
      int run_fd = -1;
      std::size_t run_start = 0;
      auto flush_run = [&] {
        if (count > run_start) send_weighted(run_fd, out.data() + run_start, weight.data() + run_start,
                                             count - run_start, stats_.to_peer);
        run_start = count;
      };
      for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i) {
        const auto* data = static_cast<const std::byte*>(iovs[i].iov_base);
        const std::size_t len = msgs[i].msg_len;
        const std::size_t seg = gro_size(msgs[i].msg_hdr);
        const auto first = static_cast<std::uint8_t>(data[0]);
        if (len < 4 || first < 0x40 || first > 0x7F || (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0) {
          flush_run();
          if (seg == 0) on_control(from[i], data, len);
          else ++stats_.dropped;
          continue;
        }
        const std::int64_t s = table_.find(client_table::key_of(from[i]));
        if (s < 0 || (seg != 0 && seg <= 4)) {
          ++stats_.dropped;
          continue;
        }
        relay_slot& slot = slots_[static_cast<std::size_t>(s)];
        if (slot.fd != run_fd) {
          flush_run();
          run_fd = slot.fd;
        }
        msghdr& m = out[count].msg_hdr;
        m = {};
        m.msg_iov = gro_iov_.data() + iov_used;
        std::size_t segments = 0;
        for_each_segment(data, len, seg, [&](const std::byte* p, std::size_t l) {
          gro_iov_[iov_used++] = {const_cast<std::byte*>(p) + 4, l >= 4 ? l - 4 : 0};
          ++segments;
        });
        m.msg_iovlen = segments;
        m.msg_name = &slot.peer;
        m.msg_namelen = sizeof(sockaddr_in);
        if (segments > 1) set_gso(m, out_control[count], static_cast<std::uint16_t>(seg - 4));
        weight[count] = segments;
        ++count;
      }
      flush_run();
      if (static_cast<std::size_t>(n) < gro_batch) return;
    }
  }

  // peer -> client with --gso-gro: a coalesced receive from the peer goes to
  // the client as one GSO message, a 4-byte header before each segment.
  void on_relay_gro(std::uint32_t index) {
    if (index >= slots_.size()) return;
    relay_slot& slot = slots_[index];
    for (std::size_t round = 0; round < relay_reads; ++round) {
      if (gro_out_count_ + 4 > gro_out_pool) flush_to_clients_gro();
      const std::size_t room = std::min(gro_batch, gro_out_pool - gro_out_count_);
      std::array<mmsghdr, gro_batch> msgs{};
      std::array<iovec, gro_batch> iovs{};
      for (std::size_t i = 0; i < room; ++i) {
        const std::size_t k = gro_out_count_ + i;
        iovs[i] = {out_bufs_.data() + k * gro_buffer, gro_buffer};
        msgs[i].msg_hdr.msg_iov = &iovs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_control = gro_out_control_[k].bytes;
        msgs[i].msg_hdr.msg_controllen = sizeof gro_out_control_[k].bytes;
      }
      const int n = ::recvmmsg(slot.fd, msgs.data(), static_cast<unsigned>(room), MSG_DONTWAIT, nullptr);
      if (n <= 0) return;
      for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i) {
        const std::size_t k = gro_out_count_ + i;
        const std::size_t seg = gro_size(msgs[i].msg_hdr);
        iovec* iov = gro_out_iov_.data() + k * 2 * max_gso_segments;
        std::byte* hdr = gro_headers_.data() + k * max_gso_segments * 4;
        std::size_t segments = 0;
        for_each_segment(static_cast<const std::byte*>(iovs[i].iov_base), msgs[i].msg_len, seg,
                         [&](const std::byte* p, std::size_t l) {
                           if (segments == max_gso_segments) return;  // cannot happen (UDP_MAX_SEGMENTS)
                           std::byte* h = hdr + segments * 4;
                           h[0] = std::byte{forwarder::channel >> 8};
                           h[1] = std::byte{forwarder::channel & 0xFF};
                           h[2] = std::byte{static_cast<std::uint8_t>(l >> 8)};
                           h[3] = std::byte{static_cast<std::uint8_t>(l & 0xFF)};
                           iov[2 * segments] = {h, 4};
                           iov[2 * segments + 1] = {const_cast<std::byte*>(p), l};
                           ++segments;
                         });
        msghdr& m = gro_out_msgs_[k].msg_hdr;
        m = {};
        m.msg_iov = iov;
        m.msg_iovlen = 2 * segments;
        m.msg_name = &slot.client;
        m.msg_namelen = sizeof(sockaddr_in);
        if (segments > 1) set_gso(m, gro_out_control_[k], static_cast<std::uint16_t>(seg + 4));
        gro_out_weight_[k] = segments;
      }
      gro_out_count_ += static_cast<std::size_t>(n);
      if (static_cast<std::size_t>(n) < room) return;
    }
  }

  void flush_to_clients_gro() {
    if (gro_out_count_ == 0) return;
    send_weighted(listener_, gro_out_msgs_.data(), gro_out_weight_.data(), gro_out_count_, stats_.to_client);
    gro_out_count_ = 0;
  }

  // send_all for messages that carry `weight[i]` datagrams each.
  void send_weighted(int fd, mmsghdr* msgs, const std::uint64_t* weight, std::size_t count, std::uint64_t& sent) {
    std::size_t done = 0;
    for (int attempts = 0; done < count && attempts < 8; ++attempts) {
      const int n = ::sendmmsg(fd, msgs + done, static_cast<unsigned>(count - done), MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
          stats_.dropped += weight[done];
          ++done;
          continue;
        }
        break;
      }
      for (std::size_t k = done; k < done + static_cast<std::size_t>(n); ++k) {
        sent += weight[k];
        if (weight[k] > 1) ++stats_.gso_sends;
      }
      done += static_cast<std::size_t>(n);
    }
    for (std::size_t k = done; k < count; ++k) stats_.dropped += weight[k];
  }

  void on_control(const sockaddr_in& from, const std::byte* data, std::size_t len) {
    forwarder::control c;
    if (!forwarder::read_control(data, len, c) || c.op != forwarder::op_register) {
      ++stats_.dropped;
      return;
    }
    const std::uint64_t key = client_table::key_of(from);
    std::int64_t s = table_.find(key);
    if (s < 0) {
      if (slots_.size() >= opts_.max_clients) {
        ++stats_.dropped;
        return;
      }
      relay_slot slot;
      slot.client = from;
      slot.peer.sin_family = AF_INET;
      slot.peer.sin_addr.s_addr = c.ip_be;
      slot.peer.sin_port = c.port_be;
      slot.fd = open_relay_socket();
      if (slot.fd < 0) {
        ++stats_.dropped;
        return;
      }
      slot.relay = local_address(slot.fd);
      s = static_cast<std::int64_t>(slots_.size());
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u32 = static_cast<std::uint32_t>(s);
      ::epoll_ctl(epoll_, EPOLL_CTL_ADD, slot.fd, &ev);
      slots_.push_back(slot);
      table_.insert(key, static_cast<std::uint32_t>(s));
      ++stats_.registrations;
    }
    relay_slot& slot = slots_[static_cast<std::size_t>(s)];
    // A retransmission, or a new client on a reused 5-tuple: its peer wins.
    slot.peer.sin_addr.s_addr = c.ip_be;
    slot.peer.sin_port = c.port_be;
    std::array<std::byte, forwarder::control_size> reply{};
    forwarder::write_control(reply.data(), {forwarder::op_registered, slot.relay.sin_addr.s_addr,
                                            slot.relay.sin_port});
    ::sendto(listener_, reply.data(), reply.size(), MSG_DONTWAIT,
             reinterpret_cast<const sockaddr*>(&from), sizeof from);
  }

  int open_relay_socket() {
    const int fd = open_relay_socket_plain();
    if (fd >= 0 && opts_.gso_gro && !enable_gro(fd)) {
      ::close(fd);
      return -1;
    }
    return fd;
  }
  int open_relay_socket_plain() {
    sockaddr_in at = opts_.relay_ip;
    if (opts_.port_low == 0) {
      at.sin_port = 0;
      return open_udp(at, 1 << 20);
    }
    const std::uint32_t width = opts_.port_high - opts_.port_low + 1;
    for (std::uint32_t tries = 0; tries < width; ++tries) {
      const std::uint32_t p = opts_.port_low + next_port.fetch_add(1) % width;
      at.sin_port = htons(static_cast<std::uint16_t>(p));
      const int fd = open_udp(at, 1 << 20);
      if (fd >= 0) return fd;
      if (errno != EADDRINUSE) return -1;
    }
    return -1;
  }

  // peer -> client: read into the out pool, leaving room for the header.
  void on_relay(std::uint32_t index) {
    if (index >= slots_.size()) return;
    relay_slot& slot = slots_[index];
    for (std::size_t round = 0; round < relay_reads; ++round) {
      if (out_count_ + 16 > out_pool) flush_to_clients();
      const std::size_t room = std::min(batch, out_pool - out_count_);
      std::array<mmsghdr, batch> msgs{};
      for (std::size_t i = 0; i < room; ++i) {
        const std::size_t k = out_count_ + i;
        out_iov_[k] = {out_bufs_.data() + k * buffer_size + 4, buffer_size - 4};
        msgs[i].msg_hdr.msg_iov = &out_iov_[k];
        msgs[i].msg_hdr.msg_iovlen = 1;
      }
      const int n = ::recvmmsg(slot.fd, msgs.data(), static_cast<unsigned>(room), MSG_DONTWAIT, nullptr);
      if (n <= 0) return;
      for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i) {
        const std::size_t k = out_count_ + i;
        const std::size_t len = msgs[i].msg_len;
        std::byte* buf = out_bufs_.data() + k * buffer_size;
        buf[0] = std::byte{forwarder::channel >> 8};
        buf[1] = std::byte{forwarder::channel & 0xFF};
        buf[2] = std::byte{static_cast<std::uint8_t>(len >> 8)};
        buf[3] = std::byte{static_cast<std::uint8_t>(len & 0xFF)};
        out_iov_[k] = {buf, len + 4};
        out_msgs_[k].msg_hdr = {};
        out_msgs_[k].msg_hdr.msg_iov = &out_iov_[k];
        out_msgs_[k].msg_hdr.msg_iovlen = 1;
        out_msgs_[k].msg_hdr.msg_name = &slot.client;
        out_msgs_[k].msg_hdr.msg_namelen = sizeof(sockaddr_in);
      }
      out_count_ += static_cast<std::size_t>(n);
      if (static_cast<std::size_t>(n) < room) return;
    }
  }

  void flush_to_clients() {
    if (out_count_ == 0) return;
    send_all(listener_, out_msgs_.data(), out_count_, stats_.to_client);
    out_count_ = 0;
  }

  // sendmmsg until everything is sent or the socket refuses (counted as drops).
  void send_all(int fd, mmsghdr* msgs, std::size_t count, std::uint64_t& sent) {
    std::size_t done = 0;
    for (int attempts = 0; done < count && attempts < 8; ++attempts) {
      const int n = ::sendmmsg(fd, msgs + done, static_cast<unsigned>(count - done), MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        // The first message failed (e.g. ECONNREFUSED from an earlier ICMP): skip it.
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
          ++done;
          ++stats_.dropped;
          continue;
        }
        break;
      }
      done += static_cast<std::size_t>(n);
      sent += static_cast<std::uint64_t>(n);
    }
    stats_.dropped += count - done;
  }

  options opts_;
  unsigned index_;
  int listener_ = -1;
  int epoll_ = -1;
  client_table table_;
  std::vector<relay_slot> slots_;
  std::vector<std::byte> in_bufs_;
  std::vector<std::byte> out_bufs_;
  std::array<mmsghdr, out_pool> out_msgs_{};
  std::array<iovec, out_pool> out_iov_{};
  std::size_t out_count_ = 0;
  // --gso-gro
  std::vector<iovec> gro_iov_, gro_out_iov_;
  std::vector<std::byte> gro_headers_;
  std::array<mmsghdr, gro_out_pool> gro_out_msgs_{};
  std::array<segment_control, gro_out_pool> gro_out_control_{};
  std::array<std::uint64_t, gro_out_pool> gro_out_weight_{};
  std::size_t gro_out_count_ = 0;
  counters stats_;
};

int usage(const char* why) {
  std::cerr << "anyturn-bare-forwarder: " << why << "\n"
            << "usage: anyturn-bare-forwarder --listen IP:PORT [--relay-ip IP] [--relay-ports LOW-HIGH]\n"
            << "         [--threads N] [--max-clients N] [--max-seconds S] [--gso-gro]\n";
  return 2;
}

int run(int argc, char** argv) {
  options o;
  bool have_listen = false;
  o.relay_ip.sin_family = AF_INET;
  o.relay_ip.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--gso-gro") {
      o.gso_gro = true;
      continue;
    }
    if (i + 1 >= argc) return usage("missing value");
    const std::string_view v = argv[++i];
    if (a == "--listen") {
      auto sa = parse_v4(v);
      if (!sa) return usage("bad --listen");
      o.listen = *sa;
      have_listen = true;
    } else if (a == "--relay-ip") {
      auto sa = parse_v4(v, true);
      if (!sa) return usage("bad --relay-ip");
      o.relay_ip = *sa;
    } else if (a == "--relay-ports") {
      if (!parse_range(v, o.port_low, o.port_high) || o.port_high > 65535 || o.port_low == 0)
        return usage("bad --relay-ports");
    } else if (a == "--threads") {
      o.threads = static_cast<unsigned>(std::max(1L, std::strtol(std::string(v).c_str(), nullptr, 10)));
    } else if (a == "--max-clients") {
      o.max_clients = static_cast<std::size_t>(std::max(1L, std::strtol(std::string(v).c_str(), nullptr, 10)));
    } else if (a == "--max-seconds") {
      o.max_seconds = static_cast<int>(std::max(1L, std::strtol(std::string(v).c_str(), nullptr, 10)));
    } else {
      return usage("unknown flag");
    }
  }
  if (!have_listen) return usage("--listen is required");
  raise_nofile(o.max_clients + 64);

  struct sigaction sa{};
  sa.sa_handler = on_signal;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);

  std::vector<std::unique_ptr<worker>> workers;
  for (unsigned t = 0; t < o.threads; ++t) {
    workers.push_back(std::make_unique<worker>(o, t));
    if (!workers.back()->open()) return 1;
  }
  std::cerr << "anyturn-bare-forwarder: listening on " << to_string(o.listen) << " with " << o.threads
            << " thread(s)\n";
  const std::int64_t deadline = now_ns() + std::int64_t{o.max_seconds} * 1'000'000'000;
  std::vector<std::thread> threads;
  for (auto& w : workers) threads.emplace_back([&w, deadline] { w->run(deadline); });
  for (auto& t : threads) t.join();
  counters total;
  for (const auto& w : workers) {
    total.to_peer += w->stats().to_peer;
    total.to_client += w->stats().to_client;
    total.dropped += w->stats().dropped;
    total.registrations += w->stats().registrations;
    total.gso_sends += w->stats().gso_sends;
  }
  std::cerr << "anyturn-bare-forwarder: clients=" << total.registrations << " to_peer=" << total.to_peer
            << " to_client=" << total.to_client << " dropped=" << total.dropped
            << " gso_sends=" << total.gso_sends << "\n";
  return 0;
}

}  // namespace
}  // namespace anyturn::bench

int main(int argc, char** argv) { return anyturn::bench::run(argc, argv); }
