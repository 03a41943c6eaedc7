#include "hostile.hpp"
#include "spawn.hpp"

#include <anyturn/net/tls.hpp>

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace anyturn::itest::hostile {

namespace fs = std::filesystem;

namespace {

fs::path make_temp_dir(const char* what) {
  std::string tmpl = (fs::temp_directory_path() / (std::string("anyturn-hostile-") + what + "-XXXXXX")).string();
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

void remove_dir(const fs::path& dir) {
  if (dir.empty() || std::getenv("ANYTURN_KEEP_LOGS") != nullptr) return;
  std::error_code ec;
  fs::remove_all(dir, ec);
}

std::string write_file(const fs::path& p, const std::string& text) {
  std::ofstream(p) << text;
  return p.string();
}

sockaddr_in to_sockaddr(const stun::endpoint& ep) {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(ep.v4_host_order());
  sin.sin_port = htons(ep.port);
  return sin;
}

// True when `ip`:`port` is bound for UDP by someone (our bind fails).
bool udp_port_taken(const std::string& ip, std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  ::inet_pton(AF_INET, ip.c_str(), &sin.sin_addr);
  sin.sin_port = htons(port);
  const bool taken = ::bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0 && errno == EADDRINUSE;
  ::close(fd);
  return taken;
}

// A port P on `ip` with P and P+1 free for UDP (turnutils_peer binds both).
std::uint16_t free_udp_pair(const std::string& ip) {
  for (int attempt = 0; attempt < 200; ++attempt) {
    const int a = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    ::inet_pton(AF_INET, ip.c_str(), &sin.sin_addr);
    socklen_t len = sizeof sin;
    if (::bind(a, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0 ||
        ::getsockname(a, reinterpret_cast<sockaddr*>(&sin), &len) != 0) {
      ::close(a);
      continue;
    }
    const std::uint16_t port = ntohs(sin.sin_port);
    ::close(a);
    if (port == 65535) continue;
    if (!udp_port_taken(ip, port) && !udp_port_taken(ip, static_cast<std::uint16_t>(port + 1))) return port;
  }
  throw std::runtime_error("no free UDP port pair on " + ip);
}

long last_number(const std::string& text, const std::string& pattern) {
  const std::regex re(pattern);
  long value = -1;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it) {
    value = std::stol((*it)[1].str());
  }
  return value;
}

}  // namespace

const credentials& user() {
  static const credentials c{"hostile", "hostile-suite-password-5c1e", false};
  return c;
}

stun::endpoint loopback(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint16_t port) {
  return stun::endpoint::v4((0x7Fu << 24) | (std::uint32_t{a} << 16) | (std::uint32_t{b} << 8) | c, port);
}

std::string ip_text(const stun::endpoint& ep) { return ep.ip_string(); }

int bound_socket(int type, const stun::endpoint& local, bool nonblocking) {
  const int fd = ::socket(AF_INET, type | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) return -1;
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  const sockaddr_in sin = to_sockaddr(local);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&sin), sizeof sin) != 0) {
    const int e = errno;
    ::close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

void close_all(std::vector<int>& fds) {
  for (const int fd : fds) {
    if (fd >= 0) ::close(fd);
  }
  fds.clear();
}

std::uint64_t raise_fd_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
    ::getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur;
}

std::uint64_t rss_kib_of(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10);
  }
  return 0;
}

std::size_t open_fds(pid_t pid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/fd";
  DIR* d = ::opendir(path.c_str());
  if (d == nullptr) return 0;
  std::size_t n = 0;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n;
}

port_range relay_ports(unsigned width, unsigned offset) {
  std::ifstream f("/proc/sys/net/ipv4/ip_local_port_range");
  unsigned lo = 32768, hi = 60999;
  if (f) f >> lo >> hi;
  // tests/support uses 20000-29999 when that is clear of the ephemeral
  // range; 10000-19999 then belongs to nobody else.
  const unsigned low = 10000 + offset;
  if (low + width - 1 < 20000 && (20000 + 9999 < lo || 20000 > hi) && (low + width - 1 < lo || low > hi)) {
    return {static_cast<std::uint16_t>(low), static_cast<std::uint16_t>(low + width - 1)};
  }
  return relay_ports_for_slot(240 + offset / 20, width);
}

// ---------------------------------------------------------------- server

server::server(server_options o) : dir_(make_temp_dir("server")), ports_(relay_ports(o.relay_width, o.relay_offset)) {
  daemon::options d;
  d.args = {"--relay-ip", "127.0.0.1", "--relay-ports", ports_.flag(), "--user",
            user().username + ":" + user().password, "--threads", std::to_string(o.threads),
            "--log-level", "info"};
  for (const auto& a : o.allow_peers) {
    d.args.push_back("--allow-peer");
    d.args.push_back(a);
  }
  if (o.tls) {
    tls_port_ = free_port(false);
    const std::vector<stun::endpoint> ips{stun::endpoint::v4(0x7F000001u, 0)};
    const std::vector<std::string> dns{"localhost"};
    std::string error;
    auto pem = net::make_self_signed(ips, dns, std::chrono::hours{24}, error);
    if (!pem) throw std::runtime_error("make_self_signed: " + error);
    d.args.insert(d.args.end(), {"--tls-listen", "127.0.0.1:" + std::to_string(tls_port_), "--tls-cert",
                                 write_file(dir_ / "cert.pem", pem->certificate), "--tls-key",
                                 write_file(dir_ / "key.pem", pem->private_key)});
  }
  if (!o.config_yaml.empty()) {
    d.args.push_back("--config");
    d.args.push_back(write_file(dir_ / "anyturn.yaml", o.config_yaml));
  }
  d.args.insert(d.args.end(), o.extra_args.begin(), o.extra_args.end());
  daemon_ = std::make_unique<daemon>(d);
}

server::~server() {
  daemon_.reset();
  remove_dir(dir_);
}

bool server::start() { return daemon_->start(); }

std::string server::stop() {
  const int rc = daemon_->stop();
  EXPECT_EQ(rc, 0) << "the daemon did not stop cleanly\n" << daemon_->log();
  return daemon_->log();
}

std::string server::scrape() {
  auto r = http_request(daemon_->http_port(), "GET", "/metrics", {}, {}, std::chrono::seconds{5});
  EXPECT_TRUE(r.has_value() && r->status == 200) << "no answer from /metrics";
  return r ? r->body : std::string{};
}

double server::metric(const std::string& exposition, const std::string& series) {
  const auto v = metric_value(exposition, series);
  EXPECT_TRUE(v.has_value()) << series << " is not in /metrics";
  return v.value_or(0);
}

double server::metric(const std::string& series) { return metric(scrape(), series); }

bool server::has_series(const std::string& series) { return metric_value(scrape(), series).has_value(); }

// ---------------------------------------------------------------- child

child::child(std::vector<std::string> argv, fs::path output) : output_(std::move(output)) {
  const int out = ::open(output_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0) throw std::runtime_error("cannot create " + output_.string());
  pid_ = spawn(std::move(argv), out);
  ::close(out);
}

child::~child() { kill(); }

std::optional<int> child::wait(std::chrono::milliseconds timeout) {
  if (status_) return status_;
  const auto deadline = clock::now() + timeout;
  while (true) {
    int st = 0;
    const pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      return status_;
    }
    if (r < 0 && errno != EINTR) return std::nullopt;
    if (clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
}

void child::kill() {
  if (pid_ <= 0 || status_) return;
  ::kill(pid_, SIGTERM);
  if (!wait(std::chrono::seconds{3})) {
    ::kill(pid_, SIGKILL);
    int st = 0;
    ::waitpid(pid_, &st, 0);
    status_ = 128 + SIGKILL;
  }
}

std::string child::output() const {
  std::ifstream f(output_);
  std::ostringstream os;
  os << f.rdbuf();
  return os.str();
}

// ---------------------------------------------------------------- uclient

uclient_options well_behaved(server& s, via transport) {
  uclient_options o;
  o.server_port = transport == via::tls ? s.tls().port : s.udp().port;
  o.tcp = transport == via::tcp;
  o.tls = transport == via::tls;
  o.clients = 4;
  o.messages = 150;
  return o;
}

std::string uclient_result::summary() const {
  std::ostringstream os;
  os << "turnutils_uclient: exit " << exit_status << ", sent " << sent << ", received " << received
     << ", lost " << lost;
  return os.str();
}

uclient::uclient(uclient_options o) : o_(std::move(o)), dir_(make_temp_dir("uclient")) {}

uclient::~uclient() {
  client_.reset();
  peer_.reset();
  remove_dir(dir_);
}

bool uclient::start() {
  if (std::system("command -v turnutils_uclient >/dev/null 2>&1 && command -v turnutils_peer >/dev/null 2>&1") != 0) {
    why_ = "turnutils_uclient/turnutils_peer not found (install the coturn package: scripts/setup.sh)";
    return false;
  }
  const std::uint16_t peer_port = free_udp_pair(o_.peer_ip);
  peer_ = std::make_unique<child>(
      std::vector<std::string>{"turnutils_peer", "-L", o_.peer_ip, "-p", std::to_string(peer_port)},
      dir_ / "peer.log");
  const auto deadline = clock::now() + std::chrono::seconds{5};
  while (!udp_port_taken(o_.peer_ip, peer_port)) {
    if (peer_->wait(std::chrono::milliseconds{0}) || clock::now() > deadline) {
      why_ = "turnutils_peer did not bind " + o_.peer_ip + ":" + std::to_string(peer_port) + ": " + peer_->output();
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  std::vector<std::string> argv{"turnutils_uclient"};
  if (o_.tcp || o_.tls) argv.push_back("-t");
  if (o_.tls) argv.push_back("-S");
  argv.insert(argv.end(), {"-m", std::to_string(o_.clients), "-n", std::to_string(o_.messages), "-l",
                           std::to_string(o_.length), "-z", std::to_string(o_.interval_ms), "-X", "-u",
                           user().username, "-w", user().password, "-p", std::to_string(o_.server_port),
                           "-e", o_.peer_ip, "-r", std::to_string(peer_port), "127.0.0.1"});
  client_ = std::make_unique<child>(argv, dir_ / "uclient.log");
  return true;
}

uclient_result uclient::finish(std::chrono::milliseconds timeout) {
  uclient_result r;
  if (!client_) {
    r.output = why_;
    return r;
  }
  const auto status = client_->wait(timeout);
  if (!status) client_->kill();
  r.exit_status = status.value_or(-1);
  r.output = client_->output();
  r.sent = last_number(r.output, R"(tot_send_msgs=(\d+))");
  r.received = last_number(r.output, R"(tot_recv_msgs=(\d+))");
  r.lost = last_number(r.output, R"(Total lost packets (\d+))");
  // Keep only the tail for failure messages.
  if (r.output.size() > 4000) r.output = "..." + r.output.substr(r.output.size() - 4000);
  return r;
}

}  // namespace anyturn::itest::hostile
