// A real redis-server for one test, on a loopback port, stopped by PID.
//
//   redis-server --port P --bind 127.0.0.1 --save "" --appendonly no
//
// P comes from [30000, 31499] (the block tests/support reserves for
// listening ports). Tests skip when redis-server is not installed
// (redis_server::available()).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace anyturn::itest {

class redis_server {
 public:
  redis_server();
  ~redis_server();  // SIGKILL if still running
  redis_server(const redis_server&) = delete;
  redis_server& operator=(const redis_server&) = delete;

  // Whether a redis-server binary is on PATH.
  static bool available();

  // Starts on `port` (0: a free one; the same one again after kill()), and
  // waits until it answers PING. With `rdb_file`, loads it at start-up.
  bool start(std::uint16_t port = 0, const std::string& rdb_file = {},
             std::chrono::milliseconds timeout = std::chrono::seconds{5});
  // SIGKILL and reap (a crash: the data is gone).
  void kill();
  // Asks it to SAVE its data; the path of the .rdb file it wrote, or "".
  std::string save();

  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] bool running() const { return pid_ > 0; }
  [[nodiscard]] std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }
  [[nodiscard]] std::string log() const;

  // One command over a fresh connection: `line` split at spaces, or the
  // exact arguments (binary-safe). The raw RESP reply, or "" when none came
  // within a second.
  std::string command(const std::string& line) const;
  std::string command(const std::vector<std::string>& args) const;

 private:
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
  std::string dir_;
  std::string log_path_;
};

}  // namespace anyturn::itest
