#include "redis_server.hpp"

#include "spawn.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

namespace anyturn::itest {

namespace {

using clock = std::chrono::steady_clock;

int connect_loopback(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool port_free(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

std::uint16_t pick_port() {
  static thread_local std::minstd_rand rng{static_cast<unsigned>(::getpid()) ^
                                           static_cast<unsigned>(clock::now().time_since_epoch().count())};
  for (int i = 0; i < 200; ++i) {
    const auto p = static_cast<std::uint16_t>(30000 + rng() % 1500);
    if (port_free(p)) return p;
  }
  return 0;
}

}  // namespace

redis_server::redis_server() {
  char tmpl[] = "/tmp/anyturn-redis-XXXXXX";
  if (::mkdtemp(tmpl) != nullptr) dir_ = tmpl;
  log_path_ = dir_ + "/redis.log";
}

redis_server::~redis_server() {
  kill();
  if (!dir_.empty() && std::getenv("ANYTURN_KEEP_LOGS") == nullptr) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

bool redis_server::available() {
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(ss, dir, ':'))
    if (!dir.empty() && ::access((dir + "/redis-server").c_str(), X_OK) == 0) return true;
  return false;
}

bool redis_server::start(std::uint16_t port, const std::string& rdb_file, std::chrono::milliseconds timeout) {
  if (running()) return true;
  if (port == 0) port = port_ != 0 ? port_ : pick_port();
  if (port == 0) return false;
  port_ = port;
  std::vector<std::string> argv{"redis-server", "--port", std::to_string(port), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no", "--dir", dir_};
  if (!rdb_file.empty()) {
    const std::filesystem::path p(rdb_file);
    argv.insert(argv.end(), {"--dir", p.parent_path().string(), "--dbfilename", p.filename().string()});
  }
  const int out = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (out < 0) return false;
  pid_ = spawn(argv, out);
  ::close(out);
  const auto deadline = clock::now() + timeout;
  while (clock::now() < deadline) {
    if (command("PING").starts_with("+PONG")) return true;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill();
  return false;
}

void redis_server::kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

std::string redis_server::save() {
  // Started with --dir dir_ and the default dbfilename.
  if (!command("SAVE").starts_with("+OK")) return {};
  return dir_ + "/dump.rdb";
}

std::string redis_server::log() const {
  std::ifstream f(log_path_);
  std::ostringstream os;
  os << "---- redis-server on port " << port_ << " (log " << log_path_ << ")\n" << f.rdbuf();
  return os.str();
}

std::string redis_server::command(const std::string& line) const {
  std::vector<std::string> args;
  std::stringstream ss(line);
  std::string a;
  while (ss >> a) args.push_back(a);
  return command(args);
}

std::string redis_server::command(const std::vector<std::string>& args) const {
  const int fd = connect_loopback(port_);
  if (fd < 0) return {};
  std::string req = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& a : args) req += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    ::close(fd);
    return {};
  }
  std::string out;
  char buf[4096];
  pollfd p{fd, POLLIN, 0};
  const auto deadline = clock::now() + std::chrono::seconds(1);
  // A reply ends with CRLF; arrays and bulk strings have several lines, so
  // read until a short pause after the first bytes.
  while (clock::now() < deadline) {
    const int wait = out.empty() ? 1000 : 20;
    if (::poll(&p, 1, wait) <= 0) {
      if (!out.empty()) break;
      continue;
    }
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

}  // namespace anyturn::itest
