// anyturn::app — `anyturn probe`: the end-to-end TURN probe from a shell
// (docs/probe.md).
//
//   anyturn probe URL... [--user U --password P | --secret S [--ttl T]]
//                 [--count N] [--interval-ms M] [--size B] [--timeout-s T]
//                 [--ca FILE | --insecure] [--json]
//
// Each URL is probed in turn on the calling thread (anyturn::probe::run).
// Exit codes: 0 every URL passed, 1 one failed, 2 bad arguments.
#pragma once

#include <anyturn/probe/probe.hpp>

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace anyturn::app {

inline constexpr int probe_passed = 0;
inline constexpr int probe_failed = 1;
inline constexpr int probe_bad_arguments = 2;

// Whether argv is `anyturn probe ...`.
bool is_probe_command(int argc, const char* const* argv);

// What the command line asks for. --secret is turned into REST credentials
// here (user "probe" unless --user is given, --ttl default 600) at `now_unix`.
struct probe_invocation {
  std::vector<probe::target> targets;
  probe::options opts;
  bool json = false;
  bool help = false;
};
// Parses argv (argv[1] is "probe"); nullopt with `error` on bad arguments.
std::optional<probe_invocation> parse_probe_cli(int argc, const char* const* argv,
                                                std::int64_t now_unix, std::string& error);

// Runs `anyturn probe`; returns the exit code.
int run_probe(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

std::string probe_usage();

}  // namespace anyturn::app
