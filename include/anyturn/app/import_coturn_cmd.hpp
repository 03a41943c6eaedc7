// anyturn::app — `anyturn import-coturn FILE`: prints the anyturn YAML that
// matches a coturn turnserver.conf (config::import_coturn) on stdout, and
// one "warning: line N: ..." per note on stderr (docs/coming-from-coturn.md).
//
// Exit codes: 0 the file was translated (notes or not), 1 it cannot be read,
// 2 bad arguments.
#pragma once

#include <iosfwd>
#include <string>

namespace anyturn::app {

inline constexpr int import_ok = 0;
inline constexpr int import_unreadable = 1;
inline constexpr int import_bad_arguments = 2;

// Whether argv is `anyturn import-coturn ...`.
bool is_import_coturn_command(int argc, const char* const* argv);

// Runs `anyturn import-coturn`; returns the exit code.
int run_import_coturn(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

std::string import_coturn_usage();

}  // namespace anyturn::app
