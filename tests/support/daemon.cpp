#include "daemon.hpp"

#include "spawn.hpp"
#include "turn_client.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#ifndef ANYTURN_BINARY
#error "ANYTURN_BINARY must name the anyturn executable"
#endif

namespace anyturn::itest {

namespace {

using clock = std::chrono::steady_clock;

std::pair<unsigned, unsigned> ephemeral_range() {
  std::ifstream f("/proc/sys/net/ipv4/ip_local_port_range");
  unsigned lo = 32768, hi = 60999;
  if (f) f >> lo >> hi;
  return {lo, hi};
}

// Binds `type` on the loopback address at `port` (0: any); returns the port or 0.
std::uint16_t try_bind(bool ipv6, int type, std::uint16_t port) {
  const int fd = ::socket(ipv6 ? AF_INET6 : AF_INET, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (ipv6) {
    int one = 1;
    ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_addr = in6addr_loopback;
    sin6->sin6_port = htons(port);
    len = sizeof *sin6;
  } else {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin->sin_port = htons(port);
    len = sizeof *sin;
  }
  std::uint16_t got = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    got = ipv6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
               : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  }
  ::close(fd);
  return got;
}

}  // namespace

std::string port_range::flag() const { return std::to_string(low) + "-" + std::to_string(high); }

port_range relay_ports_for_slot(unsigned slot, unsigned width) {
  const auto [lo, hi] = ephemeral_range();
  // A 10000-port window that does not overlap the ephemeral range, so the
  // kernel never hands one of our relay ports to some other socket.
  unsigned base = 20000;
  for (unsigned candidate : {20000u, 10000u, 1100u}) {
    if (candidate + 9999 < lo || candidate > hi) {
      base = candidate;
      break;
    }
  }
  // Integration tests use the first half of the window, interop scripts
  // (tests/interop/lib.sh) the second.
  const unsigned low = base + (slot * width) % 5000;
  return {static_cast<std::uint16_t>(low), static_cast<std::uint16_t>(low + width - 1)};
}

std::uint16_t free_port(bool ipv6) {
  // Listening ports come from [30000, 31499], below the kernel's ephemeral
  // range and above the relay windows, so no client socket of a parallel test
  // is ever given one of them between this check and the daemon's bind. (The
  // interop scripts and the browser test draw from 31500-32766.) If the ephemeral range covers that
  // block, the kernel picks instead.
  const auto [lo, hi] = ephemeral_range();
  constexpr unsigned block_low = 30000, block_high = 31499;
  const bool block_usable = block_high < lo || block_low > hi;
  static thread_local std::minstd_rand rng{static_cast<unsigned>(::getpid()) ^
                                           static_cast<unsigned>(clock::now().time_since_epoch().count())};
  for (int attempt = 0; attempt < 200; ++attempt) {
    const std::uint16_t want =
        block_usable ? static_cast<std::uint16_t>(block_low + rng() % (block_high - block_low + 1)) : 0;
    const std::uint16_t p = try_bind(ipv6, SOCK_DGRAM, want);
    if (p != 0 && try_bind(ipv6, SOCK_STREAM, p) == p) return p;
  }
  throw std::runtime_error("free_port: no free loopback port");
}

bool ipv6_loopback_usable() { return try_bind(true, SOCK_DGRAM, 0) != 0; }

daemon::daemon(options o) : options_(std::move(o)) {}

daemon::~daemon() {
  if (pid_ > 0 && !exit_status_) {
    ::kill(pid_, SIGKILL);
    reap(true);
  }
  if (!log_path_.empty() && std::getenv("ANYTURN_KEEP_LOGS") == nullptr) ::unlink(log_path_.c_str());
  if (!state_home_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(state_home_, ec);
  }
}

std::string daemon::command_line() const {
  std::string s;
  for (const auto& a : argv_) {
    if (!s.empty()) s += ' ';
    s += a;
  }
  return s;
}

std::string daemon::log() const {
  std::ifstream f(log_path_);
  std::ostringstream os;
  os << "---- " << command_line() << " (log " << log_path_ << ")\n" << f.rdbuf();
  return os.str();
}

std::optional<int> daemon::reap(bool block) {
  if (exit_status_) return exit_status_;
  if (pid_ <= 0) return std::nullopt;
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r != pid_) return std::nullopt;
  exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return exit_status_;
}

bool daemon::running() { return pid_ > 0 && !reap(false); }

bool daemon::start(std::chrono::milliseconds ready_timeout) {
  // A restart after stop(): a new process, a new log, the same state directory.
  if (pid_ > 0 && running()) return false;
  // A port checked free can still be taken by a parallel test before the
  // daemon binds it. The daemon then exits at start-up saying so; pick new
  // ports and try again (a port passed in options_.args stays as it is).
  for (int attempt = 0;; ++attempt) {
    if (launch(ready_timeout)) return true;
    if (attempt == 2 || running()) return false;
    const std::string text = log();
    if (text.find("Address already in use") == std::string::npos) return false;
  }
}

bool daemon::launch(std::chrono::milliseconds ready_timeout) {
  exit_status_.reset();
  if (!log_path_.empty() && std::getenv("ANYTURN_KEEP_LOGS") == nullptr) ::unlink(log_path_.c_str());
  // A port the test already put in the arguments (a TLS listener, ...) is
  // free until the daemon binds it, so free_port may offer it again.
  const auto in_args = [&](std::uint16_t p) {
    const std::string suffix = ":" + std::to_string(p);
    for (const auto& a : options_.args) {
      if (a.ends_with(suffix)) return true;
    }
    return false;
  };
  std::uint16_t port = 0;
  do {
    port = free_port(options_.ipv6);
  } while (in_args(port));
  std::array<std::uint8_t, 16> v6{};
  v6[15] = 1;
  address_ = options_.ipv6 ? stun::endpoint::v6(v6, port) : stun::endpoint::v4(0x7F000001u, port);

  argv_ = {ANYTURN_BINARY, "--listen", address_.to_string()};
  if (options_.http) {
    do {
      http_port_ = free_port(false);
    } while (http_port_ == port || in_args(http_port_));
    argv_.push_back("--http-listen");
    argv_.push_back("127.0.0.1:" + std::to_string(http_port_));
  }
  argv_.insert(argv_.end(), options_.args.begin(), options_.args.end());

  std::string tmpl = "/tmp/anyturn-itest-XXXXXX.log";
  const int log_fd = ::mkstemps(tmpl.data(), 4);
  if (log_fd < 0) throw std::runtime_error("mkstemps failed");
  log_path_ = tmpl;

  if (state_home_.empty()) {
    std::string dir = "/tmp/anyturn-itest-state-XXXXXX";
    if (::mkdtemp(dir.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    state_home_ = dir;
  }
  const auto env = environment_with("XDG_STATE_HOME", state_home_);
  pid_ = spawn(argv_, log_fd, &env);
  ::close(log_fd);

  // Ready when it answers a Binding request.
  turn_client probe(address_);
  const auto deadline = clock::now() + ready_timeout;
  while (clock::now() < deadline) {
    if (!running()) return false;
    auto r = probe.exchange(probe.build_request(stun::method::binding, turn_client::random_tid(), {}, false),
                            std::chrono::milliseconds{200});
    if (r && r->is_success()) return true;
  }
  return false;
}

bool daemon::signal(int sig) {
  if (!running()) return false;
  return ::kill(pid_, sig) == 0;
}

std::optional<http_response> http_request(std::uint16_t port, std::string_view method,
                                          std::string_view target,
                                          const std::vector<std::string>& headers,
                                          std::string_view body, std::chrono::milliseconds timeout) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::nullopt;
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sin.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0) {
    ::close(fd);
    return std::nullopt;
  }
  std::string req;
  req.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  req += "Connection: close\r\n";
  for (const auto& h : headers) req += h + "\r\n";
  if (!body.empty() || method == "POST") {
    req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  req += "\r\n";
  req.append(body);
  std::size_t sent = 0;
  while (sent < req.size()) {
    const ssize_t n = ::send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      ::close(fd);
      return std::nullopt;
    }
    sent += static_cast<std::size_t>(n);
  }
  std::string raw;
  const auto deadline = clock::now() + timeout;
  std::array<char, 16384> buf{};
  while (clock::now() < deadline) {
    const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0) break;  // EOF (Connection: close), error or SO_RCVTIMEO
    raw.append(buf.data(), static_cast<std::size_t>(n));
  }
  ::close(fd);
  const auto end = raw.find("\r\n\r\n");
  if (end == std::string::npos || !raw.starts_with("HTTP/1.1 ") || raw.size() < 12) return std::nullopt;
  http_response r;
  r.status = std::atoi(raw.substr(9, 3).c_str());
  r.headers = raw.substr(0, end);
  for (auto& c : r.headers) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  r.body = raw.substr(end + 4);
  return r;
}

std::optional<double> metric_value(std::string_view exposition, std::string_view series) {
  std::size_t pos = 0;
  while (pos < exposition.size()) {
    std::size_t eol = exposition.find('\n', pos);
    if (eol == std::string_view::npos) eol = exposition.size();
    const std::string_view line = exposition.substr(pos, eol - pos);
    pos = eol + 1;
    if (line.size() > series.size() && line.starts_with(series) && line[series.size()] == ' ') {
      return std::strtod(std::string(line.substr(series.size() + 1)).c_str(), nullptr);
    }
  }
  return std::nullopt;
}

std::optional<double> metric_sum(std::string_view exposition, std::string_view family,
                                 const std::vector<std::string>& matchers) {
  std::optional<double> sum;
  std::size_t pos = 0;
  while (pos < exposition.size()) {
    std::size_t eol = exposition.find('\n', pos);
    if (eol == std::string_view::npos) eol = exposition.size();
    const std::string_view line = exposition.substr(pos, eol - pos);
    pos = eol + 1;
    if (line.empty() || line.front() == '#' || !line.starts_with(family)) continue;
    const std::string_view rest = line.substr(family.size());
    if (rest.empty() || (rest.front() != '{' && rest.front() != ' ')) continue;  // a longer name
    const auto space = line.rfind(' ');
    const std::string_view labels = line.substr(family.size(), space - family.size());
    bool all = true;
    for (const auto& m : matchers) all = all && labels.find(m) != std::string_view::npos;
    if (!all) continue;
    sum = sum.value_or(0) + std::strtod(std::string(line.substr(space + 1)).c_str(), nullptr);
  }
  return sum;
}

int daemon::stop(std::chrono::milliseconds grace) {
  if (pid_ <= 0) return -1;
  if (exit_status_) return *exit_status_;
  ::kill(pid_, SIGTERM);
  const auto deadline = clock::now() + grace;
  while (clock::now() < deadline) {
    if (auto s = reap(false)) return *s;
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  ::kill(pid_, SIGKILL);
  reap(true);
  exit_status_ = -1;
  return -1;
}

std::optional<int> daemon::wait_exit(std::chrono::milliseconds limit) {
  if (pid_ <= 0) return std::nullopt;
  if (exit_status_) return exit_status_;
  const auto deadline = clock::now() + limit;
  do {
    if (auto s = reap(false)) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  } while (clock::now() < deadline);
  return std::nullopt;
}

}  // namespace anyturn::itest
