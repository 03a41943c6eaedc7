// Shared pieces of the hostile-client tests (label: hostile): the real
// daemon with a config file and a TLS certificate, the /metrics scrape, the
// daemon's VmRSS and open descriptors, coturn's turnutils_uclient as the
// well-behaved client that must keep zero loss while a test attacks, and
// sockets bound to chosen loopback addresses (127.0.0.0/8 is all local, so a
// test can play many clients from one host).
//
// Every child process is recorded by PID and killed by that PID; every wait
// is bounded.
#pragma once

#include "daemon.hpp"
#include "turn_client.hpp"

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace anyturn::itest::hostile {

using clock = std::chrono::steady_clock;

// The credentials of the daemon's one static user (a password that appears
// in no document).
const credentials& user();

// 127.a.b.c as an endpoint.
stun::endpoint loopback(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint16_t port = 0);
// "127.a.b.c"
std::string ip_text(const stun::endpoint& ep);

// A UDP or TCP socket bound to `local` (port 0: any), non-blocking when asked;
// -1 on failure (errno kept).
int bound_socket(int type, const stun::endpoint& local, bool nonblocking);
// Closes every descriptor in `fds` and clears it.
void close_all(std::vector<int>& fds);

// Raises this process's descriptor limit to its hard limit; returns the new soft limit.
std::uint64_t raise_fd_limit();

// VmRSS (KiB) and the number of open descriptors of a process.
std::uint64_t rss_kib_of(pid_t pid);
std::size_t open_fds(pid_t pid);

// A relay port range of `width` ports that the other test labels do not use
// (below tests/support's 10000-port window when the kernel's ephemeral
// range allows, else one of its slots).
port_range relay_ports(unsigned width, unsigned offset = 0);

// The daemon as the hostile tests run it.
struct server_options {
  std::string config_yaml;                   // written to a file and passed with --config
  std::vector<std::string> allow_peers = {"127.0.0.1/32"};
  unsigned relay_width = 200;
  unsigned relay_offset = 0;
  bool tls = false;                          // a TLS listener with a fresh self-signed certificate
  unsigned threads = 2;
  std::vector<std::string> extra_args;
};

class server {
 public:
  explicit server(server_options o);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  bool start();
  // Stops the daemon (it must exit 0: checked) and returns its log.
  std::string stop();

  [[nodiscard]] daemon& d() { return *daemon_; }
  [[nodiscard]] const stun::endpoint& udp() const { return daemon_->address(); }  // TCP on the same port
  [[nodiscard]] stun::endpoint tls() const { return stun::endpoint::v4(0x7F000001u, tls_port_); }
  [[nodiscard]] std::uint16_t http_port() const { return daemon_->http_port(); }
  [[nodiscard]] pid_t pid() const { return daemon_->pid(); }
  [[nodiscard]] const port_range& relay() const { return ports_; }

  // One /metrics body ("" when the scrape failed, which fails the test).
  std::string scrape();
  // One series' value in `exposition`; a missing series fails the test
  // (that is how a test fails before the counter exists) and reads as 0.
  static double metric(const std::string& exposition, const std::string& series);
  // The same on a fresh scrape.
  double metric(const std::string& series);
  // True when the series is rendered at all.
  bool has_series(const std::string& series);

 private:
  std::filesystem::path dir_;
  port_range ports_;
  std::uint16_t tls_port_ = 0;
  std::unique_ptr<daemon> daemon_;
};

// A child process with its output in a file, killed by PID when destroyed.
class child {
 public:
  child(std::vector<std::string> argv, std::filesystem::path output);
  ~child();
  child(const child&) = delete;
  child& operator=(const child&) = delete;

  [[nodiscard]] pid_t pid() const { return pid_; }
  // Waits up to `timeout`; the exit status, or nullopt if it is still running.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  void kill();
  [[nodiscard]] std::string output() const;

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
  std::filesystem::path output_;
};

// turnutils_uclient relaying through the daemon to a turnutils_peer echo
// peer, started in the background: the well-behaved client.
struct uclient_options {
  std::uint16_t server_port = 0;
  std::string peer_ip = "127.0.0.1";  // turnutils_peer binds here
  bool tcp = false;                   // -t
  bool tls = false;                   // -t -S
  int clients = 4;                    // -m (each also makes an RTCP allocation)
  int messages = 100;                 // -n per client
  int interval_ms = 20;               // -z
  int length = 160;                   // -l
};

// The well-behaved client every hostile test runs beside its attack: four
// clients of 150 messages each to `s` over UDP, TCP or TLS.
enum class via { udp, tcp, tls };
uclient_options well_behaved(server& s, via transport = via::udp);

struct uclient_result {
  long sent = -1;
  long received = -1;
  long lost = -1;
  int exit_status = -1;
  std::string output;
  // Every message sent came back, and at least `min_sent` were sent.
  [[nodiscard]] bool zero_loss(long min_sent) const {
    return sent >= min_sent && received == sent && lost == 0;
  }
  [[nodiscard]] std::string summary() const;
};

class uclient {
 public:
  explicit uclient(uclient_options o);
  ~uclient();
  uclient(const uclient&) = delete;
  uclient& operator=(const uclient&) = delete;

  // Starts the peer, then the client; false (with why()) when a tool is missing or fails.
  bool start();
  [[nodiscard]] const std::string& why() const { return why_; }
  // Waits for the client (at most `timeout`) and reads its summary.
  uclient_result finish(std::chrono::milliseconds timeout = std::chrono::seconds{90});
  [[nodiscard]] long expected_messages() const { return static_cast<long>(o_.clients) * o_.messages; }

 private:
  uclient_options o_;
  std::filesystem::path dir_;
  std::unique_ptr<child> peer_;
  std::unique_ptr<child> client_;
  std::string why_;
};

}  // namespace anyturn::itest::hostile
