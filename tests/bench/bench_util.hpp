// Small helpers shared by the benchmark tools (anyturn-load and
// anyturn-bare-forwarder): a monotonic clock, IPv4 loopback sockets, the
// open-file limit, and /proc sampling of another process.
//
// Benchmark tools only: they speak IPv4 on loopback, so addresses are
// plain sockaddr_in and errors go to stderr.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <sched.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace anyturn::bench {

inline std::int64_t now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// "a.b.c.d:port" or "a.b.c.d" (port 0) -> sockaddr_in.
inline std::optional<sockaddr_in> parse_v4(std::string_view text, bool port_optional = false) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  std::string host(text);
  std::uint16_t port = 0;
  if (const auto colon = text.rfind(':'); colon != std::string_view::npos) {
    host = std::string(text.substr(0, colon));
    const std::string p(text.substr(colon + 1));
    char* end = nullptr;
    const long v = std::strtol(p.c_str(), &end, 10);
    if (p.empty() || *end != '\0' || v < 0 || v > 65535) return std::nullopt;
    port = static_cast<std::uint16_t>(v);
  } else if (!port_optional) {
    return std::nullopt;
  }
  if (::inet_pton(AF_INET, host.c_str(), &sa.sin_addr) != 1) return std::nullopt;
  sa.sin_port = htons(port);
  return sa;
}

inline std::string to_string(const sockaddr_in& sa) {
  char buf[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &sa.sin_addr, buf, sizeof buf);
  return std::string(buf) + ":" + std::to_string(ntohs(sa.sin_port));
}

// "LOW-HIGH" -> pair; false when malformed.
inline bool parse_range(std::string_view text, std::uint32_t& low, std::uint32_t& high) {
  const auto dash = text.find('-');
  if (dash == std::string_view::npos) return false;
  const std::string a(text.substr(0, dash));
  const std::string b(text.substr(dash + 1));
  char* e1 = nullptr;
  char* e2 = nullptr;
  const unsigned long lo = std::strtoul(a.c_str(), &e1, 10);
  const unsigned long hi = std::strtoul(b.c_str(), &e2, 10);
  if (a.empty() || b.empty() || *e1 != '\0' || *e2 != '\0' || lo > hi) return false;
  low = static_cast<std::uint32_t>(lo);
  high = static_cast<std::uint32_t>(hi);
  return true;
}

// A non-blocking UDP socket bound to `at`; -1 with errno on failure.
inline int open_udp(const sockaddr_in& at, int buffer_bytes = 0, bool reuseport = false) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (reuseport) {
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  }
  if (buffer_bytes > 0) {
    // FORCE variants need CAP_NET_ADMIN; fall back to the capped ones.
    if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buffer_bytes, sizeof buffer_bytes) != 0)
      ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer_bytes, sizeof buffer_bytes);
    if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &buffer_bytes, sizeof buffer_bytes) != 0)
      ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer_bytes, sizeof buffer_bytes);
  }
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&at), sizeof at) != 0) {
    const int saved = errno;
    ::close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

inline sockaddr_in local_address(int fd) {
  sockaddr_in sa{};
  socklen_t len = sizeof sa;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  return sa;
}

// Raises RLIMIT_NOFILE to at least `needed` (root may lift the hard limit
// too, up to fs.nr_open). Returns the resulting soft limit.
inline std::uint64_t raise_nofile(std::uint64_t needed) {
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur >= needed) return rl.rlim_cur;
  rlimit want = rl;
  want.rlim_cur = needed;
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < needed) want.rlim_max = needed;
  if (::setrlimit(RLIMIT_NOFILE, &want) != 0) {
    // Not allowed to lift the hard limit: take what the hard limit gives.
    want = rl;
    want.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &want);
  }
  ::getrlimit(RLIMIT_NOFILE, &rl);
  return rl.rlim_cur;
}

// CPU time of a whole process (all threads), in nanoseconds. Sums
// /proc/PID/task/*/schedstat (ns resolution); falls back to utime+stime
// from /proc/PID/stat (clock-tick resolution). nullopt if the process is gone.
inline std::optional<std::int64_t> process_cpu_ns(int pid) {
  const std::string base = "/proc/" + std::to_string(pid);
  if (DIR* d = ::opendir((base + "/task").c_str())) {
    std::int64_t total = 0;
    bool any = false;
    while (const dirent* e = ::readdir(d)) {
      if (e->d_name[0] == '.') continue;
      std::ifstream f(base + "/task/" + e->d_name + "/schedstat");
      long long run = 0;
      if (f >> run) {
        total += run;
        any = true;
      }
    }
    ::closedir(d);
    if (any) return total;
  }
  std::ifstream f(base + "/stat");
  std::string line;
  if (!std::getline(f, line)) return std::nullopt;
  const auto close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  // Fields after the comm: state(3) ... utime(14) stime(15).
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
    if (i == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
  }
  const long hz = ::sysconf(_SC_CLK_TCK);
  return static_cast<std::int64_t>((utime + stime) * (1'000'000'000ULL / static_cast<unsigned long long>(hz)));
}

// VmRSS of a process in KiB; nullopt if the process is gone.
inline std::optional<std::int64_t> process_rss_kib(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoll(line.c_str() + 6, nullptr, 10);
  }
  return std::nullopt;
}

// Busy CPU time of the whole machine (all CPUs, everything but idle and
// iowait) from /proc/stat, in ns.
inline std::int64_t machine_busy_ns() {
  std::ifstream f("/proc/stat");
  std::string cpu;
  unsigned long long v[8] = {};
  f >> cpu;
  for (auto& x : v) f >> x;
  // user nice system idle iowait irq softirq steal
  const unsigned long long busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
  const long hz = ::sysconf(_SC_CLK_TCK);
  return static_cast<std::int64_t>(busy * (1'000'000'000ULL / static_cast<unsigned long long>(hz)));
}

// CPU time of this process (all threads), ns.
inline std::int64_t self_cpu_ns() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  auto ns = [](const timeval& tv) { return std::int64_t{tv.tv_sec} * 1'000'000'000 + std::int64_t{tv.tv_usec} * 1000; };
  return ns(ru.ru_utime) + ns(ru.ru_stime);
}

// Busy CPU time of the whole machine doing work at normal priority (user,
// system, irq, softirq; not nice, idle, iowait or steal) from /proc/stat,
// in ns. Niced work is left out: on this shared machine that is other
// people's builds (nice -n 10), never the benchmark's processes.
inline std::int64_t machine_work_ns() {
  std::ifstream f("/proc/stat");
  std::string cpu;
  unsigned long long v[8] = {};
  f >> cpu;
  for (auto& x : v) f >> x;
  const unsigned long long work = v[0] + v[2] + v[5] + v[6];
  const long hz = ::sysconf(_SC_CLK_TCK);
  return static_cast<std::int64_t>(work * (1'000'000'000ULL / static_cast<unsigned long long>(hz)));
}

// Interrupt and softirq time of the whole machine (all CPUs) from
// /proc/stat, in ns: the kernel's packet work that no process is charged for
// (NAPI, GRO, XDP programs on veth, ...).
inline std::int64_t machine_irq_ns() {
  std::ifstream f("/proc/stat");
  std::string cpu;
  unsigned long long v[8] = {};
  f >> cpu;
  for (auto& x : v) f >> x;
  const long hz = ::sysconf(_SC_CLK_TCK);
  return static_cast<std::int64_t>((v[5] + v[6]) * (1'000'000'000ULL / static_cast<unsigned long long>(hz)));
}

// Work time (as machine_work_ns) of each CPU, in ns, from /proc/stat.
inline std::vector<std::int64_t> cpu_work_ns() {
  std::ifstream f("/proc/stat");
  std::vector<std::int64_t> out;
  std::string line;
  const long hz = ::sysconf(_SC_CLK_TCK);
  while (std::getline(f, line)) {
    if (line.rfind("cpu", 0) != 0) break;
    if (line.size() < 4 || line[3] == ' ') continue;  // the total
    std::istringstream in(line);
    std::string cpu;
    unsigned long long v[8] = {};
    in >> cpu;
    for (auto& x : v) in >> x;
    out.push_back(static_cast<std::int64_t>((v[0] + v[2] + v[5] + v[6]) *
                                            (1'000'000'000ULL / static_cast<unsigned long long>(hz))));
  }
  return out;
}

// ---- UDP GSO / GRO (Linux >= 5.0)

inline constexpr int sol_udp = 17;        // SOL_UDP
inline constexpr int udp_segment = 103;   // UDP_SEGMENT
inline constexpr int udp_gro = 104;       // UDP_GRO
inline constexpr std::size_t max_gso_segments = 64;  // UDP_MAX_SEGMENTS
inline constexpr std::size_t gro_buffer = 64 * 1024; // holds any coalesced receive

inline bool enable_gro(int fd) {
  const int one = 1;
  return ::setsockopt(fd, sol_udp, udp_gro, &one, sizeof one) == 0;
}

// Room for one UDP_SEGMENT or UDP_GRO control message.
struct alignas(cmsghdr) segment_control {
  unsigned char bytes[CMSG_SPACE(sizeof(int))];
};

// Puts a UDP_SEGMENT control message of `segment` bytes into `msg`.
inline void set_gso(msghdr& msg, segment_control& room, std::uint16_t segment) {
  std::memset(room.bytes, 0, sizeof room.bytes);
  msg.msg_control = room.bytes;
  msg.msg_controllen = CMSG_SPACE(sizeof(std::uint16_t));
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = sol_udp;
  c->cmsg_type = udp_segment;
  c->cmsg_len = CMSG_LEN(sizeof segment);
  std::memcpy(CMSG_DATA(c), &segment, sizeof segment);
}

// The segment size of a coalesced receive, or 0 (one datagram).
inline std::size_t gro_size(msghdr& msg) {
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == sol_udp && c->cmsg_type == udp_gro) {
      int size = 0;
      std::memcpy(&size, CMSG_DATA(c), sizeof size);
      return size > 0 ? static_cast<std::size_t>(size) : 0;
    }
  }
  return 0;
}

// Calls f(data, len) for each datagram of a receive of `len` bytes whose
// segment size is `seg` (0: one datagram).
template <class F>
void for_each_segment(const std::byte* data, std::size_t len, std::size_t seg, F&& f) {
  if (seg == 0 || seg >= len) {
    f(data, len);
    return;
  }
  for (std::size_t off = 0; off < len; off += seg) f(data + off, std::min(seg, len - off));
}

// ---- network namespaces

// While alive, sockets this thread opens belong to network namespace
// /run/netns/NAME (ip netns); empty name: no change. ok() false: no switch.
class netns_scope {
 public:
  explicit netns_scope(const std::string& name) {
    if (name.empty()) {
      ok_ = true;
      return;
    }
    home_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    const int target = ::open(("/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC);
    ok_ = home_ >= 0 && target >= 0 && ::setns(target, CLONE_NEWNET) == 0;
    if (target >= 0) ::close(target);
  }
  ~netns_scope() {
    if (home_ >= 0) {
      if (::setns(home_, CLONE_NEWNET) != 0) std::perror("setns back");
      ::close(home_);
    }
  }
  netns_scope(const netns_scope&) = delete;
  netns_scope& operator=(const netns_scope&) = delete;
  [[nodiscard]] bool ok() const { return ok_; }

 private:
  int home_ = -1;
  bool ok_ = false;
};

}  // namespace anyturn::bench
