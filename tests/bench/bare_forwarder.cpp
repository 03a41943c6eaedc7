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
//   anyturn-bare-forwarder --listen 127.0.0.1:3478 [--relay-ip 127.0.0.4]
//       [--relay-ports 61000-64999] [--threads 1] [--max-clients 100000]
//       [--max-seconds 1800]
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
};

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
    epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = listener_tag;
    ::epoll_ctl(epoll_, EPOLL_CTL_ADD, listener_, &ev);
    in_bufs_.resize(batch * buffer_size);
    out_bufs_.resize(out_pool * buffer_size);
    return true;
  }

  void run(std::int64_t deadline_ns) {
    std::array<epoll_event, 256> events{};
    while (!stop_requested.load(std::memory_order_relaxed) && now_ns() < deadline_ns) {
      const int n = ::epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), 200);
      for (int i = 0; i < n; ++i) {
        const std::uint32_t tag = events[static_cast<std::size_t>(i)].data.u32;
        if (tag == listener_tag) {
          on_listener();
        } else {
          on_relay(tag);
        }
      }
      flush_to_clients();
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
  counters stats_;
};

int usage(const char* why) {
  std::cerr << "anyturn-bare-forwarder: " << why << "\n"
            << "usage: anyturn-bare-forwarder --listen IP:PORT [--relay-ip IP] [--relay-ports LOW-HIGH]\n"
            << "         [--threads N] [--max-clients N] [--max-seconds S]\n";
  return 2;
}

int run(int argc, char** argv) {
  options o;
  bool have_listen = false;
  o.relay_ip.sin_family = AF_INET;
  o.relay_ip.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
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
  }
  std::cerr << "anyturn-bare-forwarder: clients=" << total.registrations << " to_peer=" << total.to_peer
            << " to_client=" << total.to_client << " dropped=" << total.dropped << "\n";
  return 0;
}

}  // namespace
}  // namespace anyturn::bench

int main(int argc, char** argv) { return anyturn::bench::run(argc, argv); }
