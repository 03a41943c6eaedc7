// anyturn-load — a load generator for TURN servers over UDP (anyturn, coturn
// or anything that speaks RFC 8656), and for anyturn-bare-forwarder (--raw).
//
// Modes:
//   throughput  N clients allocate with long-term credentials (401 challenge,
//               then Allocate with MESSAGE-INTEGRITY), bind channel 0x4000 to
//               an echo peer this tool hosts, and the first --active of them
//               drive ChannelData closed-loop with --inflight packets in flight.
//   paced       same set-up; each active client sends --rate packets/s.
//   alloc-rate  --concurrency sockets loop Allocate (401 challenge, then the
//               signed Allocate) and Refresh(lifetime 0); reports allocations/s.
//   memory      server RSS with 0 allocations, then at each of --steps
//               concurrent allocations (one client socket each), then after
//               Refresh(0) of all of them.
//
// Every mode measures over a window after a warm-up and reads the server's
// CPU time (/proc/PID/task/*/schedstat) and VmRSS when --server-pid is given.
// Payloads carry the client index, a sequence number and the send time, so
// RTT is measured per packet. Output: one JSON line on stdout, a human
// summary on stderr. Loopback/IPv4 only; every loop is bounded in time.
#include "bench_util.hpp"
#include "forwarder_protocol.hpp"

#include <anyturn/auth/credentials.hpp>
#include <anyturn/stun/message.hpp>

#include <sys/epoll.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <iostream>
#include <map>
#include <random>
#include <thread>

namespace anyturn::bench {
namespace {

using namespace std::string_view_literals;

constexpr std::uint32_t payload_magic = 0x41544C42;  // "ATLB"
constexpr std::size_t min_payload = 24;              // magic, index, seq, timestamp
constexpr std::size_t max_payload = 1400;
constexpr std::size_t rx_batch = 64;
constexpr std::size_t rx_buffer = 2048;
constexpr std::uint32_t echo_tag = 0x80000000;
constexpr std::int64_t ms = 1'000'000;
constexpr std::int64_t sec = 1'000'000'000;

// ---------------------------------------------------------------- options

struct options {
  std::string mode;
  sockaddr_in server{};
  bool have_server = false;
  std::string user = "bench";
  std::string password = "bench";
  bool raw = false;  // the peer is anyturn-bare-forwarder
  std::string label;
  std::size_t clients = 1;
  std::size_t active = 0;  // 0: all clients
  std::size_t size = 200;
  std::size_t inflight = 8;
  double rate = 50;
  double duration = 5;
  double warmup = 1;
  double drain = 0.5;
  double stall = 0.25;  // closed loop: refill a client's window after this silence
  int server_pid = 0;
  std::size_t echo_sockets = 4;
  std::size_t setup_window = 256;
  std::size_t concurrency = 32;
  std::vector<std::size_t> steps = {10000, 50000};
  double settle = 1.5;
  std::size_t rounds = 2;
  std::vector<in_addr> client_ips;
  std::uint32_t client_port_low = 0, client_port_high = 0;
  std::uint32_t lifetime = 0;  // 0: do not send LIFETIME
  double setup_timeout = 120;
  // Cheaper per packet: UDP GSO for each client's burst, UDP GRO on the
  // client and echo sockets (the echo returns a coalesced receive as one
  // GSO message).
  bool gso_gro = false;
  std::string client_netns, peer_netns;  // ip netns names; empty: this one
  in_addr peer_ip{htonl(INADDR_LOOPBACK)};
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "anyturn-load: " << why << "\n"
            << R"(usage: anyturn-load MODE --server IP:PORT [options]
MODE: throughput | paced | alloc-rate | memory
  --user U --password P   long-term credentials (default bench/bench)
  --raw                   the server is anyturn-bare-forwarder (no TURN)
  --server-pid PID        sample the server's CPU time and RSS
  --label NAME            copied into the JSON line
  --clients N             allocations (default 1)
  --active M              clients that send traffic (default: all)
  --size B                ChannelData payload bytes, 24..1400 (default 200)
  --inflight K            closed loop: packets in flight per client (default 8)
  --rate P                paced: packets/s per client (default 50)
  --duration S --warmup S measurement window and warm-up (default 5, 1)
  --echo-sockets E        echo peer sockets shared by the clients (default 4)
  --setup-window W        concurrent set-up transactions (default 256)
  --concurrency C         alloc-rate: client sockets (default 32)
  --steps A,B,...         memory: allocation counts (default 10000,50000)
  --settle S              memory: wait before reading RSS (default 1.5)
  --rounds R              memory: fill/free rounds, fresh 5-tuples each (default 2)
  --client-ips A-B|A,B    client source addresses (default 127.0.0.1)
  --client-ports LOW-HIGH client source ports (default: ephemeral)
  --lifetime S            LIFETIME in the Allocate (default: none)
  --gso-gro               send each client's burst as one UDP GSO message and
                          receive with UDP_GRO (the echo peer answers a
                          coalesced receive with one GSO message)
  --client-netns NAME     open the client sockets in network namespace NAME
  --peer-netns NAME       open the echo peer sockets in network namespace NAME
  --peer-ip A             the echo peer sockets' address (default 127.0.0.1)
)";
  std::exit(2);
}

double to_double(std::string_view v, const char* flag) {
  const std::string s(v);
  char* end = nullptr;
  const double d = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || !std::isfinite(d) || d < 0) usage(std::string("bad value for ") + flag);
  return d;
}

std::size_t to_size(std::string_view v, const char* flag) {
  const std::string s(v);
  char* end = nullptr;
  const unsigned long long n = std::strtoull(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0') usage(std::string("bad value for ") + flag);
  return static_cast<std::size_t>(n);
}

std::vector<in_addr> parse_ips(std::string_view v) {
  std::vector<in_addr> out;
  auto parse_one = [](std::string_view s) {
    in_addr a{};
    if (::inet_pton(AF_INET, std::string(s).c_str(), &a) != 1) usage("bad --client-ips");
    return a;
  };
  if (const auto dash = v.find('-'); dash != std::string_view::npos) {
    const std::uint32_t lo = ntohl(parse_one(v.substr(0, dash)).s_addr);
    const std::uint32_t hi = ntohl(parse_one(v.substr(dash + 1)).s_addr);
    if (hi < lo || hi - lo > 1024) usage("bad --client-ips range");
    for (std::uint32_t a = lo; a <= hi; ++a) out.push_back(in_addr{htonl(a)});
    return out;
  }
  std::size_t start = 0;
  while (start <= v.size()) {
    const auto comma = v.find(',', start);
    const auto part = v.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    out.push_back(parse_one(part));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

options parse_options(int argc, char** argv) {
  if (argc < 2) usage("missing MODE");
  options o;
  o.mode = argv[1];
  if (o.mode != "throughput" && o.mode != "paced" && o.mode != "alloc-rate" && o.mode != "memory")
    usage("unknown mode '" + o.mode + "'");
  for (int i = 2; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--raw") {
      o.raw = true;
      continue;
    }
    if (a == "--gso-gro") {
      o.gso_gro = true;
      continue;
    }
    if (i + 1 >= argc) usage(std::string("missing value for ") + std::string(a));
    const std::string_view v = argv[++i];
    if (a == "--server") {
      auto sa = parse_v4(v);
      if (!sa) usage("bad --server");
      o.server = *sa;
      o.have_server = true;
    } else if (a == "--user") o.user = v;
    else if (a == "--password") o.password = v;
    else if (a == "--label") o.label = v;
    else if (a == "--server-pid") o.server_pid = static_cast<int>(to_size(v, "--server-pid"));
    else if (a == "--clients") o.clients = to_size(v, "--clients");
    else if (a == "--active") o.active = to_size(v, "--active");
    else if (a == "--size") o.size = to_size(v, "--size");
    else if (a == "--inflight") o.inflight = to_size(v, "--inflight");
    else if (a == "--rate") o.rate = to_double(v, "--rate");
    else if (a == "--duration") o.duration = to_double(v, "--duration");
    else if (a == "--warmup") o.warmup = to_double(v, "--warmup");
    else if (a == "--echo-sockets") o.echo_sockets = to_size(v, "--echo-sockets");
    else if (a == "--setup-window") o.setup_window = to_size(v, "--setup-window");
    else if (a == "--concurrency") o.concurrency = to_size(v, "--concurrency");
    else if (a == "--settle") o.settle = to_double(v, "--settle");
    else if (a == "--rounds") o.rounds = std::clamp<std::size_t>(to_size(v, "--rounds"), 1, 10);
    else if (a == "--lifetime") o.lifetime = static_cast<std::uint32_t>(to_size(v, "--lifetime"));
    else if (a == "--client-ips") o.client_ips = parse_ips(v);
    else if (a == "--client-netns") o.client_netns = v;
    else if (a == "--peer-netns") o.peer_netns = v;
    else if (a == "--peer-ip") {
      if (::inet_pton(AF_INET, std::string(v).c_str(), &o.peer_ip) != 1) usage("bad --peer-ip");
    }
    else if (a == "--client-ports") {
      if (!parse_range(v, o.client_port_low, o.client_port_high) || o.client_port_high > 65535 ||
          o.client_port_low == 0)
        usage("bad --client-ports");
    } else if (a == "--steps") {
      o.steps.clear();
      std::size_t start = 0;
      while (start < v.size()) {
        const auto comma = v.find(',', start);
        o.steps.push_back(to_size(v.substr(start, comma == std::string_view::npos ? std::string_view::npos
                                                                                   : comma - start),
                                  "--steps"));
        if (comma == std::string_view::npos) break;
        start = comma + 1;
      }
      std::sort(o.steps.begin(), o.steps.end());
      if (o.steps.empty() || o.steps.front() == 0) usage("bad --steps");
    } else {
      usage("unknown flag '" + std::string(a) + "'");
    }
  }
  if (!o.have_server) usage("--server is required");
  if (o.client_ips.empty()) o.client_ips.push_back(in_addr{htonl(INADDR_LOOPBACK)});
  if (o.size < min_payload || o.size > max_payload) usage("--size must be 24..1400");
  if (o.clients == 0 || o.clients > 200000) usage("--clients must be 1..200000");
  if (o.active == 0 || o.active > o.clients) o.active = o.clients;
  o.inflight = std::clamp<std::size_t>(o.inflight, 1, 64);
  o.echo_sockets = std::clamp<std::size_t>(o.echo_sockets, 1, 1024);
  o.setup_window = std::clamp<std::size_t>(o.setup_window, 1, 100000);
  o.concurrency = std::clamp<std::size_t>(o.concurrency, 1, 10000);
  o.duration = std::clamp(o.duration, 0.1, 3600.0);
  o.warmup = std::min(o.warmup, 600.0);
  if (o.raw && (o.mode == "alloc-rate" || o.mode == "memory")) usage("--raw supports throughput and paced only");
  return o;
}

// ---------------------------------------------------------------- JSON + stats

class json_line {
 public:
  json_line& add(std::string_view key, std::string_view value) {
    sep();
    out_ += '"';
    out_ += key;
    out_ += "\":\"";
    for (char c : value) {
      if (c == '"' || c == '\\') out_ += '\\';
      out_ += c;
    }
    out_ += '"';
    return *this;
  }
  json_line& add(std::string_view key, double value) {
    sep();
    char buf[64];
    if (std::isfinite(value)) {
      std::snprintf(buf, sizeof buf, "%.6g", value);
    } else {
      std::snprintf(buf, sizeof buf, "null");
    }
    out_ += '"';
    out_ += key;
    out_ += "\":";
    out_ += buf;
    return *this;
  }
  json_line& add_int(std::string_view key, std::int64_t value) {
    sep();
    out_ += '"';
    out_ += key;
    out_ += "\":";
    out_ += std::to_string(value);
    return *this;
  }
  [[nodiscard]] std::string str() const { return out_ + "}"; }

 private:
  void sep() { out_ += out_.size() > 1 ? "," : ""; }
  std::string out_ = "{";
};

// RTT samples in ns, preallocated; quantiles by nth_element at the end.
class samples {
 public:
  explicit samples(std::size_t cap) { values_.reserve(cap); }
  void add(std::int64_t v) {
    if (values_.size() < values_.capacity()) values_.push_back(static_cast<std::uint32_t>(std::clamp<std::int64_t>(v, 0, 0xFFFFFFFF)));
    else ++skipped_;
  }
  [[nodiscard]] std::size_t size() const { return values_.size(); }
  double quantile_us(double q) {
    if (values_.empty()) return std::nan("");
    const auto k = static_cast<std::size_t>(std::min<double>(static_cast<double>(values_.size() - 1),
                                                              q * static_cast<double>(values_.size())));
    std::nth_element(values_.begin(), values_.begin() + static_cast<std::ptrdiff_t>(k), values_.end());
    return values_[k] / 1000.0;
  }

 private:
  std::vector<std::uint32_t> values_;
  std::size_t skipped_ = 0;
};

// Server CPU/RSS between two points in time.
struct server_probe {
  int pid = 0;
  std::int64_t cpu0 = 0, wall0 = 0, self0 = 0, machine0 = 0;
  bool ok = false;
  // CPU used by everything else on the machine during the window (one core
  // = 100%): other users' jobs steal from the server and the generator.
  double others_pct = std::nan("");
  // The whole machine's work during the window (ns; user, system, irq,
  // softirq of every CPU, this generator and the server included).
  std::int64_t work0 = 0;
  double machine_work_ns = std::nan("");
  std::vector<std::int64_t> cpus0;
  std::int64_t irq0 = 0;
  double irq_ns = std::nan("");  // irq + softirq of all CPUs during the window
  std::vector<double> cpu_busy_pct;  // each CPU's busy % (which one saturated)
  void start() {
    wall0 = now_ns();
    work0 = anyturn::bench::machine_work_ns();
    cpus0 = cpu_work_ns();
    irq0 = machine_irq_ns();
    self0 = self_cpu_ns();
    machine0 = machine_busy_ns();
    if (pid > 0) {
      auto c = process_cpu_ns(pid);
      ok = c.has_value();
      cpu0 = c.value_or(0);
    }
  }
  // Server CPU ns and % since start(), and this generator's CPU %.
  void finish(double& server_cpu_ns, double& cpu_pct, double& gen_pct) {
    const std::int64_t wall = now_ns() - wall0;
    gen_pct = 100.0 * static_cast<double>(self_cpu_ns() - self0) / static_cast<double>(wall);
    server_cpu_ns = std::nan("");
    cpu_pct = std::nan("");
    if (pid > 0 && ok) {
      if (auto c = process_cpu_ns(pid)) {
        server_cpu_ns = static_cast<double>(*c - cpu0);
        cpu_pct = 100.0 * server_cpu_ns / static_cast<double>(wall);
      }
    }
    machine_work_ns = static_cast<double>(anyturn::bench::machine_work_ns() - work0);
    irq_ns = static_cast<double>(machine_irq_ns() - irq0);
    const std::vector<std::int64_t> cpus = cpu_work_ns();
    cpu_busy_pct.clear();
    for (std::size_t i = 0; i < cpus.size() && i < cpus0.size(); ++i) {
      cpu_busy_pct.push_back(100.0 * static_cast<double>(cpus[i] - cpus0[i]) / static_cast<double>(wall));
    }
    const double machine_pct = 100.0 * static_cast<double>(machine_busy_ns() - machine0) / static_cast<double>(wall);
    others_pct = std::max(0.0, machine_pct - gen_pct - (std::isnan(cpu_pct) ? 0.0 : cpu_pct));
  }
};

// ---------------------------------------------------------------- clients

enum class phase : std::uint8_t {
  idle, probe, allocate, bind, refresh, fwd_register, ready, released, failed,
};

enum class job : std::uint8_t {
  allocate,          // probe -> allocate -> ready
  allocate_channel,  // probe -> allocate -> bind -> ready
  release,           // refresh(0) -> released
  cycle,             // probe -> allocate -> refresh(0) -> probe ... (alloc-rate)
  fwd_register,      // raw: register -> ready
};

struct client {
  int fd = -1;
  phase ph = phase::idle;
  bool busy = false;  // a transaction is outstanding
  std::uint8_t tries = 0;
  std::uint16_t channel = 0x4000;
  std::uint16_t req_len = 0;
  std::int64_t deadline = 0;  // next retransmission
  std::int64_t rto = 0;
  std::int64_t cycle_start = 0;
  stun::transaction_id tid;
  std::string nonce;
  sockaddr_in peer{};
  sockaddr_in relay{};
  std::array<std::byte, 400> req{};
  // traffic
  std::uint32_t inflight = 0;
  std::uint64_t seq = 0;
  std::int64_t next_send = 0;
  std::int64_t last_progress = 0;
};

class generator {
 public:
  explicit generator(options o) : o_(std::move(o)), rng_(std::random_device{}()) {}
  ~generator() {
    for (auto& c : clients_) if (c.fd >= 0) ::close(c.fd);
    for (int fd : echo_fds_) ::close(fd);
    if (epoll_ >= 0) ::close(epoll_);
  }

  int run() {
    epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (o_.mode == "throughput" || o_.mode == "paced") return run_traffic();
    if (o_.mode == "alloc-rate") return run_alloc_rate();
    return run_memory();
  }

 private:
  // ---------------- sockets
  // Opens, connects and registers the socket of client `i`. With
  // --client-ports the (address, port) pairs are taken in order and wrap
  // around (alloc-rate reuses a 5-tuple only after all the others);
  // without, the kernel picks an ephemeral port.
  bool open_client_socket(std::size_t i, bool wrap) {
    const int buf = o_.mode == "memory" || o_.mode == "alloc-rate" ? 0 : (1 << 20);
    const std::size_t width = o_.client_port_low == 0 ? 1 : o_.client_port_high - o_.client_port_low + 1;
    const std::size_t pairs = width * o_.client_ips.size();
    int fd = -1;
    for (std::size_t attempt = 0; fd < 0 && attempt < pairs; ++attempt) {
      sockaddr_in at{};
      at.sin_family = AF_INET;
      if (o_.client_port_low == 0) {
        at.sin_addr = o_.client_ips[next_pair_++ % o_.client_ips.size()];
      } else {
        if (next_pair_ >= pairs) {
          if (!wrap) break;
          next_pair_ = 0;
        }
        at.sin_addr = o_.client_ips[next_pair_ / width];
        at.sin_port = htons(static_cast<std::uint16_t>(o_.client_port_low + next_pair_ % width));
        ++next_pair_;
      }
      fd = open_udp(at, buf);
      if (fd < 0 && (o_.client_port_low == 0 || errno != EADDRINUSE)) {
        std::cerr << "anyturn-load: bind " << to_string(at) << ": " << std::strerror(errno) << "\n";
        return false;
      }
    }
    if (fd < 0) {
      std::cerr << "anyturn-load: out of client addresses at client " << i << "\n";
      return false;
    }
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&o_.server), sizeof o_.server) != 0) {
      std::cerr << "anyturn-load: connect: " << std::strerror(errno) << "\n";
      ::close(fd);
      return false;
    }
    if (o_.gso_gro && !enable_gro(fd)) {
      std::cerr << "anyturn-load: UDP_GRO: " << std::strerror(errno) << "\n";
      ::close(fd);
      return false;
    }
    clients_[i].fd = fd;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = static_cast<std::uint32_t>(i);
    ::epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev);
    return true;
  }

  // alloc-rate: a new 5-tuple for the next cycle, as a new client would have.
  bool rotate_client_socket(client& c) {
    ::close(c.fd);  // also leaves the epoll set
    c.fd = -1;
    return open_client_socket(static_cast<std::size_t>(&c - clients_.data()), true);
  }

  bool open_clients(std::size_t n) {
    const std::uint64_t limit = raise_nofile(n + o_.echo_sockets + 256);
    if (limit < n + o_.echo_sockets + 64) {
      std::cerr << "anyturn-load: open-file limit " << limit << " is too low for " << n
                << " clients (the hard limit can only be raised with CAP_SYS_RESOURCE)\n";
      return false;
    }
    clients_.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      if (!open_client_socket(i, false)) return false;
      // The forwarder answers with one fixed channel number.
      clients_[i].channel = o_.raw ? forwarder::channel : static_cast<std::uint16_t>(0x4000 + (i % 0x1000));
    }
    return true;
  }

  bool open_echo_peers() {
    const std::size_t n = std::min(o_.echo_sockets, clients_.size());
    for (std::size_t e = 0; e < n; ++e) {
      sockaddr_in at{};
      at.sin_family = AF_INET;
      at.sin_addr = o_.peer_ip;
      const int fd = open_udp(at, 8 << 20);
      if (fd >= 0 && o_.gso_gro && !enable_gro(fd)) {
        std::cerr << "anyturn-load: UDP_GRO: " << std::strerror(errno) << "\n";
        ::close(fd);
        return false;
      }
      if (fd < 0) {
        std::cerr << "anyturn-load: echo socket: " << std::strerror(errno) << "\n";
        return false;
      }
      echo_fds_.push_back(fd);
      echo_addrs_.push_back(local_address(fd));
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u32 = echo_tag | static_cast<std::uint32_t>(e);
      ::epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev);
    }
    for (std::size_t i = 0; i < clients_.size(); ++i) clients_[i].peer = echo_addrs_[i % echo_addrs_.size()];
    return true;
  }

  // ---------------- STUN requests
  stun::transaction_id new_tid() {
    stun::transaction_id t;
    const std::uint64_t a = rng_();
    const std::uint64_t b = rng_();
    std::memcpy(t.bytes.data(), &a, 8);
    std::memcpy(t.bytes.data() + 8, &b, 4);
    return t;
  }

  static stun::endpoint to_endpoint(const sockaddr_in& sa) {
    return stun::endpoint::v4(ntohl(sa.sin_addr.s_addr), ntohs(sa.sin_port));
  }

  const auth::md5_key& key_for_realm() {
    if (!key_ || key_realm_ != realm_) {
      key_ = auth::derive_md5_key(o_.user, realm_, o_.password);
      key_realm_ = realm_;
    }
    return *key_;
  }

  // Builds the request for the client's phase into c.req and sends it.
  void send_request(client& c, std::int64_t now) {
    c.tid = new_tid();
    c.tries = 0;
    c.rto = 500 * ms;
    if (c.ph == phase::fwd_register) {
      forwarder::write_control(c.req.data(), {forwarder::op_register, c.peer.sin_addr.s_addr, c.peer.sin_port});
      c.req_len = forwarder::control_size;
    } else {
      stun::method m = stun::method::allocate;
      if (c.ph == phase::bind) m = stun::method::channel_bind;
      if (c.ph == phase::refresh) m = stun::method::refresh;
      stun::message_builder b(stun::mutable_bytes(c.req), static_cast<std::uint16_t>(m),
                              stun::message_class::request, c.tid);
      if (c.ph == phase::probe || c.ph == phase::allocate) {
        b.add_requested_transport(17);
        if (o_.lifetime != 0) b.add_u32(stun::attr::lifetime, o_.lifetime);
      } else if (c.ph == phase::bind) {
        b.add_channel_number(c.channel);
        b.add_address(stun::attr::xor_peer_address, to_endpoint(c.peer), true);
      } else if (c.ph == phase::refresh) {
        b.add_u32(stun::attr::lifetime, 0);
      }
      if (c.ph != phase::probe) {
        b.add_string(stun::attr::username, o_.user);
        b.add_string(stun::attr::realm, realm_);
        b.add_string(stun::attr::nonce, c.nonce);
        b.add_message_integrity(stun::bytes_view(reinterpret_cast<const std::byte*>(key_for_realm().data()),
                                                 key_for_realm().size()));
      }
      auto r = b.finish();
      if (!r) {
        std::cerr << "anyturn-load: cannot build a request: " << r.error.message() << "\n";
        c.ph = phase::failed;
        return;
      }
      c.req_len = static_cast<std::uint16_t>(r->size());
    }
    c.busy = true;
    c.deadline = now + c.rto;
    ::send(c.fd, c.req.data(), c.req_len, MSG_DONTWAIT);
    ++requests_sent_;
  }

  // Counts a failed transaction. alloc-rate clients start a new cycle on a
  // fresh 5-tuple (what is left behind expires on the server); others are
  // out for good.
  void fail(client& c, const char* what, int code) {
    ++failures_;
    ++failure_codes_[std::string(what) + ":" + std::to_string(code)];
    const std::int64_t now = now_ns();
    if (current_job_ == job::cycle && now < cycle_end_ && c.fd >= 0 && rotate_client_socket(c)) {
      c.ph = phase::probe;  // on a fresh 5-tuple
      c.cycle_start = now;
      send_request(c, now);
      return;
    }
    c.busy = false;
    c.ph = phase::failed;
  }

  // A datagram on a client socket while a transaction is outstanding.
  void on_response(client& c, const std::byte* data, std::size_t len, std::int64_t now) {
    if (!c.busy) return;
    if (c.ph == phase::fwd_register) {
      forwarder::control ctl;
      if (!forwarder::read_control(data, len, ctl) || ctl.op != forwarder::op_registered) return;
      c.relay.sin_family = AF_INET;
      c.relay.sin_addr.s_addr = ctl.ip_be;
      c.relay.sin_port = ctl.port_be;
      complete(c, phase::ready, now);
      return;
    }
    if (stun::classify({data, len}) != stun::frame_kind::stun) return;
    auto m = stun::parse_message({data, len});
    if (!m || m->tid() != c.tid) return;
    const bool success = m->cls() == stun::message_class::success_response;
    int code = 0;
    if (!success) {
      if (auto a = m->find(stun::attr::error_code)) {
        if (auto e = stun::decode_error_code(*a)) code = e->code;
      }
    }
    auto learn_nonce = [&] {
      auto n = m->find(stun::attr::nonce);
      auto r = m->find(stun::attr::realm);
      if (!n || !r) return false;
      auto nv = stun::decode_string(*n, 763);
      auto rv = stun::decode_string(*r, 763);
      if (!nv || !rv) return false;
      c.nonce.assign(nv->data(), nv->size());
      if (realm_ != *rv) realm_.assign(rv->data(), rv->size());
      return true;
    };
    // 438: a new nonce, the same request again (RFC 8489 §9.2.5).
    if (!success && code == 438 && c.ph != phase::probe) {
      if (!learn_nonce() || ++stale_retries_ > 1000000) return fail(c, phase_name(c.ph), code);
      send_request(c, now);
      return;
    }
    switch (c.ph) {
      case phase::probe:
        if (!success && code == 401 && learn_nonce()) {
          c.ph = phase::allocate;
          send_request(c, now);
        } else if (success) {
          after_allocate(c, *m, now);  // a server without authentication
        } else {
          fail(c, "probe", code);
        }
        return;
      case phase::allocate:
        if (success) {
          after_allocate(c, *m, now);
        } else {
          fail(c, "allocate", code);
        }
        return;
      case phase::bind:
        if (success) complete(c, phase::ready, now);
        else fail(c, "channel-bind", code);
        return;
      case phase::refresh:
        if (success) {
          if (current_job_ == job::cycle) {
            c.ph = phase::probe;
            if (now < cycle_end_) {
              if (!rotate_client_socket(c)) return fail(c, "socket", 0);
              c.cycle_start = now;
              send_request(c, now);
            } else {
              complete(c, phase::released, now);
            }
          } else {
            complete(c, phase::released, now);
          }
        } else {
          fail(c, "refresh", code);
        }
        return;
      default:
        return;
    }
  }

  void after_allocate(client& c, const stun::message_view& m, std::int64_t now) {
    ++allocations_done_;
    if (auto a = m.find(stun::attr::xor_relayed_address)) {
      if (auto ep = stun::decode_address(*a, m.tid(), true); ep && ep->is_v4()) {
        c.relay.sin_family = AF_INET;
        c.relay.sin_addr.s_addr = htonl(ep->v4_host_order());
        c.relay.sin_port = htons(ep->port);
      }
    }
    if (current_job_ == job::allocate_channel) {
      c.ph = phase::bind;
      send_request(c, now);
    } else if (current_job_ == job::cycle) {
      if (now >= window_start_ && now < window_end_) {
        ++window_allocations_;
        cycle_latency_->add(now - c.cycle_start);
      }
      c.ph = phase::refresh;
      send_request(c, now);
    } else {
      complete(c, phase::ready, now);
    }
  }

  void complete(client& c, phase p, std::int64_t) {
    c.ph = p;
    c.busy = false;
    ++completed_;
  }

  static const char* phase_name(phase p) {
    switch (p) {
      case phase::probe: return "probe";
      case phase::allocate: return "allocate";
      case phase::bind: return "channel-bind";
      case phase::refresh: return "refresh";
      case phase::fwd_register: return "register";
      default: return "other";
    }
  }

  void start_job(client& c, std::int64_t now) {
    switch (current_job_) {
      case job::allocate:
      case job::allocate_channel:
      case job::cycle: c.ph = phase::probe; break;
      case job::release: c.ph = phase::refresh; break;
      case job::fwd_register: c.ph = phase::fwd_register; break;
    }
    c.cycle_start = now;
    send_request(c, now);
  }

  // Retransmits (RFC 8489 §6.2.1: RTO doubling), and gives up after 6 tries.
  void check_timeouts(std::vector<std::uint32_t>& window, std::int64_t now) {
    for (std::uint32_t idx : window) {
      client& c = clients_[idx];
      if (!c.busy || now < c.deadline) continue;
      if (++c.tries > 6) {
        fail(c, phase_name(c.ph), 0);
        continue;
      }
      ++retransmissions_;
      c.rto = std::min<std::int64_t>(c.rto * 2, 4 * sec);
      c.deadline = now + c.rto;
      ::send(c.fd, c.req.data(), c.req_len, MSG_DONTWAIT);
    }
  }

  // Runs `j` for the given clients with at most `window_size` outstanding.
  // Returns how many completed. Bounded by `timeout_s`.
  std::size_t run_job(job j, const std::vector<std::uint32_t>& who, std::size_t window_size, double timeout_s) {
    current_job_ = j;
    completed_ = 0;
    const std::int64_t deadline = now_ns() + static_cast<std::int64_t>(timeout_s * sec);
    std::vector<std::uint32_t> window;
    std::size_t next = 0;
    std::array<epoll_event, 512> events{};
    std::array<std::byte, rx_buffer> buf{};
    std::int64_t last_check = now_ns();
    while (true) {
      std::int64_t now = now_ns();
      window.erase(std::remove_if(window.begin(), window.end(),
                                  [&](std::uint32_t i) { return !clients_[i].busy; }),
                   window.end());
      while (window.size() < window_size && next < who.size()) {
        client& c = clients_[who[next++]];
        if (c.ph == phase::failed) continue;
        start_job(c, now);
        if (c.busy) window.push_back(static_cast<std::uint32_t>(&c - clients_.data()));
      }
      if (window.empty() && next >= who.size()) break;
      if (now >= deadline) {
        std::cerr << "anyturn-load: set-up timed out with " << window.size() << " transactions outstanding\n";
        for (auto i : window) fail(clients_[i], "timeout", 0);
        break;
      }
      const int n = ::epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), 20);
      now = now_ns();
      for (int e = 0; e < n; ++e) {
        const std::uint32_t tag = events[static_cast<std::size_t>(e)].data.u32;
        if ((tag & echo_tag) != 0) {
          drain_echo(tag & ~echo_tag);
          continue;
        }
        client& c = clients_[tag];
        for (int k = 0; k < 16; ++k) {
          const ssize_t got = ::recv(c.fd, buf.data(), buf.size(), MSG_DONTWAIT);
          if (got <= 0) break;
          on_response(c, buf.data(), static_cast<std::size_t>(got), now);
        }
      }
      if (now - last_check > 10 * ms) {
        check_timeouts(window, now);
        last_check = now;
      }
    }
    return completed_;
  }

  // ---------------- echo peer
  void drain_echo(std::uint32_t e) {
    const int fd = echo_fds_[e];
    const std::size_t slot = rx_slot();
    for (int round = 0; round < 4; ++round) {
      std::array<mmsghdr, rx_batch> msgs{};
      std::array<iovec, rx_batch> iovs{};
      std::array<sockaddr_in, rx_batch> from{};
      std::array<segment_control, rx_batch> control{};
      for (std::size_t i = 0; i < rx_batch; ++i) {
        iovs[i] = {echo_buf_.data() + i * slot, slot};
        msgs[i].msg_hdr.msg_iov = &iovs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &from[i];
        msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_in);
        if (o_.gso_gro) {
          msgs[i].msg_hdr.msg_control = control[i].bytes;
          msgs[i].msg_hdr.msg_controllen = sizeof control[i].bytes;
        }
      }
      const int n = ::recvmmsg(fd, msgs.data(), rx_batch, MSG_DONTWAIT, nullptr);
      if (n <= 0) return;
      // A coalesced receive goes back as one GSO message of the same segments.
      std::array<std::uint64_t, rx_batch> count{};
      for (int i = 0; i < n; ++i) {
        auto& m = msgs[static_cast<std::size_t>(i)];
        const std::size_t len = m.msg_len;
        iovs[static_cast<std::size_t>(i)].iov_len = len;
        const std::size_t seg = o_.gso_gro ? gro_size(m.msg_hdr) : 0;
        count[static_cast<std::size_t>(i)] = seg == 0 || seg >= len ? 1 : (len + seg - 1) / seg;
        if (count[static_cast<std::size_t>(i)] > 1) {
          set_gso(m.msg_hdr, control[static_cast<std::size_t>(i)], static_cast<std::uint16_t>(seg));
        } else {
          m.msg_hdr.msg_control = nullptr;
          m.msg_hdr.msg_controllen = 0;
        }
      }
      int done = 0;
      for (int attempt = 0; done < n && attempt < 4; ++attempt) {
        const int s = ::sendmmsg(fd, msgs.data() + done, static_cast<unsigned>(n - done), MSG_DONTWAIT);
        if (s < 0) {
          if (errno == EAGAIN || errno == EWOULDBLOCK) break;
          echo_dropped_ += count[static_cast<std::size_t>(done)];
          ++done;  // skip one that the kernel refuses
          continue;
        }
        for (int k = done; k < done + s; ++k) echoed_ += count[static_cast<std::size_t>(k)];
        done += s;
      }
      for (int k = done; k < n; ++k) echo_dropped_ += count[static_cast<std::size_t>(k)];
      if (n < static_cast<int>(rx_batch)) return;
    }
  }

  // Bytes per receive buffer: a whole coalesced receive with --gso-gro.
  [[nodiscard]] std::size_t rx_slot() const { return o_.gso_gro ? gro_buffer : rx_buffer; }

  // ---------------- traffic
  // Sends `count` ChannelData packets; the timestamp is read here so a long
  // loop over clients does not age it.
  void send_packets(std::uint32_t idx, std::size_t count) {
    client& c = clients_[idx];
    const std::int64_t now = now_ns();
    count = std::min(count, tx_msgs_.size());
    // With GSO the packets lie back to back and leave as one message.
    const std::size_t stride = o_.gso_gro ? o_.size + 4 : max_payload + 4;
    for (std::size_t k = 0; k < count; ++k) {
      std::byte* p = tx_buf_.data() + k * stride;
      const auto len = static_cast<std::uint16_t>(o_.size);
      p[0] = std::byte{static_cast<std::uint8_t>(c.channel >> 8)};
      p[1] = std::byte{static_cast<std::uint8_t>(c.channel)};
      p[2] = std::byte{static_cast<std::uint8_t>(len >> 8)};
      p[3] = std::byte{static_cast<std::uint8_t>(len)};
      const std::uint64_t seq = c.seq++;
      std::memcpy(p + 4, &payload_magic, 4);
      std::memcpy(p + 8, &idx, 4);
      std::memcpy(p + 12, &seq, 8);
      std::memcpy(p + 20, &now, 8);
      tx_iov_[k] = {p, o_.size + 4};
      tx_msgs_[k].msg_hdr = {};
      tx_msgs_[k].msg_hdr.msg_iov = &tx_iov_[k];
      tx_msgs_[k].msg_hdr.msg_iovlen = 1;
    }
    std::size_t done = 0;
    if (o_.gso_gro && count > 1) {
      iovec all{tx_buf_.data(), count * stride};
      msghdr m{};
      m.msg_iov = &all;
      m.msg_iovlen = 1;
      segment_control control;
      set_gso(m, control, static_cast<std::uint16_t>(stride));
      ssize_t rc;
      do {
        rc = ::sendmsg(c.fd, &m, MSG_DONTWAIT);
      } while (rc < 0 && errno == EINTR);
      if (rc > 0) {
        done = count;
      } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
        ++send_errors_;
      }
    }
    for (int attempt = 0; done < count && attempt < 4; ++attempt) {
      const int s = ::sendmmsg(c.fd, tx_msgs_.data() + done, static_cast<unsigned>(count - done), MSG_DONTWAIT);
      if (s < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        ++done;
        ++send_errors_;
        continue;
      }
      done += static_cast<std::size_t>(s);
    }
    // What the kernel refused is not in flight.
    const std::size_t sent = done;
    c.seq -= count - sent;
    c.inflight += static_cast<std::uint32_t>(sent);
    if (now >= window_start_ && now < window_end_) window_sent_ += sent;
    total_sent_ += sent;
    send_refused_ += count - sent;
  }

  // One datagram back at client `idx`: true when it is one of its echoes.
  bool on_echo(const client& c, std::uint32_t idx, const std::byte* p, std::size_t len, std::int64_t now) {
    const auto first = static_cast<std::uint8_t>(p[0]);
    if (first < 0x40 || first > 0x7F) {
      ++stray_;  // a late STUN response, or something else
      return false;
    }
    std::uint32_t magic = 0, who = 0;
    std::int64_t sent_at = 0;
    if (len < 4 + min_payload) {
      ++corrupt_;
      return false;
    }
    std::memcpy(&magic, p + 4, 4);
    std::memcpy(&who, p + 8, 4);
    std::memcpy(&sent_at, p + 20, 8);
    const auto channel = static_cast<std::uint16_t>((std::to_integer<unsigned>(p[0]) << 8) |
                                                    std::to_integer<unsigned>(p[1]));
    if (magic != payload_magic || who != idx || len != o_.size + 4 || channel != c.channel) {
      ++corrupt_;
      return false;
    }
    ++total_received_;
    if (now >= window_start_ && now < window_end_) ++window_delivered_;
    if (sent_at >= window_start_ && sent_at < window_end_) {
      ++window_returned_;
      rtt_->add(now - sent_at);
    }
    return true;
  }

  void on_client_traffic(std::uint32_t idx, std::int64_t now, bool closed_loop) {
    client& c = clients_[idx];
    std::size_t returned = 0;
    const std::size_t slot = rx_slot();
    for (int round = 0; round < 4; ++round) {
      std::array<mmsghdr, rx_batch> msgs{};
      std::array<iovec, rx_batch> iovs{};
      std::array<segment_control, rx_batch> control{};
      for (std::size_t i = 0; i < rx_batch; ++i) {
        iovs[i] = {rx_buf_.data() + i * slot, slot};
        msgs[i].msg_hdr.msg_iov = &iovs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        if (o_.gso_gro) {
          msgs[i].msg_hdr.msg_control = control[i].bytes;
          msgs[i].msg_hdr.msg_controllen = sizeof control[i].bytes;
        }
      }
      const int n = ::recvmmsg(c.fd, msgs.data(), rx_batch, MSG_DONTWAIT, nullptr);
      if (n <= 0) break;
      now = now_ns();
      for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i) {
        const std::size_t seg = o_.gso_gro ? gro_size(msgs[i].msg_hdr) : 0;
        for_each_segment(rx_buf_.data() + i * slot, msgs[i].msg_len, seg,
                         [&](const std::byte* p, std::size_t len) {
                           if (on_echo(c, idx, p, len, now)) ++returned;
                         });
      }
      if (static_cast<std::size_t>(n) < rx_batch) break;
    }
    if (returned == 0) return;
    c.inflight = c.inflight > returned ? c.inflight - static_cast<std::uint32_t>(returned) : 0;
    c.last_progress = now;
    if (closed_loop && sending_ && idx < o_.active && c.inflight < o_.inflight)
      send_packets(idx, o_.inflight - c.inflight);
  }

  int run_traffic() {
    const bool closed_loop = o_.mode == "throughput";
    {
      netns_scope ns(o_.client_netns);
      if (!ns.ok()) {
        std::cerr << "anyturn-load: cannot enter network namespace " << o_.client_netns << "\n";
        return 1;
      }
      if (!open_clients(o_.clients)) return 1;
    }
    {
      netns_scope ns(o_.peer_netns);
      if (!ns.ok()) {
        std::cerr << "anyturn-load: cannot enter network namespace " << o_.peer_netns << "\n";
        return 1;
      }
      if (!open_echo_peers()) return 1;
    }
    tx_buf_.resize(tx_msgs_.size() * (max_payload + 4));
    rx_buf_.resize(rx_batch * rx_slot());
    echo_buf_.resize(rx_batch * rx_slot());

    std::vector<std::uint32_t> all(o_.clients);
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<std::uint32_t>(i);
    const std::int64_t setup_start = now_ns();
    const std::size_t ready = run_job(o_.raw ? job::fwd_register : job::allocate_channel, all,
                                      o_.setup_window, o_.setup_timeout);
    const double setup_s = static_cast<double>(now_ns() - setup_start) / sec;
    if (ready != o_.clients) {
      report_failures();
      std::cerr << "anyturn-load: only " << ready << " of " << o_.clients << " clients are ready\n";
      return 1;
    }

    // Room for every RTT sample the window can plausibly produce.
    rtt_.emplace(closed_loop ? std::size_t{1} << 24
                             : static_cast<std::size_t>(o_.rate * static_cast<double>(o_.active) * (o_.duration + 1) + 1024));
    const std::int64_t t0 = now_ns();
    window_start_ = t0 + static_cast<std::int64_t>(o_.warmup * sec);
    window_end_ = window_start_ + static_cast<std::int64_t>(o_.duration * sec);
    const std::int64_t drain_end = window_end_ + static_cast<std::int64_t>(o_.drain * sec);
    const std::int64_t period = o_.rate > 0 ? static_cast<std::int64_t>(1e9 / o_.rate) : sec;
    sending_ = true;
    for (std::uint32_t i = 0; i < o_.active; ++i) {
      clients_[i].last_progress = t0;
      if (closed_loop) {
        send_packets(i, o_.inflight);
      } else {
        clients_[i].next_send = t0 + period * i / static_cast<std::int64_t>(o_.active);
      }
    }

    server_probe probe{o_.server_pid};
    bool window_open = false;
    double server_cpu_ns = 0, server_pct = 0, gen_pct = 0;
    std::array<epoll_event, 512> events{};
    std::int64_t last_stall_check = t0;
    std::int64_t next_due = t0;
    while (true) {
      std::int64_t now = now_ns();
      if (!window_open && now >= window_start_) {
        window_open = true;
        probe.start();
      }
      if (sending_ && now >= window_end_) {
        sending_ = false;
        probe.finish(server_cpu_ns, server_pct, gen_pct);
      }
      if (!sending_) {
        bool outstanding = false;
        for (std::size_t i = 0; i < o_.active && !outstanding; ++i) outstanding = clients_[i].inflight > 0;
        if (!outstanding || now >= drain_end) break;
      }
      if (sending_ && !closed_loop && now >= next_due) {
        next_due = now + sec;
        for (std::uint32_t i = 0; i < o_.active; ++i) {
          client& c = clients_[i];
          std::size_t due = 0;
          while (c.next_send <= now && due < 16) {
            c.next_send += period;
            ++due;
          }
          if (c.next_send <= now) {  // hopelessly behind: skip, do not burst
            late_skips_ += static_cast<std::uint64_t>((now - c.next_send) / period + 1);
            c.next_send += ((now - c.next_send) / period + 1) * period;
          }
          if (due > 0) send_packets(i, due);
          next_due = std::min(next_due, c.next_send);
        }
      }
      if (sending_ && closed_loop && now - last_stall_check > 50 * ms) {
        last_stall_check = now;
        const auto stall = static_cast<std::int64_t>(o_.stall * sec);
        for (std::uint32_t i = 0; i < o_.active; ++i) {
          client& c = clients_[i];
          if (c.inflight > 0 && now - c.last_progress > stall) {
            ++stalls_;
            c.inflight = 0;
            c.last_progress = now;
            send_packets(i, o_.inflight);
          }
        }
      }
      // Sleep until the next paced send (ns resolution), at most 10 ms.
      std::int64_t wait_ns = 10 * ms;
      if (sending_ && !closed_loop) wait_ns = std::clamp<std::int64_t>(next_due - now_ns(), 0, 10 * ms);
      timespec ts{wait_ns / sec, wait_ns % sec};
      int n = ::epoll_pwait2(epoll_, events.data(), static_cast<int>(events.size()), &ts, nullptr);
      if (n < 0 && errno == ENOSYS) {
        n = ::epoll_wait(epoll_, events.data(), static_cast<int>(events.size()),
                         static_cast<int>((wait_ns + ms - 1) / ms));
      }
      now = now_ns();
      for (int e = 0; e < n; ++e) {
        const std::uint32_t tag = events[static_cast<std::size_t>(e)].data.u32;
        if ((tag & echo_tag) != 0) drain_echo(tag & ~echo_tag);
        else on_client_traffic(tag, now, closed_loop);
      }
    }

    const double window_s = static_cast<double>(window_end_ - window_start_) / sec;
    const double pps = static_cast<double>(window_delivered_) / window_s;
    const double loss = window_sent_ > 0 ? 1.0 - static_cast<double>(window_returned_) / static_cast<double>(window_sent_) : std::nan("");
    // Each echoed packet crosses the relay twice (client->peer, peer->client).
    const double relayed = 2.0 * static_cast<double>(window_delivered_);
    const double ns_per_pkt = relayed > 0 ? server_cpu_ns / relayed : std::nan("");
    const double p50 = rtt_->quantile_us(0.50);
    const double p99 = rtt_->quantile_us(0.99);

    json_line out;
    out.add("mode", o_.mode).add("label", o_.label).add("target", o_.raw ? "forwarder" : "turn");
    out.add_int("clients", static_cast<std::int64_t>(o_.clients)).add_int("active", static_cast<std::int64_t>(o_.active));
    out.add_int("size", static_cast<std::int64_t>(o_.size));
    if (closed_loop) out.add_int("inflight", static_cast<std::int64_t>(o_.inflight));
    else out.add("rate_per_client", o_.rate);
    out.add("duration_s", window_s).add("setup_s", setup_s);
    out.add_int("sent", static_cast<std::int64_t>(window_sent_)).add_int("delivered", static_cast<std::int64_t>(window_delivered_));
    out.add("pps", pps).add("loss", loss).add("rtt_p50_us", p50).add("rtt_p99_us", p99);
    out.add("server_cpu_pct", server_pct).add("server_cpu_ns_per_pkt", ns_per_pkt).add("gen_cpu_pct", gen_pct);
    out.add("others_cpu_pct", probe.others_pct);
    // Whole-machine CPU (softirq included) per relayed packet, and the same
    // without this generator's own process time.
    out.add("machine_cpu_pct", 100.0 * probe.machine_work_ns / (window_s * sec));
    out.add("machine_cpu_ns_per_pkt", relayed > 0 ? probe.machine_work_ns / relayed : std::nan(""));
    out.add("machine_minus_gen_ns_per_pkt",
            relayed > 0 ? (probe.machine_work_ns - gen_pct / 100.0 * window_s * sec) / relayed : std::nan(""));
    // Robust against other people's jobs on the machine: the server process
    // plus every CPU's irq and softirq time (the kernel's packet work no
    // process is charged for: both sides' NAPI/GRO, the XDP programs), with
    // and without this generator's own process time.
    const double server_ns = std::isnan(server_cpu_ns) ? 0.0 : server_cpu_ns;
    const double gen_ns = gen_pct / 100.0 * window_s * sec;
    out.add("softirq_ns_per_pkt", relayed > 0 ? probe.irq_ns / relayed : std::nan(""));
    out.add("relay_cpu_ns_per_pkt", relayed > 0 ? (server_ns + probe.irq_ns) / relayed : std::nan(""));
    out.add("ours_cpu_ns_per_pkt", relayed > 0 ? (server_ns + gen_ns + probe.irq_ns) / relayed : std::nan(""));
    out.add("gso_gro", o_.gso_gro ? 1.0 : 0.0);
    for (std::size_t i = 0; i < probe.cpu_busy_pct.size(); ++i) out.add("cpu" + std::to_string(i) + "_pct", probe.cpu_busy_pct[i]);
    if (o_.server_pid > 0) {
      if (auto rss = process_rss_kib(o_.server_pid)) out.add_int("server_rss_kib", *rss);
    }
    out.add_int("stalls", static_cast<std::int64_t>(stalls_)).add_int("send_refused", static_cast<std::int64_t>(send_refused_));
    out.add_int("late_skips", static_cast<std::int64_t>(late_skips_)).add_int("corrupt", static_cast<std::int64_t>(corrupt_));
    out.add_int("echo_dropped", static_cast<std::int64_t>(echo_dropped_));
    std::cout << out.str() << std::endl;

    std::fprintf(stderr,
                 "%s %s: %zu clients (%zu active), %zu B, %s: %.0f pkt/s delivered, loss %.3f%%, "
                 "RTT p50 %.1f us p99 %.1f us, server CPU %.1f%% (%.0f ns/relayed pkt), generator CPU %.1f%%, "
                 "others %.0f%%, set-up %.2f s\n",
                 o_.label.empty() ? "anyturn-load" : o_.label.c_str(), o_.mode.c_str(), o_.clients, o_.active,
                 o_.size, closed_loop ? ("closed loop, " + std::to_string(o_.inflight) + " in flight").c_str()
                                      : ("paced " + std::to_string(static_cast<int>(o_.rate)) + " pkt/s each").c_str(),
                 pps, 100.0 * loss, p50, p99, server_pct, ns_per_pkt, gen_pct, probe.others_pct, setup_s);
    return 0;
  }

  // ---------------- alloc-rate
  int run_alloc_rate() {
    if (!open_clients(o_.concurrency)) return 1;
    cycle_latency_.emplace(std::size_t{1} << 22);
    std::vector<std::uint32_t> all(o_.concurrency);
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<std::uint32_t>(i);
    const std::int64_t t0 = now_ns();
    window_start_ = t0 + static_cast<std::int64_t>(o_.warmup * sec);
    window_end_ = window_start_ + static_cast<std::int64_t>(o_.duration * sec);
    cycle_end_ = window_end_;
    // The probe runs the whole job; sample CPU at the window edges from a
    // helper thread so the loop stays simple.
    server_probe probe{o_.server_pid};
    double server_cpu_ns = 0, server_pct = 0, gen_pct = 0;
    std::thread sampler([&] {
      std::this_thread::sleep_for(std::chrono::nanoseconds(window_start_ - now_ns()));
      probe.start();
      std::this_thread::sleep_for(std::chrono::nanoseconds(window_end_ - now_ns()));
      probe.finish(server_cpu_ns, server_pct, gen_pct);
    });
    run_job(job::cycle, all, o_.concurrency, o_.warmup + o_.duration + 30);
    sampler.join();
    const double window_s = static_cast<double>(window_end_ - window_start_) / sec;
    const double rate = static_cast<double>(window_allocations_) / window_s;
    const double p50 = cycle_latency_->quantile_us(0.5);
    const double p99 = cycle_latency_->quantile_us(0.99);
    json_line out;
    out.add("mode", o_.mode).add("label", o_.label);
    out.add_int("concurrency", static_cast<std::int64_t>(o_.concurrency)).add("duration_s", window_s);
    out.add_int("allocations", static_cast<std::int64_t>(window_allocations_)).add("allocs_per_s", rate);
    out.add("alloc_p50_us", p50).add("alloc_p99_us", p99);
    out.add_int("failures", static_cast<std::int64_t>(failures_)).add_int("retransmissions", static_cast<std::int64_t>(retransmissions_));
    out.add("server_cpu_pct", server_pct).add("gen_cpu_pct", gen_pct).add("others_cpu_pct", probe.others_pct);
    out.add("server_cpu_us_per_alloc", window_allocations_ > 0 ? server_cpu_ns / 1000.0 / static_cast<double>(window_allocations_) : std::nan(""));
    std::cout << out.str() << std::endl;
    report_failures();
    std::fprintf(stderr,
                 "%s alloc-rate: %.0f allocations/s (%zu sockets; 401 + Allocate + Refresh(0) per cycle), "
                 "cycle-to-allocation p50 %.0f us p99 %.0f us, %zu failures, %zu retransmissions, server CPU %.1f%%, "
                 "generator CPU %.1f%%, others %.0f%%\n",
                 o_.label.empty() ? "anyturn-load" : o_.label.c_str(), rate, o_.concurrency, p50, p99, failures_,
                 retransmissions_, server_pct, gen_pct, probe.others_pct);
    return window_allocations_ > 0 ? 0 : 1;
  }

  // ---------------- memory
  std::int64_t settle_and_read_rss() {
    std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int>(o_.settle * 1000)));
    return process_rss_kib(o_.server_pid).value_or(-1);
  }

  int run_memory() {
    if (o_.server_pid <= 0) usage("memory mode needs --server-pid");
    const std::size_t total = o_.steps.back();
    if (!open_clients(total)) return 1;
    json_line out;
    out.add("mode", o_.mode).add("label", o_.label);
    const std::int64_t base = settle_and_read_rss();
    out.add_int("rss_kib_0", base);
    std::fprintf(stderr, "%s memory: RSS %lld KiB with 0 allocations\n", o_.label.c_str(), static_cast<long long>(base));
    std::size_t have = 0;
    std::int64_t top_rss = base;
    double alloc_s = 0;
    for (std::size_t step : o_.steps) {
      std::vector<std::uint32_t> who;
      for (std::size_t i = have; i < step; ++i) who.push_back(static_cast<std::uint32_t>(i));
      const std::int64_t t = now_ns();
      const std::size_t done = run_job(job::allocate, who, o_.setup_window, o_.setup_timeout);
      alloc_s += static_cast<double>(now_ns() - t) / sec;
      have += done;
      top_rss = settle_and_read_rss();
      out.add_int("rss_kib_" + std::to_string(step), top_rss);
      out.add_int("allocated_" + std::to_string(step), static_cast<std::int64_t>(have));
      std::fprintf(stderr, "%s memory: RSS %lld KiB with %zu allocations (asked %zu)\n", o_.label.c_str(),
                   static_cast<long long>(top_rss), have, step);
      if (done != who.size()) {
        report_failures();
        break;
      }
    }
    auto free_all = [&] {
      std::vector<std::uint32_t> allocated;
      for (std::size_t i = 0; i < clients_.size(); ++i)
        if (clients_[i].ph == phase::ready) allocated.push_back(static_cast<std::uint32_t>(i));
      return run_job(job::release, allocated, o_.setup_window, o_.setup_timeout);
    };
    const std::size_t freed = free_all();
    const std::int64_t after = settle_and_read_rss();
    const double per_alloc = have > 0 ? static_cast<double>(top_rss - base) * 1024.0 / static_cast<double>(have) : std::nan("");
    out.add_int("allocated", static_cast<std::int64_t>(have)).add_int("freed", static_cast<std::int64_t>(freed));
    out.add_int("rss_kib_after_free", after).add("bytes_per_allocation", per_alloc);
    out.add("retained_kib", static_cast<double>(after - base));
    out.add("allocs_per_s_while_filling", alloc_s > 0 ? static_cast<double>(have) / alloc_s : std::nan(""));
    std::fprintf(stderr,
                 "%s memory: %.0f bytes per allocation over %zu allocations; after freeing %zu: RSS %lld KiB "
                 "(baseline %lld KiB, %+lld KiB)\n",
                 o_.label.c_str(), per_alloc, have, freed, static_cast<long long>(after), static_cast<long long>(base),
                 static_cast<long long>(after - base));

    // Further rounds fill to the top again from fresh 5-tuples (a server may
    // refuse a just-freed one for a while) and free again: memory that
    // keeps growing is a leak, memory that stays flat is retained for reuse.
    for (std::size_t round = 2; round <= o_.rounds && have > 0; ++round) {
      std::vector<std::uint32_t> who;
      for (std::size_t i = 0; i < have; ++i) {
        client& c = clients_[i];
        c.ph = phase::idle;
        c.busy = false;
        if (!rotate_client_socket(c)) break;
        who.push_back(static_cast<std::uint32_t>(i));
      }
      const std::size_t again = run_job(job::allocate, who, o_.setup_window, o_.setup_timeout);
      const std::int64_t top = settle_and_read_rss();
      const std::size_t freed_again = free_all();
      const std::int64_t after_again = settle_and_read_rss();
      const std::string r = std::to_string(round);
      out.add_int("round" + r + "_allocated", static_cast<std::int64_t>(again));
      out.add_int("round" + r + "_rss_kib_top", top).add_int("round" + r + "_rss_kib_after_free", after_again);
      std::fprintf(stderr, "%s memory: round %zu: %zu allocations, RSS %lld KiB; after freeing %zu: %lld KiB\n",
                   o_.label.c_str(), round, again, static_cast<long long>(top), freed_again,
                   static_cast<long long>(after_again));
    }
    out.add_int("failures", static_cast<std::int64_t>(failures_));
    std::cout << out.str() << std::endl;
    return have > 0 ? 0 : 1;
  }

  void report_failures() const {
    for (const auto& [what, n] : failure_codes_) std::cerr << "anyturn-load: failed " << what << " x" << n << "\n";
  }

  options o_;
  std::mt19937_64 rng_;
  int epoll_ = -1;
  std::vector<client> clients_;
  std::vector<int> echo_fds_;
  std::vector<sockaddr_in> echo_addrs_;
  std::string realm_;
  std::optional<auth::md5_key> key_;
  std::string key_realm_;
  job current_job_ = job::allocate;
  std::size_t completed_ = 0;
  std::size_t failures_ = 0;
  std::size_t retransmissions_ = 0;
  std::size_t requests_sent_ = 0;
  std::size_t stale_retries_ = 0;
  std::size_t allocations_done_ = 0;
  std::map<std::string, std::size_t> failure_codes_;
  std::size_t next_pair_ = 0;  // next client (address, port) to bind

  // traffic state
  std::vector<std::byte> tx_buf_, rx_buf_, echo_buf_;
  std::array<mmsghdr, 64> tx_msgs_{};
  std::array<iovec, 64> tx_iov_{};
  bool sending_ = false;
  std::int64_t window_start_ = 0, window_end_ = 0, cycle_end_ = 0;
  std::uint64_t window_sent_ = 0, window_delivered_ = 0, window_returned_ = 0;
  std::uint64_t total_sent_ = 0, total_received_ = 0;
  std::uint64_t stalls_ = 0, send_refused_ = 0, send_errors_ = 0, late_skips_ = 0;
  std::uint64_t stray_ = 0, corrupt_ = 0, echoed_ = 0, echo_dropped_ = 0;
  std::optional<samples> rtt_;
  std::optional<samples> cycle_latency_;
  std::uint64_t window_allocations_ = 0;
};

}  // namespace
}  // namespace anyturn::bench

int main(int argc, char** argv) {
  std::ios::sync_with_stdio(false);
  anyturn::bench::options o = anyturn::bench::parse_options(argc, argv);
  anyturn::bench::generator g(std::move(o));
  return g.run();
}
