// anyturn::app — the daemon: builds the shared state from a validated config,
// loads (or, for development, creates) the TLS certificate, starts one
// net::worker per thread, starts the side HTTP server (metrics, health,
// credentials API) on its own thread, handles SIGINT/SIGTERM (drain, stop)
// and SIGHUP (reload the TLS certificate, reopen the usage log) on the main
// thread, and on stop frees every allocation (writing its usage record) and
// logs a summary.
#pragma once

#include <anyturn/app/startup.hpp>
#include <anyturn/app/summary.hpp>
#include <anyturn/config/cli.hpp>
#include <anyturn/config/config.hpp>
#include <anyturn/http/server.hpp>
#include <anyturn/turn/worker_core.hpp>

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace anyturn::app {

class server_app {
 public:
  explicit server_app(config::server_config cfg);
  ~server_app();  // stops and joins the workers if wait() was not called
  server_app(const server_app&) = delete;
  server_app& operator=(const server_app&) = delete;

  // Raises the descriptor limit, builds the shared state, binds every
  // worker's listeners and starts the worker threads. On failure (a listener
  // cannot bind, ...) returns false with a one-line reason in `error` and
  // leaves nothing running.
  bool start(std::string& error);

  // Blocks until SIGINT, SIGTERM or request_stop(); then stops every worker
  // (each frees its allocations), joins them and logs the summary. Returns
  // the process exit code.
  int wait();

  // Any thread: makes wait() return with `exit_code`.
  void request_stop(int exit_code = 0);

  // Where a reload (SIGHUP, POST /admin/reload) reads the config again: the
  // command line the server was started with (its --config file, then its
  // flags over it). Without one (or without --config), SIGHUP only reloads
  // the TLS certificate and reopens the usage log, and /admin/reload
  // answers 400. Call before start().
  void set_reload_source(config::cli_options source);
  // Re-reads and applies the config (any thread; one reload at a time).
  http::reload_result reload(std::string_view cause);

  // Bound listener addresses (ephemeral ports resolved), after start():
  // UDP (and TCP on the same ports), and TLS.
  [[nodiscard]] std::vector<stun::endpoint> listeners() const;
  [[nodiscard]] std::vector<stun::endpoint> tls_listeners() const;
  [[nodiscard]] unsigned threads() const;
  // The side HTTP server's bound port after start(); 0 when it is off.
  [[nodiscard]] std::uint16_t http_port() const;
  // What GET /metrics answers right now (any thread).
  [[nodiscard]] std::string render_metrics() const;
  // Counters summed over the workers; safe from any thread.
  [[nodiscard]] counter_totals totals() const;
  [[nodiscard]] net_totals stream_totals() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// The program: argv -> --help / --version / check-config / run. Writes
// usage, version and check-config results to `out`, command-line and config
// errors to `err`; the server logs through spdlog. Returns the exit code.
int run_main(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

// One logger to stderr: time, level, thread id. `level` is a spdlog level name.
// format: log.format, "text" or "json" (common::log_format).
void setup_logging(const std::string& level, const std::string& format = "text");

}  // namespace anyturn::app
