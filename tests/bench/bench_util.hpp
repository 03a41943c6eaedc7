// Small helpers shared by the benchmark tools (anyturn-load and
// anyturn-bare-forwarder): a monotonic clock, IPv4 loopback sockets, the
// open-file limit, and /proc sampling of another process.
//
// Benchmark tools only: they speak IPv4 on loopback, so addresses are
// plain sockaddr_in and errors go to stderr.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

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

}  // namespace anyturn::bench
