#include <anyturn/app/app.hpp>

#include <anyturn/app/ctl.hpp>
#include <anyturn/app/import_coturn_cmd.hpp>
#include <anyturn/app/probe_cmd.hpp>
#include <anyturn/app/side.hpp>
#include <anyturn/common/log_format.hpp>
#include <anyturn/config/cli.hpp>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <ctime>
#include <ostream>

namespace anyturn::app {

void setup_logging(const std::string& level, const std::string& format) {
  auto logger = spdlog::get("anyturn");
  if (!logger) logger = spdlog::stderr_logger_mt("anyturn");
  // Synchronous on purpose: the formatter reads the calling thread's log
  // fields (common::log_context).
  logger->set_formatter(
      common::make_log_formatter(common::parse_log_format(format).value_or(common::log_format::text)));
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
}

namespace {

void print_errors(std::ostream& err, const std::vector<std::string>& errors) {
  for (const auto& e : errors) err << "anyturn: " << e << '\n';
}

// `anyturn credentials ...`: no config, no sockets, no logging.
int run_credentials(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  std::vector<std::string> errors;
  const auto opts =
      config::parse_credentials_cli(argc, argv, std::getenv("ANYTURN_REST_SECRET"), errors);
  if (!opts) {
    print_errors(err, errors);
    err << "Try 'anyturn credentials --help'.\n";
    return 1;
  }
  if (opts->help) {
    out << config::credentials_usage();
    return 0;
  }
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  out << format_credentials(mint_credentials(*opts, now), opts->json);
  return 0;
}

}  // namespace

int run_main(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  if (config::is_credentials_command(argc, argv)) return run_credentials(argc, argv, out, err);
  if (is_ctl_command(argc, argv)) return run_ctl(argc, argv, std::getenv("ANYTURN_ADMIN_KEY"), out, err);
  if (is_probe_command(argc, argv)) return run_probe(argc, argv, out, err);
  if (is_import_coturn_command(argc, argv)) return run_import_coturn(argc, argv, out, err);
  std::vector<std::string> errors;
  const auto opts = config::parse_cli(argc, argv, errors);
  if (!opts) {
    print_errors(err, errors);
    err << "Try 'anyturn --help'.\n";
    return 1;
  }
  switch (opts->cmd) {
    case config::command::help:
      out << config::usage();
      return 0;
    case config::command::version:
      out << config::version() << '\n';
      return 0;
    case config::command::check_config: {
      // Loads, applies the flags and validates; binds nothing.
      const auto cfg = config::resolve(*opts, errors);
      if (!cfg) {
        print_errors(err, errors);
        err << errors.size() << (errors.size() == 1 ? " error\n" : " errors\n");
        return 1;
      }
      out << "configuration OK\n";
      for (const auto& w : config::warnings(*cfg)) out << "warning: " << w << '\n';
      for (const auto& w : risky_peer_allowances(cfg->peers)) out << "warning: " << w << '\n';
      return 0;
    }
    case config::command::run:
      break;
  }

  const auto cfg = config::resolve(*opts, errors);
  if (!cfg) {
    print_errors(err, errors);
    return 1;
  }
  setup_logging(cfg->log_level, cfg->log_format);
  server_app app(*cfg);
  app.set_reload_source(*opts);
  std::string error;
  if (!app.start(error)) {
    spdlog::error("{}", error);
    return 1;
  }
  return app.wait();
}

}  // namespace anyturn::app
